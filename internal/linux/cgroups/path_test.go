package cgroups

import (
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

func TestCgroupPath(t *testing.T) {
	tests := []struct {
		in      string
		systemd bool
		want    string
		wantErr bool
	}{
		{in: "/berth/abc", want: "/berth/abc"},
		{in: "berth/abc", want: "/berth/abc"},
		{in: "/berth//abc/", want: "/berth/abc"},
		{in: "/../../etc", want: "/etc"},
		{in: "", wantErr: true},
		{in: "/", wantErr: true},
		{in: "system.slice:berth:abc", systemd: true, want: "/system.slice/berth-abc.scope"},
		{in: ":berth:abc", systemd: true, want: "/system.slice/berth-abc.scope"},
		{in: "machine-berth.slice:berth:abc", systemd: true, want: "/machine.slice/machine-berth.slice/berth-abc.scope"},
		{in: "user.slice::abc", systemd: true, want: "/user.slice/abc.scope"},
		{in: "system.slice:berth:my.slice", systemd: true, want: "/system.slice/my.slice"},
		{in: "-.slice:berth:abc", systemd: true, want: "/berth-abc.scope"},
		{in: "/berth/abc", systemd: true, wantErr: true},
		{in: "system:berth:abc", systemd: true, wantErr: true},
		{in: "a--b.slice:berth:abc", systemd: true, wantErr: true},
		{in: "system.slice:berth:", systemd: true, wantErr: true},
		{in: "system.slice:berth:a/b", systemd: true, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := cgroupPath(tt.in, tt.systemd)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("cgroupPath(%q) = %q, want an error", tt.in, got)
				}
				if !errdefs.Is(err, errdefs.KindInvalidArgument) {
					t.Errorf("error %v is not InvalidArgument", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("cgroupPath(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}
