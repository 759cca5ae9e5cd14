package archive

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// baseLayer is the parent tree the diff tests change.
func baseLayer(t *testing.T) []byte {
	return mkTar(t,
		dirE("bin/"), fileE("bin/sh", "shell"), hardlinkE("bin/ash", "bin/sh"),
		dirE("etc/"), fileE("etc/hostname", "a"), fileE("etc/passwd", "root:x:0:0"),
		symlinkE("lnk", "etc/hostname"),
		fileE("tobedir", "file"),
		dirE("tobefile/"), fileE("tobefile/child", "c"),
		dirE("usr/"), dirE("usr/lib/"), fileE("usr/lib/libx", "lib"),
		dirE("var/"), dirE("var/cache/"), fileE("var/cache/x", "x"), dirE("var/cache/sub/"), fileE("var/cache/sub/y", "y"),
		dirE("opq/"), fileE("opq/old", "old"), dirE("opq/olddir/"), fileE("opq/olddir/z", "z"),
	)
}

// mutate changes the tree at root as a container would.
func mutate(t *testing.T, root string) {
	t.Helper()
	p := func(s string) string { return filepath.Join(root, s) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, p("etc/hostname"), "b")
	writeFile(t, p("etc/new"), "new")
	must(os.Remove(p("etc/passwd")))
	must(os.RemoveAll(p("var/cache")))
	must(os.Chmod(p("bin/sh"), 0o700))
	must(os.Lchown(p("usr/lib/libx"), 1000, 1000))
	must(os.Remove(p("lnk")))
	must(os.Symlink("etc/new", p("lnk")))
	must(os.Remove(p("tobedir")))
	must(os.Mkdir(p("tobedir"), 0o750))
	writeFile(t, p("tobedir/f"), "f")
	must(os.RemoveAll(p("tobefile")))
	writeFile(t, p("tobefile"), "now a file")
	writeFile(t, p("newdir/a"), "linked")
	must(os.Link(p("newdir/a"), p("newdir/b")))
	must(unix.Lsetxattr(p("newdir/a"), "user.x", []byte("1"), 0))
	must(unix.Mkfifo(p("fifo"), 0o600))
	// rm -rf opq; mkdir opq: an opaque directory under overlayfs.
	must(os.RemoveAll(p("opq")))
	must(os.Mkdir(p("opq"), 0o755))
	writeFile(t, p("opq/fresh"), "fresh")
}

func changeStrings(cs []Change) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.String())
	}
	return out
}

func TestChangesRoundTrip(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	lower, upper, target := t.TempDir(), t.TempDir(), t.TempDir()
	apply(t, lower, baseLayer(t), ApplyOptions{})
	copyTree(t, lower, upper)
	mutate(t, upper)

	changes, err := Changes(ctx, []string{lower}, upper, WhiteoutDelete)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"C /bin", "C /bin/ash", "C /bin/sh",
		"C /etc", "C /etc/hostname", "A /etc/new", "D /etc/passwd",
		"A /fifo", "C /lnk",
		"A /newdir", "A /newdir/a", "A /newdir/b",
		"C /opq", "A /opq/fresh", "D /opq/old", "D /opq/olddir",
		"C /tobedir", "A /tobedir/f", "C /tobefile",
		"C /usr", "C /usr/lib", "C /usr/lib/libx",
		"C /var", "D /var/cache",
	}
	if got := changeStrings(changes); !slices.Equal(got, want) {
		t.Errorf("changes:\n got %q\nwant %q", got, want)
	}

	var layer bytes.Buffer
	if err := WriteTar(ctx, &layer, upper, changes); err != nil {
		t.Fatal(err)
	}
	copyTree(t, lower, target)
	apply(t, target, layer.Bytes(), ApplyOptions{})
	if d := diffSnapshots(snapshot(t, upper), snapshot(t, target)); d != "" {
		t.Errorf("lower + diff != upper:\n%s", d)
	}

	// The same changes give the same bytes.
	var again bytes.Buffer
	if err := WriteTar(ctx, &again, upper, changes); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(layer.Bytes(), again.Bytes()) {
		t.Errorf("WriteTar is not deterministic")
	}
}

func TestChangesNoParent(t *testing.T) {
	requireRoot(t)
	upper := t.TempDir()
	apply(t, upper, mkTar(t, dirE("a/"), fileE("a/b", "b")), ApplyOptions{})
	changes, err := Changes(context.Background(), nil, upper, WhiteoutDelete)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := changeStrings(changes), []string{"A /a", "A /a/b"}; !slices.Equal(got, want) {
		t.Errorf("changes %q, want %q", got, want)
	}
}

