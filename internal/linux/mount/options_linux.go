// Package mount holds the pieces of a container's root filesystem setup
// that are worth testing on their own: mount option parsing, safe path
// resolution inside the rootfs, mount points, resource limits and sysctls.
// No work happens at package init: option lookups are switch statements.
package mount

import (
	"strings"

	"golang.org/x/sys/unix"
)

// Options is what a mount's OCI options mean to the kernel.
type Options struct {
	// Flags are the MS_* flags for mount(2).
	Flags uintptr
	// ClearedFlags are the MS_* flags the options explicitly turned off
	// ("rw", "suid", "dev", ...): a bind mount's remount keeps the source's
	// other flags (which may be locked in a user namespace) and only drops these.
	ClearedFlags uintptr
	// Propagation holds MS_PRIVATE, MS_SHARED, MS_SLAVE or MS_UNBINDABLE,
	// maybe with MS_REC, in order; each is a separate mount(2) call made
	// after the mount itself.
	Propagation []uintptr
	// Data is the file-system specific options, joined with commas.
	Data string
	// RecAttrSet and RecAttrClr are MOUNT_ATTR_* bits for
	// mount_setattr(2) with AT_RECURSIVE, from "rro", "rnosuid", ...; both
	// zero when there are none.
	RecAttrSet, RecAttrClr uint64
	// IDMap asks for an ID-mapped mount ("idmap"); RecursiveIDMap for an
	// ID-mapped mount of the whole tree ("ridmap").
	IDMap, RecursiveIDMap bool
	// CopyUp asks to copy the destination's contents into a new tmpfs ("tmpcopyup").
	CopyUp bool
}

// ParseOptions splits OCI mount options (mounts[].options) as runc does:
// MS_* flags, propagation changes, recursive attributes, and the rest as
// file-system data. A later option overrides an earlier one ("ro,rw" is rw).
func ParseOptions(options []string) Options {
	var o Options
	var data strings.Builder
	for _, s := range options {
		if f, clear, ok := msFlag(s); ok {
			if clear {
				o.Flags &^= f
				o.ClearedFlags |= f
			} else {
				o.Flags |= f
				o.ClearedFlags &^= f
			}
			continue
		}
		if p, ok := propagation(s); ok {
			o.Propagation = append(o.Propagation, p)
			continue
		}
		if recAttr(&o, s) {
			continue
		}
		switch s {
		case "defaults", "":
			// mount(8)'s placeholder: nothing to pass on.
		case "idmap":
			o.IDMap = true
		case "ridmap":
			o.RecursiveIDMap = true
		case "tmpcopyup":
			o.CopyUp = true
		default:
			if data.Len() > 0 {
				data.WriteByte(',')
			}
			data.WriteString(s)
		}
	}
	o.Data = data.String()
	return o
}

// msFlag maps a mount(8) option to its MS_* flag; clear means the option
// turns the flag off.
func msFlag(s string) (flag uintptr, clear, ok bool) {
	switch s {
	case "ro":
		return unix.MS_RDONLY, false, true
	case "rw":
		return unix.MS_RDONLY, true, true
	case "nosuid":
		return unix.MS_NOSUID, false, true
	case "suid":
		return unix.MS_NOSUID, true, true
	case "nodev":
		return unix.MS_NODEV, false, true
	case "dev":
		return unix.MS_NODEV, true, true
	case "noexec":
		return unix.MS_NOEXEC, false, true
	case "exec":
		return unix.MS_NOEXEC, true, true
	case "sync":
		return unix.MS_SYNCHRONOUS, false, true
	case "async":
		return unix.MS_SYNCHRONOUS, true, true
	case "dirsync":
		return unix.MS_DIRSYNC, false, true
	case "remount":
		return unix.MS_REMOUNT, false, true
	case "mand":
		return unix.MS_MANDLOCK, false, true
	case "nomand":
		return unix.MS_MANDLOCK, true, true
	case "noatime":
		return unix.MS_NOATIME, false, true
	case "atime":
		return unix.MS_NOATIME, true, true
	case "nodiratime":
		return unix.MS_NODIRATIME, false, true
	case "diratime":
		return unix.MS_NODIRATIME, true, true
	case "relatime":
		return unix.MS_RELATIME, false, true
	case "norelatime":
		return unix.MS_RELATIME, true, true
	case "strictatime":
		return unix.MS_STRICTATIME, false, true
	case "nostrictatime":
		return unix.MS_STRICTATIME, true, true
	case "lazytime":
		return unix.MS_LAZYTIME, false, true
	case "nolazytime":
		return unix.MS_LAZYTIME, true, true
	case "nosymfollow":
		return unix.MS_NOSYMFOLLOW, false, true
	case "symfollow":
		return unix.MS_NOSYMFOLLOW, true, true
	case "iversion":
		return unix.MS_I_VERSION, false, true
	case "noiversion":
		return unix.MS_I_VERSION, true, true
	case "acl":
		return unix.MS_POSIXACL, false, true
	case "noacl":
		return unix.MS_POSIXACL, true, true
	case "silent":
		return unix.MS_SILENT, false, true
	case "loud":
		return unix.MS_SILENT, true, true
	case "bind":
		return unix.MS_BIND, false, true
	case "rbind":
		return unix.MS_BIND | unix.MS_REC, false, true
	}
	return 0, false, false
}

