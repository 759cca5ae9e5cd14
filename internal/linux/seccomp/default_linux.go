package seccomp

import (
	"fmt"

	profiles "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultProfile returns Docker's default seccomp profile for this host (its
// architecture and kernel version) and a container whose bounding
// capabilities are caps (names such as "CAP_SYS_ADMIN"): rules that Docker
// ties to a capability are included or excluded accordingly. Each call
// returns a new value the caller may change. It fails only if the kernel's
// version cannot be read.
func DefaultProfile(caps []string) (*specs.LinuxSeccomp, error) {
	rs := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
	p, err := profiles.GetDefaultProfile(rs)
	if err != nil {
		return nil, fmt.Errorf("seccomp: docker's default profile: %w", err)
	}
	return p, nil
}
