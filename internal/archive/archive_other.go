//go:build !linux

package archive

import (
	"context"
	"errors"
	"io"

	"github.com/berth-dev/berth/internal/errdefs"
)

var errNotLinux = errdefs.NotImplemented(errors.New("layer archives are only handled on Linux"))

// Apply unpacks a layer tar; Linux only.
func Apply(ctx context.Context, root string, r io.Reader, opts ApplyOptions) (int64, error) {
	return 0, errNotLinux
}

// Changes lists a layer's changes; Linux only.
func Changes(ctx context.Context, lower []string, upper string, mode WhiteoutMode) ([]Change, error) {
	return nil, errNotLinux
}

// WriteTar writes a layer tar of changes; Linux only.
func WriteTar(ctx context.Context, w io.Writer, root string, changes []Change) error {
	return errNotLinux
}

// TarDir writes a tree as a tar; Linux only.
func TarDir(ctx context.Context, w io.Writer, root string) error { return errNotLinux }
