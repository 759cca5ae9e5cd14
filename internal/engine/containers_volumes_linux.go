package engine

import (
	"context"
	"fmt"
	"os"
	"path"
	"slices"
	"sort"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"

	"github.com/berth-dev/berth/internal/engine/store"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/spec"
	"github.com/berth-dev/berth/internal/volume"
)

// Volumes is the named volume store, which knows from the container store
// which volumes are in use.
func (e *Engine) Volumes() (*volume.Store, error) {
	vs, err := volume.Open(e.opts.Root)
	if err != nil {
		return nil, err
	}
	vs.InUse = func(name string) []string {
		all, err := e.containers.List()
		if err != nil {
			return nil
		}
		var users []string
		for _, c := range all {
			for _, m := range c.Mounts {
				if m.Type == volume.TypeVolume && m.Name == name {
					users = append(users, c.ID)
					break
				}
			}
		}
		return users
	}
	return vs, nil
}

// resolveMounts turns -v, --mount, --tmpfs, --volumes-from and the
// image's VOLUMEs into the container's mount points, creating the named
// and anonymous volumes they need.
func (e *Engine) resolveMounts(ctx context.Context, rec *store.Container) (_ []store.MountPoint, warnings []string, retErr error) {
	hc := rec.HostConfig
	var specs []volume.Spec
	for _, b := range hc.Binds {
		sp, err := volume.ParseVolumeFlag(b)
		if err != nil {
			return nil, nil, errdefs.InvalidArgument(err)
		}
		specs = append(specs, sp)
	}
	for _, m := range hc.Mounts {
		sp, err := volume.FromMount(m)
		if err != nil {
			return nil, nil, errdefs.InvalidArgument(err)
		}
		specs = append(specs, sp)
	}
	tmpfsDst := make([]string, 0, len(hc.Tmpfs))
	for dst := range hc.Tmpfs {
		tmpfsDst = append(tmpfsDst, dst)
	}
	sort.Strings(tmpfsDst)
	for _, dst := range tmpfsDst {
		arg := dst
		if opts := hc.Tmpfs[dst]; opts != "" {
			arg += ":" + opts
		}
		sp, err := volume.ParseTmpfsFlag(arg)
		if err != nil {
			return nil, nil, errdefs.InvalidArgument(err)
		}
		specs = append(specs, sp)
	}
	var out []store.MountPoint
	seen := map[string]bool{}
	add := func(m store.MountPoint) error {
		if seen[m.Destination] {
			return errdefs.InvalidArgument(fmt.Errorf("Duplicate mount point: %s", m.Destination))
		}
		seen[m.Destination] = true
		out = append(out, m)
		return nil
	}
	for _, vf := range hc.VolumesFrom {
		ref, mode, _ := strings.Cut(vf, ":")
		other, err := e.containers.Find(ref)
		if err != nil {
			return nil, nil, errdefs.InvalidArgument(err)
		}
		for _, m := range other.Mounts {
			if m.Type == volume.TypeTmpfs {
				continue
			}
			m.Anonymous = false
			switch mode {
			case "ro":
				m.RW = false
			case "rw":
				m.RW = true
			}
			if err := add(m); err != nil {
				return nil, nil, err
			}
		}
	}
	var vs *volume.Store
	volumes := func() (*volume.Store, error) {
		if vs != nil {
			return vs, nil
		}
		var err error
		vs, err = e.Volumes()
		return vs, err
	}
	defer func() {
		if retErr != nil && vs != nil {
			for _, m := range out {
				if m.Anonymous {
					_ = vs.Remove(m.Name, true)
				}
			}
		}
	}()
	for _, sp := range specs {
		m := store.MountPoint{Type: sp.Type, Destination: sp.Target, RW: !sp.ReadOnly, Mode: sp.Mode,
			Propagation: sp.Propagation, NonRecursive: sp.NonRecursive, NoCopy: sp.VolumeNoCopy}
		switch sp.Type {
		case volume.TypeBind:
			if err := sp.CheckSource(); err != nil {
				return nil, nil, errdefs.InvalidArgument(err)
			}
			if err := sp.MakeSource(); err != nil {
				return nil, nil, err
			}
			m.Source = sp.Source
			if m.Propagation == "" {
				m.Propagation = "rprivate"
			}
		case volume.TypeVolume:
			s, err := volumes()
			if err != nil {
				return nil, nil, err
			}
			v, err := s.Create(sp.Source, sp.DriverOpts, sp.VolumeLabels)
			if err != nil {
				return nil, nil, err
			}
			m.Name, m.Source, m.Driver, m.Anonymous = v.Name, v.Mountpoint, "local", sp.Source == ""
		case volume.TypeTmpfs:
			m.TmpfsSize, m.TmpfsMode, m.Options = sp.TmpfsSize, sp.TmpfsMode, sp.TmpfsOptions
		}
		if err := add(m); err != nil {
			return nil, nil, err
		}
	}
	// The image's VOLUMEs and the user's (-v with only a container path
	// lands in Config.Volumes) that no mount covers get anonymous volumes.
	anon := map[string]bool{}
	if rec.Config != nil {
		for dst := range rec.Config.Volumes {
			anon[path.Clean("/"+dst)] = true
		}
	}
	if rec.ImageConfig != nil {
		for dst := range rec.ImageConfig.Volumes {
			anon[path.Clean("/"+dst)] = true
		}
	}
	dsts := make([]string, 0, len(anon))
	for dst := range anon {
		dsts = append(dsts, dst)
	}
	sort.Strings(dsts)
	for _, dst := range dsts {
		if seen[dst] {
			continue
		}
		s, err := volumes()
		if err != nil {
			return nil, nil, err
		}
		v, err := s.Create("", nil, nil)
		if err != nil {
			return nil, nil, err
		}
		if err := add(store.MountPoint{Type: volume.TypeVolume, Name: v.Name, Source: v.Mountpoint, Destination: dst,
			Driver: "local", RW: true, Anonymous: true}); err != nil {
			return nil, nil, err
		}
	}
	return out, warnings, nil
}

