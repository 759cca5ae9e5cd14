package e2e

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImageSaveLoad saves images in each format and loads them into a
// fresh root: same IDs, same tags; the OCI format keeps the manifest's
// digest.
func TestImageSaveLoad(t *testing.T) {
	src := newImageEnv(t)
	base := randomLayer(t, "base", 1<<20, 5)
	top := randomLayer(t, "top", 512<<10, 5)
	src.must("load", "-i", ociLayout(t, "127.0.0.1:5000/save/two:v1", []string{"sh"}, base, top))
	src.must("import", busyboxTar(t), "busybox-save:latest")
	src.must("tag", "busybox-save:latest", "busybox-save:other")
	ids := map[string]string{}
	for _, ref := range []string{"127.0.0.1:5000/save/two:v1", "busybox-save:latest"} {
		ids[ref] = strings.TrimSpace(src.must("image", "inspect", "--format", "{{.Id}}", ref))
	}
	dir := t.TempDir()

	// docker-archive to a file: manifest.json names both tags of the bare
	// repository name, and one image.
	archive := filepath.Join(dir, "docker.tar")
	src.must("save", "-o", archive, "127.0.0.1:5000/save/two:v1", "busybox-save")
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(tarFile(t, archive, "manifest.json"), &manifest); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(manifest) != 2 || len(manifest[0].Layers) != 2 || strings.Join(manifest[1].RepoTags, ",") != "busybox-save:latest,busybox-save:other" {
		t.Errorf("manifest.json: %+v", manifest)
	}

	dst := newImageEnv(t)
	out := dst.must("load", "-i", archive)
	for _, want := range []string{"Loaded image: 127.0.0.1:5000/save/two:v1", "Loaded image: busybox-save:latest", "Loaded image: busybox-save:other"} {
		if !strings.Contains(out, want) {
			t.Errorf("load output lacks %q:\n%s", want, out)
		}
	}
	for ref, id := range ids {
		if got := strings.TrimSpace(dst.must("image", "inspect", "--format", "{{.Id}}", ref)); got != id {
			t.Errorf("%s loaded as %s, saved as %s", ref, got, id)
		}
	}

	// Compressed, through stdin, into a root that has the images: the IDs
	// stay, nothing is loaded twice.
	gz := filepath.Join(dir, "docker.tar.gz")
	gzipFile(t, archive, gz)
	f, err := os.Open(gz)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if res := dst.berthStdin(f, "load"); res.code != 0 || !strings.Contains(res.stdout, "Loaded image: busybox-save:latest") {
		t.Errorf("load of a gzip archive from stdin: %+v", res)
	}
	if n := len(strings.Fields(dst.must("images", "-q"))); n != 3 {
		t.Errorf("after loading twice: %d image rows, want 3", n)
	}

	// OCI layout, as a tar and as a directory: the manifest digest stays.
	digest := strings.TrimSpace(src.must("image", "inspect", "--format", "{{.Id}}", "127.0.0.1:5000/save/two:v1"))
	ociTar := filepath.Join(dir, "oci.tar")
	src.must("save", "--format", "oci", "-o", ociTar, "127.0.0.1:5000/save/two:v1")
	ociDir := filepath.Join(dir, "oci") + "/"
	src.must("save", "--format", "oci", "-o", ociDir, "127.0.0.1:5000/save/two:v1")
	var index struct {
		Manifests []struct {
			Digest      string
			Annotations map[string]string
		}
	}
	if err := json.Unmarshal(tarFile(t, ociTar, "index.json"), &index); err != nil || len(index.Manifests) != 1 ||
		index.Manifests[0].Annotations["io.containerd.image.name"] != "127.0.0.1:5000/save/two:v1" {
		t.Fatalf("index.json: %+v %v", index, err)
	}
	for _, in := range []string{ociTar, ociDir} {
		e := newImageEnv(t)
		if out := e.must("load", "-q", "-i", in); !strings.Contains(out, "Loaded image: 127.0.0.1:5000/save/two:v1") {
			t.Errorf("load -i %s: %q", in, out)
		}
		if got := strings.TrimSpace(e.must("image", "inspect", "--format", "{{.Id}}", "127.0.0.1:5000/save/two:v1")); got != digest {
			t.Errorf("load -i %s: image %s, want %s", in, got, digest)
		}
	}

	// Refusals.
	e := newImageEnv(t)
	e.fails("No such image: nothere:latest", "save", "-o", filepath.Join(dir, "x.tar"), "nothere")
	if _, err := os.Stat(filepath.Join(dir, "x.tar")); err == nil {
		t.Errorf("a failed save left its file")
	}
	bogus := filepath.Join(dir, "bogus.tar")
	if err := os.WriteFile(bogus, make([]byte, 1024), 0o644); err != nil {
		t.Fatal(err)
	}
	e.fails("unrecognized image archive", "load", "-i", bogus)
}

// tarFile returns the file name in the tar at path.
func tarFile(t *testing.T, path, name string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err != nil {
			t.Fatalf("%s has no %s: %v", path, name, err)
		}
		if hdr.Name == name {
			data, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return data
		}
	}
}

func gzipFile(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	zw := gzip.NewWriter(out)
	if _, err := io.Copy(zw, in); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}
