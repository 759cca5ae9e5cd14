package volume

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	units "github.com/docker/go-units"
	"github.com/moby/moby/api/types/mount"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Mount types.
const (
	TypeBind   = "bind"
	TypeVolume = "volume"
	TypeTmpfs  = "tmpfs"
)

// Spec is one mount that docker run's -v, --mount or --tmpfs asked for.
type Spec struct {
	Type   string // TypeBind, TypeVolume or TypeTmpfs
	Source string // bind: absolute host path; volume: its name ("" for a new anonymous one); tmpfs: ""
	Target string // absolute, cleaned path in the container

	ReadOnly    bool
	Consistency string // accepted and ignored, as on Linux docker
	// Mode is -v's third field as given ("ro,z"), which inspect shows; ""
	// for --mount and --tmpfs.
	Mode string

	// Bind options. Propagation is "rprivate" unless asked otherwise.
	Propagation            string
	NonRecursive           bool // bind-recursive=disabled
	ReadOnlyNonRecursive   bool // bind-recursive=writable
	ReadOnlyForceRecursive bool // bind-recursive=readonly
	// CreateSource: a missing host directory is created (-v), instead of
	// refused (--mount). See CheckSource and MakeSource.
	CreateSource bool
	// Relabel is -v's "z" or "Z" (SELinux); berth does not relabel.
	Relabel string

	// Volume options: for a volume that does not exist yet, its driver,
	// labels and driver options.
	VolumeNoCopy  bool
	VolumeSubpath string
	VolumeDriver  string
	VolumeLabels  map[string]string
	DriverOpts    map[string]string

	// Tmpfs options: size in bytes (0: the kernel's default, half of RAM),
	// mode (0: 1777), and further mount options ("noexec", "uid=1000").
	TmpfsSize    int64
	TmpfsMode    uint32
	TmpfsOptions []string
}

// mountConfigError is docker's "invalid mount config for type ..." error.
func mountConfigError(typ string, err error) error {
	return errdefs.InvalidArgument(fmt.Errorf("invalid mount config for type %q: %w", typ, err))
}

func invalidSpec(raw string) error {
	return errdefs.InvalidArgument(fmt.Errorf("invalid volume specification: '%s'", raw))
}

// checkTarget is docker's check of a destination: absolute and not "/".
func checkTarget(target string) error {
	if path.Clean(target) == "/" {
		return errors.New("invalid specification: destination can't be '/'")
	}
	return checkAbsolute(target)
}

func checkAbsolute(p string) error {
	if !path.IsAbs(p) {
		return fmt.Errorf("invalid mount path: '%s' mount path must be absolute", p)
	}
	return nil
}

// ParseVolumeFlag parses docker run's -v: "DST" (a new anonymous volume),
// "NAME:DST[:MODE]" or "SRC:DST[:MODE]" (a bind of an absolute host path,
// or one starting with "." taken from the working directory). MODE is a
// comma-separated list of at most one each of ro/rw, z/Z, a propagation,
// nocopy and a consistency.
func ParseVolumeFlag(s string) (Spec, error) {
	parts := strings.SplitN(s, ":", 4)
	if parts[0] == "" {
		return Spec{}, invalidSpec(s)
	}
	var sp Spec
	switch len(parts) {
	case 1:
		sp.Target = parts[0]
	case 2:
		if validMode(parts[1]) {
			// "/dst:ro": a mode without a source is no volume.
			return Spec{}, invalidSpec(s)
		}
		sp.Source, sp.Target = parts[0], parts[1]
	case 3:
		sp.Source, sp.Target, sp.Mode = parts[0], parts[1], parts[2]
	default:
		return Spec{}, invalidSpec(s)
	}
	if !validMode(sp.Mode) {
		return Spec{}, errdefs.InvalidArgument(fmt.Errorf("invalid mode: %s", sp.Mode))
	}
	// As docker's CLI: "./data" and ".." are host paths, not volume names.
	if sp.Source != "" && !filepath.IsAbs(sp.Source) && strings.HasPrefix(sp.Source, ".") {
		if abs, err := filepath.Abs(sp.Source); err == nil {
			sp.Source = abs
		}
	}
	sp.Type = TypeVolume
	if path.IsAbs(sp.Source) {
		sp.Type = TypeBind
		sp.CreateSource = true
	}
	var propagation, nocopy bool
	for _, o := range strings.Split(sp.Mode, ",") {
		switch {
		case o == "ro":
			sp.ReadOnly = true
		case o == "z" || o == "Z":
			sp.Relabel = o
		case isPropagation(o):
			sp.Propagation, propagation = o, true
		case o == "nocopy":
			sp.VolumeNoCopy, nocopy = true, true
		case isConsistency(o):
			sp.Consistency = o
		}
	}
	var err error
	switch {
	case sp.Type == TypeBind && nocopy:
		err = mountConfigError(sp.Type, errors.New("field VolumeOptions must not be specified"))
	case sp.Type == TypeVolume && propagation:
		err = mountConfigError(sp.Type, errors.New("field BindOptions must not be specified"))
	default:
		err = sp.validate()
	}
	if err != nil {
		return Spec{}, errdefs.InvalidArgument(fmt.Errorf("invalid volume specification: '%s': %w", s, err))
	}
	return sp, nil
}

