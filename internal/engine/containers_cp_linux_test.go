package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// docker cp's rules for where a source lands.
func TestCpTarget(t *testing.T) {
	file := cpSource{Base: "f"}
	dir := cpSource{IsDir: true, Base: "d"}
	contents := cpSource{IsDir: true, Contents: true, Base: "d"}
	tests := []struct {
		name      string
		src       cpSource
		dst       cpDest
		dir, base string
		err       string
	}{
		{"file into a directory", file, cpDest{path: "/x", given: "/x", exists: true, isDir: true}, "/x", "f", ""},
		{"file over a file", file, cpDest{path: "/x/g", given: "/x/g", exists: true}, "/x", "g", ""},
		{"file to a new name", file, cpDest{path: "/x/g", given: "/x/g"}, "/x", "g", ""},
		{"file to a missing directory", file, cpDest{path: "/x/g", given: "/x/g/"}, "", "", "does not exist"},
		{"file to a file named as a directory", file, cpDest{path: "/x/g", given: "/x/g/", exists: true}, "", "", "not a directory"},
		{"directory into a directory", dir, cpDest{path: "/x", given: "/x", exists: true, isDir: true}, "/x", "d", ""},
		{"directory to a new name", dir, cpDest{path: "/x/e", given: "/x/e/"}, "/x", "e", ""},
		{"directory over a file", dir, cpDest{path: "/x/g", given: "/x/g", exists: true}, "", "", "cannot copy a directory to a file"},
		{"contents into a directory", contents, cpDest{path: "/x", given: "/x", exists: true, isDir: true}, "/x", "", ""},
		{"contents to a new directory", contents, cpDest{path: "/x/e", given: "/x/e"}, "/x", "e", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, base, err := cpTarget(tt.src, tt.dst)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || dir != tt.dir || base != tt.base {
				t.Fatalf("cpTarget = %q, %q, %v; want %q, %q", dir, base, err, tt.dir, tt.base)
			}
		})
	}
}

func TestRebaseName(t *testing.T) {
	for _, tt := range []struct{ in, name, want string }{
		{".", "new", "new"},
		{"./", "new", "new/"},
		{"./a", "new", "new/a"},
		{"./d/", "new", "new/d/"},
		{"a/b", "", "a/b"},
		{"../../etc/passwd", "new", "new/etc/passwd"},
	} {
		if got := rebaseName(tt.in, tt.name); got != tt.want {
			t.Errorf("rebaseName(%q, %q) = %q, want %q", tt.in, tt.name, got, tt.want)
		}
	}
}

func tree(t *testing.T, root string) string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			rel += "->" + target
		case d.IsDir():
			rel += "/"
		default:
			data, _ := os.ReadFile(p)
			rel += "=" + string(data)
		}
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// copyInto copies src (a path in srcRoot) to dst (a path in dstRoot) as
// CopyToContainer does, with both roots standing for containers.
func copyInto(t *testing.T, srcRoot, src, dstRoot, dst string, follow bool) error {
	t.Helper()
	obj, err := openSource(srcRoot, src, follow)
	if err != nil {
		return err
	}
	defer obj.f.Close()
	d, err := statDest(dstRoot, dst)
	if err != nil {
		return err
	}
	dir, name, err := cpTarget(obj.source(), d)
	if err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarResource(context.Background(), pw, obj, ".")) }()
	_, err = extractInto(context.Background(), dstRoot, dir, pr, name, true)
	pr.CloseWithError(io.ErrClosedPipe)
	return err
}

func TestCopyResolvesInRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("extracting with ownership needs root")
	}
	src := t.TempDir()
	write(t, filepath.Join(src, "d/a"), "A")
	write(t, filepath.Join(src, "d/sub/b"), "B")
	write(t, filepath.Join(src, "etc/passwd"), "inside")
	// An absolute link resolves inside the root, never to the host's.
	if err := os.Symlink("/etc", filepath.Join(src, "etclink")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../etc/passwd", filepath.Join(src, "up")); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, src, dst string
		follow         bool
		want           string
	}{
		{"directory into a directory", "/d", "/", false, "d/ d/a=A d/sub/ d/sub/b=B"},
		{"directory to a new name", "/d", "/e", false, "e/ e/a=A e/sub/ e/sub/b=B"},
		{"contents", "/d/.", "/", false, "a=A sub/ sub/b=B"},
		{"a link as a link", "/etclink", "/", false, "etclink->/etc"},
		{"through an absolute link", "/etclink/passwd", "/p", false, "p=inside"},
		{"a link followed", "/etclink", "/x", true, "x/ x/passwd=inside"},
		{"dot-dot stays in the root", "/up/", "/y", false, "y=inside"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := t.TempDir()
			if err := copyInto(t, src, tt.src, dst, tt.dst, tt.follow); err != nil {
				t.Fatal(err)
			}
			if got := tree(t, dst); got != tt.want {
				t.Fatalf("copied tree: %s\nwant: %s", got, tt.want)
			}
		})
	}

	// A destination link pointing out of the root lands inside it.
	dst := t.TempDir()
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dst, "out")); err != nil {
		t.Fatal(err)
	}
	if err := copyInto(t, src, "/d/a", dst, "/out/", false); err == nil {
		if ents, _ := os.ReadDir(outside); len(ents) > 0 {
			t.Fatalf("copy followed a link out of the root: %v", ents)
		}
	}
	if err := copyInto(t, src, "/nope", dst, "/", false); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing source: %v", err)
	}
	if err := copyInto(t, src, "/d/a", dst, "/missing/x", false); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing destination parent: %v", err)
	}
}

// Reserved whiteout names never reach Apply, which would delete files.
func TestRebaseTarRefusesWhiteouts(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	_ = tw.WriteHeader(&tar.Header{Name: ".wh.passwd", Typeflag: tar.TypeReg, Mode: 0o644})
	_ = tw.Close()
	if err := rebaseTar(io.Discard, &buf, "", true); err == nil {
		t.Fatal("whiteout name accepted")
	}
}
