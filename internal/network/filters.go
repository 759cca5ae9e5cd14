package network

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// EnvConfig is the Config berth's engine and CLI share: root, with the
// bridge, nftables table and address pool movable by $BERTH_BRIDGE,
// $BERTH_NFT_TABLE and $BERTH_SUBNET_POOL (comma-separated prefixes), so
// test roots side by side never share host objects.
func EnvConfig(root string) Config {
	cfg := Config{Root: root, Table: os.Getenv("BERTH_NFT_TABLE"), DefaultBridge: os.Getenv("BERTH_BRIDGE")}
	for _, p := range strings.Split(os.Getenv("BERTH_SUBNET_POOL"), ",") {
		if pfx, err := netip.ParsePrefix(strings.TrimSpace(p)); err == nil {
			cfg.Pool = append(cfg.Pool, pfx)
		}
	}
	return cfg
}

// Filters are `network ls --filter` and `network prune --filter` values,
// by key.
type Filters map[string][]string

// ParseFilters parses "key=value" filters; keys are docker's: driver,
// id, label, label!, name, scope, type (custom or builtin), dangling,
// until.
func ParseFilters(args []string) (Filters, error) {
	f := Filters{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			return nil, errdefs.InvalidArgument(errors.New("bad format of filter (expected name=value)"))
		}
		k = strings.ToLower(strings.TrimSpace(k))
		switch k {
		case "driver", "id", "label", "label!", "name", "scope":
		case "until":
			if _, err := parseUntil(v, time.Now()); err != nil {
				return nil, err
			}
		case "type":
			if v != "custom" && v != "builtin" {
				return nil, errdefs.InvalidArgument(fmt.Errorf("invalid filter: 'type'='%s'", v))
			}
		case "dangling":
			if v != "true" && v != "false" && v != "1" && v != "0" {
				return nil, errdefs.InvalidArgument(fmt.Errorf("invalid filter 'dangling=%s'", v))
			}
		default:
			return nil, errdefs.InvalidArgument(fmt.Errorf("invalid filter '%s'", k))
		}
		f[k] = append(f[k], v)
	}
	return f, nil
}

// Match reports whether network n with endpoints attachments passes
// every filter: values of one key are alternatives, keys all apply, and
// label! excludes on any match.
func (f Filters) Match(n *Network, endpoints int, now time.Time) bool {
	for k, vals := range f {
		ok := k == "label!"
		for _, v := range vals {
			m := one(k, v, n, endpoints, now)
			if k == "label!" && m {
				return false
			}
			ok = ok || m
		}
		if !ok {
			return false
		}
	}
	return true
}

func one(k, v string, n *Network, endpoints int, now time.Time) bool {
	switch k {
	case "driver":
		return n.Driver == v
	case "id":
		return strings.HasPrefix(n.ID, v)
	case "name":
		return strings.Contains(n.Name, v)
	case "scope":
		return v == "local"
	case "type":
		return (v == "builtin") == n.Predefined()
	case "dangling":
		return (v == "true" || v == "1") == (endpoints == 0 && !n.Predefined())
	case "label", "label!":
		key, val, hasVal := strings.Cut(v, "=")
		got, ok := n.Labels[key]
		return ok && (!hasVal || got == val)
	case "until":
		t, err := parseUntil(v, now)
		return err == nil && n.Created.Before(t)
	}
	return false
}

// parseUntil reads a timestamp (RFC 3339, a date, Unix seconds) or a
// duration before now (10m, 24h).
func parseUntil(v string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.Local); err == nil {
			return t, nil
		}
	}
	var secs int64
	if _, err := fmt.Sscanf(v, "%d", &secs); err == nil && fmt.Sprint(secs) == v {
		return time.Unix(secs, 0), nil
	}
	return time.Time{}, errdefs.InvalidArgument(fmt.Errorf("invalid filter 'until=%s': not a timestamp or duration", v))
}
