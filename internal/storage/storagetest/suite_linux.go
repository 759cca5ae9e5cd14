package storagetest

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	digest "github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/storage"
)

// NewDriver makes the driver under test, its home in the storage root (as
// drivers.New puts it: root/<name>).
type NewDriver func(t testing.TB, root string) storage.Driver

// RequireRoot skips t unless it runs as root: drivers mount, chown and
// make device nodes.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: storage drivers mount file systems and chown files")
	}
}

// Store is a store in a fresh storage root, and what the root held before
// any layer was made.
type Store struct {
	*storage.Store
	Root     string
	baseline []string
}

// NewStore opens a store in a temporary root (under dir, or t.TempDir() if
// dir is ""). When the test ends, everything mounted under the root is
// unmounted, and a mount left there fails the test.
func NewStore(t testing.TB, newDriver NewDriver, dir string) *Store {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	root, err := os.MkdirTemp(dir, "berth-storage-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if left := MountsUnder(root); len(left) > 0 {
			t.Errorf("mounts left under %s: %v", root, left)
		}
		UnmountUnder(root)
		if err := os.RemoveAll(root); err != nil {
			t.Errorf("remove storage root: %v", err)
		}
	})
	d := newDriver(t, root)
	st, err := storage.Open(root, d, storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return &Store{Store: st, Root: root, baseline: tree(t, root)}
}

// CheckEmpty fails t unless the root holds what it held when the store was
// opened: no layer, no record, no mount.
func (s *Store) CheckEmpty(t testing.TB) {
	t.Helper()
	if left := MountsUnder(s.Root); len(left) > 0 {
		t.Errorf("mounts left: %v", left)
	}
	now := tree(t, s.Root)
	var extra []string
	for _, p := range now {
		if !slices.Contains(s.baseline, p) {
			extra = append(extra, p)
		}
	}
	if len(extra) > 0 {
		t.Errorf("left in the storage root: %v", extra)
	}
}

// tree lists the paths under root, the lock file and the driver's probe
// results aside.
func tree(t testing.TB, root string) []string {
	t.Helper()
	var paths []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel != "." && rel != "lock" {
			paths = append(paths, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

// MountsUnder lists the mount points under dir, deepest last.
func MountsUnder(dir string) []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	var mps []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := strings.ReplaceAll(f[4], `\040`, " ")
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			mps = append(mps, mp)
		}
	}
	return mps
}

// UnmountUnder detaches every mount under dir.
func UnmountUnder(dir string) {
	mps := MountsUnder(dir)
	for i := len(mps) - 1; i >= 0; i-- {
		_ = unix.Unmount(mps[i], unix.MNT_DETACH)
	}
}

// Apply applies a layer tar on top of parent and returns its chain ID.
func (s *Store) Apply(t testing.TB, parent digest.Digest, tarball []byte) digest.Digest {
	t.Helper()
	chain, _, err := s.ApplyLayer(context.Background(), parent, DiffID(tarball), bytes.NewReader(tarball))
	if err != nil {
		t.Fatalf("apply layer: %v", err)
	}
	return chain
}

// MountContainer creates a container layer on image and mounts it; the
// test's end unmounts it.
func (s *Store) MountContainer(t testing.TB, id string, image digest.Digest) string {
	t.Helper()
	if err := s.CreateContainerLayer(id, image); err != nil {
		t.Fatalf("create container layer: %v", err)
	}
	dir, err := s.Mount(id)
	if err != nil {
		t.Fatalf("mount container layer: %v", err)
	}
	t.Cleanup(func() { _ = s.Unmount(id) })
	return dir
}

// Run runs the conformance suite against the driver newDriver makes, with
// storage roots made under dir ("" for the test's temporary directory).
func Run(t *testing.T, dir string, newDriver NewDriver) {
	RequireRoot(t)
	tests := []struct {
		name string
		fn   func(*testing.T, string, NewDriver)
	}{
		{"Layers", testLayers},
		{"Chain20", testChain20},
		{"EmptyImage", testEmptyImage},
		{"SharedBase", testSharedBase},
		{"ApplyOnce", testApplyOnce},
		{"ConcurrentApply", testConcurrentApply},
		{"FailedApply", testFailedApply},
		{"Leftovers", testLeftovers},
		{"Errors", testErrors},
		{"Status", testStatus},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, dir, newDriver) })
	}
}

