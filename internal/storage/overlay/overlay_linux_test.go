package overlay_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/linux/mount"
	"github.com/berth-dev/berth/internal/storage"
	"github.com/berth-dev/berth/internal/storage/overlay"
	"github.com/berth-dev/berth/internal/storage/storagetest"
)

func newDriver(t testing.TB, root string) storage.Driver {
	t.Helper()
	d, err := overlay.New(filepath.Join(root, overlay.Name))
	if errors.Is(err, storage.ErrUnsupported) {
		t.Skipf("overlay does not work here: %v", err)
	} else if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestConformance(t *testing.T) { storagetest.Run(t, "", newDriver) }

// TestLongChain mounts a container over 150 layers: the lowerdir option
// with absolute paths is longer than a page, yet relative to the driver's
// home it fits, thanks to the short link names.
func TestLongChain(t *testing.T) {
	storagetest.RequireRoot(t)
	const n = 150
	s := storagetest.NewStore(t, newDriver, "")
	image := storagetest.Chain(t, s, n)
	if err := s.CreateContainerLayer("c", image); err != nil {
		t.Fatal(err)
	}
	mounts, err := s.ContainerMounts("c")
	if err != nil {
		t.Fatal(err)
	}
	data := mount.ParseOptions(mounts[0].Options).Data
	home := s.Driver().Status().Home
	if rel := strings.ReplaceAll(data, home+"/", ""); len(rel) >= os.Getpagesize() {
		t.Errorf("%d layers need %d bytes of options even relative to the home: more than a page", n, len(rel))
	}
	root, err := s.Mount("c")
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{1, n / 2, n} {
		if got, err := os.ReadFile(filepath.Join(root, fmt.Sprintf("f%02d", i))); err != nil || string(got) != fmt.Sprint(i) {
			t.Errorf("f%02d = %q, %v", i, got, err)
		}
	}
	if err := s.RemoveContainerLayer("c"); err != nil {
		t.Fatal(err)
	}
}

func TestMountsVolatile(t *testing.T) {
	storagetest.RequireRoot(t)
	s := storagetest.NewStore(t, newDriver, "")
	image := storagetest.Chain(t, s, 2)
	root := s.MountContainer(t, "c", image)
	if err := os.WriteFile(filepath.Join(root, "x"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	mounts, err := s.ContainerMounts("c")
	if err != nil {
		t.Fatal(err)
	}
	opts := strings.Join(mounts[0].Options, ",")
	if !strings.Contains(opts, "volatile") {
		t.Skipf("kernel without volatile overlay mounts: %s", opts)
	}
	// A volatile mount leaves a marker that makes the kernel refuse the
	// next mount: Mounts must clear it.
	if err := s.Unmount("c"); err != nil {
		t.Fatal(err)
	}
	root, err = s.Mount("c")
	if err != nil {
		t.Fatalf("remount of a volatile container layer: %v", err)
	}
	if got, err := os.ReadFile(filepath.Join(root, "x")); err != nil || string(got) != "x" {
		t.Errorf("x = %q, %v", got, err)
	}
	if err := s.RemoveContainerLayer("c"); err != nil {
		t.Fatal(err)
	}
}

func BenchmarkMount(b *testing.B) { storagetest.Benchmark(b, "", newDriver) }

// BenchmarkBareMount mounts the overlay the driver describes with mount(2)
// alone ("mount2"), and after only the two mkdirs a writable layer needs
// ("mkdir+mount2"): the floors for BenchmarkMount's "mount" and
// "prepare+mount".
func BenchmarkBareMount(b *testing.B) {
	storagetest.RequireRoot(b)
	for _, n := range []int{1, 20} {
		b.Run(fmt.Sprintf("layers=%d", n), func(b *testing.B) {
			s := storagetest.NewStore(b, newDriver, "")
			image := storagetest.Chain(b, s, n)
			if err := s.CreateContainerLayer("template", image); err != nil {
				b.Fatal(err)
			}
			mounts, err := s.ContainerMounts("template")
			if err != nil {
				b.Fatal(err)
			}
			var lower, extra []string
			for _, o := range mounts[0].Options {
				switch {
				case strings.HasPrefix(o, "lowerdir="):
					lower = append(lower, o)
				case strings.HasPrefix(o, "upperdir="), strings.HasPrefix(o, "workdir="):
				default:
					extra = append(extra, o)
				}
			}
			scratch := filepath.Join(s.Root, "bare")
			if err := os.Mkdir(scratch, 0o700); err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { storagetest.UnmountUnder(scratch) })
			run := func(b *testing.B, timeMkdir bool) {
				var w storagetest.Stopwatch
				for i := 0; i < b.N; i++ {
					dir := filepath.Join(scratch, fmt.Sprint(i))
					target := dir + "-merged"
					if err := os.Mkdir(dir, 0o700); err != nil {
						b.Fatal(err)
					}
					if err := os.Mkdir(target, 0o700); err != nil {
						b.Fatal(err)
					}
					upper, work := filepath.Join(dir, "diff"), filepath.Join(dir, "work")
					data := strings.Join(append(append(lower, "upperdir="+upper, "workdir="+work), extra...), ",")
					if timeMkdir {
						w.Start()
					}
					if err := os.Mkdir(upper, 0o755); err != nil {
						b.Fatal(err)
					}
					if err := os.Mkdir(work, 0o700); err != nil {
						b.Fatal(err)
					}
					if !timeMkdir {
						w.Start()
					}
					if err := unix.Mount("overlay", target, "overlay", 0, data); err != nil {
						b.Fatal(err)
					}
					w.Stop()
					if err := unix.Unmount(target, 0); err != nil {
						b.Fatal(err)
					}
					_ = os.RemoveAll(dir)
					_ = os.Remove(target)
				}
				w.Report(b)
			}
			b.Run("mount2", func(b *testing.B) { run(b, false) })
			b.Run("mkdir+mount2", func(b *testing.B) { run(b, true) })
			if err := s.RemoveContainerLayer("template"); err != nil {
				b.Fatal(err)
			}
		})
	}
}
