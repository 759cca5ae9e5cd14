package engine

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"time"
)

// Formats of `berth save`.
const (
	// FormatDocker is docker-archive: manifest.json, repositories, the
	// configs and uncompressed layer tars, laid out (as docker 25 does) as
	// an OCI image layout too. `docker load` reads it.
	FormatDocker = "docker"
	// FormatOCI is an OCI image layout (oci-layout, index.json, blobs/)
	// holding the blobs as stored: manifests and layers keep their digests.
	FormatOCI = "oci"
)

// Annotations naming an image in an OCI layout's index.json.
const (
	annotationRefName        = "org.opencontainers.image.ref.name"
	annotationContainerdName = "io.containerd.image.name"
)

// dockerManifest is one entry of a docker-archive's manifest.json.
type dockerManifest struct {
	Config   string   `json:"Config"`
	RepoTags []string `json:"RepoTags"`
	Layers   []string `json:"Layers"`
}

// layoutWriter receives the files of an archive: a tar stream or a
// directory.
type layoutWriter interface {
	// add writes a file of size bytes read from r, once per name.
	add(name string, size int64, r io.Reader) error
	// has reports whether name was written.
	has(name string) bool
	close() error
}

type tarLayout struct {
	tw    *tar.Writer
	dirs  map[string]bool
	files map[string]bool
}

func newTarLayout(w io.Writer) *tarLayout {
	return &tarLayout{tw: tar.NewWriter(w), dirs: map[string]bool{}, files: map[string]bool{}}
}

func (t *tarLayout) mkdirs(dir string) error {
	if dir == "." || dir == "" || t.dirs[dir] {
		return nil
	}
	if err := t.mkdirs(path.Dir(dir)); err != nil {
		return err
	}
	t.dirs[dir] = true
	return t.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: time.Unix(0, 0), Format: tar.FormatPAX})
}

func (t *tarLayout) add(name string, size int64, r io.Reader) error {
	if t.files[name] {
		return nil
	}
	t.files[name] = true
	if err := t.mkdirs(path.Dir(name)); err != nil {
		return err
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o644, ModTime: time.Unix(0, 0), Format: tar.FormatPAX}
	if err := t.tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.Copy(t.tw, r)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%s: wrote %d bytes, expected %d", name, n, size)
	}
	return nil
}

func (t *tarLayout) has(name string) bool { return t.files[name] }

func (t *tarLayout) close() error { return t.tw.Close() }

type dirLayout struct {
	dir   string
	files map[string]bool
}

func (d *dirLayout) add(name string, size int64, r io.Reader) error {
	if d.files[name] {
		return nil
	}
	d.files[name] = true
	p := filepath.Join(d.dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if _, err := os.Stat(p); err == nil && path.Dir(name) != "." {
		return nil // a blob written by an earlier save: same digest, same bytes
	}
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != size {
		err = fmt.Errorf("%s: wrote %d bytes, expected %d", name, n, size)
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

func (d *dirLayout) has(name string) bool {
	if d.files[name] {
		return true
	}
	_, err := os.Stat(filepath.Join(d.dir, filepath.FromSlash(name)))
	return err == nil && path.Dir(name) != "."
}

func (d *dirLayout) close() error { return nil }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
