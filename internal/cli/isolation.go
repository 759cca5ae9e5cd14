package cli

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/errdefs"
)

// inspectIsolation is `berth inspect --isolation`: a screen per container
// saying what isolates it, or, with --format, the report through a
// template ("json": one JSON object per line). Names not found are
// reported after the rest, as inspect does.
func inspectIsolation(e *engine.Engine, cmd *cobra.Command, names []string, format string) error {
	failed, printed := false, 0
	for _, n := range names {
		r, err := e.Isolation(cmd.Context(), n)
		if err != nil {
			failed = true
			if errdefs.Is(err, errdefs.KindNotFound) {
				fmt.Fprintf(os.Stderr, "Error: No such container: %s\n", n)
			} else {
				fmt.Fprintf(os.Stderr, "Error: %v\n", err)
			}
			continue
		}
		if format != "" {
			if err := executeTemplate(os.Stdout, format, r); err != nil {
				return err
			}
			continue
		}
		if printed > 0 {
			fmt.Println()
		}
		printed++
		writeIsolation(os.Stdout, r)
		for _, w := range r.Warnings {
			fmt.Fprintf(os.Stderr, "WARNING: %s: %s\n", r.Name, w)
		}
	}
	if failed {
		return &exitError{code: 1}
	}
	return nil
}

// isolationFlag adds --isolation to an inspect command.
func isolationFlag(cmd *cobra.Command, on *bool) {
	cmd.Flags().BoolVar(on, "isolation", false, "Show what isolates a container: namespaces, cgroup, seccomp, capabilities, rootfs")
}

// writeIsolation prints r as one screen: a section per concern, its
// details indented under it, labels aligned.
func writeIsolation(w io.Writer, r *engine.IsolationReport) {
	section := func(title, text string) {
		if text == "" {
			fmt.Fprintln(w, title)
			return
		}
		fmt.Fprintf(w, "%-10s %s\n", title, text)
	}
	row := func(label, format string, args ...any) {
		fmt.Fprintf(w, "  %-7s %s\n", label, fmt.Sprintf(format, args...))
	}

	head := fmt.Sprintf("%s (%s)", r.Name, engine.ShortID(r.ID))
	if r.Running {
		head += fmt.Sprintf("  pid %d", r.Pid)
	}
	section("Container", head+"  "+r.Status)
	if r.Note != "" {
		fmt.Fprintf(w, "  %s\n", r.Note)
	}

	if len(r.Namespaces) > 0 {
		section("Namespaces", "")
		for _, ns := range r.Namespaces {
			row(ns.Type, "%-10d  %s", ns.Inode, nsSharing(ns))
		}
	}

	if cg := r.Cgroup; cg != nil {
		section("Cgroup", fmt.Sprintf("%s (%s)", shortenIDs(cg.Path, r.ID), cg.Version))
		for _, c := range differingPaths(cg) {
			row("path", "%s %s", c, shortenIDs(cg.Paths[c], r.ID))
		}
		if m := cg.Memory; m != nil {
			s := fmt.Sprintf("%s used", binarySize(m.Usage))
			if m.Limit != nil {
				s = fmt.Sprintf("%s limit  %s", binarySize(*m.Limit), s)
			} else {
				s = "no limit  " + s
			}
			if m.Peak != nil {
				s += fmt.Sprintf("  (peak %s)", binarySize(*m.Peak))
			}
			row("memory", "%s", s)
		}
		if c := cg.CPU; c != nil {
			s := "no limit"
			if c.Quota > 0 {
				s = fmt.Sprintf("%.2f CPUs (%d/%d)", c.CPUs, c.Quota, c.Period)
			}
			if c.Shares > 0 {
				s += fmt.Sprintf("  shares %d", c.Shares)
			}
			if c.Weight > 0 {
				s += fmt.Sprintf("  weight %d", c.Weight)
			}
			row("cpu", "%s", s)
		}
		if p := cg.Pids; p != nil {
			limit := "no limit"
			if p.Max != nil {
				limit = strconv.FormatUint(*p.Max, 10)
			}
			row("pids", "%d / %s", p.Current, limit)
		}
		if c := cg.Cpuset; c != nil {
			row("cpuset", "cpus %s  mems %s", orDash(c.Cpus), orDash(c.Mems))
		}
	}

	writeSecurity(w, r, section, row)
	writeRootfs(w, r, section, row)
}

// nsSharing says with whom a namespace is shared.
func nsSharing(ns engine.NamespaceInfo) string {
	switch ns.Sharing {
	case engine.NSContainer:
		var refs []string
		for _, c := range ns.SharedWith {
			refs = append(refs, fmt.Sprintf("%s (%s)", c.Name, engine.ShortID(c.ID)))
		}
		return "shared with " + strings.Join(refs, ", ")
	case engine.NSUnknown:
		return "unknown (the host's namespaces could not be read)"
	}
	return ns.Sharing
}

// differingPaths lists v1 controllers whose path is not the cgroup's
// main one: rare, and worth showing when it happens.
func differingPaths(cg *engine.CgroupInfo) []string {
	var out []string
	for c, p := range cg.Paths {
		if p != cg.Path {
			out = append(out, c)
		}
	}
	slices.Sort(out)
	return out
}

