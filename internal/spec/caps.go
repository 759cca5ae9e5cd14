package spec

import (
	"fmt"
	"slices"
	"strings"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/linux/caps"
)

// DefaultCapabilities are the capabilities docker gives a container, in
// docker's order.
func DefaultCapabilities() []string {
	return []string{
		"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
		"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
		"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
	}
}

// allCapabilities lists the capabilities in avail that berth can name.
func allCapabilities(avail caps.Set) []string {
	return (avail & caps.All(caps.MaxKnown)).Names()
}

// capabilityList applies --cap-add and --cap-drop to docker's defaults the
// way docker does: names in any case, with or without "CAP_"; "ALL" in
// --cap-add grants everything the kernel has except what is dropped, "ALL"
// in --cap-drop keeps only what is added. Privileged gets everything.
// "Everything" is avail's answer: what the kernel has and berth itself
// holds, as docker, so that it works where berth runs with fewer
// capabilities (in a container, say).
func capabilityList(add, drop []string, privileged bool, avail func() caps.Set) ([]string, error) {
	if privileged {
		return allCapabilities(avail()), nil
	}
	adds, err := normalizeCaps(add)
	if err != nil {
		return nil, err
	}
	drops, err := normalizeCaps(drop)
	if err != nil {
		return nil, err
	}
	var out []string
	switch {
	case slices.Contains(adds, "ALL"):
		for _, c := range allCapabilities(avail()) {
			if !slices.Contains(drops, c) {
				out = append(out, c)
			}
		}
	case slices.Contains(drops, "ALL"):
		out = adds
	default:
		for _, c := range DefaultCapabilities() {
			if !slices.Contains(drops, c) {
				out = append(out, c)
			}
		}
		for _, c := range adds {
			if !slices.Contains(out, c) {
				out = append(out, c)
			}
		}
	}
	if out == nil {
		out = []string{}
	}
	return out, nil
}

// normalizeCaps upper-cases names, adds the "CAP_" prefix where missing
// and refuses names no kernel has. "ALL" stays as is.
func normalizeCaps(list []string) ([]string, error) {
	var out []string
	for _, c := range list {
		c = strings.ToUpper(strings.TrimSpace(c))
		if c != "ALL" {
			if !strings.HasPrefix(c, "CAP_") {
				c = "CAP_" + c
			}
			if _, ok := caps.ParseName(c); !ok {
				return nil, errdefs.InvalidArgument(fmt.Errorf("unknown capability: %q", c))
			}
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}
