package spec

import (
	"errors"
	"fmt"
	"path"
	"strings"

	"github.com/moby/moby/api/types/container"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
)

// DefaultPath is the PATH a container gets when neither the image nor the
// user sets one: docker's.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// InitPath is where the init binary is bind-mounted when --init asks for it.
const InitPath = "/sbin/berth-init"

// command returns the container's argv: Entrypoint then Cmd, the user's over
// the image's by docker's rules. An Entrypoint from the user (even an empty
// one, --entrypoint "") replaces the image's and, unless the user also gave
// a Cmd, drops the image's Cmd with it, since that Cmd was written for the
// old Entrypoint.
func command(cfg *container.Config, img *image.RunConfig) ([]string, error) {
	entrypoint, cmd := cfg.Entrypoint, cfg.Cmd
	if len(entrypoint) == 0 {
		if len(cmd) == 0 && img != nil {
			cmd = img.Cmd
		}
		if entrypoint == nil && img != nil {
			entrypoint = img.Entrypoint
		}
	}
	// [""] is how --entrypoint "" reaches us: no entrypoint at all.
	if len(entrypoint) == 1 && entrypoint[0] == "" {
		entrypoint = nil
	}
	if len(entrypoint) == 0 && len(cmd) == 0 {
		return nil, errdefs.InvalidArgument(errors.New("no command specified"))
	}
	args := make([]string, 0, len(entrypoint)+len(cmd))
	args = append(args, entrypoint...)
	return append(args, cmd...), nil
}

// environment builds the process environment as docker does: the user's
// -e values first, then the image's variables the user did not set; laid
// over PATH, HOSTNAME and (with a TTY) TERM, which they may replace in
// place. A bare "NAME" without "=" unsets NAME. HOME is added last, from
// the user's passwd entry, when nothing set it.
func environment(cfg *container.Config, img *image.RunConfig, hostname, home string) []string {
	merged := append([]string(nil), cfg.Env...)
	if img != nil {
		for _, e := range img.Env {
			if !hasKey(cfg.Env, envKey(e)) {
				merged = append(merged, e)
			}
		}
	}
	env := []string{"PATH=" + DefaultPath, "HOSTNAME=" + hostname}
	if cfg.Tty {
		env = append(env, "TERM=xterm")
	}
	env = overlayEnv(env, merged)
	if !hasKey(env, "HOME") {
		env = append(env, "HOME="+home)
	}
	return env
}

// overlayEnv replaces base's variables with those in over of the same name,
// in place, and appends the rest; an entry without "=" removes its name.
func overlayEnv(base, over []string) []string {
	out := append([]string(nil), base...)
	for _, e := range over {
		k, _, set := strings.Cut(e, "=")
		i := indexKey(out, k)
		switch {
		case !set && i >= 0:
			out = append(out[:i], out[i+1:]...)
		case !set:
		case i >= 0:
			out[i] = e
		default:
			out = append(out, e)
		}
	}
	return out
}

func envKey(e string) string {
	k, _, _ := strings.Cut(e, "=")
	return k
}

func indexKey(env []string, key string) int {
	for i, e := range env {
		if envKey(e) == key {
			return i
		}
	}
	return -1
}

func hasKey(env []string, key string) bool { return indexKey(env, key) >= 0 }

// workingDir is the user's -w, else the image's WORKDIR, else "/".
func workingDir(cfg *container.Config, img *image.RunConfig) (string, error) {
	dir := cfg.WorkingDir
	if dir == "" && img != nil {
		dir = img.WorkingDir
	}
	if dir == "" {
		return "/", nil
	}
	if !path.IsAbs(dir) {
		return "", errdefs.InvalidArgument(fmt.Errorf("the working directory '%s' is invalid, it needs to be an absolute path", dir))
	}
	return path.Clean(dir), nil
}
