package storage_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/storage"
	"github.com/berth-dev/berth/internal/storage/storagetest"
	"github.com/berth-dev/berth/internal/storage/vfs"
)

const childEnv = "BERTH_STORAGE_TEST_CHILD"

func TestMain(m *testing.M) {
	if root := os.Getenv(childEnv); root != "" {
		killedChild(root)
		os.Exit(2) // not reached: the parent kills it
	}
	os.Exit(m.Run())
}

func newVFS(t testing.TB, root string) storage.Driver {
	t.Helper()
	d, err := vfs.New(filepath.Join(root, vfs.Name))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// bigLayer is a layer whose unpack can be interrupted half way.
func bigLayer(t testing.TB) []byte {
	var entries []storagetest.Entry
	for i := range 64 {
		entries = append(entries, storagetest.File(fmt.Sprintf("f%02d", i), strings.Repeat("x", 8<<10)))
	}
	return storagetest.Tar(t, entries...)
}

// killedChild unpacks half of bigLayer into the store at root, says so on
// stdout and waits to be killed.
func killedChild(root string) {
	d, err := vfs.New(filepath.Join(root, vfs.Name))
	if err != nil {
		panic(err)
	}
	st, err := storage.Open(root, d, storage.Options{})
	if err != nil {
		panic(err)
	}
	layer := bigLayer(&testing.T{})
	r := io.MultiReader(bytes.NewReader(layer[:len(layer)/2]), stall{})
	_, _, err = st.ApplyLayer(context.Background(), "", storagetest.DiffID(layer), r)
	panic(fmt.Sprint("apply returned: ", err))
}

type stall struct{}

func (stall) Read([]byte) (int, error) {
	fmt.Println("half applied")
	select {}
}

// TestKilledDuringApply kills a process with SIGKILL half way through a
// layer's unpack: the layer is not visible, and the next ApplyLayer of the
// same layer removes what was left and succeeds.
func TestKilledDuringApply(t *testing.T) {
	storagetest.RequireRoot(t)
	s := storagetest.NewStore(t, newVFS, "")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+s.Root)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- line
	}()
	select {
	case line := <-ready:
		if !strings.Contains(line, "half applied") {
			t.Fatalf("child said %q", line)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("child did not get half way")
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	layer := bigLayer(t)
	chain := storagetest.DiffID(layer)
	if _, err := s.Layer(chain); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Fatalf("half-applied layer visible: %v", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(s.Root, "vfs")); len(ents) != 1 {
		t.Fatalf("vfs home holds %d entries after the kill, want the one half layer", len(ents))
	}
	if got := s.Apply(t, "", layer); got != chain {
		t.Fatalf("chain = %s, want %s", got, chain)
	}
	if ents, _ := os.ReadDir(filepath.Join(s.Root, "vfs")); len(ents) != 1 {
		t.Errorf("vfs home holds %d entries, want only the committed layer", len(ents))
	}
	if err := s.Release(chain); err != nil {
		t.Fatal(err)
	}
	s.CheckEmpty(t)
}

// TestPrune deletes layers nothing holds: here one a killed puller
// applied and never recorded in an image.
func TestPrune(t *testing.T) {
	storagetest.RequireRoot(t)
	s := storagetest.NewStore(t, newVFS, "")
	a := s.Apply(t, "", storagetest.Tar(t, storagetest.File("a", "a")))
	b := s.Apply(t, a, storagetest.Tar(t, storagetest.File("b", "b")))
	kept := s.Apply(t, "", storagetest.Tar(t, storagetest.File("k", "k")))
	// Drop the references without collecting, as a crash would leave them.
	for _, c := range []string{a.String(), b.String()} {
		path := filepath.Join(s.Root, "layers", strings.Replace(c, ":", "-", 1)+".json")
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, bytes.Replace(data, []byte(`"refs":1`), []byte(`"refs":0`), 1), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := s.Prune()
	if err != nil {
		t.Fatal(err)
	}
	if len(removed) != 2 {
		t.Errorf("pruned %v, want the 2 unreferenced layers", removed)
	}
	if _, err := s.Layer(kept); err != nil {
		t.Errorf("referenced layer pruned: %v", err)
	}
	if err := s.Release(kept); err != nil {
		t.Fatal(err)
	}
	s.CheckEmpty(t)
}

func TestOpenOtherDriver(t *testing.T) {
	root := t.TempDir()
	if _, _, err := storage.RecordDriverChoice(root, "overlay", "test"); err != nil {
		t.Fatal(err)
	}
	_, err := storage.Open(root, newVFS(t, root), storage.Options{})
	if !errdefs.Is(err, errdefs.KindConflict) || !strings.Contains(err.Error(), `created with driver "overlay"; refusing "vfs"`) {
		t.Errorf("open with another driver: %v", err)
	}
}

func TestChainID(t *testing.T) {
	a := storagetest.DiffID([]byte("a"))
	b := storagetest.DiffID([]byte("b"))
	if got := storage.ChainID("", a); got != a {
		t.Errorf("ChainID of a base layer = %s, want its diff ID", got)
	}
	// image-spec: ChainID(L1|L2) = sha256(ChainID(L1) + " " + DiffID(L2)).
	want := storagetest.DiffID([]byte(a.String() + " " + b.String()))
	if got := storage.ChainID(a, b); got != want {
		t.Errorf("ChainID = %s, want %s", got, want)
	}
}