func writeSecurity(w io.Writer, r *engine.IsolationReport, section func(string, string), row func(string, string, ...any)) {
	s := r.Security
	profile := map[string]string{"default": "docker default", "unconfined": "unconfined", "custom": "custom profile"}[s.SeccompProfile]
	if profile == "" {
		profile = s.SeccompProfile
	}
	var line []string
	if s.SeccompMode != "" {
		detail := profile
		if s.SeccompFilters > 0 {
			detail += fmt.Sprintf(", %d filter%s", s.SeccompFilters, plural(s.SeccompFilters))
		}
		line = append(line, fmt.Sprintf("seccomp %s (%s)", s.SeccompMode, detail))
	} else {
		line = append(line, "seccomp "+profile)
	}
	line = append(line, "no_new_privs "+boolDigit(s.NoNewPrivs))
	if u := s.User; u != nil {
		us := fmt.Sprintf("user %d:%d", u.UID, u.GID)
		if s.ConfigUser != "" && s.ConfigUser != us[5:] && s.ConfigUser != strconv.FormatUint(uint64(u.UID), 10) {
			us += fmt.Sprintf(" (%q)", s.ConfigUser)
		}
		line = append(line, us)
	} else if s.ConfigUser != "" {
		line = append(line, fmt.Sprintf("user %q", s.ConfigUser))
	}
	if s.Privileged {
		line = append(line, "privileged")
	}
	section("Security", strings.Join(line, "  "))
	if u := s.User; u != nil && len(u.Groups) > 0 {
		gs := make([]string, len(u.Groups))
		for i, g := range u.Groups {
			gs[i] = strconv.FormatUint(uint64(g), 10)
		}
		row("groups", "%s", strings.Join(gs, ","))
	}
	if c := s.Caps; c != nil {
		row("CapEff", "%s", capList(c.Effective))
		for _, set := range []struct {
			name string
			caps []string
		}{{"CapPrm", c.Permitted}, {"CapBnd", c.Bounding}, {"CapInh", c.Inheritable}, {"CapAmb", c.Ambient}} {
			if len(set.caps) > 0 && slices.Equal(set.caps, c.Effective) {
				row(set.name, "= CapEff")
				continue
			}
			row(set.name, "%s", capList(set.caps))
		}
	} else {
		if len(s.CapAdd) > 0 {
			row("CapAdd", "%s", strings.Join(s.CapAdd, " "))
		}
		if len(s.CapDrop) > 0 {
			row("CapDrop", "%s", strings.Join(s.CapDrop, " "))
		}
	}
}

// capList is a capability set without the CAP_ prefixes, and its size.
func capList(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	short := make([]string, len(names))
	for i, n := range names {
		short[i] = strings.TrimPrefix(n, "CAP_")
	}
	return fmt.Sprintf("%s (%d)", strings.Join(short, " "), len(names))
}

func writeRootfs(w io.Writer, r *engine.IsolationReport, section func(string, string), row func(string, string, ...any)) {
	fs := r.Rootfs
	writable := "writable"
	if fs.WritableSize >= 0 {
		writable += fmt.Sprintf(" (%s)", binarySize(uint64(fs.WritableSize)))
	}
	ro := "no"
	if fs.ReadOnly {
		ro = "yes"
	}
	n := len(fs.Layers)
	section("Rootfs", fmt.Sprintf("%s, %d image layer%s + %s, read-only: %s", orDash(fs.Driver), n, plural(n), writable, ro))
	if fs.Image != "" {
		img := shortDigest(fs.Image)
		if fs.ImageName != "" {
			img = fmt.Sprintf("%s (%s)", fs.ImageName, img)
		}
		row("image", "%s", img)
	}
	for i, l := range fs.Layers {
		row("layer "+strconv.Itoa(i+1), "diff %s  chain %s  %s", shortDigest(l.DiffID), shortDigest(l.ChainID), binarySize(uint64(max(l.Size, 0))))
	}
	if fs.WritableDir != "" {
		row("upper", "%s", fs.WritableDir)
	}
	row("paths", "%d masked, %d read-only", fs.MaskedPaths, fs.ReadonlyPaths)
	if len(fs.Mounts) == 0 {
		return
	}
	section("Mounts", "")
	for _, m := range fs.Mounts {
		src := m.Source
		if m.Type == "volume" && m.Name != "" {
			src = m.Name
		}
		if src == "" {
			src = m.Type
		}
		mode := "ro"
		if m.RW {
			mode = "rw"
		}
		row(m.Type, "%s → %s  %s", shortenIDs(src, ""), m.Destination, mode)
	}
}

// shortenIDs abbreviates the container's ID (and any other 64-digit hex
// name) inside a path, as the rest of the screen shows IDs.
func shortenIDs(p, id string) string {
	parts := strings.Split(p, "/")
	for i, s := range parts {
		if (id != "" && s == id) || isHexID(s) {
			parts[i] = s[:12] + "…"
		}
	}
	return strings.Join(parts, "/")
}

func isHexID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// shortDigest is "sha256:" and the first 12 digits.
func shortDigest(d string) string {
	algo, hex, ok := strings.Cut(d, ":")
	if !ok {
		return engine.ShortID(d)
	}
	return algo + ":" + engine.ShortID(hex)
}

// binarySize is n in binary units with one decimal: "64.0MiB", "512B".
func binarySize(n uint64) string {
	units := [...]string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	if n < 1024 {
		return fmt.Sprintf("%dB", n)
	}
	v := float64(n)
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f%s", v, units[i])
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func boolDigit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