// baseLayer and upperLayer are the two layers of the image most tests use.
func baseLayer(t testing.TB) []byte {
	return Tar(t,
		Dir("etc"),
		File("etc/config", "v1"),
		File("etc/hosts", "127.0.0.1 localhost\n"),
		Dir("bin"),
		Entry{Name: "bin/tool", Body: "#!/bin/sh\n", Mode: 0o755},
		Hardlink("bin/tool2", "bin/tool"),
		Symlink("bin/link", "tool"),
		Entry{Name: "bin/suid", Body: "s", Mode: 0o4755},
		Entry{Name: "owned", Body: "mine", Mode: 0o640, UID: 1000, GID: 1001, Xattrs: map[string]string{"user.berth": "yes"}},
		Dir("dev"),
		Entry{Name: "dev/null", Type: tar.TypeChar, Mode: 0o666, Major: 1, Minor: 3},
		Entry{Name: "dev/fifo", Type: tar.TypeFifo, Mode: 0o600},
		Dir("opq"),
		File("opq/old", "old"),
		Dir("opq/olddir"),
		File("opq/olddir/f", "f"),
		Dir("gone"),
		File("gone/x", "x"),
	)
}

func upperLayer(t testing.TB) []byte {
	return Tar(t,
		Dir("etc"),
		Whiteout("etc/hosts"),
		File("etc/config", "v2"),
		Dir("opq"),
		Opaque("opq"),
		File("opq/new", "new"),
		Whiteout("gone"),
		File("l2file", "l2"),
	)
}

func testLayers(t *testing.T, dir string, newDriver NewDriver) {
	s := NewStore(t, newDriver, dir)
	base := s.Apply(t, "", baseLayer(t))
	image := s.Apply(t, base, upperLayer(t))
	if want := storage.ChainID(DiffID(baseLayer(t)), DiffID(upperLayer(t))); image != want {
		t.Errorf("chain ID = %s, want %s", image, want)
	}

	root := s.MountContainer(t, "c1", image)
	checkImageView(t, root)

	// Writes go to the container's layer only.
	mustWrite(t, filepath.Join(root, "newfile"), "n")
	mustWrite(t, filepath.Join(root, "etc/config"), "v3")
	if err := os.Remove(filepath.Join(root, "l2file")); err != nil {
		t.Fatal(err)
	}
	wantFile(t, root, "etc/config", "v3")

	changes, err := s.Diff(context.Background(), "c1")
	if err != nil {
		t.Fatalf("diff: %v", err)
	}
	want := []string{"C /etc", "C /etc/config", "D /l2file", "A /newfile"}
	if got := changeStrings(changes); !slices.Equal(got, want) {
		t.Errorf("diff = %q, want %q", got, want)
	}
	if size, err := s.ContainerSize(context.Background(), "c1"); err != nil {
		t.Errorf("container size: %v", err)
	} else if size < 3 || size > 1<<20 {
		t.Errorf("container size = %d, want the few bytes written", size)
	}

	// The image is unchanged: a second container sees it as it was.
	root2 := s.MountContainer(t, "c2", image)
	checkImageView(t, root2)
	if changes, err := s.Diff(context.Background(), "c2"); err != nil || len(changes) != 0 {
		t.Errorf("diff of an untouched container = %v, %v; want none", changeStrings(changes), err)
	}

	// Remounting a container shows what it wrote.
	if err := s.Unmount("c1"); err != nil {
		t.Fatal(err)
	}
	root, err = s.Mount("c1")
	if err != nil {
		t.Fatalf("mount again: %v", err)
	}
	wantFile(t, root, "etc/config", "v3")
	wantFile(t, root, "newfile", "n")

	for _, id := range []string{"c1", "c2"} {
		if err := s.RemoveContainerLayer(id); err != nil {
			t.Fatalf("remove container layer %s: %v", id, err)
		}
	}
	if err := s.Release(image); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Layer(base); err != nil {
		t.Errorf("base layer gone while an ApplyLayer reference holds it: %v", err)
	}
	if err := s.Release(base); err != nil {
		t.Fatal(err)
	}
	s.CheckEmpty(t)
}