// validMode is docker's check of -v's mode field.
func validMode(mode string) bool {
	if mode == "" {
		return true
	}
	var rw, label, prop, copyMode, consistency int
	for _, o := range strings.Split(mode, ",") {
		switch {
		case o == "rw" || o == "ro":
			rw++
		case o == "z" || o == "Z":
			label++
		case isPropagation(o):
			prop++
		case o == "nocopy":
			copyMode++
		case isConsistency(o):
			consistency++
		default:
			return false
		}
	}
	return rw <= 1 && label <= 1 && prop <= 1 && copyMode <= 1 && consistency <= 1
}

func isPropagation(s string) bool {
	switch s {
	case "private", "rprivate", "shared", "rshared", "slave", "rslave":
		return true
	}
	return false
}

func isConsistency(s string) bool {
	return s == "consistent" || s == "cached" || s == "delegated"
}

// validate is the daemon's check of a mount, whatever flag gave it; it
// cleans the paths and fills in defaults.
func (sp *Spec) validate() error {
	if sp.Target == "" {
		return mountConfigError(sp.Type, errors.New("field Target must not be empty"))
	}
	if err := checkTarget(sp.Target); err != nil {
		return mountConfigError(sp.Type, err)
	}
	sp.Target = path.Clean(sp.Target)
	switch sp.Type {
	case TypeBind:
		if sp.Source == "" {
			return mountConfigError(sp.Type, errors.New("field Source must not be empty"))
		}
		if err := checkAbsolute(sp.Source); err != nil {
			return mountConfigError(sp.Type, err)
		}
		if sp.Propagation != "" && !isPropagation(sp.Propagation) {
			return mountConfigError(sp.Type, fmt.Errorf("invalid propagation mode: %s", sp.Propagation))
		}
		sp.Source = path.Clean(sp.Source)
		if sp.Propagation == "" {
			sp.Propagation = "rprivate"
		}
	case TypeVolume:
		anonymous := sp.Source == ""
		if sp.VolumeSubpath != "" {
			if anonymous {
				return mountConfigError(sp.Type, errors.New("must not set Subpath when using anonymous volumes"))
			}
			if !filepath.IsLocal(sp.VolumeSubpath) {
				return mountConfigError(sp.Type, errors.New("subpath must be a relative path within the volume"))
			}
		}
		if sp.ReadOnly && anonymous {
			return mountConfigError(sp.Type, errors.New("must not set ReadOnly mode when using anonymous volumes"))
		}
	case TypeTmpfs:
		if sp.Source != "" {
			return mountConfigError(sp.Type, errors.New("field Source must not be specified"))
		}
		if sp.TmpfsSize < 0 {
			return mountConfigError(sp.Type, fmt.Errorf("invalid tmpfs size: %d", sp.TmpfsSize))
		}
	default:
		return mountConfigError(sp.Type, errors.New("mount type unknown"))
	}
	return nil
}

