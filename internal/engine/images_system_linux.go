package engine

import (
	"bufio"
	"context"
	"os"
	"runtime"
	"strings"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/linux/cgroups"
)

// SystemDF returns the disk usage of images, as `docker system df` shows
// it: each layer counted once however many images share it. No container
// uses an image yet, so all of it is reclaimable.
func (s *Images) SystemDF(ctx context.Context) (DiskUsage, error) {
	imgs, err := s.is.List(ctx)
	if err != nil {
		return DiskUsage{}, err
	}
	users := map[digest.Digest]int{}
	sizes := map[digest.Digest]int64{}
	chainsOf := make([][]digest.Digest, len(imgs))
	for i, img := range imgs {
		chains := identity.ChainIDs(img.DiffIDs())
		chainsOf[i] = chains
		for j, c := range chains {
			users[c]++
			sizes[c] = img.Layers[j].Size
		}
	}
	var du DiskUsage
	for _, size := range sizes {
		du.LayersSize += size
	}
	du.Reclaimable = du.LayersSize
	for i, img := range imgs {
		u := ImageUsage{ImageSummary: summaryOf(img)}
		seen := map[digest.Digest]bool{}
		for _, c := range chainsOf[i] {
			if seen[c] {
				continue
			}
			seen[c] = true
			if users[c] > 1 {
				u.SharedSize += sizes[c]
			}
		}
		u.UniqueSize = img.Size - u.SharedSize
		du.Images = append(du.Images, u)
	}
	return du, nil
}

// InfoOptions are what Info cannot find out itself.
type InfoOptions struct {
	// Version is berth's version.
	Version string
	// Runtime is the OCI runtime containers run with.
	Runtime string
}

// Info describes the engine and the host as `docker info` does. It opens
// the layer store, so a fresh root gets its storage driver picked.
func (s *Images) Info(ctx context.Context, opts InfoOptions) (*Info, error) {
	imgs, err := s.is.List(ctx)
	if err != nil {
		return nil, err
	}
	st, err := s.Layers()
	if err != nil {
		return nil, err
	}
	status := st.Driver().Status()
	info := &Info{
		Images:          len(imgs),
		Driver:          status.Driver,
		DriverStatus:    append(append([][2]string{}, status.Details...), [2]string{"Root Dir", status.Home}, [2]string{"Picked because", s.reason}),
		DockerRootDir:   s.opts.Root,
		OSType:          runtime.GOOS,
		NCPU:            runtime.NumCPU(),
		CgroupDriver:    "cgroupfs",
		DefaultRuntime:  opts.Runtime,
		Runtimes:        []string{opts.Runtime},
		ServerVersion:   opts.Version,
		LoggingDriver:   "json-file",
		OperatingSystem: osName(),
		InsecureRegistries: append([]string{"127.0.0.0/8", "::1/128", "localhost"},
			s.opts.Registry.Insecure...),
	}
	if info.DefaultRuntime == "" {
		info.DefaultRuntime = "berth"
		info.Runtimes = []string{"berth"}
	}
	if mode, err := cgroups.Mode(""); err == nil {
		info.CgroupVersion = "1"
		if mode == cgroups.ModeV2 {
			info.CgroupVersion = "2"
		}
	}
	var uts unix.Utsname
	if err := unix.Uname(&uts); err == nil {
		info.KernelVersion = unix.ByteSliceToString(uts.Release[:])
		info.Architecture = unix.ByteSliceToString(uts.Machine[:])
	}
	var si unix.Sysinfo_t
	if err := unix.Sysinfo(&si); err == nil {
		info.MemTotal = int64(si.Totalram) * int64(si.Unit)
	}
	info.Name, _ = os.Hostname()
	return info, nil
}

// osName is the host's PRETTY_NAME from os-release.
func osName() string {
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "PRETTY_NAME="); ok {
				return strings.Trim(v, `"'`)
			}
		}
	}
	return "Linux"
}
