package volume

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/mount"

	"github.com/berth-dev/berth/internal/errdefs"
)

type specCase struct {
	in      string
	want    Spec
	wantErr string
}

func runSpecCases(t *testing.T, parse func(string) (Spec, error), cases []specCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parse(tc.in)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error = %v\nwant    %s", err, tc.wantErr)
				}
				if !errdefs.Is(err, errdefs.KindInvalidArgument) {
					t.Errorf("kind = %v, want InvalidArgument", errdefs.KindOf(err))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseVolumeFlag(t *testing.T) {
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	runSpecCases(t, ParseVolumeFlag, []specCase{
		{in: "/data", want: Spec{Type: "volume", Target: "/data"}},
		{in: "/data/", want: Spec{Type: "volume", Target: "/data"}},
		{in: "myvol:/data", want: Spec{Type: "volume", Source: "myvol", Target: "/data"}},
		{in: "myvol:/data:ro", want: Spec{Type: "volume", Source: "myvol", Target: "/data", ReadOnly: true, Mode: "ro"}},
		{in: "myvol:/data:nocopy,rw", want: Spec{Type: "volume", Source: "myvol", Target: "/data", VolumeNoCopy: true, Mode: "nocopy,rw"}},
		{in: "myvol:/data:z,cached", want: Spec{Type: "volume", Source: "myvol", Target: "/data", Relabel: "z", Consistency: "cached", Mode: "z,cached"}},
		{in: "/host:/c", want: Spec{Type: "bind", Source: "/host", Target: "/c", Propagation: "rprivate", CreateSource: true}},
		{in: "/host/x/../y/:/c/", want: Spec{Type: "bind", Source: "/host/y", Target: "/c", Propagation: "rprivate", CreateSource: true}},
		{in: "/host:/c:", want: Spec{Type: "bind", Source: "/host", Target: "/c", Propagation: "rprivate", CreateSource: true}},
		{in: "/host:/c:ro,Z,rshared", want: Spec{Type: "bind", Source: "/host", Target: "/c", ReadOnly: true, Relabel: "Z", Propagation: "rshared", CreateSource: true, Mode: "ro,Z,rshared"}},
		{in: "/host:/c:slave", want: Spec{Type: "bind", Source: "/host", Target: "/c", Propagation: "slave", CreateSource: true, Mode: "slave"}},
		{in: "./rel:/c", want: Spec{Type: "bind", Source: filepath.Join(cwd, "rel"), Target: "/c", Propagation: "rprivate", CreateSource: true}},
		{in: "..:/c", want: Spec{Type: "bind", Source: filepath.Dir(cwd), Target: "/c", Propagation: "rprivate", CreateSource: true}},
		// Names are checked when the volume is created, as docker's.
		{in: "x y:/c", want: Spec{Type: "volume", Source: "x y", Target: "/c"}},

		{in: "data", wantErr: `invalid volume specification: 'data': invalid mount config for type "volume": invalid mount path: 'data' mount path must be absolute`},
		{in: "/h:rel", wantErr: `invalid volume specification: '/h:rel': invalid mount config for type "bind": invalid mount path: 'rel' mount path must be absolute`},
		{in: "vol:rel", wantErr: `invalid volume specification: 'vol:rel': invalid mount config for type "volume": invalid mount path: 'rel' mount path must be absolute`},
		{in: "/h:/", wantErr: `invalid volume specification: '/h:/': invalid mount config for type "bind": invalid specification: destination can't be '/'`},
		{in: "/", wantErr: `invalid volume specification: '/': invalid mount config for type "volume": invalid specification: destination can't be '/'`},
		{in: "/c:ro", wantErr: "invalid volume specification: '/c:ro'"},
		{in: "a:/b:ro:d", wantErr: "invalid volume specification: 'a:/b:ro:d'"},
		{in: ":/c", wantErr: "invalid volume specification: ':/c'"},
		{in: "", wantErr: "invalid volume specification: ''"},
		{in: "/h:", wantErr: "invalid volume specification: '/h:'"}, // "" is a valid mode, so a mode without a target
		{in: "/h:/c:ro,rw", wantErr: "invalid mode: ro,rw"},
		{in: "/h:/c:bogus", wantErr: "invalid mode: bogus"},
		{in: "/h:/c:shared,slave", wantErr: "invalid mode: shared,slave"},
		{in: "/h:/c:nocopy", wantErr: `invalid volume specification: '/h:/c:nocopy': invalid mount config for type "bind": field VolumeOptions must not be specified`},
		{in: "vol:/c:rshared", wantErr: `invalid volume specification: 'vol:/c:rshared': invalid mount config for type "volume": field BindOptions must not be specified`},
	})
}

func TestParseMountFlag(t *testing.T) {
	runSpecCases(t, ParseMountFlag, []specCase{
		{in: "type=bind,source=/h,target=/c", want: Spec{Type: "bind", Source: "/h", Target: "/c", Propagation: "rprivate"}},
		{in: "type=bind,src=/h,dst=/c,readonly,bind-propagation=rslave", want: Spec{Type: "bind", Source: "/h", Target: "/c", ReadOnly: true, Propagation: "rslave"}},
		{in: "Type=BIND,src=/h,destination=/c,ro=false,consistency=Cached", want: Spec{Type: "bind", Source: "/h", Target: "/c", Propagation: "rprivate", Consistency: "cached"}},
		{in: "type=bind,src=/h,dst=/c,bind-recursive=disabled", want: Spec{Type: "bind", Source: "/h", Target: "/c", Propagation: "rprivate", NonRecursive: true}},
		{in: "type=bind,src=/h,dst=/c,ro=1,bind-recursive=writable", want: Spec{Type: "bind", Source: "/h", Target: "/c", ReadOnly: true, Propagation: "rprivate", ReadOnlyNonRecursive: true}},
		{in: "type=bind,src=/h,dst=/c,ro,bind-recursive=readonly,bind-propagation=rprivate", want: Spec{Type: "bind", Source: "/h", Target: "/c", ReadOnly: true, Propagation: "rprivate", ReadOnlyForceRecursive: true}},
		{in: `type=bind,"src=/a,b",dst=/c`, want: Spec{Type: "bind", Source: "/a,b", Target: "/c", Propagation: "rprivate"}},
		{in: "src=vol,dst=/c", want: Spec{Type: "volume", Source: "vol", Target: "/c"}},
		{in: "target=/c", want: Spec{Type: "volume", Target: "/c"}},
		{in: "type=volume,src=vol,dst=/c,volume-nocopy,volume-label=a=b,volume-label=c,volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-driver=local,volume-subpath=sub/dir",
			want: Spec{Type: "volume", Source: "vol", Target: "/c", VolumeNoCopy: true, VolumeLabels: map[string]string{"a": "b", "c": ""},
				DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs"}, VolumeDriver: "local", VolumeSubpath: "sub/dir"}},
		{in: "type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1770", want: Spec{Type: "tmpfs", Target: "/t", TmpfsSize: 64 << 20, TmpfsMode: 0o1770}},
		{in: "type=tmpfs,dst=/t,ro", want: Spec{Type: "tmpfs", Target: "/t", ReadOnly: true}},

		{in: "type=tmpfs,dst=/t,tmpfs-size=abc", wantErr: "invalid value for tmpfs-size: abc"},
		{in: "type=tmpfs,dst=/t,tmpfs-mode=999", wantErr: "invalid value for tmpfs-mode: 999"},
		{in: "type=tmpfs,src=x,dst=/t", wantErr: `invalid mount config for type "tmpfs": field Source must not be specified`},
		{in: "type=bind,dst=/c", wantErr: `invalid mount config for type "bind": field Source must not be empty`},
		{in: "type=bind,src=rel,dst=/c", wantErr: `invalid mount config for type "bind": invalid mount path: 'rel' mount path must be absolute`},
		{in: "type=volume,src=v,dst=rel", wantErr: `invalid mount config for type "volume": invalid mount path: 'rel' mount path must be absolute`},
		{in: "type=volume,src=v,dst=/", wantErr: `invalid mount config for type "volume": invalid specification: destination can't be '/'`},
		{in: "type=volume,dst=/c,ro", wantErr: `invalid mount config for type "volume": must not set ReadOnly mode when using anonymous volumes`},
		{in: "type=volume,dst=/c,volume-subpath=x", wantErr: `invalid mount config for type "volume": must not set Subpath when using anonymous volumes`},
		{in: "type=volume,src=v,dst=/c,volume-subpath=../x", wantErr: `invalid mount config for type "volume": subpath must be a relative path within the volume`},
		{in: "type=bind,src=/h,dst=/c,bind-propagation=bogus", wantErr: `invalid mount config for type "bind": invalid propagation mode: bogus`},
		{in: "type=foo,dst=/c", wantErr: `invalid mount config for type "foo": mount type unknown`},
		{in: "src=/h", wantErr: "target is required"},
		{in: "type=bind,src=/h,dst=/c,volume-nocopy", wantErr: "cannot mix 'volume-*' options with mount type 'bind'"},
		{in: "type=volume,dst=/c,bind-propagation=shared", wantErr: "cannot mix 'bind-*' options with mount type 'volume'"},
		{in: "type=bind,src=/h,dst=/c,tmpfs-size=1m", wantErr: "cannot mix 'tmpfs-*' options with mount type 'bind'"},
		{in: "type=bind,src=/h,dst=/c,bind-recursive=readonly", wantErr: "option 'bind-recursive=readonly' requires 'readonly' to be specified in conjunction"},
		{in: "type=bind,src=/h,dst=/c,ro,bind-recursive=readonly", wantErr: "option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction"},
		{in: "type=bind,src=/h,dst=/c,bind-recursive=writable", wantErr: "option 'bind-recursive=writable' requires 'readonly' to be specified in conjunction"},
		{in: "type=bind,src=/h,dst=/c,bind-recursive=bogus", wantErr: `invalid value for bind-recursive: bogus (must be "enabled", "disabled", "writable", or "readonly")`},
		{in: "type=bind,src=/h,dst=/c,bind-nonrecursive", wantErr: "bind-nonrecursive is deprecated, use bind-recursive=disabled instead"},
		{in: "dst=/c,ro=maybe", wantErr: `invalid value for 'ro': invalid boolean value ("maybe"): must be one of "true", "1", "false", or "0"`},
		{in: "dst=/c,foo=bar", wantErr: "unexpected key 'foo' in 'foo=bar'"},
		{in: "dst=/c,foo", wantErr: "invalid field 'foo' must be a key=value pair"},
		{in: "dst= /c", wantErr: "invalid value for 'dst' in 'dst= /c': value should not have whitespace"},
		{in: " dst=/c", wantErr: "invalid option 'dst' in ' dst=/c': option should not have whitespace"},
		{in: "dst=", wantErr: "invalid value for 'dst': value is empty"},
	})
}

func TestParseTmpfsFlag(t *testing.T) {
	runSpecCases(t, ParseTmpfsFlag, []specCase{
		{in: "/run", want: Spec{Type: "tmpfs", Target: "/run"}},
		{in: "/run/:", want: Spec{Type: "tmpfs", Target: "/run"}},
		{in: "/run:rw,noexec,nosuid,size=65536k", want: Spec{Type: "tmpfs", Target: "/run", TmpfsSize: 64 << 20, TmpfsOptions: []string{"noexec", "nosuid"}}},
		{in: "/run:mode=1777,uid=1000,gid=1000", want: Spec{Type: "tmpfs", Target: "/run", TmpfsMode: 0o1777, TmpfsOptions: []string{"uid=1000", "gid=1000"}}},
		{in: "/run:size=50%,exec", want: Spec{Type: "tmpfs", Target: "/run", TmpfsOptions: []string{"size=50%", "exec"}}},
		{in: "/run:ro", want: Spec{Type: "tmpfs", Target: "/run", ReadOnly: true}},

		{in: "run", wantErr: "invalid mount path: 'run' mount path must be absolute"},
		{in: "/", wantErr: "invalid specification: destination can't be '/'"},
		{in: "", wantErr: "invalid mount path: '' mount path must be absolute"},
		{in: "/run:foo=bar", wantErr: `invalid tmpfs option "foo"`},
		{in: "/run:bind", wantErr: `invalid tmpfs option "bind"`},
		{in: "/run:mode=abc", wantErr: `invalid tmpfs option "mode=abc": invalid mode`},
		{in: "/run:size=lots", wantErr: `invalid tmpfs option "size=lots": invalid size`},
	})
}

func TestTmpfsMountOptions(t *testing.T) {
	sp := Spec{Type: "tmpfs", ReadOnly: true, TmpfsMode: 0o1770, TmpfsSize: 64 << 20, TmpfsOptions: []string{"uid=1"}}
	if got, want := sp.TmpfsMountOptions(), []string{"ro", "mode=1770", "size=64m", "uid=1"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	for n, want := range map[int64]string{1 << 30: "1g", 3 << 10: "3k", 1000: "1000", 1536 << 10: "1536k"} {
		if got := tmpfsSize(n); got != want {
			t.Errorf("tmpfsSize(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestCheckAndMakeSource(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "a", "b")
	m, err := ParseMountFlag("type=bind,src=" + missing + ",dst=/c")
	if err != nil {
		t.Fatal(err)
	}
	err = m.CheckSource()
	if err == nil || err.Error() != `invalid mount config for type "bind": bind source path does not exist: `+missing || !errdefs.Is(err, errdefs.KindInvalidArgument) {
		t.Errorf("--mount CheckSource = %v", err)
	}
	if err := m.MakeSource(); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(missing); !os.IsNotExist(err) {
		t.Error("MakeSource created a --mount source")
	}
	v, err := ParseVolumeFlag(missing + ":/c")
	if err != nil {
		t.Fatal(err)
	}
	if err := v.CheckSource(); err != nil {
		t.Errorf("-v CheckSource = %v", err)
	}
	if err := v.MakeSource(); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(missing); err != nil || !st.IsDir() {
		t.Errorf("-v source not created: %v", err)
	}
	if err := m.CheckSource(); err != nil {
		t.Errorf("existing --mount source: %v", err)
	}
	vol, _ := ParseVolumeFlag("vol:/c")
	if vol.CheckSource() != nil || vol.MakeSource() != nil {
		t.Error("volume specs need no source check")
	}
}

func TestFromMount(t *testing.T) {
	for _, tc := range []struct {
		m       mount.Mount
		want    Spec
		wantErr string
	}{
		{m: mount.Mount{Type: "bind", Source: "/h/", Target: "/c", BindOptions: &mount.BindOptions{CreateMountpoint: true}},
			want: Spec{Type: "bind", Source: "/h", Target: "/c", Propagation: "rprivate", CreateSource: true}},
		{m: mount.Mount{Type: "volume", Source: "v", Target: "/c", VolumeOptions: &mount.VolumeOptions{NoCopy: true, DriverConfig: &mount.Driver{Name: "local", Options: map[string]string{"type": "tmpfs"}}}},
			want: Spec{Type: "volume", Source: "v", Target: "/c", VolumeNoCopy: true, VolumeDriver: "local", DriverOpts: map[string]string{"type": "tmpfs"}}},
		{m: mount.Mount{Type: "tmpfs", Target: "/t", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20, Mode: 0o700, Options: [][]string{{"exec"}, {"uid", "1"}}}},
			want: Spec{Type: "tmpfs", Target: "/t", TmpfsSize: 1 << 20, TmpfsMode: 0o700, TmpfsOptions: []string{"exec", "uid=1"}}},
		{m: mount.Mount{Type: "bind", Source: "/h", Target: "/c", VolumeOptions: &mount.VolumeOptions{}},
			wantErr: `invalid mount config for type "bind": field VolumeOptions must not be specified`},
		{m: mount.Mount{Type: "volume", Target: "/c", BindOptions: &mount.BindOptions{}},
			wantErr: `invalid mount config for type "volume": field BindOptions must not be specified`},
		{m: mount.Mount{Type: "bind", Source: "/h"},
			wantErr: `invalid mount config for type "bind": field Target must not be empty`},
		{m: mount.Mount{Type: "image", Source: "busybox", Target: "/c"},
			wantErr: `invalid mount config for type "image": mount type not supported by berth`},
	} {
		got, err := FromMount(tc.m)
		if tc.wantErr != "" {
			if err == nil || err.Error() != tc.wantErr {
				t.Errorf("FromMount(%+v) = %v, want %s", tc.m, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("FromMount(%+v) = %+v, %v\nwant %+v", tc.m, got, err, tc.want)
		}
	}
}

// The parsers read user input: no panic, and what they accept has an
// absolute target and a known type.
func fuzzSpec(f *testing.F, parse func(string) (Spec, error), seeds ...string) {
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sp, err := parse(s)
		if err != nil {
			return
		}
		if !strings.HasPrefix(sp.Target, "/") || sp.Target == "/" {
			t.Errorf("%q: target %q", s, sp.Target)
		}
		if sp.Type != TypeBind && sp.Type != TypeVolume && sp.Type != TypeTmpfs {
			t.Errorf("%q: type %q", s, sp.Type)
		}
	})
}

func FuzzParseVolumeFlag(f *testing.F) {
	fuzzSpec(f, ParseVolumeFlag, "/d", "v:/d:ro", "/h:/c:ro,z,rshared", "a:b:c:d", "./x:/y")
}

func FuzzParseMountFlag(f *testing.F) {
	fuzzSpec(f, ParseMountFlag, "type=bind,src=/h,dst=/c", "type=tmpfs,dst=/t,tmpfs-size=1m", `"a=b,c",dst=/x`, "dst=/c,volume-opt=o=x")
}

func FuzzParseTmpfsFlag(f *testing.F) {
	fuzzSpec(f, ParseTmpfsFlag, "/run", "/run:size=1m,mode=700,noexec", "/x:size=50%")
}