// ParseMountFlag parses docker run's --mount, a CSV list of key=value
// fields: type (volume by default, bind, tmpfs), source/src,
// target/destination/dst, readonly/ro, consistency, bind-propagation,
// bind-recursive, volume-subpath, volume-nocopy, volume-driver, volume-opt,
// volume-label, tmpfs-size, tmpfs-mode. A bind's missing source is only
// found by CheckSource.
func ParseMountFlag(s string) (Spec, error) {
	r := csv.NewReader(strings.NewReader(s))
	fields, err := r.Read()
	if err != nil {
		return Spec{}, errdefs.InvalidArgument(fmt.Errorf("invalid mount %q: %w", s, err))
	}
	sp := Spec{Type: TypeVolume}
	var bindOpts, volumeOpts, tmpfsOpts bool
	for _, field := range fields {
		key, val, hasValue := strings.Cut(field, "=")
		if k := strings.TrimSpace(key); k != key {
			return Spec{}, invalidArg("invalid option '%s' in '%s': option should not have whitespace", k, field)
		}
		if hasValue {
			v := strings.TrimSpace(val)
			if v == "" {
				return Spec{}, invalidArg("invalid value for '%s': value is empty", key)
			}
			if v != val {
				return Spec{}, invalidArg("invalid value for '%s' in '%s': value should not have whitespace", key, field)
			}
		}
		key = strings.ToLower(key)
		if !hasValue {
			switch key {
			case "readonly", "ro", "volume-nocopy", "bind-nonrecursive":
			default:
				return Spec{}, invalidArg("invalid field '%s' must be a key=value pair", field)
			}
		}
		switch key {
		case "type":
			sp.Type = strings.ToLower(val)
		case "source", "src":
			sp.Source = val
			if !filepath.IsAbs(val) && strings.HasPrefix(val, ".") {
				if abs, err := filepath.Abs(val); err == nil {
					sp.Source = abs
				}
			}
		case "target", "dst", "destination":
			sp.Target = val
		case "readonly", "ro":
			if sp.ReadOnly, err = parseBool(key, val, hasValue); err != nil {
				return Spec{}, err
			}
		case "consistency":
			sp.Consistency = strings.ToLower(val)
		case "bind-propagation":
			sp.Propagation, bindOpts = strings.ToLower(val), true
		case "bind-nonrecursive":
			return Spec{}, invalidArg("bind-nonrecursive is deprecated, use bind-recursive=disabled instead")
		case "bind-recursive":
			bindOpts = true
			switch val {
			case "enabled":
			case "disabled":
				sp.NonRecursive = true
			case "writable":
				sp.ReadOnlyNonRecursive = true
			case "readonly":
				sp.ReadOnlyForceRecursive = true
			default:
				return Spec{}, invalidArg(`invalid value for %s: %s (must be "enabled", "disabled", "writable", or "readonly")`, key, val)
			}
		case "volume-subpath":
			sp.VolumeSubpath, volumeOpts = val, true
		case "volume-nocopy":
			volumeOpts = true
			if sp.VolumeNoCopy, err = parseBool(key, val, hasValue); err != nil {
				return Spec{}, err
			}
		case "volume-label":
			sp.VolumeLabels, volumeOpts = setKV(sp.VolumeLabels, val), true
		case "volume-driver":
			sp.VolumeDriver, volumeOpts = val, true
		case "volume-opt":
			sp.DriverOpts, volumeOpts = setKV(sp.DriverOpts, val), true
		case "tmpfs-size":
			size, err := units.RAMInBytes(val)
			if err != nil {
				return Spec{}, invalidArg("invalid value for %s: %s", key, val)
			}
			sp.TmpfsSize, tmpfsOpts = size, true
		case "tmpfs-mode":
			mode, err := strconv.ParseUint(val, 8, 32)
			if err != nil {
				return Spec{}, invalidArg("invalid value for %s: %s", key, val)
			}
			sp.TmpfsMode, tmpfsOpts = uint32(mode), true
		default:
			return Spec{}, invalidArg("unexpected key '%s' in '%s'", key, field)
		}
	}
	if sp.Type == "" {
		return Spec{}, invalidArg("type is required")
	}
	if sp.Target == "" {
		return Spec{}, invalidArg("target is required")
	}
	switch {
	case volumeOpts && sp.Type != TypeVolume:
		return Spec{}, invalidArg("cannot mix 'volume-*' options with mount type '%s'", sp.Type)
	case bindOpts && sp.Type != TypeBind:
		return Spec{}, invalidArg("cannot mix 'bind-*' options with mount type '%s'", sp.Type)
	case tmpfsOpts && sp.Type != TypeTmpfs:
		return Spec{}, invalidArg("cannot mix 'tmpfs-*' options with mount type '%s'", sp.Type)
	case sp.ReadOnlyNonRecursive && !sp.ReadOnly:
		return Spec{}, invalidArg("option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction")
	case sp.ReadOnlyForceRecursive && !sp.ReadOnly:
		return Spec{}, invalidArg("option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction")
	case sp.ReadOnlyForceRecursive && sp.Propagation != "rprivate":
		return Spec{}, invalidArg("option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction")
	}
	if err := sp.validate(); err != nil {
		return Spec{}, err
	}
	return sp, nil
}

