package mount

import (
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseOptions(t *testing.T) {
	const atime = unix.MOUNT_ATTR__ATIME
	tests := []struct {
		name string
		in   []string
		want Options
	}{
		{"empty", nil, Options{}},
		{"defaults is nothing", []string{"defaults"}, Options{}},
		{"ro nosuid nodev noexec", []string{"ro", "nosuid", "nodev", "noexec"},
			Options{Flags: unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC}},
		{"later wins", []string{"ro", "rw"},
			Options{ClearedFlags: unix.MS_RDONLY}},
		{"clear then set", []string{"rw", "ro"},
			Options{Flags: unix.MS_RDONLY}},
		{"clearing flags", []string{"suid", "dev", "exec", "async", "nomand", "atime", "diratime", "norelatime", "nostrictatime", "nolazytime", "symfollow"},
			Options{ClearedFlags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_SYNCHRONOUS | unix.MS_MANDLOCK |
				unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME | unix.MS_STRICTATIME | unix.MS_LAZYTIME | unix.MS_NOSYMFOLLOW}},
		{"setting flags", []string{"sync", "dirsync", "remount", "mand", "noatime", "nodiratime", "relatime", "strictatime", "lazytime", "nosymfollow"},
			Options{Flags: unix.MS_SYNCHRONOUS | unix.MS_DIRSYNC | unix.MS_REMOUNT | unix.MS_MANDLOCK | unix.MS_NOATIME |
				unix.MS_NODIRATIME | unix.MS_RELATIME | unix.MS_STRICTATIME | unix.MS_LAZYTIME | unix.MS_NOSYMFOLLOW}},
		{"bind", []string{"bind"}, Options{Flags: unix.MS_BIND}},
		{"rbind", []string{"rbind", "ro"}, Options{Flags: unix.MS_BIND | unix.MS_REC | unix.MS_RDONLY}},
		{"propagation in order", []string{"rbind", "rprivate", "shared", "rslave", "slave", "unbindable", "runbindable", "private", "rshared"},
			Options{Flags: unix.MS_BIND | unix.MS_REC, Propagation: []uintptr{
				unix.MS_PRIVATE | unix.MS_REC, unix.MS_SHARED, unix.MS_SLAVE | unix.MS_REC, unix.MS_SLAVE,
				unix.MS_UNBINDABLE, unix.MS_UNBINDABLE | unix.MS_REC, unix.MS_PRIVATE, unix.MS_SHARED | unix.MS_REC}}},
		{"data joined", []string{"nosuid", "mode=755", "size=65536k", "strictatime"},
			Options{Flags: unix.MS_NOSUID | unix.MS_STRICTATIME, Data: "mode=755,size=65536k"}},
		{"overlay data", []string{"lowerdir=/a:/b", "upperdir=/u", "workdir=/w", "index=off"},
			Options{Data: "lowerdir=/a:/b,upperdir=/u,workdir=/w,index=off"}},
		{"recursive bits", []string{"rbind", "rro", "rnosuid", "rnodev", "rnoexec", "rnodiratime", "rnosymfollow"},
			Options{Flags: unix.MS_BIND | unix.MS_REC, RecAttrSet: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID |
				unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR_NODIRATIME | unix.MOUNT_ATTR_NOSYMFOLLOW}},
		{"recursive clears", []string{"rrw", "rsuid", "rdev", "rexec", "rdiratime", "rsymfollow"},
			Options{RecAttrClr: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV |
				unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR_NODIRATIME | unix.MOUNT_ATTR_NOSYMFOLLOW}},
		{"recursive later wins", []string{"rro", "rrw"}, Options{RecAttrClr: unix.MOUNT_ATTR_RDONLY}},
		{"rnoatime", []string{"rnoatime"}, Options{RecAttrSet: unix.MOUNT_ATTR_NOATIME, RecAttrClr: atime}},
		{"rstrictatime", []string{"rstrictatime"}, Options{RecAttrSet: unix.MOUNT_ATTR_STRICTATIME, RecAttrClr: atime}},
		{"rnorelatime is strictatime", []string{"rnorelatime"}, Options{RecAttrSet: unix.MOUNT_ATTR_STRICTATIME, RecAttrClr: atime}},
		{"rrelatime", []string{"rrelatime"}, Options{RecAttrClr: atime}},
		{"ratime replaces rnoatime", []string{"rnoatime", "ratime"}, Options{RecAttrClr: atime}},
		{"rnostrictatime", []string{"rstrictatime", "rnostrictatime"}, Options{RecAttrClr: atime}},
		{"atime with rro", []string{"rro", "rnoatime"}, Options{RecAttrSet: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOATIME, RecAttrClr: atime}},
		{"idmap", []string{"bind", "idmap"}, Options{Flags: unix.MS_BIND, IDMap: true}},
		{"ridmap", []string{"rbind", "ridmap"}, Options{Flags: unix.MS_BIND | unix.MS_REC, RecursiveIDMap: true}},
		{"tmpcopyup", []string{"tmpcopyup", "mode=1777"}, Options{CopyUp: true, Data: "mode=1777"}},
		{"misc flags", []string{"iversion", "acl", "silent", "noiversion"},
			Options{Flags: unix.MS_POSIXACL | unix.MS_SILENT, ClearedFlags: unix.MS_I_VERSION}},
		{"case matters", []string{"RO"}, Options{Data: "RO"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ParseOptions(tt.in)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseOptions(%q) =\n %+v\nwant\n %+v", tt.in, got, tt.want)
			}
		})
	}
}

func BenchmarkParseOptions(b *testing.B) {
	opts := []string{"nosuid", "noexec", "nodev", "mode=755", "size=65536k", "rprivate"}
	b.ReportAllocs()
	for b.Loop() {
		ParseOptions(opts)
	}
}

// FuzzParseOptions checks that options are never lost: each one lands in
// flags, propagation, attributes or data.
func FuzzParseOptions(f *testing.F) {
	f.Add("ro,nosuid,mode=755,rprivate,rro")
	f.Fuzz(func(t *testing.T, s string) {
		opts := strings.Split(s, ",")
		o := ParseOptions(opts)
		for _, d := range strings.Split(o.Data, ",") {
			if _, _, ok := msFlag(d); ok && d != "" {
				t.Fatalf("flag %q in data %q", d, o.Data)
			}
		}
	})
}
