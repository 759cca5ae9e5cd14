package e2e

// Volumes and mounts as containers see them: named volumes that outlive
// containers, anonymous ones that `rm -v` removes, the image's VOLUMEs and
// its content copied into new volumes, binds, tmpfs, and `berth volume`.

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/testutil"
)

// hasVolumeCommand skips t when this berth has no `volume` command.
func (e *engineEnv) hasVolumeCommand(t *testing.T) {
	t.Helper()
	if res := e.berth("volume", "ls", "-q"); res.code != 0 {
		t.Skipf("berth has no `volume` command yet: %s", res.stderr)
	}
}

// volumeNames lists the root's volumes.
func (e *engineEnv) volumeNames() []string {
	e.t.Helper()
	names := strings.Fields(e.must("volume", "ls", "-q"))
	slices.Sort(names)
	return names
}

// mountOf is the name and source of the container's mount at dst.
func (e *engineEnv) mountOf(ref, dst string) (name, source string) {
	e.t.Helper()
	out := e.inspect(ref, `{{range .Mounts}}{{if eq .Destination "`+dst+`"}}{{.Name}} {{.Source}}{{end}}{{end}}`)
	name, source, _ = strings.Cut(out, " ")
	return name, source
}

func TestEngineVolumes(t *testing.T) {
	e := newEngineEnv(t)
	e.hasVolumeCommand(t)
	// An image with a VOLUME and nothing there, and one with content there.
	e.importImage(busyboxTar(t), "withvol", "VOLUME /data", `CMD ["sh"]`)
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	if err := testutil.MakeRootfs(rootfs); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(rootfs, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(rootfs, "data", "seed"), []byte("from the image\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tarPath := filepath.Join(t.TempDir(), "seeded.tar")
	f, err := os.Create(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := writeTree(f, rootfs); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	e.importImage(tarPath, "seeded", "VOLUME /data")

	t.Run("named persists", func(t *testing.T) {
		e := e.forT(t)
		e.run("-v", "keep:/data", "bb", "sh", "-c", "echo kept > /data/f")
		if got := e.run("-v", "keep:/data", "bb", "cat", "/data/f"); got != "kept\n" {
			t.Errorf("named volume in a second container: %q", got)
		}
		// --mount type=volume reaches the same volume; readonly holds.
		if got := e.run("--mount", "type=volume,src=keep,dst=/v,readonly", "bb", "cat", "/v/f"); got != "kept\n" {
			t.Errorf("--mount type=volume: %q", got)
		}
		res := e.berth("run", "--rm", "--mount", "type=volume,src=keep,dst=/v,readonly", "bb", "touch", "/v/g")
		if res.code == 0 || !strings.Contains(res.stderr, "Read-only file system") {
			t.Errorf("write to a readonly volume: %d: %s", res.code, res.stderr)
		}
		// rm -v leaves named volumes alone.
		e.must("run", "--name", "user", "-v", "keep:/data", "bb", "true")
		e.must("rm", "-v", "user")
		if !slices.Contains(e.volumeNames(), "keep") {
			t.Errorf("rm -v removed a named volume")
		}
		e.must("volume", "rm", "keep")
	})

	t.Run("anonymous", func(t *testing.T) {
		e := e.forT(t)
		before := e.volumeNames()
		e.removeAtEnd("anon", "anon2")
		e.must("run", "--name", "anon", "-v", "/data", "bb", "sh", "-c", "echo x > /data/y")
		name, src := e.mountOf("anon", "/data")
		if len(name) != 64 || src == "" {
			t.Fatalf("-v /data made no anonymous volume: mounts %s", e.inspect("anon", "{{json .Mounts}}"))
		}
		if data, err := os.ReadFile(filepath.Join(src, "y")); err != nil || string(data) != "x\n" {
			t.Errorf("the container's write is not in the volume: %q %v", data, err)
		}
		// rm without -v keeps it; rm -v removes it.
		e.must("run", "--name", "anon2", "-v", "/data", "bb", "true")
		name2, _ := e.mountOf("anon2", "/data")
		e.must("rm", "anon2")
		if !slices.Contains(e.volumeNames(), name2) {
			t.Errorf("rm without -v removed the anonymous volume")
		}
		e.must("volume", "rm", name2)
		e.must("rm", "-v", "anon")
		if got := e.volumeNames(); !slices.Equal(got, before) {
			t.Errorf("rm -v left volumes: %q, before %q", got, before)
		}
	})

	t.Run("image VOLUME", func(t *testing.T) {
		e := e.forT(t)
		before := e.volumeNames()
		e.removeAtEnd("iv")
		e.must("run", "--name", "iv", "withvol", "sh", "-c", "grep ' /data ' /proc/mounts && echo y > /data/z")
		name, _ := e.mountOf("iv", "/data")
		if len(name) != 64 {
			t.Fatalf("the image's VOLUME got no anonymous volume: %s", e.inspect("iv", "{{json .Mounts}}"))
		}
		if got := e.inspect("iv", "{{json .Config.Volumes}}"); got != `{"/data":{}}` {
			t.Errorf("inspect .Config.Volumes: %s", got)
		}
		// A mount at the same place replaces it.
		if got := e.run("-v", "other:/data", "withvol", "sh", "-c", "ls -A /data"); got != "" {
			t.Errorf("named volume over the image's VOLUME: %q", got)
		}
		e.must("rm", "-v", "iv")
		e.must("volume", "rm", "other")
		if got := e.volumeNames(); !slices.Equal(got, before) {
			t.Errorf("rm -v left volumes: %q, before %q", got, before)
		}
	})

	t.Run("copy up", func(t *testing.T) {
		e := e.forT(t)
		// A new volume (named or anonymous) gets what the image has there.
		if got := e.run("-v", "fresh:/data", "seeded", "cat", "/data/seed"); got != "from the image\n" {
			t.Errorf("new named volume: %q", got)
		}
		if got := e.run("-v", "fresh:/data", "bb", "cat", "/data/seed"); got != "from the image\n" {
			t.Errorf("the copy is in the volume: %q", got)
		}
		if got := e.run("seeded", "cat", "/data/seed"); got != "from the image\n" {
			t.Errorf("anonymous volume of the image's VOLUME: %q", got)
		}
		// A volume with content of its own is not overwritten.
		e.run("-v", "mine:/data", "bb", "sh", "-c", "echo mine > /data/seed")
		if got := e.run("-v", "mine:/data", "seeded", "cat", "/data/seed"); got != "mine\n" {
			t.Errorf("copy-up over a volume's own content: %q", got)
		}
		// volume-nocopy skips it.
		if got := e.run("--mount", "type=volume,src=nocopy,dst=/data,volume-nocopy", "seeded", "ls", "-A", "/data"); got != "" {
			t.Errorf("volume-nocopy: %q", got)
		}
		e.must("volume", "rm", "fresh", "mine", "nocopy")
	})

	t.Run("bind", func(t *testing.T) {
		e := e.forT(t)
		host := t.TempDir()
		if got := e.run("-v", host+":/mnt", "bb", "sh", "-c", "echo hi > /mnt/f && cat /mnt/f"); got != "hi\n" {
			t.Errorf("bind rw: %q", got)
		}
		if data, _ := os.ReadFile(filepath.Join(host, "f")); string(data) != "hi\n" {
			t.Errorf("the write did not reach the host: %q", data)
		}
		for _, args := range [][]string{{"-v", host + ":/mnt:ro"}, {"--mount", "type=bind,src=" + host + ",dst=/mnt,readonly"}} {
			res := e.berth(append(append([]string{"run", "--rm"}, args...), "bb", "sh", "-c", "cat /mnt/f; touch /mnt/g")...)
			if res.code == 0 || res.stdout != "hi\n" || !strings.Contains(res.stderr, "Read-only file system") {
				t.Errorf("%v: code %d stdout %q stderr %s", args, res.code, res.stdout, res.stderr)
			}
		}
		if _, err := os.Stat(filepath.Join(host, "g")); err == nil {
			t.Errorf("a read-only bind was written")
		}
		// A file, too.
		if got := e.run("-v", filepath.Join(host, "f")+":/etc/motd:ro", "bb", "cat", "/etc/motd"); got != "hi\n" {
			t.Errorf("bind of a file: %q", got)
		}
		// -v creates a missing host directory; --mount refuses it.
		made := filepath.Join(host, "made", "here")
		e.run("-v", made+":/mnt", "bb", "true")
		if st, err := os.Stat(made); err != nil || !st.IsDir() {
			t.Errorf("-v did not create %s: %v", made, err)
		}
		res := e.berth("run", "--rm", "--mount", "type=bind,src="+filepath.Join(host, "absent")+",dst=/mnt", "bb", "true")
		if res.code != 125 || !strings.Contains(res.stderr, "bind source path does not exist") {
			t.Errorf("--mount of a missing source: %d: %s", res.code, res.stderr)
		}
	})

	t.Run("tmpfs", func(t *testing.T) {
		e := e.forT(t)
		got := e.run("--tmpfs", "/run:size=1m", "bb", "sh", "-c", "grep ' /run ' /proc/mounts; echo x > /run/f && cat /run/f")
		if !strings.HasPrefix(got, "tmpfs /run tmpfs ") || !strings.Contains(got, "size=1024k") || !strings.HasSuffix(got, "x\n") {
			t.Errorf("--tmpfs /run:size=1m: %q", got)
		}
		got = e.run("--mount", "type=tmpfs,dst=/scratch,tmpfs-size=2m,tmpfs-mode=1770", "bb", "sh", "-c",
			"grep ' /scratch ' /proc/mounts; stat -c %a /scratch")
		if !strings.HasPrefix(got, "tmpfs /scratch tmpfs ") || !strings.Contains(got, "size=2048k") || !strings.HasSuffix(got, "\n1770\n") {
			t.Errorf("--mount type=tmpfs: %q", got)
		}
		// Defaults: noexec, nosuid, nodev.
		got = e.run("--tmpfs", "/t", "bb", "grep", " /t ", "/proc/mounts")
		for _, opt := range []string{"nosuid", "nodev", "noexec"} {
			if !strings.Contains(got, opt) {
				t.Errorf("--tmpfs /t lacks %s: %q", opt, got)
			}
		}
		// Nothing of a tmpfs outlives the container.
		e.run("--tmpfs", "/t", "bb", "sh", "-c", "echo x > /t/f")
		if got := e.run("--tmpfs", "/t", "bb", "ls", "-A", "/t"); got != "" {
			t.Errorf("a tmpfs kept %q", got)
		}
		res := e.berth("run", "--rm", "--tmpfs", "/t", "-v", "dup:/t", "bb", "true")
		if res.code != 125 || !strings.Contains(res.stderr, "Duplicate mount point") {
			t.Errorf("--tmpfs and -v at one place: %d: %s", res.code, res.stderr)
		}
	})
}

// berth volume create, ls, inspect, rm and prune.
func TestEngineVolumeCommands(t *testing.T) {
	e := newEngineEnv(t)
	e.hasVolumeCommand(t)
	if got := e.must("volume", "create", "--label", "team=a", "v1"); got != "v1\n" {
		t.Errorf("volume create: %q", got)
	}
	anon := strings.TrimSpace(e.must("volume", "create"))
	if len(anon) != 64 {
		t.Errorf("volume create without a name printed %q", anon)
	}
	if got := e.volumeNames(); !slices.Equal(got, func() []string { s := []string{"v1", anon}; slices.Sort(s); return s }()) {
		t.Errorf("volume ls -q: %q", got)
	}
	ls := e.must("volume", "ls")
	if !strings.HasPrefix(ls, "DRIVER") || !strings.Contains(ls, "local     v1") {
		t.Errorf("volume ls:\n%s", ls)
	}
	if got := e.must("volume", "ls", "-q", "--filter", "label=team=a"); got != "v1\n" {
		t.Errorf("volume ls --filter label=team=a: %q", got)
	}
	got := e.must("volume", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Labels}} {{.Scope}}", "v1")
	if got != "v1 local map[team:a] local\n" {
		t.Errorf("volume inspect -f: %q", got)
	}
	mp := strings.TrimSpace(e.must("volume", "inspect", "-f", "{{.Mountpoint}}", "v1"))
	if st, err := os.Stat(mp); err != nil || !st.IsDir() {
		t.Errorf("Mountpoint %s: %v", mp, err)
	}
	res := e.berth("volume", "inspect", "nosuch")
	if res.code != 1 || !strings.Contains(res.stderr, "no such volume") && !strings.Contains(res.stderr, "No such volume") {
		t.Errorf("volume inspect nosuch: %d: %s", res.code, res.stderr)
	}
	res = e.berth("volume", "create", "bad/name")
	if res.code == 0 {
		t.Errorf("volume create bad/name succeeded")
	}

	// In use: rm refuses, even with -f; free again after the container goes.
	e.removeAtEnd("holder")
	e.must("run", "-d", "--name", "holder", "-v", "v1:/data", "bb", "sleep", "1000")
	for _, args := range [][]string{{"volume", "rm", "v1"}, {"volume", "rm", "-f", "v1"}} {
		res := e.berth(args...)
		if res.code != 1 || !strings.Contains(res.stderr, "volume is in use") {
			t.Errorf("%s of a volume in use: %d: %s", strings.Join(args, " "), res.code, res.stderr)
		}
	}
	e.must("rm", "-f", "holder")

	// prune removes anonymous volumes no container uses (docker's default
	// since API 1.42); named ones stay without --all.
	e.must("volume", "prune", "-f")
	if got := e.volumeNames(); !slices.Equal(got, []string{"v1"}) {
		t.Errorf("after volume prune -f: %q", got)
	}
	if got := e.must("volume", "rm", "v1"); got != "v1\n" {
		t.Errorf("volume rm: %q", got)
	}
	res = e.berth("volume", "rm", "v1")
	if res.code != 1 || !strings.Contains(res.stderr, "no such volume") {
		t.Errorf("second volume rm: %d: %s", res.code, res.stderr)
	}
	if _, err := os.Stat(mp); !os.IsNotExist(err) {
		t.Errorf("volume rm left %s: %v", mp, err)
	}
	if got := e.volumeNames(); len(got) != 0 {
		t.Errorf("volumes left: %q", got)
	}
}
