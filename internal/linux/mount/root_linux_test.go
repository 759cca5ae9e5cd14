package mount

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// newTree makes root (a fake container rootfs) and outside (the host) with
// symlinks in root that point out of it.
func newTree(t *testing.T) (root, outside string) {
	t.Helper()
	base := t.TempDir()
	root = filepath.Join(base, "root")
	outside = filepath.Join(base, "outside")
	for _, d := range []string{root + "/etc", root + "/usr/lib", outside} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		root + "/etc/hosts":    "in root\n",
		outside + "/secret":    "host secret\n",
		root + "/usr/lib/file": "x",
	}
	for p, s := range files {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		root + "/abs":      outside,               // absolute, out of root
		root + "/rel":      "../../outside",       // relative, climbs out
		root + "/lib":      "usr/lib",             // stays in
		root + "/dangling": outside + "/new",      // dangling, absolute
		root + "/danglrel": "../../outside/newer", // dangling, relative
		root + "/secret":   outside + "/secret",   // final component, to a host file
		root + "/loop":     "loop",
	}
	for p, target := range links {
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	return root, outside
}

func TestSecureJoin(t *testing.T) {
	root, outside := newTree(t)
	tests := []struct{ in, want string }{
		{"/etc/hosts", "/etc/hosts"},
		{"etc/hosts", "/etc/hosts"},
		{"../../../etc/hosts", "/etc/hosts"},
		{"/abs/secret", outside + "/secret"}, // resolved as if root were "/"
		{"/rel/secret", "/outside/secret"},
		{"/lib/file", "/usr/lib/file"},
		{"/dangling", outside + "/new"},
		{"/", "/"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := SecureJoin(root, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if want := filepath.Join(root, tt.want); got != want {
				t.Fatalf("SecureJoin(%q) = %q, want %q", tt.in, got, want)
			}
		})
	}
}

func TestOpenInRoot(t *testing.T) {
	root, _ := newTree(t)
	f, err := OpenInRoot(root, "/lib/../lib/file")
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if f.Name() != filepath.Join(root, "usr/lib/file") {
		t.Errorf("opened %q", f.Name())
	}
	// A symlink to a host file resolves inside root, where nothing is.
	for _, p := range []string{"/secret", "/abs/secret", "/rel/secret"} {
		if f, err := OpenInRoot(root, p); !errors.Is(err, os.ErrNotExist) {
			if f != nil {
				t.Errorf("OpenInRoot(%q) opened %q", p, f.Name())
				f.Close()
			}
			t.Errorf("OpenInRoot(%q) error = %v, want not exist", p, err)
		}
	}
	if _, err := OpenInRoot(root, "/loop"); err == nil {
		t.Errorf("symlink loop opened")
	}
}

func TestMkdirAllInRoot(t *testing.T) {
	root, outside := newTree(t)
	for _, p := range []string{"/a/b/c", "/abs/made", "/rel/made2", "/lib/sub"} {
		f, err := MkdirAllInRoot(root, p, 0o755)
		if err != nil {
			t.Fatalf("MkdirAllInRoot(%q): %v", p, err)
		}
		f.Close()
	}
	for _, want := range []string{"a/b/c", outside[1:] + "/made", "outside/made2", "usr/lib/sub"} {
		if st, err := os.Stat(filepath.Join(root, want)); err != nil || !st.IsDir() {
			t.Errorf("%s not created in root: %v", want, err)
		}
	}
	for _, bad := range []string{"made", "made2"} {
		if _, err := os.Lstat(filepath.Join(outside, bad)); err == nil {
			t.Errorf("created %s outside the root", bad)
		}
	}
	if _, err := MkdirAllInRoot(root, "/etc/hosts/sub", 0o755); err == nil {
		t.Errorf("made a directory under a file")
	}
}

func TestCreateMountpoint(t *testing.T) {
	root, outside := newTree(t)
	tests := []struct {
		name    string
		dest    string
		isDir   bool
		created string // path in root that must exist afterwards
		wantErr error
	}{
		{"new dir", "/proc", true, "proc", nil},
		{"new nested dir", "/run/secrets/x", true, "run/secrets/x", nil},
		{"existing dir", "/etc", true, "etc", nil},
		{"new file", "/etc/resolv.conf", false, "etc/resolv.conf", nil},
		{"new file, new parents", "/a/b/hostname", false, "a/b/hostname", nil},
		{"existing file kept", "/etc/hosts", false, "etc/hosts", nil},
		{"dir through absolute symlink", "/abs/d", true, outside[1:] + "/d", nil},
		{"file through relative symlink", "/rel/f", false, "outside/f", nil},
		{"dangling symlink as file", "/dangling", false, outside[1:] + "/new", nil},
		{"dangling relative symlink as dir", "/danglrel", true, "outside/newer", nil},
		{"symlink to host file", "/secret", false, outside[1:] + "/secret", nil},
		{"dir where a file is", "/etc/hosts", true, "", unix.ENOTDIR},
		{"file where a dir is", "/etc", false, "", unix.EISDIR},
		{"file at root", "/", false, "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := CreateMountpoint(root, tt.dest, tt.isDir)
			if tt.created == "" {
				if err == nil {
					f.Close()
					t.Fatalf("CreateMountpoint(%q, %v) succeeded", tt.dest, tt.isDir)
				}
				t.Logf("error: %v", err)
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			want := filepath.Join(root, tt.created)
			st, err := os.Lstat(want)
			if err != nil {
				t.Fatalf("%s missing: %v", want, err)
			}
			if st.IsDir() != tt.isDir || (!tt.isDir && !st.Mode().IsRegular()) {
				t.Fatalf("%s has mode %v", want, st.Mode())
			}
			var fst unix.Stat_t
			if err := unix.Fstat(int(f.Fd()), &fst); err != nil {
				t.Fatal(err)
			}
			if sys := st.Sys().(*syscall.Stat_t); fst.Ino != sys.Ino || fst.Dev != sys.Dev {
				t.Fatalf("handle is not %s", want)
			}
		})
	}
	// Nothing outside the root changed.
	if b, _ := os.ReadFile(filepath.Join(outside, "secret")); string(b) != "host secret\n" {
		t.Errorf("host file changed: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "etc/hosts")); string(b) != "in root\n" {
		t.Errorf("existing file truncated: %q", b)
	}
	entries, _ := os.ReadDir(outside)
	if len(entries) != 1 {
		t.Errorf("outside has %d entries, want only secret", len(entries))
	}
}
