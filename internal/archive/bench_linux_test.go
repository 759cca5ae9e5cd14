package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// benchLayer writes a ~50 MB layer shaped like a distribution's: 4,000
// small files (1-16 KiB) in 40 directories, eight 2 MiB files, symlinks
// and hardlinks, with text-like content (gzip takes it to about a third).
// It returns the paths of the plain, gzip and zstd versions.
func benchLayer(b *testing.B) map[string]string {
	b.Helper()
	dir := b.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	words := make([][]byte, 512)
	for i := range words {
		w := make([]byte, 3+rng.IntN(9))
		for j := range w {
			w[j] = byte('a' + rng.IntN(26))
		}
		words[i] = w
	}
	content := func(n int) []byte {
		out := make([]byte, 0, n+16)
		for len(out) < n {
			out = append(out, words[rng.IntN(len(words))]...)
			if rng.IntN(8) == 0 {
				out = append(out, byte(rng.IntN(256)))
			}
			out = append(out, ' ')
		}
		return out[:n]
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	hdr := func(h *tar.Header, body []byte) {
		h.ModTime, h.Format = testTime, tar.FormatPAX
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			b.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			b.Fatal(err)
		}
	}
	for d := range 40 {
		dn := fmt.Sprintf("usr/share/pkg%02d/", d)
		hdr(&tar.Header{Typeflag: tar.TypeDir, Name: dn, Mode: 0o755}, nil)
		for f := range 100 {
			body := content(1024 + rng.IntN(15*1024))
			hdr(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("%sfile%03d.txt", dn, f), Size: int64(len(body))}, body)
		}
		hdr(&tar.Header{Typeflag: tar.TypeSymlink, Name: dn + "link", Linkname: "file000.txt", Mode: 0o777}, nil)
		hdr(&tar.Header{Typeflag: tar.TypeLink, Name: dn + "hard", Linkname: dn + "file001.txt"}, nil)
	}
	hdr(&tar.Header{Typeflag: tar.TypeDir, Name: "usr/lib/", Mode: 0o755}, nil)
	for i := range 8 {
		body := content(2 << 20)
		hdr(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("usr/lib/lib%d.so", i), Size: int64(len(body)), Mode: 0o755}, body)
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	plain := buf.Bytes()

	var gz, zs bytes.Buffer
	gw, _ := gzip.NewWriterLevel(&gz, gzip.DefaultCompression)
	gw.Write(plain)
	gw.Close()
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(plain)
	zw.Close()
	files := map[string]string{}
	for name, data := range map[string][]byte{"plain": plain, "gzip": gz.Bytes(), "zstd": zs.Bytes()} {
		p := filepath.Join(dir, "layer."+name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
		files[name] = p
	}
	return files
}

// BenchmarkApply unpacks the layer from a file with Apply, and with GNU
// tar -x (the floor) alternately in the same loop: ns/op is Apply's;
// tar-ns/op is tar's and berth/tar the ratio. Run as root (tar then keeps
// owners and modes, as Apply does):
//
//	go test -run XXX -bench Apply -benchtime 10x ./internal/archive/
//
// BERTH_BENCH_DIR picks the file system unpacked into (a tmpfs such as
// /dev/shm takes the disk out of the figures).
func BenchmarkApply(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root, to compare with tar -x keeping owners")
	}
	files := benchLayer(b)
	st, _ := os.Stat(files["plain"])
	tarFlags := map[string][]string{"plain": nil, "gzip": {"-z"}, "zstd": {"--zstd"}}
	for _, format := range []string{"plain", "gzip", "zstd"} {
		b.Run(format, func(b *testing.B) {
			work := b.TempDir()
			if base := os.Getenv("BERTH_BENCH_DIR"); base != "" {
				var err error
				if work, err = os.MkdirTemp(base, "berth-bench-"); err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { os.RemoveAll(work) })
			}
			fresh := func(i int, who string) string {
				d := filepath.Join(work, fmt.Sprintf("%s%d", who, i))
				if err := os.Mkdir(d, 0o755); err != nil {
					b.Fatal(err)
				}
				return d
			}
			b.SetBytes(st.Size())
			var berth, gnu time.Duration
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				d := fresh(i, "berth")
				f, err := os.Open(files[format])
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				if _, err := Apply(context.Background(), d, f, ApplyOptions{}); err != nil {
					b.Fatal(err)
				}
				berth += time.Since(start)
				b.StopTimer()
				f.Close()
				os.RemoveAll(d)

				d = fresh(i, "tar")
				args := append([]string{"-x", "-f", files[format], "-C", d}, tarFlags[format]...)
				start = time.Now()
				if out, err := exec.Command("tar", args...).CombinedOutput(); err != nil {
					b.Skipf("tar %v: %v: %s", args, err, out)
				}
				gnu += time.Since(start)
				os.RemoveAll(d)
				b.StartTimer()
			}
			b.ReportMetric(float64(gnu.Nanoseconds())/float64(b.N), "tar-ns/op")
			b.ReportMetric(float64(berth)/float64(gnu), "berth/tar")
		})
	}
}
