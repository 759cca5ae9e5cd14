package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/registry"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: unpacks layers with their owners")
	}
}

func newImages(t *testing.T) *Images {
	t.Helper()
	requireRoot(t)
	s, err := OpenImages(ImagesOptions{Root: t.TempDir(), StorageDriver: "vfs"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// tarOf makes a layer tar of files (name → content; a trailing / makes a
// directory).
func tarOf(t *testing.T, files ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for i := 0; i < len(files); i += 2 {
		name, body := files[i], files[i+1]
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(0, 0)}
		if strings.HasSuffix(name, "/") {
			hdr.Typeflag, hdr.Mode, hdr.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil && hdr.Size > 0 {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gz(t *testing.T, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// putLayers stores gzip blobs of tars and returns their image layers.
func putLayers(t *testing.T, s *Images, tars ...[]byte) []image.Layer {
	t.Helper()
	var out []image.Layer
	for _, tr := range tars {
		blob := gz(t, tr)
		d, err := s.putBlob(context.Background(), ocispec.MediaTypeImageLayerGzip, blob)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, image.Layer{Blob: d, DiffID: digest.FromBytes(tr)})
	}
	return out
}

// TestUnpackOutOfOrder readies layers last first, from several goroutines,
// as a pull's downloads do: they are applied in order all the same, and
// the unpacker holds one reference, on the top layer.
func TestUnpackOutOfOrder(t *testing.T) {
	s := newImages(t)
	st, err := s.Layers()
	if err != nil {
		t.Fatal(err)
	}
	layers := putLayers(t, s,
		tarOf(t, "a/", "", "a/one", "1"),
		tarOf(t, "a/", "", "a/two", "2", "a/.wh.one", ""),
		tarOf(t, "b", "3"))
	var seen []string
	var mu sync.Mutex
	p := registry.ProgressFunc(func(u registry.Update) {
		if u.Status == registry.Complete {
			mu.Lock()
			seen = append(seen, u.ID())
			mu.Unlock()
		}
	})
	ctx := context.Background()
	u := newUnpacker(ctx, s.cs, st, p)
	var wg sync.WaitGroup
	for i := len(layers) - 1; i >= 0; i-- {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(len(layers)-i) * 10 * time.Millisecond)
			u.ready(i, unpackLayer{Blob: layers[i].Blob, DiffID: layers[i].DiffID, Ahead: true})
		}()
	}
	go func() { wg.Wait(); u.finish(len(layers)) }()
	out, err := u.run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	img := image.Image{Layers: layers}
	if out.Top != img.ChainID() || len(out.Sizes) != 3 {
		t.Fatalf("unpacked %+v, want top %s", out, img.ChainID())
	}
	var want []string
	for _, l := range layers {
		want = append(want, l.Blob.Digest.Encoded()[:12])
	}
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Errorf("layers completed in order %v, want %v", seen, want)
	}
	all, err := st.Layers()
	if err != nil {
		t.Fatal(err)
	}
	refs := 0
	for _, l := range all {
		refs += l.Refs
	}
	if len(all) != 3 || refs != 1 {
		t.Errorf("%d layers holding %d references, want 3 holding 1", len(all), refs)
	}
	top, _ := st.Layer(out.Top)
	dir := st.Driver().Dir(top.CacheID)
	for path, want := range map[string]bool{"a/two": true, "a/one": false, "b": true} {
		if _, err := os.Lstat(filepath.Join(dir, path)); (err == nil) != want {
			t.Errorf("%s in the top layer: exists %v, want %v", path, err == nil, want)
		}
	}
	if err := st.Release(out.Top); err != nil {
		t.Fatal(err)
	}
	if all, _ := st.Layers(); len(all) != 0 {
		t.Errorf("after releasing the top, %d layers remain", len(all))
	}
}

// TestUnpackWrongDiffID refuses a layer whose content does not hash to the
// diff ID the config names: nothing is committed.
func TestUnpackWrongDiffID(t *testing.T) {
	s := newImages(t)
	st, err := s.Layers()
	if err != nil {
		t.Fatal(err)
	}
	layers := putLayers(t, s, tarOf(t, "a", "1"), tarOf(t, "b", "2"))
	layers[1].DiffID = digest.FromString("something else")
	img := image.Image{Layers: layers}
	err = s.unpackStored(context.Background(), st, &img)
	if err == nil || !strings.Contains(err.Error(), "the image config says") || !errdefs.Is(err, errdefs.KindInvalidArgument) {
		t.Fatalf("err = %v, want a diff ID mismatch", err)
	}
	if all, _ := st.Layers(); len(all) != 0 {
		t.Errorf("after a failed unpack, %d layers remain", len(all))
	}
}

// TestImagesRoundTrip imports, lists, saves, loads and removes, in process.
func TestImagesRoundTrip(t *testing.T) {
	s := newImages(t)
	ctx := context.Background()
	rootfs := tarOf(t, "etc/", "", "etc/hostname", "test\n", "bin/", "", "bin/tool", "#!/bin/sh\n")
	img, err := s.Import(ctx, bytes.NewReader(gz(t, rootfs)), ImportOptions{
		Reference: "example.com/app:v1", Changes: []string{`CMD ["/bin/tool"]`, "LABEL k=v"}, Message: "made by test"})
	if err != nil {
		t.Fatal(err)
	}
	if img.Size != int64(len(rootfs)) || len(img.Layers) != 1 || img.Layers[0].DiffID != digest.FromBytes(rootfs) {
		t.Errorf("imported %+v", img)
	}
	list, err := s.List(ctx, ListOptions{Filters: ImageFilters{Label: []string{"k=v"}}})
	if err != nil || len(list) != 1 || list[0].RepoTags[0] != "example.com/app:v1" {
		t.Fatalf("List: %+v %v", list, err)
	}
	insp, err := s.Inspect(ctx, "example.com/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if insp.Comment != "made by test" || insp.Config.Cmd[0] != "/bin/tool" || insp.GraphDriver.Name != "vfs" || insp.GraphDriver.Data["Dir"] == "" {
		t.Errorf("Inspect: %+v", insp)
	}
	hist, err := s.History(ctx, img.ID.String())
	if err != nil || len(hist) != 1 || hist[0].ID != img.ID.String() || hist[0].Comment != "made by test" || hist[0].Size != img.Size {
		t.Errorf("History: %+v %v", hist, err)
	}

	for _, format := range []string{FormatDocker, FormatOCI} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			if err := s.Save(ctx, []string{"example.com/app:v1"}, &buf, format); err != nil {
				t.Fatal(err)
			}
			other := newImages(t)
			loaded, err := other.Load(ctx, &buf)
			if err != nil {
				t.Fatal(err)
			}
			if len(loaded) != 1 || loaded[0].Name != "example.com/app:v1" || loaded[0].ID != img.ID {
				t.Fatalf("Load: %+v", loaded)
			}
			got, err := other.is.Get(ctx, "example.com/app:v1")
			if err != nil {
				t.Fatal(err)
			}
			if format == FormatOCI && got.Manifest.Digest != img.Manifest.Digest {
				t.Errorf("an OCI save changed the manifest: %s, was %s", got.Manifest.Digest, img.Manifest.Digest)
			}
			if got.Size != img.Size {
				t.Errorf("loaded size %d, was %d", got.Size, img.Size)
			}
		})
	}

	res, err := s.Remove(ctx, "example.com/app:v1", false)
	if err != nil || len(res.Deleted) != 1 || res.SpaceReclaimed != img.Size {
		t.Fatalf("Remove: %+v %v", res, err)
	}
	if _, err := s.Remove(ctx, "example.com/app:v1", false); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Errorf("second Remove: %v", err)
	}
	st, _ := s.Layers()
	if all, _ := st.Layers(); len(all) != 0 {
		t.Errorf("after Remove, %d layers remain", len(all))
	}
	blobs := 0
	if err := s.cs.Walk(ctx, func(content.Info) error { blobs++; return nil }); err != nil || blobs != 0 {
		t.Errorf("after Remove, %d blobs remain (%v)", blobs, err)
	}
}

