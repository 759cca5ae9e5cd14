package image

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
)

// ErrNoMatchingPlatform is wrapped when an index has no manifest for the
// platform asked for.
var ErrNoMatchingPlatform = errors.New("no matching manifest")

// HostPlatform is the platform images run on here: the OS and architecture
// berth was built for, with the CPU variant for arm (v7, v6, ... from
// /proc/cpuinfo) and arm64 (v8), as containerd's platforms.DefaultSpec.
func HostPlatform() ocispec.Platform { return hostPlatform() }

var hostPlatform = sync.OnceValue(func() ocispec.Platform {
	p := ocispec.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	switch runtime.GOARCH {
	case "arm64":
		p.Variant = "v8"
	case "arm":
		p.Variant = armVariant()
	}
	return p
})

// armVariant reads the CPU architecture of a 32-bit arm host.
func armVariant() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "v7"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || !strings.EqualFold(strings.TrimSpace(key), "CPU architecture") {
			continue
		}
		switch v := strings.TrimSpace(val); {
		case v == "8" || strings.HasPrefix(v, "AArch64"):
			return "v8"
		case strings.HasPrefix(v, "7"):
			return "v7"
		case strings.HasPrefix(v, "6"):
			return "v6"
		case strings.HasPrefix(v, "5"):
			return "v5"
		}
	}
	return "v7"
}

// isKnownOS and isKnownArch are switches rather than maps: nothing to
// build at package init.
func isKnownOS(s string) bool {
	switch s {
	case "aix", "android", "darwin", "dragonfly", "freebsd", "hurd", "illumos", "ios", "js", "linux",
		"netbsd", "openbsd", "plan9", "solaris", "wasip1", "windows", "zos":
		return true
	}
	return false
}

func isKnownArch(s string) bool {
	switch s {
	case "386", "amd64", "arm", "arm64", "loong64", "mips", "mipsle", "mips64", "mips64le", "ppc",
		"ppc64", "ppc64le", "riscv64", "s390x", "sparc64", "wasm",
		// aliases Normalize maps
		"x86_64", "x86-64", "aarch64", "armhf", "armel", "i386", "i486", "i586", "i686":
		return true
	}
	return false
}

// ParsePlatform parses a --platform value: os[/arch[/variant]], or a bare
// architecture (on the host's OS) or OS (with the host's architecture). The
// result is normalized (x86_64 is amd64, aarch64 is arm64, arm is arm/v7).
func ParsePlatform(s string) (ocispec.Platform, error) {
	bad := func(why string) (ocispec.Platform, error) {
		return ocispec.Platform{}, errdefs.InvalidArgument(fmt.Errorf("invalid platform %q: %s", s, why))
	}
	parts := strings.Split(s, "/")
	if len(parts) > 3 {
		return bad("want os[/arch[/variant]], as in linux/arm64 or linux/arm/v7")
	}
	for _, p := range parts {
		if p == "" || strings.Trim(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") != "" {
			return bad("want os[/arch[/variant]], as in linux/arm64 or linux/arm/v7")
		}
	}
	var p ocispec.Platform
	switch first := strings.ToLower(parts[0]); {
	case len(parts) > 1:
		p.OS, p.Architecture = first, parts[1]
		if len(parts) == 3 {
			p.Variant = parts[2]
		}
	case isKnownOS(first):
		host := HostPlatform()
		p.OS, p.Architecture, p.Variant = first, host.Architecture, host.Variant
	case isKnownArch(first):
		p.OS, p.Architecture = HostPlatform().OS, first
	default:
		return bad("unknown operating system or architecture")
	}
	if !isKnownOS(p.OS) {
		return bad(fmt.Sprintf("unknown operating system %q", p.OS))
	}
	return Normalize(p), nil
}

