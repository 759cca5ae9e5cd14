// Package image knows what images are made of and what they are called:
// references (docker's names), manifests, indexes and configs in both the
// OCI and the Docker v2 schema 2 media types, platforms, and the store that
// maps names and tags to images under berth's root.
package image

import (
	"errors"
	"fmt"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/errdefs"
)

const (
	// DefaultDomain is the registry of names without one.
	DefaultDomain = "docker.io"
	// DefaultTag is the tag of names without a tag or a digest.
	DefaultTag = "latest"

	legacyDomain    = "index.docker.io"
	officialPrefix  = "library/"
	maxNameLength   = 255
	maxTagLength    = 128
	minDigestLength = 32
)

// ErrInvalidReference is wrapped by every reference parsing error.
var ErrInvalidReference = errors.New("invalid reference format")

// ReferenceError says why a string is not a valid image reference.
type ReferenceError struct {
	Input  string
	Reason string
}

func (e *ReferenceError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("invalid reference format: %q", e.Input)
	}
	return fmt.Sprintf("invalid reference format: %q: %s", e.Input, e.Reason)
}

func (e *ReferenceError) Unwrap() error { return ErrInvalidReference }

func refError(input, reason string) error {
	return errdefs.InvalidArgument(&ReferenceError{Input: input, Reason: reason})
}

// Reference is a normalized image reference: a repository (Domain and
// Path, as in docker.io/library/busybox) with an optional tag and digest.
// The zero value is no reference.
type Reference struct {
	Domain string        // registry host[:port], "docker.io" by default
	Path   string        // repository path, "library/<name>" for official images
	Tag    string        // "" when absent
	Digest digest.Digest // "" when absent
}

// ParseReference parses s the way docker does: a name without a registry is
// on docker.io, a docker.io name without a namespace is under library/, and
// index.docker.io is docker.io. The tag stays empty when s has none (see
// WithDefaultTag). A 64-character hex string is refused: it is an image ID.
func ParseReference(s string) (Reference, error) {
	if s == "" {
		return Reference{}, refError(s, "empty reference")
	}
	if isFullID(s) {
		return Reference{}, refError(s, "cannot specify 64-byte hexadecimal strings as a repository name; use the image ID as it is")
	}
	var r Reference
	name := s
	if i := strings.IndexByte(name, '@'); i >= 0 {
		d := name[i+1:]
		name = name[:i]
		if err := checkDigest(d); err != "" {
			return Reference{}, refError(s, err)
		}
		r.Digest = digest.Digest(d)
	}
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		r.Tag = name[i+1:]
		name = name[:i]
		if !validTag(r.Tag) {
			return Reference{}, refError(s, "invalid tag format (letters, digits, '_', '.' and '-', up to 128, not starting with '.' or '-')")
		}
	}
	r.Domain, r.Path = splitDomain(name)
	if r.Path == "" || r.Domain == "" {
		return Reference{}, refError(s, "repository name must have at least one component")
	}
	if strings.ToLower(r.Path) != r.Path {
		return Reference{}, refError(s, "repository name must be lowercase")
	}
	if !validDomain(r.Domain) {
		return Reference{}, refError(s, "invalid registry host "+quote(r.Domain))
	}
	if reason := checkPath(r.Path); reason != "" {
		return Reference{}, refError(s, reason)
	}
	if len(r.Domain)+1+len(r.Path) > maxNameLength {
		return Reference{}, refError(s, fmt.Sprintf("repository name must not be more than %d characters", maxNameLength))
	}
	return r, nil
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// splitDomain is docker's: the first component is a registry when it
// holds a '.' or a ':', is "localhost", or has upper-case letters.
func splitDomain(name string) (domain, path string) {
	i := strings.IndexByte(name, '/')
	if i < 0 || !looksLikeDomain(name[:i]) {
		domain, path = DefaultDomain, name
	} else {
		domain, path = name[:i], name[i+1:]
	}
	if domain == legacyDomain {
		domain = DefaultDomain
	}
	if domain == DefaultDomain && path != "" && !strings.ContainsRune(path, '/') {
		path = officialPrefix + path
	}
	return domain, path
}

func looksLikeDomain(c string) bool {
	return strings.ContainsAny(c, ".:") || c == "localhost" || strings.ToLower(c) != c
}

