package cgroups

import (
	"errors"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

func ptr[T any](v T) *T { return &v }

func TestSharesToWeight(t *testing.T) {
	for _, tt := range []struct{ shares, weight uint64 }{
		{0, 0}, {2, 1}, {1024, 39}, {262144, 10000},
	} {
		if got := sharesToWeight(tt.shares); got != tt.weight {
			t.Errorf("sharesToWeight(%d) = %d, want %d", tt.shares, got, tt.weight)
		}
	}
}

func TestBlkioToIOWeight(t *testing.T) {
	for _, tt := range []struct {
		in   uint16
		want uint64
	}{
		{0, 0}, {10, 1}, {500, 4950}, {1000, 10000},
	} {
		if got := blkioToIOWeight(tt.in); got != tt.want {
			t.Errorf("blkioToIOWeight(%d) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestSwapToV2(t *testing.T) {
	tests := []struct {
		swap, limit, want int64
		wantErr           bool
	}{
		{swap: 0, limit: -1, want: -1},
		{swap: -1, limit: 100, want: -1},
		{swap: 0, limit: 100, want: 0},
		{swap: 300, limit: 100, want: 200},
		{swap: 100, limit: 100, want: 0},
		{swap: 300, limit: -1, want: 300},
		{swap: 50, limit: 100, wantErr: true},
		{swap: 300, limit: 0, wantErr: true},
	}
	for _, tt := range tests {
		got, err := swapToV2(tt.swap, tt.limit)
		if tt.wantErr != (err != nil) || got != tt.want {
			t.Errorf("swapToV2(%d, %d) = %d, %v; want %d, error %v", tt.swap, tt.limit, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseList(t *testing.T) {
	tests := []struct {
		in      string
		want    []span
		wantErr bool
	}{
		{in: "0", want: []span{{0, 0}}},
		{in: "0-3,5", want: []span{{0, 3}, {5, 5}}},
		{in: "5,0-3,4", want: []span{{0, 5}}},
		{in: "0-1\n", want: []span{{0, 1}}},
		{in: "3-1", wantErr: true},
		{in: "a", wantErr: true},
		{in: "-1", wantErr: true},
		{in: ",", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseList(tt.in)
		if tt.wantErr != (err != nil) || !equalSpans(got, tt.want) {
			t.Errorf("parseList(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
	have, _ := parseList("0-3,8")
	for in, want := range map[string]bool{"0-3": true, "1,8": true, "99999": false, "3-4": false} {
		w, _ := parseList(in)
		if got := subsetOf(w, have); got != want {
			t.Errorf("subsetOf(%q, 0-3,8) = %v, want %v", in, got, want)
		}
	}
}

func equalSpans(a, b []span) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		res   specs.LinuxResources
		field string // "" means valid
		msg   string
	}{
		{name: "empty"},
		{name: "limits", res: specs.LinuxResources{
			Memory: &specs.LinuxMemory{Limit: ptr[int64](1 << 30), Swap: ptr[int64](2 << 30), Reservation: ptr[int64](-1)},
			CPU:    &specs.LinuxCPU{Shares: ptr[uint64](1024), Quota: ptr[int64](-1), Period: ptr[uint64](100000), Cpus: "0-1"},
		}},
		{name: "memory below minimum", res: specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](1024)}},
			field: fieldMemLimit, msg: "1024 is below the kernel minimum of 4096 bytes"},
		{name: "memory negative", res: specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](-2)}}, field: fieldMemLimit},
		{name: "swap below limit", res: specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](1 << 30), Swap: ptr[int64](1 << 20)}},
			field: fieldMemSwap, msg: "is below " + fieldMemLimit},
		{name: "swappiness", res: specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: ptr[uint64](101)}}, field: fieldMemSwappiness},
		{name: "shares too low", res: specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr[uint64](1)}}, field: fieldCPUShares},
		{name: "shares negative", res: specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr(^uint64(0))}},
			field: fieldCPUShares, msg: "-1 is outside the kernel range [2, 262144]"},
		{name: "period", res: specs.LinuxResources{CPU: &specs.LinuxCPU{Period: ptr[uint64](10)}}, field: fieldCPUPeriod},
		{name: "quota", res: specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: ptr[int64](10), Period: ptr[uint64](100000)}}, field: fieldCPUQuota},
		{name: "cpus syntax", res: specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0-"}}, field: fieldCPUs},
		{name: "mems syntax", res: specs.LinuxResources{CPU: &specs.LinuxCPU{Mems: "x"}}, field: fieldMems},
		{name: "blkio weight", res: specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: ptr[uint16](5)}}, field: fieldBlkWeight},
		{name: "hugepage size", res: specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2XB"}}}, field: fieldHugepages},
		{name: "device type", res: specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Type: "x"}}}, field: fieldDevices},
		{name: "device access", res: specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Type: "c", Access: "rx"}}}, field: fieldDevices},
		{name: "unified key", res: specs.LinuxResources{Unified: map[string]string{"../memory.max": "1"}}, field: fieldUnified},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validate(&tt.res)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("validate: %v", err)
				}
				return
			}
			checkFieldErr(t, err, tt.field, tt.msg, syscall.EINVAL)
		})
	}
}

// checkFieldErr checks the error names field, reads msg, wraps errno and is
// classified InvalidArgument.
func checkFieldErr(t *testing.T, err error, field, msg string, errno error) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one naming %s", field)
	}
	if !strings.HasPrefix(err.Error(), field+": ") || !strings.Contains(err.Error(), msg) || strings.Contains(err.Error(), "\n") {
		t.Errorf("error %q: want one line starting %q and containing %q", err, field+": ", msg)
	}
	if errno != nil && !errors.Is(err, errno) {
		t.Errorf("error %q does not wrap %v", err, errno)
	}
	if errno == syscall.EINVAL && !errdefs.Is(err, errdefs.KindInvalidArgument) {
		t.Errorf("error %q is not InvalidArgument", err)
	}
}
