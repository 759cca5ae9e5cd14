package archive

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// FuzzApply feeds arbitrary streams to Apply and checks that nothing lands
// outside the root: run with go test -fuzz=FuzzApply ./internal/archive/.
func FuzzApply(f *testing.F) {
	if os.Geteuid() != 0 {
		f.Skip("needs root, as Apply's callers are")
	}
	huge := fileE("big", "")
	huge.hdr.Size = 1 << 50
	seeds := [][]entry{
		{dirE("a/"), fileE("a/b", "b"), symlinkE("a/l", "b"), hardlinkE("a/h", "a/b")},
		{fileE("../x", "x")},
		{fileE("/tmp/x", "x")},
		{symlinkE("lnk", "/"), fileE("lnk/tmp/pwned", "x")},
		{symlinkE("lnk", "../outside"), fileE("lnk/pwned", "x")},
		{dirE("d/"), symlinkE("d/up", "../.."), symlinkE("l1", "d/up"), fileE("l1/outside/pwned", "x")},
		{symlinkE("lnk", "../outside"), hardlinkE("h", "lnk/sentinel")},
		{dirE("d/"), symlinkE("d", "../outside"), fileE("d/.wh.sentinel", ""), fileE("d/.wh..wh..opq", "")},
		{huge},
		{charE("dev/null", 1, 3)},
	}
	for _, s := range seeds {
		f.Add(mkTar(f, s...), false)
		f.Add(mkTar(f, s...), true)
	}
	f.Fuzz(func(t *testing.T, data []byte, overlay bool) {
		tmp := t.TempDir()
		root := filepath.Join(tmp, "root")
		outside := filepath.Join(tmp, "outside")
		if err := os.Mkdir(root, 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(outside, "sentinel"), "keep me")
		before := snapshot(t, outside)
		opts := ApplyOptions{NoDevices: true, MaxEntrySize: 1 << 20}
		if overlay {
			opts.Whiteouts = WhiteoutOverlay
		}
		Apply(context.Background(), root, bytes.NewReader(data), opts)
		ents, err := os.ReadDir(tmp)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if e.Name() != "root" && e.Name() != "outside" {
				t.Fatalf("%s landed next to the root", e.Name())
			}
		}
		if d := diffSnapshots(before, snapshot(t, outside)); d != "" {
			t.Fatalf("outside the root changed:\n%s", d)
		}
		if st := lstat(t, filepath.Join(outside, "sentinel")); st.Nlink != 1 {
			t.Fatalf("the sentinel got a hardlink from inside the root")
		}
	})
}
