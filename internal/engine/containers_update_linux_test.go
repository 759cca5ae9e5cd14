package engine

import (
	"os"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
)

func TestMergeResources(t *testing.T) {
	pids := int64(50)
	tests := []struct {
		name      string
		cur, u    container.Resources
		mem, swap int64
		err       string
	}{
		{"first limit gets docker's default swap", container.Resources{}, container.Resources{Memory: 100 << 20}, 100 << 20, 200 << 20, ""},
		{"lower limit keeps the swap in force", container.Resources{Memory: 64 << 20}, container.Resources{Memory: 100 << 20}, 100 << 20, 128 << 20, ""},
		{"limit above the swap is refused", container.Resources{Memory: 64 << 20}, container.Resources{Memory: 200 << 20}, 0, 0, "memoryswap"},
		{"limit and swap together", container.Resources{Memory: 64 << 20}, container.Resources{Memory: 200 << 20, MemorySwap: 400 << 20}, 200 << 20, 400 << 20, ""},
		{"unlimited swap stays", container.Resources{Memory: 64 << 20, MemorySwap: -1}, container.Resources{Memory: 1 << 30}, 1 << 30, -1, ""},
		{"other fields leave memory alone", container.Resources{Memory: 64 << 20}, container.Resources{CPUShares: 512, PidsLimit: &pids}, 64 << 20, 128 << 20, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := mergeResources(tt.cur, tt.u)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || r.Memory != tt.mem || r.MemorySwap != tt.swap {
				t.Fatalf("memory %d swap %d err %v; want %d %d", r.Memory, r.MemorySwap, err, tt.mem, tt.swap)
			}
			if tt.u.CPUShares != 0 && r.CPUShares != tt.u.CPUShares {
				t.Fatalf("cpu shares %d", r.CPUShares)
			}
			if tt.u.PidsLimit != nil && (r.PidsLimit == nil || *r.PidsLimit != *tt.u.PidsLimit || r.PidsLimit == tt.u.PidsLimit) {
				t.Fatalf("pids limit %v", r.PidsLimit)
			}
		})
	}
}

func TestLinuxResourcesChecksAsRun(t *testing.T) {
	e := &Engine{images: &Images{opts: ImagesOptions{Root: t.TempDir()}}}
	if err := os.MkdirAll(e.images.tmpDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := e.linuxResources(container.Resources{Memory: 1 << 20}); err == nil || !strings.Contains(err.Error(), "Minimum memory limit allowed is 6MB") {
		t.Fatalf("1MB: %v", err)
	}
	res, err := e.linuxResources(container.Resources{Memory: 64 << 20, MemorySwap: 128 << 20, NanoCPUs: 5e8})
	if err != nil {
		t.Fatal(err)
	}
	if res.Memory == nil || *res.Memory.Limit != 64<<20 || *res.Memory.Swap != 128<<20 {
		t.Fatalf("memory: %+v", res.Memory)
	}
	if res.CPU == nil || *res.CPU.Quota != 50000 || *res.CPU.Period != 100000 {
		t.Fatalf("cpu: %+v", res.CPU)
	}
	if res.Devices != nil {
		t.Fatalf("device rules in an update: %v", res.Devices)
	}
}