// mountVolumes makes the container's volumes ready (mounting typed ones,
// copying the image's content into empty new ones) and returns the mounts
// for the spec.
func (e *Engine) mountVolumes(rec *store.Container, rootfs string) ([]spec.Mount, error) {
	var out []spec.Mount
	var vs *volume.Store
	for _, m := range rec.Mounts {
		sm := spec.Mount{Type: m.Type, Source: m.Source, Destination: m.Destination, ReadOnly: !m.RW,
			Propagation: m.Propagation, NonRecursive: m.NonRecursive, TmpfsSize: m.TmpfsSize, TmpfsMode: m.TmpfsMode, Options: m.Options}
		if m.Type == volume.TypeVolume {
			if vs == nil {
				var err error
				if vs, err = e.Volumes(); err != nil {
					return nil, err
				}
			}
			p, err := vs.Mount(m.Name)
			if err != nil {
				return nil, fmt.Errorf("mount volume %s: %w", m.Name, err)
			}
			sm.Source = p
			if !m.NoCopy && dirEmpty(p) {
				if src, err := securejoin.SecureJoin(rootfs, m.Destination); err == nil {
					if err := volume.CopyUp(src, p); err != nil {
						return nil, err
					}
				}
			}
		}
		out = append(out, sm)
	}
	return out, nil
}

func dirEmpty(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	names, _ := f.Readdirnames(1)
	return len(names) == 0
}

// unmountVolumes releases what mountVolumes mounted.
func (e *Engine) unmountVolumes(rec *store.Container) {
	if !hasMount(rec, func(m store.MountPoint) bool { return m.Type == volume.TypeVolume }) {
		return
	}
	vs, err := e.Volumes()
	if err != nil {
		return
	}
	for _, m := range rec.Mounts {
		if m.Type == volume.TypeVolume {
			_ = vs.Unmount(m.Name)
		}
	}
}

// releaseVolumes removes the container's anonymous volumes when asked.
func (e *Engine) releaseVolumes(rec *store.Container, removeAnonymous bool) {
	if !removeAnonymous || !hasMount(rec, func(m store.MountPoint) bool { return m.Anonymous }) {
		return
	}
	vs, err := e.Volumes()
	if err != nil {
		return
	}
	// The container's record, deleted after this, still names the
	// volumes: it must not count as their user.
	inUse := vs.InUse
	vs.InUse = func(name string) []string {
		return slices.DeleteFunc(inUse(name), func(id string) bool { return id == rec.ID })
	}
	for _, m := range rec.Mounts {
		if m.Anonymous {
			_ = vs.Remove(m.Name, true)
		}
	}
}

func hasMount(rec *store.Container, match func(store.MountPoint) bool) bool {
	for _, m := range rec.Mounts {
		if match(m) {
			return true
		}
	}
	return false
}
