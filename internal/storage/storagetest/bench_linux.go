package storagetest

import (
	"fmt"
	"testing"
	"time"
)

// Stopwatch times only part of each benchmark iteration. b.StopTimer and
// b.StartTimer read the memory statistics, stopping the world, which would
// cost more than some of what is measured here.
type Stopwatch struct {
	total time.Duration
	start time.Time
}

// Start starts timing.
func (w *Stopwatch) Start() { w.start = time.Now() }

// Stop stops timing and adds the time since Start.
func (w *Stopwatch) Stop() { w.total += time.Since(w.start) }

// Report sets b's ns/op to the time measured per iteration.
func (w *Stopwatch) Report(b *testing.B) {
	b.ReportMetric(float64(w.total.Nanoseconds())/float64(b.N), "ns/op")
}

// Benchmark measures, over images of 1 and of 20 layers, preparing and
// mounting a container root ("prepare+mount": a writable layer created and
// mounted) and mounting alone ("mount": the layer created beforehand).
// Unmounting and removing the container are not timed. Storage roots are
// made under dir ("" for the benchmark's temporary directory).
func Benchmark(b *testing.B, dir string, newDriver NewDriver) {
	RequireRoot(b)
	for _, n := range []int{1, 20} {
		b.Run(fmt.Sprintf("layers=%d", n), func(b *testing.B) {
			s := NewStore(b, newDriver, dir)
			image := Chain(b, s, n)
			b.Run("prepare+mount", func(b *testing.B) {
				var w Stopwatch
				for i := 0; i < b.N; i++ {
					id := fmt.Sprintf("c%d", i)
					w.Start()
					if err := s.CreateContainerLayer(id, image); err != nil {
						b.Fatal(err)
					}
					if _, err := s.Mount(id); err != nil {
						b.Fatal(err)
					}
					w.Stop()
					if err := s.RemoveContainerLayer(id); err != nil {
						b.Fatal(err)
					}
				}
				w.Report(b)
			})
			b.Run("mount", func(b *testing.B) {
				var w Stopwatch
				for i := 0; i < b.N; i++ {
					id := fmt.Sprintf("m%d", i)
					if err := s.CreateContainerLayer(id, image); err != nil {
						b.Fatal(err)
					}
					w.Start()
					if _, err := s.Mount(id); err != nil {
						b.Fatal(err)
					}
					w.Stop()
					if err := s.RemoveContainerLayer(id); err != nil {
						b.Fatal(err)
					}
				}
				w.Report(b)
			})
		})
	}
}
