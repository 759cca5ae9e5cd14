// Package storagetest is the conformance suite every storage driver
// passes (Run), the shared benchmark (Benchmark), and the helpers both use:
// layer tars built in memory and stores in temporary roots that are
// unmounted and checked for leaks when the test ends.
package storagetest

import (
	"archive/tar"
	"bytes"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
)

// Entry is one entry of a layer tar built by Tar.
type Entry struct {
	Name string
	// Type is a tar type flag; zero means a regular file, or a directory
	// when Name ends in "/".
	Type     byte
	Body     string
	Mode     int64 // 0644 for files, 0755 for directories when zero
	UID, GID int
	Link     string // symlink target, or hardlink source
	Major    int64
	Minor    int64
	Xattrs   map[string]string
}

// epoch is the modification time of every entry, so that copies and
// originals compare equal.
var epoch = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// Dir, File, Symlink, Hardlink, Whiteout and Opaque build common entries.
func Dir(name string) Entry { return Entry{Name: name + "/", Type: tar.TypeDir} }

// File is a regular file holding body.
func File(name, body string) Entry { return Entry{Name: name, Body: body} }

// Symlink is a symbolic link to target.
func Symlink(name, target string) Entry {
	return Entry{Name: name, Type: tar.TypeSymlink, Link: target, Mode: 0o777}
}

// Hardlink is a hard link to the earlier entry source.
func Hardlink(name, source string) Entry { return Entry{Name: name, Type: tar.TypeLink, Link: source} }

// Whiteout deletes name from the layers below.
func Whiteout(name string) Entry {
	dir, base := splitName(name)
	return Entry{Name: dir + ".wh." + base}
}

// Opaque hides the contents of directory dir in the layers below.
func Opaque(dir string) Entry { return Entry{Name: dir + "/.wh..wh..opq"} }

func splitName(name string) (dir, base string) {
	for i := len(name) - 1; i >= 0; i-- {
		if name[i] == '/' {
			return name[:i+1], name[i+1:]
		}
	}
	return "", name
}

// Tar returns a layer tar holding entries, in order.
func Tar(t testing.TB, entries ...Entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name:     e.Name,
			Typeflag: e.Type,
			Mode:     e.Mode,
			Uid:      e.UID,
			Gid:      e.GID,
			Linkname: e.Link,
			Devmajor: e.Major,
			Devminor: e.Minor,
			ModTime:  epoch,
			Format:   tar.FormatPAX,
		}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
			if len(e.Name) > 0 && e.Name[len(e.Name)-1] == '/' {
				h.Typeflag = tar.TypeDir
			}
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.Body))
		}
		if len(e.Xattrs) > 0 {
			h.PAXRecords = map[string]string{}
			for k, v := range e.Xattrs {
				h.PAXRecords["SCHILY.xattr."+k] = v
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("tar %s: %v", e.Name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.Body)); err != nil {
				t.Fatalf("tar %s: %v", e.Name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// DiffID is the digest of an uncompressed layer tar.
func DiffID(tarball []byte) digest.Digest { return digest.FromBytes(tarball) }
