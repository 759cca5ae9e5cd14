package spec

import (
	"slices"
	"strings"
	"testing"
)

func TestMergeTmpfsOptions(t *testing.T) {
	tests := []struct {
		in   []string
		want []string
		err  bool
	}{
		{in: []string{"noexec", "nosuid", "exec"}, want: []string{"nosuid", "exec"}},
		{in: []string{"size=1m", "mode=700", "size=2m", "defaults"}, want: []string{"mode=700", "size=2m"}},
		{in: []string{"rprivate", "rshared"}, want: []string{"rshared"}},
		{in: []string{"ro", "rw"}, want: []string{"rw"}},
		{in: []string{"noswap", "uid=1000", "gid=1000", "nr_inodes=10"}, want: []string{"noswap", "uid=1000", "gid=1000", "nr_inodes=10"}},
		{in: []string{"size"}, err: true},
		{in: []string{"bogus=1"}, err: true},
		{in: []string{"noswap=1"}, err: true},
	}
	for _, tt := range tests {
		got, err := mergeTmpfsOptions(tt.in)
		if (err != nil) != tt.err {
			t.Errorf("mergeTmpfsOptions(%q) error %v, want error %v", tt.in, err, tt.err)
			continue
		}
		if !tt.err && !slices.Equal(got, tt.want) {
			t.Errorf("mergeTmpfsOptions(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSizeOption(t *testing.T) {
	for n, want := range map[int64]string{1 << 30: "1g", 3 << 20: "3m", 3072: "3k", 1536: "1536", 1000: "1000", 5 << 30: "5g"} {
		if got := sizeOption(n); got != want {
			t.Errorf("sizeOption(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestOverlayEnv(t *testing.T) {
	got := overlayEnv([]string{"A=1", "B=2", "C=3"}, []string{"B=x", "D=4", "A", "Z"})
	if want := []string{"B=x", "C=3", "D=4"}; !slices.Equal(got, want) {
		t.Errorf("overlayEnv = %q, want %q", got, want)
	}
}

func TestParseUserDBs(t *testing.T) {
	p, err := parsePasswd(strings.NewReader(testPasswdPortable))
	if err != nil {
		t.Fatal(err)
	}
	if len(p) != 2 || p[1].name != "app" || p[1].uid != 1000 || p[1].home != "/home/app" || p[0].home != "" {
		t.Errorf("passwd = %+v", p)
	}
	g, err := parseGroup(strings.NewReader("wheel:x:10: root , app\nbad:x:y:\nempty:x:11:\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(g) != 2 || !slices.Equal(g[0].members, []string{"root", "app"}) || g[1].members != nil {
		t.Errorf("group = %+v", g)
	}
	// An empty home falls back to "/".
	u, err := resolveUser("short", p, nil)
	if err != nil || u.home != "/" || u.uid != 7 {
		t.Errorf("short = %+v, %v", u, err)
	}
}

const testPasswdPortable = "short:x:7:7\napp:x:1000:1000::/home/app:/bin/sh\n\n#x:x:1:1::/:\n"

// FuzzUserDB feeds arbitrary passwd and group files and user specs (all
// chosen by the image or the user) through parsing and resolution: no
// panics, and a resolved id is always in range.
func FuzzUserDB(f *testing.F) {
	f.Add(testPasswdPortable, "wheel:x:10:app\n", "app:wheel", "10")
	f.Add("root:x:0:0:root:/root:/bin/sh\n", "", "", "")
	f.Add("a:x:-1:-1::/:\n", "g:x:99999999999:a\n", "a:g", "g")
	f.Fuzz(func(t *testing.T, passwd, group, user, add string) {
		p, err := parsePasswd(strings.NewReader(passwd))
		if err != nil {
			return
		}
		g, err := parseGroup(strings.NewReader(group))
		if err != nil {
			return
		}
		u, err := resolveUser(user, p, g)
		if err == nil && u.home == "" {
			t.Errorf("resolveUser(%q) gave an empty home", user)
		}
		_, _ = additionalGroups(strings.Split(add, ","), g)
	})
}
