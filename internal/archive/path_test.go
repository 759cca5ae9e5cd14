package archive

import (
	"bytes"
	"errors"
	"io"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestCleanEntryName(t *testing.T) {
	cases := []struct {
		in, want string
		escape   bool
		err      bool
	}{
		{in: "a/b", want: "a/b"},
		{in: "./a/b/", want: "a/b"},
		{in: "a//b/./c", want: "a/b/c"},
		{in: ".", want: ""},
		{in: "./", want: ""},
		{in: "..", escape: true},
		{in: "../x", escape: true},
		{in: "a/../b", escape: true},
		{in: "a/..", escape: true},
		{in: "/etc/passwd", escape: true},
		{in: "/", escape: true},
		{in: "a/..b", want: "a/..b"},
		{in: "...", want: "..."},
		{in: "", err: true},
		{in: "a\x00b", err: true},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			got, err := CleanEntryName(c.in)
			switch {
			case c.escape:
				if !errors.Is(err, ErrEscape) {
					t.Errorf("CleanEntryName(%q) = %q, %v; want ErrEscape", c.in, got, err)
				}
			case c.err:
				if err == nil {
					t.Errorf("CleanEntryName(%q) = %q; want an error", c.in, got)
				}
			case err != nil || got != c.want:
				t.Errorf("CleanEntryName(%q) = %q, %v; want %q", c.in, got, err, c.want)
			}
		})
	}
}

func TestParseWhiteout(t *testing.T) {
	cases := []struct {
		base string
		kind whiteoutKind
		name string
	}{
		{"file", notWhiteout, ""},
		{".wh.file", whiteoutFile, "file"},
		{".wh..wh..opq", whiteoutOpaque, ""},
		{".wh..wh.plnk", whiteoutMeta, ""},
		{".whfile", notWhiteout, ""},
	}
	for _, c := range cases {
		if k, n := parseWhiteout(c.base); k != c.kind || n != c.name {
			t.Errorf("parseWhiteout(%q) = %v, %q; want %v, %q", c.base, k, n, c.kind, c.name)
		}
	}
}

func TestMapID(t *testing.T) {
	maps := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 1000}, {ContainerID: 1000, HostID: 5000, Size: 1}}
	cases := []struct {
		id, want int
		ok       bool
	}{
		{0, 100000, true}, {999, 100999, true}, {1000, 5000, true}, {1001, 0, false}, {-1, 0, false},
	}
	for _, c := range cases {
		if got, ok := mapID(c.id, maps); got != c.want || ok != c.ok {
			t.Errorf("mapID(%d) = %d, %v; want %d, %v", c.id, got, ok, c.want, c.ok)
		}
	}
	if got, ok := mapID(42, nil); got != 42 || !ok {
		t.Errorf("identity mapID(42) = %d, %v", got, ok)
	}
}

func TestCompressRoundTrip(t *testing.T) {
	data := bytes.Repeat([]byte("berth layer "), 10000)
	for _, c := range []Compression{Uncompressed, Gzip, Zstd} {
		t.Run(c.String(), func(t *testing.T) {
			var buf bytes.Buffer
			w, err := Compress(&buf, c)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(data)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if got := DetectCompression(buf.Bytes()); got != c {
				t.Errorf("detected %v, want %v", got, c)
			}
			r, err := Decompress(&buf)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			out, err := io.ReadAll(r)
			if err != nil || !bytes.Equal(out, data) {
				t.Errorf("round trip: %d bytes, %v", len(out), err)
			}
		})
	}
	if _, err := Decompress(bytes.NewReader([]byte{0xfd, '7', 'z', 'X', 'Z', 0, 1, 2})); err == nil {
		t.Errorf("xz accepted")
	}
	r, err := Decompress(bytes.NewReader(nil))
	if err != nil {
		t.Fatalf("empty stream: %v", err)
	}
	if b, _ := io.ReadAll(r); len(b) != 0 {
		t.Errorf("empty stream gave %d bytes", len(b))
	}
}
