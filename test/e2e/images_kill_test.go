package e2e

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPullKilled kills `berth pull` with SIGKILL while it downloads, while
// it unpacks a layer, and at random moments; each time the next pull
// succeeds, the image is listed once, and the stores hold exactly what the
// image needs: removing it leaves nothing behind.
func TestPullKilled(t *testing.T) {
	reg := startRegistry(t)
	ref := reg + "/big/image:v1"
	var layers []testLayer
	for i, name := range []string{"one", "two", "three"} {
		layers = append(layers, randomLayer(t, name, 24<<20, 200*(i+1)))
	}
	pushed(t, ref, ociLayout(t, ref, []string{"sh"}, layers...))

	// How long a whole pull takes here, to pick random moments within it.
	probe := newImageEnv(t)
	start := time.Now()
	probe.must("pull", ref)
	full := time.Since(start)
	t.Logf("a full pull takes %v", full.Round(time.Millisecond))

	cases := []struct {
		name string
		// kill says when to kill, given the root; nil kills at random.
		when func(root string) bool
	}{
		{"download", func(root string) bool { return ingestWithData(root) }},
		{"unpack", func(root string) bool { return hasEntries(filepath.Join(root, "storage", "pending")) }},
		{"random", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rounds := 1
			if c.when == nil {
				rounds = 4
			}
			for range rounds {
				e := newImageEnv(t)
				killed := killPullAt(t, e, ref, c.when, full)
				out := e.must("pull", ref)
				if killed && !strings.Contains(out, "Status: Downloaded newer image for "+ref) {
					t.Errorf("pull after the kill:\n%s", out)
				}
				checkStoreHolds(t, e, ref, 3)
			}
		})
	}
}

// killPullAt starts a pull and SIGKILLs it once when says so (or after a
// random part of full), and reports whether it was killed before it ended.
func killPullAt(t *testing.T, e *imageEnv, ref string, when func(string) bool, full time.Duration) bool {
	t.Helper()
	args := append([]string{"--root", e.root, "--runroot", e.runRoot}, e.flags...)
	cmd := exec.Command(e.bin, append(args, "pull", ref)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.After(2 * time.Minute)
	var fire <-chan time.Time
	if when == nil {
		fire = time.After(time.Duration(rand.Int64N(int64(full))))
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if when != nil {
				t.Fatalf("the pull ended (%v) before the moment to kill it came:\n%s", err, out.String())
			}
			t.Logf("the pull ended before its random kill")
			return false
		case <-deadline:
			_ = cmd.Process.Kill()
			<-done
			t.Fatalf("the pull hung:\n%s", out.String())
		case <-fire:
		case <-tick.C:
			if when == nil || !when(e.root) {
				continue
			}
		}
		_ = cmd.Process.Kill()
		<-done
		t.Logf("killed after: %q", lastLine(out.String()))
		// Killed on its way out, after recording the image: not a
		// pull interrupted.
		if strings.Contains(out.String(), "Status: Downloaded newer image") {
			return false
		}
		return true
	}
}

// checkStoreHolds checks that the root holds image ref once, with layers
// layers on disk and nothing pending; then that removing it (and pruning,
// which repairs reference counts a kill left wrong) empties the stores.
func checkStoreHolds(t *testing.T, e *imageEnv, ref string, layers int) {
	t.Helper()
	if rows := strings.Fields(e.must("images", "--format", "{{.Repository}}:{{.Tag}}")); len(rows) != 1 || rows[0] != ref {
		t.Errorf("images: %v, want %s once", rows, ref)
	}
	driver := driverOf(t, e)
	// A directory a killed unpack left is swept by the next storage
	// operation that looks for debris (checked after prune below), so it
	// may still be here; a record for it may not.
	if recs, dirs := e.storageLayers(driver); recs != layers || dirs < layers {
		t.Errorf("%d layer records and %d %s dirs, want %d", recs, dirs, driver, layers)
	}
	if hasEntries(filepath.Join(e.root, "storage", "pending")) {
		t.Errorf("storage/pending is not empty")
	}
	e.must("rmi", ref)
	e.must("image", "prune", "-f")
	// A kill between a blob's commit and the removal of its ingest leaves
	// the ingest's metadata; prune removes such debris.
	ingests, _ := os.ReadDir(filepath.Join(e.root, "content", "ingest"))
	for _, i := range ingests {
		if i.IsDir() {
			t.Errorf("an ingest is left: %s", i.Name())
		}
	}
	if recs, dirs := e.storageLayers(driver); recs != 0 || dirs != 0 {
		t.Errorf("after rmi and prune: %d layer records and %d dirs remain", recs, dirs)
	}
	if blobs, _ := os.ReadDir(filepath.Join(e.root, "content", "blobs", "sha256")); len(blobs) != 0 {
		t.Errorf("after rmi and prune: %d blobs remain", len(blobs))
	}
}

// ingestWithData reports whether a download is under way in root.
func ingestWithData(root string) bool {
	matches, _ := filepath.Glob(filepath.Join(root, "content", "ingest", "*", "data"))
	for _, m := range matches {
		if fi, err := os.Stat(m); err == nil && fi.Size() > 0 {
			return true
		}
	}
	return false
}

func hasEntries(dir string) bool {
	ents, _ := os.ReadDir(dir)
	return len(ents) > 0
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
