//go:build !(linux && cgo)

package seccomp

import (
	"errors"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Compile checks cfg; compiling needs libseccomp, which this build lacks
// (it was built without cgo, or not for Linux).
func Compile(cfg *specs.LinuxSeccomp) (*Program, error) {
	if _, err := newPlan(cfg); err != nil {
		return nil, err
	}
	return nil, errdefs.Unavailable(errors.New("seccomp: this berth was built without libseccomp (cgo), so it cannot compile linux.seccomp"))
}

func libVersion() string { return "none" }
