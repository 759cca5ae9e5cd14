package engine

import (
	"fmt"
	"path"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
)

// ImageFilters are `berth images --filter`'s, as docker reads them:
// several values of one key match if any does, different keys must all
// match.
type ImageFilters struct {
	Dangling  *bool
	Reference []string // patterns: busybox, busy*, localhost:5000/*:v1
	Label     []string // key or key=value
	Before    string   // an image: only older ones
	Since     string   // an image: only newer ones
}

// ParseImageFilters reads "key=value" filters: dangling=true|false,
// reference=PATTERN, label=KEY[=VALUE], before=IMAGE, since=IMAGE.
func ParseImageFilters(args []string) (ImageFilters, error) {
	var f ImageFilters
	for _, a := range args {
		key, val, ok := strings.Cut(a, "=")
		if !ok {
			return f, errdefs.InvalidArgument(fmt.Errorf("bad format of filter (expected name=value)"))
		}
		switch strings.ToLower(strings.TrimSpace(key)) {
		case "dangling":
			var b bool
			switch strings.ToLower(val) {
			case "true", "1":
				b = true
			case "false", "0":
			default:
				return f, errdefs.InvalidArgument(fmt.Errorf("invalid filter 'dangling=%s'", val))
			}
			if f.Dangling != nil && *f.Dangling != b {
				return f, errdefs.InvalidArgument(fmt.Errorf("conflicting filters: dangling=true and dangling=false"))
			}
			f.Dangling = &b
		case "reference":
			if _, err := path.Match(val, ""); err != nil {
				return f, errdefs.InvalidArgument(fmt.Errorf("invalid filter 'reference=%s': %v", val, err))
			}
			f.Reference = append(f.Reference, val)
		case "label":
			f.Label = append(f.Label, val)
		case "before":
			f.Before = val
		case "since":
			f.Since = val
		default:
			return f, errdefs.InvalidArgument(fmt.Errorf("invalid filter '%s'", key))
		}
	}
	return f, nil
}

// matchLabels reports whether labels satisfy every label filter.
func (f ImageFilters) matchLabels(labels map[string]string) bool {
	for _, l := range f.Label {
		k, v, hasValue := strings.Cut(l, "=")
		got, ok := labels[k]
		if !ok || (hasValue && got != v) {
			return false
		}
	}
	return true
}

// matchReference reports whether the familiar reference ref (busybox:latest,
// busybox@sha256:...) matches pattern as docker's reference filter does:
// against the whole reference, or against its name alone.
func matchReference(pattern, ref string) bool {
	r, err := image.ParseReference(ref)
	if err != nil {
		return false
	}
	if ok, _ := path.Match(pattern, r.Familiar()); ok {
		return true
	}
	ok, _ := path.Match(pattern, r.FamiliarName())
	return ok
}

// filterReferences keeps the references that match any pattern (all of
// them when there are no patterns).
func filterReferences(refs, patterns []string) []string {
	if len(patterns) == 0 {
		return refs
	}
	var out []string
	for _, ref := range refs {
		for _, p := range patterns {
			if matchReference(p, ref) {
				out = append(out, ref)
				break
			}
		}
	}
	return out
}