// checkImageView checks a mounted root of the image baseLayer+upperLayer.
func checkImageView(t *testing.T, root string) {
	t.Helper()
	wantFile(t, root, "etc/config", "v2")
	wantMissing(t, root, "etc/hosts")
	wantMissing(t, root, "gone")
	wantFile(t, root, "l2file", "l2")
	if names := readDirNames(t, filepath.Join(root, "opq")); !slices.Equal(names, []string{"new"}) {
		t.Errorf("opaque directory holds %v, want [new]", names)
	}
	wantFile(t, root, "bin/tool2", "#!/bin/sh\n")
	var st1, st2 unix.Stat_t
	if unix.Lstat(filepath.Join(root, "bin/tool"), &st1) == nil && unix.Lstat(filepath.Join(root, "bin/tool2"), &st2) == nil {
		if st1.Ino != st2.Ino || st1.Nlink != 2 {
			t.Errorf("bin/tool2 is not a hard link of bin/tool (inodes %d, %d; links %d)", st1.Ino, st2.Ino, st1.Nlink)
		}
	}
	if target, err := os.Readlink(filepath.Join(root, "bin/link")); err != nil || target != "tool" {
		t.Errorf("bin/link -> %q, %v; want tool", target, err)
	}
	wantFile(t, root, "bin/link", "#!/bin/sh\n")
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(root, "owned"), &st); err != nil {
		t.Error(err)
	} else if st.Uid != 1000 || st.Gid != 1001 || st.Mode&07777 != 0o640 {
		t.Errorf("owned: uid %d gid %d mode %o, want 1000 1001 640", st.Uid, st.Gid, st.Mode&07777)
	}
	buf := make([]byte, 16)
	if n, err := unix.Lgetxattr(filepath.Join(root, "owned"), "user.berth", buf); err != nil || string(buf[:n]) != "yes" {
		t.Errorf("owned: xattr user.berth = %q, %v; want yes", buf[:max(n, 0)], err)
	}
	if err := unix.Lstat(filepath.Join(root, "bin/suid"), &st); err != nil || st.Mode&07777 != 0o4755 {
		t.Errorf("bin/suid: mode %o, %v; want 4755", st.Mode&07777, err)
	}
	if err := unix.Lstat(filepath.Join(root, "dev/null"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
		t.Errorf("dev/null: mode %o rdev %x, %v; want a 1:3 character device", st.Mode, st.Rdev, err)
	}
	if err := unix.Lstat(filepath.Join(root, "dev/fifo"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		t.Errorf("dev/fifo: mode %o, %v; want a FIFO", st.Mode, err)
	}
}

func testChain20(t *testing.T, dir string, newDriver NewDriver) {
	s := NewStore(t, newDriver, dir)
	chains := chain(t, s, 20)
	root := s.MountContainer(t, "c", chains[len(chains)-1])
	for i := 1; i <= 20; i++ {
		wantFile(t, root, fmt.Sprintf("f%02d", i), fmt.Sprint(i))
	}
	wantFile(t, root, "common", "20")
	wantMissing(t, root, "gone")
	if changes, err := s.Diff(context.Background(), "c"); err != nil || len(changes) != 0 {
		t.Errorf("diff of an untouched container = %v, %v; want none", changeStrings(changes), err)
	}
	if err := s.RemoveContainerLayer("c"); err != nil {
		t.Fatal(err)
	}
	// Releasing the base first keeps it for the layers above, until they go.
	for _, c := range chains {
		if err := s.Release(c); err != nil {
			t.Fatal(err)
		}
	}
	s.CheckEmpty(t)
}

// chain applies n small layers, each on the one before, and returns their
// chain IDs: layer i adds fNN, rewrites common and deletes what layer i-1
// added as gone.
func chain(t testing.TB, s *Store, n int) []digest.Digest {
	t.Helper()
	var chains []digest.Digest
	var parent digest.Digest
	for i := 1; i <= n; i++ {
		entries := []Entry{File(fmt.Sprintf("f%02d", i), fmt.Sprint(i)), File("common", fmt.Sprint(i))}
		if i > 1 {
			entries = append(entries, Whiteout("gone"))
		}
		if i < n {
			entries = append(entries, File("gone", "gone"))
		}
		parent = s.Apply(t, parent, Tar(t, entries...))
		chains = append(chains, parent)
	}
	return chains
}

// Chain applies n small layers and returns the top chain ID (for benchmarks).
func Chain(t testing.TB, s *Store, n int) digest.Digest {
	c := chain(t, s, n)
	return c[len(c)-1]
}

func testEmptyImage(t *testing.T, dir string, newDriver NewDriver) {
	s := NewStore(t, newDriver, dir)
	root := s.MountContainer(t, "c", "")
	if names := readDirNames(t, root); len(names) != 0 {
		t.Errorf("empty root holds %v", names)
	}
	mustWrite(t, filepath.Join(root, "a"), "a")
	changes, err := s.Diff(context.Background(), "c")
	if got, want := changeStrings(changes), []string{"A /a"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("diff = %q, %v; want %q", got, err, want)
	}
	if err := s.RemoveContainerLayer("c"); err != nil {
		t.Fatal(err)
	}
	s.CheckEmpty(t)
}

func testSharedBase(t *testing.T, dir string, newDriver NewDriver) {
	s := NewStore(t, newDriver, dir)
	base := Tar(t, File("base", "b"))
	a := s.Apply(t, s.Apply(t, "", base), Tar(t, File("a", "a")))
	b := s.Apply(t, s.Apply(t, "", base), Tar(t, File("b", "b")))
	layers, err := s.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 3 {
		t.Fatalf("two images sharing a base hold %d layers, want 3", len(layers))
	}
	baseChain := DiffID(base)
	if l, err := s.Layer(baseChain); err != nil || l.Refs != 2 {
		t.Errorf("base layer refs = %d, %v; want 2", l.Refs, err)
	}
	// A container keeps its image after the image is released.
	s.MountContainer(t, "c", a)
	for _, c := range []digest.Digest{a, baseChain} {
		if err := s.Release(c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Layer(a); err != nil {
		t.Errorf("layer under a container deleted: %v", err)
	}
	if err := s.RemoveContainerLayer("c"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Layer(a); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Errorf("released layer kept after its container went: %v", err)
	}
	if _, err := s.Layer(baseChain); err != nil {
		t.Errorf("base still used by image b deleted: %v", err)
	}
	for _, c := range []digest.Digest{b, baseChain} {
		if err := s.Release(c); err != nil {
			t.Fatal(err)
		}
	}
	s.CheckEmpty(t)
}

func testApplyOnce(t *testing.T, dir string, newDriver NewDriver) {
	s := NewStore(t, newDriver, dir)
	layer := Tar(t, File("x", "x"))
	c1 := s.Apply(t, "", layer)
	// The second apply must not read the tar.
	c2, size, err := s.ApplyLayer(context.Background(), "", DiffID(layer), iotestErrReader{})
	if err != nil || c2 != c1 {
		t.Fatalf("second apply = %s, %v; want %s", c2, err, c1)
	}
	if size != int64(len(layer)) {
		t.Errorf("size = %d, want the tar's %d", size, len(layer))
	}
	if l, err := s.Layer(c1); err != nil || l.Refs != 2 {
		t.Errorf("refs = %d, %v; want 2", l.Refs, err)
	}
	for range 2 {
		if err := s.Release(c1); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Release(c1); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Errorf("release of a deleted layer: %v, want not found", err)
	}
	s.CheckEmpty(t)
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) { return 0, errors.New("read where none was due") }

func testConcurrentApply(t *testing.T, dir string, newDriver NewDriver) {
	s := NewStore(t, newDriver, dir)
	base := s.Apply(t, "", Tar(t, File("base", "b")))
	layer := Tar(t, File("x", "x"), File("y", "y"))
	const n = 6
	chains := make([]digest.Digest, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			// Each its own Store, as separate CLI processes would have.
			st, err := storage.Open(s.Root, s.Driver(), storage.Options{})
			if err != nil {
				errs[i] = err
				return
			}
			chains[i], _, errs[i] = st.ApplyLayer(context.Background(), base, DiffID(layer), bytes.NewReader(layer))
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || chains[i] != chains[0] {
			t.Fatalf("apply %d = %s, %v", i, chains[i], errs[i])
		}
	}
	if l, err := s.Layer(chains[0]); err != nil || l.Refs != n {
		t.Errorf("refs = %d, %v; want %d", l.Refs, err, n)
	}
	for range n {
		if err := s.Release(chains[0]); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Release(base); err != nil {
		t.Fatal(err)
	}
	s.CheckEmpty(t)
}

func testFailedApply(t *testing.T, dir string, newDriver NewDriver) {
	s := NewStore(t, newDriver, dir)
	base := s.Apply(t, "", Tar(t, File("base", "b")))
	if err := s.Release(base); err != nil {
		t.Fatal(err)
	}
	base = s.Apply(t, "", Tar(t, File("base", "b")))
	layer := Tar(t, File("big", strings.Repeat("x", 64<<10)), File("after", "a"))
	broken := io.MultiReader(bytes.NewReader(layer[:len(layer)/2]), iotestErrReader{})
	if _, _, err := s.ApplyLayer(context.Background(), base, DiffID(layer), broken); err == nil {
		t.Fatal("apply of a broken stream succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, _, err := s.ApplyLayer(ctx, base, DiffID(layer), bytes.NewReader(layer)); err == nil {
		t.Fatal("apply with a cancelled context succeeded")
	}
	if _, err := s.Layer(storage.ChainID(base, DiffID(layer))); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Errorf("failed layer visible: %v", err)
	}
	if err := s.Release(base); err != nil {
		t.Fatal(err)
	}
	s.CheckEmpty(t)
}

// testLeftovers plays a process killed while unpacking: a driver layer and
// its pending record, unlocked. The next change to the graph removes both.
func testLeftovers(t *testing.T, dir string, newDriver NewDriver) {
	s := NewStore(t, newDriver, dir)
	d := s.Driver()
	if err := d.Create("deadbeef", "", false); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(d.Dir("deadbeef"), "half"), "h")
	mustWrite(t, filepath.Join(s.Root, "pending", "deadbeef.json"), "{}")
	layer := s.Apply(t, "", Tar(t, File("x", "x")))
	if d.Exists("deadbeef") {
		t.Error("a dead process's layer survived the next call")
	}
	if err := s.Release(layer); err != nil {
		t.Fatal(err)
	}
	s.CheckEmpty(t)
}

func testErrors(t *testing.T, dir string, newDriver NewDriver) {
	s := NewStore(t, newDriver, dir)
	missing := digest.FromString("missing")
	if err := s.CreateContainerLayer("c", missing); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Errorf("container on a missing image: %v, want not found", err)
	}
	if _, _, err := s.ApplyLayer(context.Background(), missing, DiffID(nil), bytes.NewReader(nil)); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Errorf("layer on a missing parent: %v, want not found", err)
	}
	if err := s.CreateContainerLayer("../x", ""); !errdefs.Is(err, errdefs.KindInvalidArgument) {
		t.Errorf("container id ../x: %v, want invalid argument", err)
	}
	if err := s.RemoveContainerLayer("nope"); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Errorf("remove missing container: %v, want not found", err)
	}
	s.MountContainer(t, "c", "")
	if err := s.CreateContainerLayer("c", ""); !errdefs.Is(err, errdefs.KindConflict) {
		t.Errorf("duplicate container: %v, want conflict", err)
	}
	// Mounting twice returns the same mount, and removal unmounts it.
	if _, err := s.Mount("c"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveContainerLayer("c"); err != nil {
		t.Fatal(err)
	}
	s.CheckEmpty(t)
}

func testStatus(t *testing.T, dir string, newDriver NewDriver) {
	s := NewStore(t, newDriver, dir)
	d := s.Driver()
	st := d.Status()
	if st.Driver != d.Name() || st.Home == "" || st.BackingFS == "" {
		t.Errorf("Status = %+v", st)
	}
	if !strings.HasPrefix(st.Home, s.Root+"/") {
		t.Errorf("driver home %s is not in the storage root %s", st.Home, s.Root)
	}
	if err := d.Cleanup(); err != nil {
		t.Errorf("Cleanup: %v", err)
	}
	if removed, err := s.Prune(); err != nil || len(removed) != 0 {
		t.Errorf("Prune of an empty store = %v, %v", removed, err)
	}
	s.CheckEmpty(t)
}

func changeStrings(changes []archive.Change) []string {
	out := make([]string, len(changes))
	for i, c := range changes {
		out[i] = c.String()
	}
	sort.Slice(out, func(i, j int) bool { return out[i][2:] < out[j][2:] })
	return out
}

func mustWrite(t testing.TB, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func wantFile(t testing.TB, root, name, body string) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(root, name))
	if err != nil {
		t.Errorf("%s: %v", name, err)
	} else if string(got) != body {
		t.Errorf("%s = %q, want %q", name, got, body)
	}
}

func wantMissing(t testing.TB, root, name string) {
	t.Helper()
	if _, err := os.Lstat(filepath.Join(root, name)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s: want it gone, got %v", name, err)
	}
}

func readDirNames(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Error(err)
		return nil
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}
