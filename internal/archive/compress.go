package archive

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression is a layer stream's compression.
type Compression int

const (
	Uncompressed Compression = iota
	Gzip
	Zstd
	Bzip2
	Xz
)

func (c Compression) String() string {
	switch c {
	case Uncompressed:
		return "uncompressed"
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	case Bzip2:
		return "bzip2"
	case Xz:
		return "xz"
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicBzip2 = []byte{'B', 'Z', 'h'}
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
)

// DetectCompression says how a stream starting with head is compressed,
// by its magic bytes; anything unknown is taken as uncompressed.
func DetectCompression(head []byte) Compression {
	switch {
	case bytes.HasPrefix(head, magicGzip):
		return Gzip
	case bytes.HasPrefix(head, magicZstd):
		return Zstd
	case bytes.HasPrefix(head, magicBzip2):
		return Bzip2
	case bytes.HasPrefix(head, magicXz):
		return Xz
	}
	return Uncompressed
}

// ErrUnsupportedCompression is wrapped by the error for a stream
// compressed in a way berth cannot read.
var ErrUnsupportedCompression = errors.New("unsupported layer compression")

// decompressBufSize is the read-ahead on the compressed side: large, so
// that the decoders read in few calls.
const decompressBufSize = 1 << 20

// Decompress returns r's content decompressed, detecting gzip, zstd and
// bzip2 by their magic bytes and passing anything else through as is.
// Closing the result releases the decoder; it does not close r.
func Decompress(r io.Reader) (io.ReadCloser, error) {
	rc, _, err := decompress(r)
	return rc, err
}

func decompress(r io.Reader) (io.ReadCloser, Compression, error) {
	br := bufio.NewReaderSize(r, decompressBufSize)
	head, err := br.Peek(6)
	if err != nil && err != io.EOF {
		return nil, Uncompressed, fmt.Errorf("read stream header: %w", err)
	}
	c := DetectCompression(head)
	switch c {
	case Gzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, c, fmt.Errorf("gzip: %w", err)
		}
		return zr, c, nil
	case Zstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderLowmem(false), zstd.WithDecoderMaxWindow(1<<30))
		if err != nil {
			return nil, c, fmt.Errorf("zstd: %w", err)
		}
		return zstdReadCloser{zr}, c, nil
	case Bzip2:
		return io.NopCloser(bzip2.NewReader(br)), c, nil
	case Xz:
		return nil, c, fmt.Errorf("%w: xz (recompress the layer with gzip or zstd)", ErrUnsupportedCompression)
	}
	return io.NopCloser(br), c, nil
}

type zstdReadCloser struct{ *zstd.Decoder }

func (z zstdReadCloser) Close() error {
	z.Decoder.Close()
	return nil
}

// Compress returns a writer that compresses into w with c (Uncompressed
// passes through). Close flushes the compressor; it does not close w.
func Compress(w io.Writer, c Compression) (io.WriteCloser, error) {
	switch c {
	case Uncompressed:
		return nopWriteCloser{w}, nil
	case Gzip:
		return gzip.NewWriterLevel(w, gzip.DefaultCompression)
	case Zstd:
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault))
	}
	return nil, fmt.Errorf("compressing with %s is not supported", c)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