func invalidArg(format string, args ...any) error {
	return errdefs.InvalidArgument(fmt.Errorf(format, args...))
}

// parseBool reads a --mount boolean; a bare key is true.
func parseBool(key, val string, hasValue bool) (bool, error) {
	if !hasValue {
		return true, nil
	}
	switch strings.ToLower(val) {
	case "true", "1":
		return true, nil
	case "false", "0":
		return false, nil
	}
	return false, invalidArg(`invalid value for '%s': invalid boolean value (%q): must be one of "true", "1", "false", or "0"`, key, val)
}

// setKV adds "k=v" (or "k", an empty value) to m.
func setKV(m map[string]string, kv string) map[string]string {
	k, v, _ := strings.Cut(kv, "=")
	if k == "" {
		return m
	}
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	return m
}

// ParseTmpfsFlag parses docker run's --tmpfs "DST[:OPTIONS]"; OPTIONS are
// mount(8) flags and tmpfs's size, mode, uid, gid, nr_inodes, nr_blocks
// and mpol.
func ParseTmpfsFlag(s string) (Spec, error) {
	target, opts, _ := strings.Cut(s, ":")
	sp := Spec{Type: TypeTmpfs, Target: target}
	if err := checkTarget(target); err != nil {
		return Spec{}, errdefs.InvalidArgument(err)
	}
	sp.Target = path.Clean(target)
	if opts == "" {
		return sp, nil
	}
	for _, o := range strings.Split(opts, ",") {
		key, val, _ := strings.Cut(o, "=")
		switch {
		case o == "" || o == "defaults":
		case o == "ro":
			sp.ReadOnly = true
		case o == "rw":
			sp.ReadOnly = false
		case key == "size" && !strings.HasSuffix(val, "%"):
			size, err := units.RAMInBytes(val)
			if err != nil || size < 0 {
				return Spec{}, invalidArg("invalid tmpfs option %q: invalid size", o)
			}
			sp.TmpfsSize = size
		case key == "mode":
			mode, err := strconv.ParseUint(val, 8, 32)
			if err != nil {
				return Spec{}, invalidArg("invalid tmpfs option %q: invalid mode", o)
			}
			sp.TmpfsMode = uint32(mode)
		case isMountFlag(o):
			sp.TmpfsOptions = append(sp.TmpfsOptions, o)
		case key == "size" || key == "uid" || key == "gid" || key == "nr_inodes" || key == "nr_blocks" || key == "mpol":
			sp.TmpfsOptions = append(sp.TmpfsOptions, o)
		default:
			return Spec{}, invalidArg("invalid tmpfs option %q", key)
		}
	}
	return sp, nil
}

// isMountFlag reports whether o is a mount(8) flag docker takes for a tmpfs.
func isMountFlag(o string) bool {
	switch o {
	case "suid", "nosuid", "dev", "nodev", "exec", "noexec", "sync", "async", "dirsync",
		"mand", "nomand", "atime", "noatime", "diratime", "nodiratime", "relatime", "norelatime",
		"strictatime", "nostrictatime",
		"private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable":
		return true
	}
	return false
}