// TestLoadRefusesEscapes refuses an archive whose entries point outside it.
func TestLoadRefusesEscapes(t *testing.T) {
	s := newImages(t)
	for name, hdr := range map[string]*tar.Header{
		"dotdot":   {Typeflag: tar.TypeReg, Name: "../escape", Mode: 0o644},
		"absolute": {Typeflag: tar.TypeReg, Name: "/escape", Mode: 0o644},
	} {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			if err := tw.WriteHeader(hdr); err != nil {
				t.Fatal(err)
			}
			tw.Close()
			_, err := s.Load(context.Background(), &buf)
			if !errdefs.Is(err, errdefs.KindInvalidArgument) {
				t.Fatalf("err = %v, want a refusal", err)
			}
		})
	}
	// A symlink out, then a layer read through it.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "layer.tar", Linkname: "/etc/passwd"})
	manifest := `[{"Config":"c.json","RepoTags":["x:1"],"Layers":["layer.tar"]}]`
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "manifest.json", Mode: 0o644, Size: int64(len(manifest))})
	tw.Write([]byte(manifest))
	cfg := fmt.Sprintf(`{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["%s"]}}`, digest.FromString("x"))
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "c.json", Mode: 0o644, Size: int64(len(cfg))})
	tw.Write([]byte(cfg))
	tw.Close()
	if _, err := s.Load(context.Background(), &buf); err == nil || !strings.Contains(err.Error(), "layer.tar") {
		t.Fatalf("load through a symlink out: %v", err)
	}
}
