package runtime

import (
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
)

// Features describes what berth's runtime implements, in the shape of the
// runtime spec's features document (runc features).
func Features() *features.Features {
	yes := true
	var nsTypes []string
	for t := range nsFlags {
		if t != specs.TimeNamespace {
			nsTypes = append(nsTypes, string(t))
		}
	}
	sort.Strings(nsTypes)
	return &features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions: []string{
			"async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec", "lazytime",
			"mand", "noatime", "nodev", "nodiratime", "noexec", "nolazytime", "nomand", "norelatime",
			"nostrictatime", "nosuid", "nosymfollow", "private", "rbind", "relatime", "remount", "ro",
			"rprivate", "rshared", "rslave", "runbindable", "rw", "shared", "slave", "strictatime",
			"suid", "sync", "unbindable",
		},
		Linux: &features.Linux{
			Namespaces: nsTypes,
			Cgroup:     &features.Cgroup{V1: &yes, V2: &yes, Systemd: &yes},
			Seccomp: &features.Seccomp{
				Enabled:   &yes,
				Actions:   []string{"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"},
				Operators: []string{"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"},
			},
			MountExtensions: &features.MountExtensions{IDMap: &features.IDMap{Enabled: new(bool)}},
		},
	}
}
