package volume

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
)

// Filters are docker's --filter values by key ("label" → ["a", "b=c"]).
type Filters map[string][]string

// ParseFilters turns --filter arguments ("key=value") into Filters, as
// docker's CLI does: the key is trimmed and lower-cased, the value trimmed.
func ParseFilters(args []string) (Filters, error) {
	f := Filters{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, errdefs.InvalidArgument(fmt.Errorf("bad format of filter (expected name=value)"))
		}
		k = strings.ToLower(strings.TrimSpace(k))
		f[k] = append(f[k], strings.TrimSpace(v))
	}
	return f, nil
}

// validate refuses keys outside accepted, with docker's message.
func (f Filters) validate(accepted ...string) error {
	for k := range f {
		found := false
		for _, a := range accepted {
			found = found || k == a
		}
		if !found {
			return errdefs.InvalidArgument(fmt.Errorf("invalid filter '%s'", k))
		}
	}
	return nil
}

// boolValue reads a boolean filter ("dangling", "all"): absent is def;
// every value must agree and be true/1 or false/0.
func (f Filters) boolValue(key string, def bool) (bool, error) {
	vals := f[key]
	if len(vals) == 0 {
		return def, nil
	}
	var out bool
	for i, v := range vals {
		var b bool
		switch strings.ToLower(v) {
		case "true", "1":
			b = true
		case "false", "0":
			b = false
		default:
			return false, errdefs.InvalidArgument(fmt.Errorf("invalid filter '%s=%s'", key, v))
		}
		if i > 0 && b != out {
			return false, errdefs.InvalidArgument(fmt.Errorf("invalid filter '%s=%s'", key, v))
		}
		out = b
	}
	return out, nil
}

// matchName is docker's name filter: any value equal to the name or, as a
// regular expression, found in it.
func (f Filters) matchName(name string) bool {
	vals := f["name"]
	if len(vals) == 0 {
		return true
	}
	for _, v := range vals {
		if v == name {
			return true
		}
		if ok, err := regexp.MatchString(v, name); err == nil && ok {
			return true
		}
	}
	return false
}

// matchAny reports whether value equals any of key's values (or key has none).
func (f Filters) matchAny(key, value string) bool {
	vals := f[key]
	if len(vals) == 0 {
		return true
	}
	for _, v := range vals {
		if v == value {
			return true
		}
	}
	return false
}

// matchLabels is docker's label filter: every value ("key" or
// "key=value") must match labels.
func (f Filters) matchLabels(labels map[string]string) bool {
	for _, v := range f["label"] {
		if !labelMatches(labels, v) {
			return false
		}
	}
	return true
}

// matchNotLabels is prune's "label!": no value may match labels.
func (f Filters) matchNotLabels(labels map[string]string) bool {
	for _, v := range f["label!"] {
		if labelMatches(labels, v) {
			return false
		}
	}
	return true
}

func labelMatches(labels map[string]string, filter string) bool {
	k, v, hasValue := strings.Cut(filter, "=")
	got, ok := labels[k]
	return ok && (!hasValue || got == v)
}

// naturalLess orders names as docker's CLI lists them: runs of digits
// compare by value, so "vol2" comes before "vol10".
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		if isDigit(a[0]) && isDigit(b[0]) {
			da, db := digitRun(a), digitRun(b)
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			if da != db {
				return da < db // fewer leading zeros first
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digitRun(s string) int {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}
