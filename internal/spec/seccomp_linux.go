package spec

import (
	"fmt"
	"os"
	"strings"

	profiles "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/linux/seccomp"
)

// seccompProfile returns linux.seccomp for --security-opt seccomp=VALUE
// (opt) and a container whose bounding set is bounding: nil for
// "unconfined", docker's default for "" and "builtin", else a profile in
// docker's JSON format, given inline (as docker's CLI sends a file's
// contents over the API) or as the path of a file. Docker's format (archMap,
// includes and excludes by capability, architecture and kernel) is reduced
// to this host and these capabilities.
func seccompProfile(opt string, bounding []string) (*specs.LinuxSeccomp, error) {
	switch opt {
	case "unconfined":
		return nil, nil
	case "", "builtin":
		return seccomp.DefaultProfile(bounding)
	}
	body := opt
	if !strings.HasPrefix(strings.TrimSpace(opt), "{") {
		data, err := os.ReadFile(opt)
		if err != nil {
			return nil, errdefs.InvalidArgument(fmt.Errorf("opening seccomp profile (%s) failed: %w", opt, err))
		}
		body = string(data)
	}
	rs := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: bounding}}}
	p, err := profiles.LoadProfile(body, rs)
	if err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("load seccomp profile: %w", err))
	}
	return p, nil
}