// FormatPlatform writes p as os/arch[/variant].
func FormatPlatform(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// Normalize maps the spellings of one platform onto one: x86_64 and
// x86-64 to amd64 (variant v1 to none), i386 to 386, aarch64 to arm64
// (variant v8 to none), armhf to arm/v7, armel to arm/v6, arm to arm/v7.
func Normalize(p ocispec.Platform) ocispec.Platform {
	p.OS = strings.ToLower(p.OS)
	arch, variant := strings.ToLower(p.Architecture), strings.ToLower(p.Variant)
	switch arch {
	case "x86_64", "x86-64", "amd64":
		arch = "amd64"
		if variant == "v1" {
			variant = ""
		}
	case "i386", "i486", "i586", "i686", "386":
		arch, variant = "386", ""
	case "aarch64", "arm64":
		arch = "arm64"
		switch variant {
		case "8", "v8", "v8.0":
			variant = ""
		case "9", "9.0", "v9.0":
			variant = "v9"
		}
	case "armhf":
		arch, variant = "arm", "v7"
	case "armel":
		arch, variant = "arm", "v6"
	case "arm":
		switch variant {
		case "", "7":
			variant = "v7"
		case "5", "6", "8":
			variant = "v" + variant
		}
	}
	p.Architecture, p.Variant = arch, variant
	return p
}

// Matcher says which platforms an image may be picked for, and which of
// them it prefers.
type Matcher struct {
	want   ocispec.Platform
	accept []ocispec.Platform // normalized, best first
}

// Only matches p and what p also runs, best first, as docker picks from a
// multi-platform index: amd64/v3 runs v2, v1 and 386; arm64 runs arm/v8
// down to arm/v5; arm/v7 runs v6 and v5.
func Only(p ocispec.Platform) Matcher {
	n := Normalize(p)
	accept := []ocispec.Platform{n}
	with := func(arch string, variants ...string) {
		for _, v := range variants {
			if arch != n.Architecture || v != n.Variant {
				accept = append(accept, ocispec.Platform{OS: n.OS, Architecture: arch, Variant: v})
			}
		}
	}
	switch n.Architecture {
	case "amd64":
		level := 1
		if len(n.Variant) == 2 && n.Variant[0] == 'v' && '2' <= n.Variant[1] && n.Variant[1] <= '4' {
			level = int(n.Variant[1] - '0')
		}
		for l := level - 1; l >= 2; l-- {
			with("amd64", fmt.Sprintf("v%d", l))
		}
		with("amd64", "")
		with("386", "")
	case "arm64":
		with("arm64", "")
		with("arm", "v8", "v7", "v6", "v5")
	case "arm":
		variants := []string{"v8", "v7", "v6", "v5"}
		for i, v := range variants {
			if v == n.Variant {
				with("arm", variants[i+1:]...)
			}
		}
	}
	return Matcher{want: p, accept: accept}
}

// Exact matches p only (up to Normalize): for --platform, where the user
// named what they want.
func Exact(p ocispec.Platform) Matcher {
	return Matcher{want: p, accept: []ocispec.Platform{Normalize(p)}}
}

func (m Matcher) rank(p ocispec.Platform) int {
	n := Normalize(p)
	for i, a := range m.accept {
		if n.OS == a.OS && n.Architecture == a.Architecture && n.Variant == a.Variant {
			return i
		}
	}
	return -1
}

// Match reports whether an image for p may be picked.
func (m Matcher) Match(p ocispec.Platform) bool { return m.rank(p) >= 0 }

// Less reports whether a is preferred to b.
func (m Matcher) Less(a, b ocispec.Platform) bool {
	ra, rb := m.rank(a), m.rank(b)
	return ra >= 0 && (rb < 0 || ra < rb)
}

// String is the platform the matcher was made for.
func (m Matcher) String() string { return FormatPlatform(m.want) }

// SelectManifest picks the manifest for m from an index: the most
// preferred platform, the first listed among equals. Entries without a
// platform (attestations, artifacts) are never picked. The result may be
// a nested index.
func SelectManifest(idx *ocispec.Index, m Matcher) (ocispec.Descriptor, error) {
	best := -1
	var have []string
	for i, d := range idx.Manifests {
		if d.Platform == nil || !(IsManifest(d.MediaType) || IsIndex(d.MediaType)) {
			continue
		}
		if d.Platform.OS != "unknown" {
			have = append(have, FormatPlatform(*d.Platform))
		}
		if m.Match(*d.Platform) && (best < 0 || m.Less(*d.Platform, *idx.Manifests[best].Platform)) {
			best = i
		}
	}
	if best < 0 {
		hint := "it lists no platforms"
		if len(have) > 0 {
			hint = "it has " + strings.Join(have, ", ") + "; choose one with --platform"
		}
		return ocispec.Descriptor{}, errdefs.NotFound(fmt.Errorf("%w for %s in the manifest list entries (%s)", ErrNoMatchingPlatform, m, hint))
	}
	return idx.Manifests[best], nil
}