// mountOverlay mounts lower+upper at a new directory, or skips the test.
func mountOverlay(t *testing.T, lower, upper string) string {
	t.Helper()
	work, merged := t.TempDir(), t.TempDir()
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	err := unix.Mount("overlay", merged, "overlay", 0, opts+",redirect_dir=off,metacopy=off,index=off")
	if err != nil {
		err = unix.Mount("overlay", merged, "overlay", 0, opts)
	}
	if err != nil {
		t.Skipf("cannot mount overlayfs here: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(merged, unix.MNT_DETACH) })
	return merged
}

func TestChangesOverlay(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	lower, upper := t.TempDir(), t.TempDir()
	apply(t, lower, baseLayer(t), ApplyOptions{})
	merged := mountOverlay(t, lower, upper)
	mutate(t, merged)
	want := snapshot(t, merged)
	if err := unix.Unmount(merged, 0); err != nil {
		t.Fatal(err)
	}

	changes, err := Changes(ctx, []string{lower}, upper, WhiteoutOverlay)
	if err != nil {
		t.Fatal(err)
	}
	got := changeStrings(changes)
	for _, c := range []string{
		"C /bin", "C /bin/sh", "C /etc", "C /etc/hostname", "A /etc/new", "D /etc/passwd",
		"A /fifo", "C /lnk", "A /newdir", "A /newdir/a", "A /newdir/b", "C /opq", "A /opq/fresh",
		"C /tobedir", "A /tobedir/f", "C /tobefile", "C /usr/lib/libx", "D /var/cache",
	} {
		if !slices.Contains(got, c) {
			t.Errorf("changes lack %q: %q", c, got)
		}
	}
	for _, c := range got {
		if strings.HasPrefix(c, "C /bin/ash") || strings.Contains(c, "/opq/old") {
			t.Errorf("unexpected change %q", c)
		}
	}

	var layer bytes.Buffer
	if err := WriteTar(ctx, &layer, upper, changes); err != nil {
		t.Fatal(err)
	}
	// Applied onto a full copy of the parent (vfs, btrfs)...
	target := t.TempDir()
	copyTree(t, lower, target)
	apply(t, target, layer.Bytes(), ApplyOptions{})
	if d := diffSnapshots(want, snapshot(t, target)); d != "" {
		t.Errorf("lower + diff (delete mode) != merged:\n%s", d)
	}
	// ...and as an overlay layer of its own.
	upper2 := t.TempDir()
	apply(t, upper2, layer.Bytes(), ApplyOptions{Whiteouts: WhiteoutOverlay})
	merged2 := mountOverlay(t, lower, upper2)
	if d := diffSnapshots(want, snapshot(t, merged2)); d != "" {
		t.Errorf("lower + diff (overlay mode) != merged:\n%s", d)
	}
	// The overlay layer diffs to the same changes.
	changes2, err := Changes(ctx, []string{lower}, upper2, WhiteoutOverlay)
	if err != nil {
		t.Fatal(err)
	}
	if got2 := changeStrings(changes2); !slices.Equal(got, got2) {
		t.Errorf("changes of the applied layer:\n got %q\nwant %q", got2, got)
	}
}

func TestChangesOverlayLayers(t *testing.T) {
	requireRoot(t)
	// Three lower layers in overlay format, topmost first.
	l0, l1, l2, upper := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	apply(t, l2, mkTar(t, dirE("a/"), fileE("a/x", "x"), dirE("b/"), fileE("b/y", "y"), fileE("c", "c")), ApplyOptions{Whiteouts: WhiteoutOverlay})
	apply(t, l1, mkTar(t, dirE("a/"), fileE("a/.wh.x", ""), dirE("b/"), fileE("b/.wh..wh..opq", "")), ApplyOptions{Whiteouts: WhiteoutOverlay})
	apply(t, l0, mkTar(t, fileE("new", "n")), ApplyOptions{Whiteouts: WhiteoutOverlay})
	apply(t, upper, mkTar(t,
		dirE("a/"), fileE("a/x", "back"), // whited out in l1: added again
		dirE("b/"), fileE("b/y", "y2"), // hidden by l1's opaque b: added
		fileE("c", "c2"), // in l2: modified
		fileE("new", "n2"),
		fileE(".wh.gone", ""),
	), ApplyOptions{Whiteouts: WhiteoutOverlay})
	changes, err := Changes(context.Background(), []string{l0, l1, l2}, upper, WhiteoutOverlay)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"C /a", "A /a/x", "C /b", "A /b/y", "C /c", "D /gone", "C /new"}
	if got := changeStrings(changes); !slices.Equal(got, want) {
		t.Errorf("changes:\n got %q\nwant %q", got, want)
	}
}

func TestTarDir(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	src := t.TempDir()
	apply(t, src, baseLayer(t), ApplyOptions{})
	mutate(t, src)
	var a, b bytes.Buffer
	if err := TarDir(ctx, &a, src); err != nil {
		t.Fatal(err)
	}
	if err := TarDir(ctx, &b, src); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Errorf("TarDir is not deterministic")
	}
	dst := t.TempDir()
	apply(t, dst, a.Bytes(), ApplyOptions{})
	if d := diffSnapshots(snapshot(t, src), snapshot(t, dst)); d != "" {
		t.Errorf("TarDir + Apply != source:\n%s", d)
	}
}

func TestWriteTarVanished(t *testing.T) {
	root := t.TempDir()
	var buf bytes.Buffer
	err := WriteTar(context.Background(), &buf, root, []Change{{ChangeAdd, "/missing"}})
	if err == nil || !strings.Contains(err.Error(), `"/missing"`) {
		t.Errorf("err = %v, want one naming /missing", err)
	}
}
