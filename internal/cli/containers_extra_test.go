package cli

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"

	"github.com/berth-dev/berth/internal/engine"
)

func TestSplitCpArg(t *testing.T) {
	for _, tt := range []struct{ in, ctr, path string }{
		{"web:/etc/hosts", "web", "/etc/hosts"},
		{"/abs/with:colon", "", "/abs/with:colon"},
		{"./rel:colon", "", "./rel:colon"},
		{"plain", "", "plain"},
		{"-", "", "-"},
		{"web:", "web", ""},
	} {
		ctr, path := splitCpArg(tt.in)
		if ctr != tt.ctr || path != tt.path {
			t.Errorf("splitCpArg(%q) = %q, %q; want %q, %q", tt.in, ctr, path, tt.ctr, tt.path)
		}
	}
}

func TestEventLine(t *testing.T) {
	ts := time.Date(2024, 5, 6, 7, 8, 9, 12000, time.Local)
	m := events.Message{Type: "container", Action: "die", TimeNano: ts.UnixNano(),
		Actor: events.Actor{ID: "abc", Attributes: map[string]string{"name": "web", "exitCode": "0", "image": "bb"}}}
	want := ts.Format("2006-01-02T15:04:05") + ".000012000" + ts.Format("Z07:00") + " container die abc (exitCode=0, image=bb, name=web)"
	if got := eventLine(m); got != want {
		t.Fatalf("eventLine:\n got %q\nwant %q", got, want)
	}
}

func TestStatsRow(t *testing.T) {
	prev := engine.StatsSample{Running: true, CPUUsage: 0, SystemUsage: 0, OnlineCPUs: 2}
	cur := engine.StatsSample{ID: "0123456789abcdef", Name: "web", Running: true, CPUUsage: 5e8, SystemUsage: 2e9, OnlineCPUs: 2,
		MemUsage: 1536 << 10, MemLimit: 64 << 20, NetRx: 1500, NetTx: 0, BlockRead: 4096, BlockWrite: 2_500_000, Pids: 3}
	row := statsRow("web", prev, cur, true)
	want := map[string]string{"Container": "web", "ID": "0123456789ab", "Name": "web", "CPUPerc": "50.00%",
		"MemUsage": "1.5MiB / 64MiB", "MemPerc": "2.34%", "NetIO": "1.5kB / 0B", "BlockIO": "4.1kB / 2.5MB", "PIDs": "3"}
	for k, v := range want {
		if row[k] != v {
			t.Errorf("%s = %q, want %q", k, row[k], v)
		}
	}
}
