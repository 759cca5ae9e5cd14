package content

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// The test binary doubles as the writer process that the crash tests kill:
// with BERTH_CONTENT_HELPER set, it writes one blob and exits.
func TestMain(m *testing.M) {
	if os.Getenv("BERTH_CONTENT_HELPER") == "put" {
		if err := helperPut(); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const (
	crashBlobSize = 2 << 20
	crashSeed     = 42
	chunk         = 32 << 10
)

// helperPut ingests the crash blob in chunks, resuming any partial data,
// printing its offset after each chunk, pausing BERTH_CONTENT_DELAY between.
func helperPut() error {
	ctx := context.Background()
	s, err := Open(os.Getenv("BERTH_CONTENT_ROOT"))
	if err != nil {
		return err
	}
	delay, _ := time.ParseDuration(os.Getenv("BERTH_CONTENT_DELAY"))
	data := blob(crashBlobSize, crashSeed)
	dgst := digest.FromBytes(data)
	w, err := s.Ingest(ctx, "", dgst, int64(len(data)))
	if errors.Is(err, ErrExists) {
		fmt.Println("done")
		return nil
	}
	if err != nil {
		return err
	}
	defer w.Close()
	for off := w.Offset(); off < int64(len(data)); off = w.Offset() {
		end := min(off+chunk, int64(len(data)))
		if _, err := w.Write(data[off:end]); err != nil {
			return err
		}
		fmt.Println("offset", w.Offset())
		time.Sleep(delay)
	}
	if _, err := w.Commit(ctx); err != nil {
		return err
	}
	fmt.Println("done")
	return nil
}

func helperCmd(root string, delay time.Duration) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "BERTH_CONTENT_HELPER=put", "BERTH_CONTENT_ROOT="+root,
		"BERTH_CONTENT_DELAY="+delay.String())
	cmd.Stderr = os.Stderr
	return cmd
}

// startHelper starts a writer whose output the caller reads to the end (or
// until it kills it) before calling Wait.
func startHelper(t *testing.T, root string, delay time.Duration) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := helperCmd(root, delay)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, bufio.NewScanner(out)
}

// startQuietHelper starts a writer whose output is dropped.
func startQuietHelper(t *testing.T, root string, delay time.Duration) *exec.Cmd {
	t.Helper()
	cmd := helperCmd(root, delay)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// checkConsistent fails unless every stored blob matches its digest and
// the crash blob, if not stored, can be resumed from a correct prefix.
func checkConsistent(t *testing.T, s *Store, data []byte) (offset int64, stored bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.Walk(ctx, func(i Info) error {
		_, err := s.ReadBlob(ctx, i.Digest)
		return err
	})
	if err != nil {
		t.Fatalf("store inconsistent after kill: %v", err)
	}
	dgst := digest.FromBytes(data)
	if s.Exists(ctx, dgst) {
		return 0, true
	}
	w, err := s.Ingest(ctx, "", dgst, int64(len(data)))
	if err != nil {
		t.Fatalf("ingest after kill: %v", err)
	}
	defer w.Close()
	if want := digest.FromBytes(data[:w.Offset()]); w.Digest() != want {
		t.Fatalf("resumed at %d with digest %s, want %s", w.Offset(), w.Digest(), want)
	}
	return w.Offset(), false
}

func TestKillDuringIngestResumes(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	data := blob(crashBlobSize, crashSeed)

	cmd, out := startHelper(t, root, 2*time.Millisecond)
	var seen int64
	for out.Scan() {
		if f := strings.Fields(out.Text()); len(f) == 2 && f[0] == "offset" {
			seen, _ = strconv.ParseInt(f[1], 10, 64)
			if seen >= crashBlobSize/2 {
				break
			}
		}
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	if seen < crashBlobSize/2 {
		t.Fatalf("helper stopped at %d", seen)
	}

	off, stored := checkConsistent(t, s, data)
	if stored || off < seen {
		t.Fatalf("after kill: stored=%v offset=%d, want a partial ingest of at least %d bytes", stored, off, seen)
	}
	// The next writer picks up where the killed one stopped.
	cmd, out = startHelper(t, root, 0)
	var first int64 = -1
	var last string
	for out.Scan() {
		last = out.Text()
		if f := strings.Fields(last); first < 0 && len(f) == 2 {
			first, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	if err := cmd.Wait(); err != nil || last != "done" {
		t.Fatalf("resumed helper: %v (last line %q)", err, last)
	}
	if first != off+chunk && first != crashBlobSize {
		t.Fatalf("resumed writer's first chunk ended at %d, want %d", first, off+chunk)
	}
	if got, err := s.ReadBlob(context.Background(), digest.FromBytes(data)); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("blob after resume: %v", err)
	}
	checkClean(t, s)
}

func TestKillAtRandomMoments(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	data := blob(crashBlobSize, crashSeed)
	r := rand.New(rand.NewPCG(1, 2))
	stored := false
	for i := 0; i < 20 && !stored; i++ {
		// About 64 chunks with a pause after each: the kill lands before,
		// during or after the writes, or in the commit.
		cmd := startQuietHelper(t, root, 300*time.Microsecond)
		time.Sleep(time.Duration(r.IntN(30_000)) * time.Microsecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		var off int64
		off, stored = checkConsistent(t, s, data)
		t.Logf("kill %d: offset %d stored %v", i, off, stored)
	}
	if !stored {
		if err := startQuietHelper(t, root, 0).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if got, err := s.ReadBlob(context.Background(), digest.FromBytes(data)); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("blob after kills: %v", err)
	}
}

func TestTwoProcessesPullTheSameBlob(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	data := blob(crashBlobSize, crashSeed)
	var cmds []*exec.Cmd
	for range 2 {
		cmds = append(cmds, startQuietHelper(t, root, 100*time.Microsecond))
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper: %v", err)
		}
	}
	if got, err := s.ReadBlob(context.Background(), digest.FromBytes(data)); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("blob: %v", err)
	}
	checkClean(t, s)
}