func propagation(s string) (uintptr, bool) {
	switch s {
	case "private":
		return unix.MS_PRIVATE, true
	case "rprivate":
		return unix.MS_PRIVATE | unix.MS_REC, true
	case "shared":
		return unix.MS_SHARED, true
	case "rshared":
		return unix.MS_SHARED | unix.MS_REC, true
	case "slave":
		return unix.MS_SLAVE, true
	case "rslave":
		return unix.MS_SLAVE | unix.MS_REC, true
	case "unbindable":
		return unix.MS_UNBINDABLE, true
	case "runbindable":
		return unix.MS_UNBINDABLE | unix.MS_REC, true
	}
	return 0, false
}

// recAttr applies a recursive ("r"-prefixed) option to o and reports
// whether s was one. The access-time options are one setting, not bits:
// mount_setattr(2) wants MOUNT_ATTR__ATIME in attr_clr and the chosen mode
// in attr_set. "ratime" and "rnostrictatime" choose the kernel default
// (relatime), "rnorelatime" chooses strictatime, as mount(8) describes.
func recAttr(o *Options, s string) bool {
	var bit uint64
	clear := false
	switch s {
	case "rro":
		bit = unix.MOUNT_ATTR_RDONLY
	case "rrw":
		bit, clear = unix.MOUNT_ATTR_RDONLY, true
	case "rnosuid":
		bit = unix.MOUNT_ATTR_NOSUID
	case "rsuid":
		bit, clear = unix.MOUNT_ATTR_NOSUID, true
	case "rnodev":
		bit = unix.MOUNT_ATTR_NODEV
	case "rdev":
		bit, clear = unix.MOUNT_ATTR_NODEV, true
	case "rnoexec":
		bit = unix.MOUNT_ATTR_NOEXEC
	case "rexec":
		bit, clear = unix.MOUNT_ATTR_NOEXEC, true
	case "rnodiratime":
		bit = unix.MOUNT_ATTR_NODIRATIME
	case "rdiratime":
		bit, clear = unix.MOUNT_ATTR_NODIRATIME, true
	case "rnosymfollow":
		bit = unix.MOUNT_ATTR_NOSYMFOLLOW
	case "rsymfollow":
		bit, clear = unix.MOUNT_ATTR_NOSYMFOLLOW, true
	case "rnoatime":
		setAtime(o, unix.MOUNT_ATTR_NOATIME)
		return true
	case "rstrictatime", "rnorelatime":
		setAtime(o, unix.MOUNT_ATTR_STRICTATIME)
		return true
	case "rrelatime", "ratime", "rnostrictatime":
		setAtime(o, unix.MOUNT_ATTR_RELATIME)
		return true
	default:
		return false
	}
	if clear {
		o.RecAttrClr |= bit
		o.RecAttrSet &^= bit
	} else {
		o.RecAttrSet |= bit
		o.RecAttrClr &^= bit
	}
	return true
}

func setAtime(o *Options, mode uint64) {
	o.RecAttrSet = o.RecAttrSet&^unix.MOUNT_ATTR__ATIME | mode
	o.RecAttrClr |= unix.MOUNT_ATTR__ATIME
}