// TmpfsMountOptions are the tmpfs mount options sp stands for, as docker
// passes them: ro, mode, size, then the rest. Docker's defaults (noexec,
// nosuid, nodev) are the spec generator's to add.
func (sp Spec) TmpfsMountOptions() []string {
	var out []string
	if sp.ReadOnly {
		out = append(out, "ro")
	}
	if sp.TmpfsMode != 0 {
		out = append(out, fmt.Sprintf("mode=%o", sp.TmpfsMode))
	}
	if sp.TmpfsSize > 0 {
		out = append(out, "size="+tmpfsSize(sp.TmpfsSize))
	}
	return append(out, sp.TmpfsOptions...)
}

// tmpfsSize writes bytes with the largest k/m/g suffix that divides it.
func tmpfsSize(n int64) string {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"g", 1 << 30}, {"m", 1 << 20}, {"k", 1 << 10}} {
		if n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// CheckSource checks a bind's host path when the container is created:
// one from --mount must exist ("bind source path does not exist"); one from
// -v may be missing, MakeSource creates it. Other types need nothing.
func (sp Spec) CheckSource() error {
	if sp.Type != TypeBind || sp.CreateSource {
		return nil
	}
	if _, err := os.Stat(sp.Source); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return mountConfigError(sp.Type, fmt.Errorf("bind source path does not exist: %s", sp.Source))
		}
		return mountConfigError(sp.Type, err)
	}
	return nil
}

// MakeSource creates a -v bind's missing host directory (0755), as docker
// does when the container starts. An existing file is no error.
func (sp Spec) MakeSource() error {
	if sp.Type != TypeBind || !sp.CreateSource {
		return nil
	}
	if _, err := os.Stat(sp.Source); err == nil {
		return nil
	}
	if err := os.MkdirAll(sp.Source, 0o755); err != nil {
		return fmt.Errorf("error while creating mount source path '%s': %w", sp.Source, err)
	}
	return nil
}

// FromMount checks a mount from the Engine API (HostConfig.Mounts, what
// docker's CLI makes of --mount) as the daemon does, and returns its Spec.
func FromMount(m mount.Mount) (Spec, error) {
	sp := Spec{
		Type:        string(m.Type),
		Source:      m.Source,
		Target:      m.Target,
		ReadOnly:    m.ReadOnly,
		Consistency: string(m.Consistency),
	}
	extra := func(field string) (Spec, error) {
		return Spec{}, mountConfigError(sp.Type, fmt.Errorf("field %s must not be specified", field))
	}
	if m.ImageOptions != nil || m.ClusterOptions != nil || sp.Type == "image" || sp.Type == "cluster" || sp.Type == "npipe" {
		return Spec{}, errdefs.NotImplemented(fmt.Errorf("invalid mount config for type %q: mount type not supported by berth", sp.Type))
	}
	if b := m.BindOptions; b != nil {
		if sp.Type != TypeBind {
			return extra("BindOptions")
		}
		sp.Propagation = string(b.Propagation)
		sp.NonRecursive = b.NonRecursive
		sp.ReadOnlyNonRecursive = b.ReadOnlyNonRecursive
		sp.ReadOnlyForceRecursive = b.ReadOnlyForceRecursive
		sp.CreateSource = b.CreateMountpoint
	}
	if v := m.VolumeOptions; v != nil {
		if sp.Type != TypeVolume {
			return extra("VolumeOptions")
		}
		sp.VolumeNoCopy = v.NoCopy
		sp.VolumeSubpath = v.Subpath
		sp.VolumeLabels = v.Labels
		if v.DriverConfig != nil {
			sp.VolumeDriver = v.DriverConfig.Name
			sp.DriverOpts = v.DriverConfig.Options
		}
	}
	if t := m.TmpfsOptions; t != nil {
		if sp.Type != TypeTmpfs {
			return extra("TmpfsOptions")
		}
		sp.TmpfsSize = t.SizeBytes
		sp.TmpfsMode = uint32(t.Mode)
		for _, o := range t.Options {
			switch len(o) {
			case 1:
				sp.TmpfsOptions = append(sp.TmpfsOptions, o[0])
			case 2:
				sp.TmpfsOptions = append(sp.TmpfsOptions, o[0]+"="+o[1])
			default:
				return Spec{}, mountConfigError(sp.Type, fmt.Errorf("invalid tmpfs option %q", strings.Join(o, "=")))
			}
		}
	}
	if err := sp.validate(); err != nil {
		return Spec{}, err
	}
	return sp, nil
}
