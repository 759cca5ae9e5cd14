package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/testutil"
)

// TestPullRun pulls an image from a loopback registry and runs it with
// berth's runtime: a bundle whose rootfs is a container layer over the
// image, mounted by the layer store, and whose process comes from the image
// config. (`berth run` does this properly; this shows pull → run works.)
func TestPullRun(t *testing.T) {
	reg := startRegistry(t)
	ref := reg + "/run/busybox:v1"
	seed := newImageEnv(t)
	seed.must("import", "-c", `ENTRYPOINT ["sh", "-c"]`, "-c", `CMD ["echo $GREETING from $(pwd); cat /etc/added"]`,
		"-c", "ENV GREETING=hello", "-c", "WORKDIR /tmp", busyboxTar(t), ref)
	seed.must("push", ref)

	e := newImageEnv(t)
	e.must("pull", ref)
	s, err := engine.OpenImages(engine.ImagesOptions{Root: e.root})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	id := "berth-pull-run-" + hex.EncodeToString(rb[:])
	mnt, cfg, err := s.CreateRootfs(context.Background(), id, ref)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.RemoveRootfs(id); err != nil {
			t.Errorf("remove rootfs: %v", err)
		}
	})
	if err := os.WriteFile(filepath.Join(mnt, "etc", "added"), []byte("written in the container layer\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	bundle := t.TempDir()
	spec := runtime.DefaultSpec(false)
	spec.Root.Path = mnt
	spec.Root.Readonly = false
	spec.Process.Terminal = false
	spec.Process.Args = append(append([]string{}, cfg.Config.Entrypoint...), cfg.Config.Cmd...)
	spec.Process.Env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, cfg.Config.Env...)
	spec.Process.Cwd = cfg.Config.WorkingDir
	spec.Linux.CgroupsPath = "/" + id
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	out, err := exec.Command(testutil.Binary(t), "runtime", "--root", state, "run", "--bundle", bundle, id).CombinedOutput()
	if err != nil {
		t.Fatalf("berth runtime run: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "hello from /tmp\nwritten in the container layer" {
		t.Errorf("the container printed %q", got)
	}
	t.Cleanup(func() { testutil.CheckNoLeaks(t, []string{state, bundle}, []string{id}) })
}
