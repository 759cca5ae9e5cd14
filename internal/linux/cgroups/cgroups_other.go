//go:build !linux

package cgroups

import (
	"errors"

	"github.com/berth-dev/berth/internal/errdefs"
)

var errNotLinux = errdefs.NotImplemented(errors.New("cgroups exist only on Linux"))

// New fails: cgroups exist only on Linux.
func New(cgroupsPath string, opts Options) (Manager, error) { return nil, errNotLinux }

// Load fails: cgroups exist only on Linux.
func Load(cgroupsPath string, opts Options) (Manager, error) { return nil, errNotLinux }

// Mode fails: cgroups exist only on Linux.
func Mode(root string) (string, error) { return "", errNotLinux }
