package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestImageSaveLoadDocker moves images between berth and a private dockerd:
// `berth save` → `docker load`, and `docker save` → `berth load`, keeping
// image IDs and tags.
func TestImageSaveLoadDocker(t *testing.T) {
	ce := newClientEnv(t, "dockerd", "docker", "containerd")
	d := startDockerd(ce)
	b := newImageEnv(t)
	rootfs := busyboxTar(t)

	// berth → docker, with two layers and a config docker must keep as is.
	base := randomLayer(t, "base", 1<<20, 5)
	top := randomLayer(t, "top", 256<<10, 5)
	b.must("load", "-i", ociLayout(t, "localhost/berth-made:v1", []string{"sh", "-c", "echo from berth"}, base, top))
	b.must("import", "-c", `CMD ["echo", "imported"]`, rootfs, "localhost/berth-imported:v2")
	archive := filepath.Join(ce.dir, "from-berth.tar")
	b.must("save", "-o", archive, "localhost/berth-made:v1", "localhost/berth-imported:v2")
	out := d.mustDocker("load", "-i", archive)
	for _, want := range []string{"Loaded image: localhost/berth-made:v1", "Loaded image: localhost/berth-imported:v2"} {
		if !strings.Contains(out, want) {
			t.Errorf("docker load output lacks %q:\n%s", want, out)
		}
	}
	for _, ref := range []string{"localhost/berth-made:v1", "localhost/berth-imported:v2"} {
		bid := strings.TrimSpace(b.must("image", "inspect", "--format", "{{.Id}}", ref))
		if did := d.mustDocker("image", "inspect", "--format", "{{.Id}}", ref); did != bid {
			t.Errorf("%s: docker has ID %s, berth %s", ref, did, bid)
		}
	}
	if got := d.mustDocker("image", "inspect", "--format", "{{json .Config.Cmd}} {{len .RootFS.Layers}}", "localhost/berth-made:v1"); got != `["sh","-c","echo from berth"] 2` {
		t.Errorf("docker sees berth's image as %s", got)
	}

	// docker → berth.
	d.mustDocker("import", "--change", `CMD ["sh"]`, "--message", "by docker", rootfs, "localhost/docker-made:v3")
	d.mustDocker("tag", "localhost/docker-made:v3", "localhost/docker-made:also")
	did := d.mustDocker("image", "inspect", "--format", "{{.Id}}", "localhost/docker-made:v3")
	archive = filepath.Join(ce.dir, "from-docker.tar")
	d.mustDocker("save", "-o", archive, "localhost/docker-made")
	fresh := newImageEnv(t)
	out = fresh.must("load", "-i", archive)
	for _, want := range []string{"Loaded image: localhost/docker-made:v3", "Loaded image: localhost/docker-made:also"} {
		if !strings.Contains(out, want) {
			t.Errorf("berth load output lacks %q:\n%s", want, out)
		}
	}
	if bid := strings.TrimSpace(fresh.must("image", "inspect", "--format", "{{.Id}}", "localhost/docker-made:v3")); bid != did {
		t.Errorf("docker's image loaded as %s, docker has %s", bid, did)
	}
	if got := fresh.must("history", "--format", "{{.Comment}}", "localhost/docker-made:v3"); strings.TrimSpace(got) != "by docker" {
		t.Errorf("history of docker's image: %q", got)
	}
	// And back: berth saves what docker made, docker takes it again.
	d.mustDocker("rmi", "localhost/docker-made:v3", "localhost/docker-made:also")
	archive = filepath.Join(ce.dir, "round-trip.tar")
	fresh.must("save", "-o", archive, "localhost/docker-made:v3")
	d.mustDocker("load", "-i", archive)
	if got := d.mustDocker("image", "inspect", "--format", "{{.Id}}", "localhost/docker-made:v3"); got != did {
		t.Errorf("after the round trip docker has %s, had %s", got, did)
	}
}