// validDomain: host[:port] where host is dot-separated labels of letters,
// digits and inner '-', or a bracketed IPv6 address.
func validDomain(d string) bool {
	host, port := d, ""
	if strings.HasPrefix(d, "[") {
		end := strings.IndexByte(d, ']')
		if end < 0 {
			return false
		}
		host, port = d[:end+1], d[end+1:]
		inner := host[1 : len(host)-1]
		if inner == "" || strings.Trim(inner, "0123456789abcdefABCDEF:") != "" {
			return false
		}
	} else {
		if i := strings.IndexByte(d, ':'); i >= 0 {
			host, port = d[:i], d[i:]
		}
		for _, label := range strings.Split(host, ".") {
			if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
				return false
			}
			for i := 0; i < len(label); i++ {
				if !isAlnum(label[i]) && !isUpper(label[i]) && label[i] != '-' {
					return false
				}
			}
		}
	}
	if port != "" {
		if port[0] != ':' || len(port) == 1 {
			return false
		}
		for i := 1; i < len(port); i++ {
			if port[i] < '0' || port[i] > '9' {
				return false
			}
		}
	}
	return true
}

// checkPath: '/'-separated components of lower-case letters and digits,
// joined inside a component by '.', '_', '__' or runs of '-'.
func checkPath(p string) string {
	for _, c := range strings.Split(p, "/") {
		if c == "" {
			return "repository name has an empty component"
		}
		if !isAlnum(c[0]) || !isAlnum(c[len(c)-1]) {
			return "repository name components must start and end with a lower-case letter or digit"
		}
		for i := 0; i < len(c); {
			if isAlnum(c[i]) {
				i++
				continue
			}
			j := i
			for j < len(c) && !isAlnum(c[j]) {
				j++
			}
			sep := c[i:j]
			if sep != "." && sep != "_" && sep != "__" && strings.Trim(sep, "-") != "" {
				return fmt.Sprintf("repository name component %q: invalid separator %q", c, sep)
			}
			i = j
		}
	}
	return ""
}

func validTag(t string) bool {
	if t == "" || len(t) > maxTagLength || t[0] == '.' || t[0] == '-' {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !isAlnum(c) && !isUpper(c) && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

func checkDigest(d string) string {
	alg, hex, ok := strings.Cut(d, ":")
	if !ok || alg == "" || len(hex) < minDigestLength {
		return "invalid digest format (want algorithm:hex, as in sha256:<64 hex digits>)"
	}
	if err := digest.Digest(d).Validate(); err != nil {
		return fmt.Sprintf("invalid digest %q: %v", d, err)
	}
	return ""
}

func isAlnum(c byte) bool { return ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') }
func isUpper(c byte) bool { return 'A' <= c && c <= 'Z' }

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !('0' <= s[i] && s[i] <= '9') && !('a' <= s[i] && s[i] <= 'f') {
			return false
		}
	}
	return true
}

func isFullID(s string) bool { return len(s) == 64 && isHex(s) }

// Name is the full repository name: docker.io/library/busybox.
func (r Reference) Name() string {
	if r.Domain == "" {
		return r.Path
	}
	return r.Domain + "/" + r.Path
}

// String is the full reference: docker.io/library/busybox:latest, with
// "@digest" when it has one.
func (r Reference) String() string { return r.Name() + r.suffix() }

func (r Reference) suffix() string {
	s := ""
	if r.Tag != "" {
		s = ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + string(r.Digest)
	}
	return s
}

// FamiliarName is the repository name as docker shows it: busybox,
// user/app, localhost:5000/x/y.
func (r Reference) FamiliarName() string {
	if r.Domain != DefaultDomain {
		return r.Name()
	}
	p := r.Path
	if rest, ok := strings.CutPrefix(p, officialPrefix); ok && !strings.ContainsRune(rest, '/') {
		p = rest
	}
	// Docker drops docker.io even when the first component would then
	// read as a registry (docker.io/foo.bar/x); keep it there, so that the
	// familiar form parses back to the same reference.
	if first, _, ok := strings.Cut(p, "/"); ok && looksLikeDomain(first) {
		return r.Name()
	}
	return p
}

// Familiar is the reference as docker shows it: busybox:latest.
func (r Reference) Familiar() string { return r.FamiliarName() + r.suffix() }

// WithDefaultTag adds the latest tag to a reference that has neither a tag
// nor a digest.
func (r Reference) WithDefaultTag() Reference {
	if r.Tag == "" && r.Digest == "" {
		r.Tag = DefaultTag
	}
	return r
}

// IsZero reports whether r is the zero Reference.
func (r Reference) IsZero() bool { return r == Reference{} }
