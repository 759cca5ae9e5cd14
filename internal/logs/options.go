// Package logs is berth's json-file log driver: a Writer that the monitor
// feeds with a container's stdout and stderr, in docker's on-disk format and
// with rotation on by default, and Read, which serves `berth logs` (tail,
// since/until, and follow across rotations) while the container runs.
package logs

import (
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/docker/go-units"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Defaults used when an Options field is zero: rotation is on unless the user
// asks otherwise, so a chatty container cannot fill the disk.
const (
	DefaultMaxSize  = 20 << 20
	DefaultMaxFiles = 5
)

// Options controls rotation. A zero field takes its default.
type Options struct {
	// MaxSize is the size in bytes past which the log is rotated.
	MaxSize int64
	// MaxFiles is how many files are kept in all, the current one included;
	// 1 means the log starts over when it is full.
	MaxFiles int
}

func (o Options) withDefaults() Options {
	if o.MaxSize <= 0 {
		o.MaxSize = DefaultMaxSize
	}
	if o.MaxFiles <= 0 {
		o.MaxFiles = DefaultMaxFiles
	}
	return o
}

// ParseOptions turns docker's --log-opt values for the json-file driver into
// Options. Unset keys take the defaults.
func ParseOptions(logOpts map[string]string) (Options, error) {
	var o Options
	// Sorted so that the same bad input always names the same key.
	for _, k := range slices.Sorted(maps.Keys(logOpts)) {
		v := logOpts[k]
		switch k {
		case "max-size":
			n, err := units.RAMInBytes(v)
			if err != nil {
				return Options{}, errdefs.InvalidArgument(err)
			}
			if n <= 0 {
				return Options{}, errdefs.InvalidArgument(fmt.Errorf("max-size must be a positive number"))
			}
			o.MaxSize = n
		case "max-file":
			n, err := strconv.Atoi(v)
			if err != nil {
				return Options{}, errdefs.InvalidArgument(fmt.Errorf("invalid max-file '%s': it must be a whole number", v))
			}
			if n < 1 {
				return Options{}, errdefs.InvalidArgument(fmt.Errorf("max-file cannot be less than 1"))
			}
			o.MaxFiles = n
		default:
			return Options{}, errdefs.InvalidArgument(fmt.Errorf("unknown log opt '%s' for json-file log driver", k))
		}
	}
	return o.withDefaults(), nil
}
