package engine

import (
	"math"
	"strings"
	"testing"
)

func TestCPUPercent(t *testing.T) {
	s := func(cpu, sys uint64) StatsSample {
		return StatsSample{Running: true, CPUUsage: cpu, SystemUsage: sys, OnlineCPUs: 4}
	}
	tests := []struct {
		name      string
		prev, cur StatsSample
		want      float64
	}{
		{"one CPU busy of four", s(0, 0), s(1e9, 4e9), 100},
		{"half a CPU", s(1e9, 4e9), s(1.5e9, 8e9), 50},
		{"idle", s(5, 10), s(5, 20), 0},
		{"stopped before", StatsSample{}, s(1e9, 4e9), 0},
		{"no time passed", s(1, 10), s(2, 10), 0},
		{"counter reset", s(10, 10), s(1, 20), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CPUPercent(tt.prev, tt.cur); math.Abs(got-tt.want) > 1e-9 {
				t.Fatalf("CPUPercent = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMemPercent(t *testing.T) {
	if got := MemPercent(StatsSample{MemUsage: 16 << 20, MemLimit: 64 << 20}); got != 25 {
		t.Fatalf("MemPercent = %v", got)
	}
	if got := MemPercent(StatsSample{MemUsage: 1}); got != 0 {
		t.Fatalf("MemPercent without limit = %v", got)
	}
}

func TestParseNetDev(t *testing.T) {
	const dev = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  999999      10    0    0    0     0          0         0   999999      10    0    0    0     0       0          0
  eth0:    1500      12    0    0    0     0          0         0      700       7    0    0    0     0       0          0
  eth1:     500       2    0    0    0     0          0         0      300       3    0    0    0     0       0          0
`
	rx, tx, err := parseNetDev(strings.NewReader(dev))
	if err != nil || rx != 2000 || tx != 1000 {
		t.Fatalf("parseNetDev = %d, %d, %v; want 2000, 1000", rx, tx, err)
	}
}

func TestParseProcStat(t *testing.T) {
	const stat = "cpu  100 2 30 400 5 6 7 8 9 10\ncpu0 50 1 15 200 2 3 3 4 4 5\nintr 1 2 3\n"
	ns, err := parseProcStat(strings.NewReader(stat))
	// user+nice+system+idle+iowait+irq+softirq ticks, at 100 a second.
	if want := uint64(100+2+30+400+5+6+7) * 1e7; err != nil || ns != want {
		t.Fatalf("parseProcStat = %d, %v; want %d", ns, err, want)
	}
	if _, err := parseProcStat(strings.NewReader("intr 1\n")); err == nil {
		t.Fatal("no cpu line accepted")
	}
}
