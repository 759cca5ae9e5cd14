package vfs_test

import (
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/internal/storage"
	"github.com/berth-dev/berth/internal/storage/storagetest"
	"github.com/berth-dev/berth/internal/storage/vfs"
)

func newDriver(t testing.TB, root string) storage.Driver {
	t.Helper()
	d, err := vfs.New(filepath.Join(root, vfs.Name))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestConformance(t *testing.T) { storagetest.Run(t, "", newDriver) }

func BenchmarkMount(b *testing.B) { storagetest.Benchmark(b, "", newDriver) }
