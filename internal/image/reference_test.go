package image

import (
	"errors"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

const (
	hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	dgst  = "sha256:" + hex64
)

func TestParseReference(t *testing.T) {
	tests := []struct {
		in       string
		want     string // String()
		familiar string // Familiar()
		domain   string
		path     string
	}{
		{"busybox", "docker.io/library/busybox", "busybox", "docker.io", "library/busybox"},
		{"busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36", "docker.io", "library/busybox"},
		{"busybox:Latest_1.2-x", "docker.io/library/busybox:Latest_1.2-x", "busybox:Latest_1.2-x", "docker.io", "library/busybox"},
		{"library/busybox", "docker.io/library/busybox", "busybox", "docker.io", "library/busybox"},
		{"docker.io/busybox", "docker.io/library/busybox", "busybox", "docker.io", "library/busybox"},
		{"index.docker.io/library/busybox:latest", "docker.io/library/busybox:latest", "busybox:latest", "docker.io", "library/busybox"},
		{"user/app", "docker.io/user/app", "user/app", "docker.io", "user/app"},
		{"docker.io/library/a/b", "docker.io/library/a/b", "library/a/b", "docker.io", "library/a/b"},
		{"localhost/app", "localhost/app", "localhost/app", "localhost", "app"},
		{"localhost:5000/x/y@" + dgst, "localhost:5000/x/y@" + dgst, "localhost:5000/x/y@" + dgst, "localhost:5000", "x/y"},
		{"localhost:5000/x/y:v1@" + dgst, "localhost:5000/x/y:v1@" + dgst, "localhost:5000/x/y:v1@" + dgst, "localhost:5000", "x/y"},
		{"busybox@" + dgst, "docker.io/library/busybox@" + dgst, "busybox@" + dgst, "docker.io", "library/busybox"},
		{"ghcr.io/owner/repo:v1.2.3", "ghcr.io/owner/repo:v1.2.3", "ghcr.io/owner/repo:v1.2.3", "ghcr.io", "owner/repo"},
		{"Registry.Example.com/foo", "Registry.Example.com/foo", "Registry.Example.com/foo", "Registry.Example.com", "foo"},
		{"[::1]:5000/foo:bar", "[::1]:5000/foo:bar", "[::1]:5000/foo:bar", "[::1]:5000", "foo"},
		{"192.168.1.1:5000/a_b/c__d/e-f/g--h/i.j", "192.168.1.1:5000/a_b/c__d/e-f/g--h/i.j", "192.168.1.1:5000/a_b/c__d/e-f/g--h/i.j", "192.168.1.1:5000", "a_b/c__d/e-f/g--h/i.j"},
		// As in docker: a port with no path is a tag.
		{"localhost:5000", "docker.io/library/localhost:5000", "localhost:5000", "docker.io", "library/localhost"},
		// Docker would show foo.bar/baz, which reads back as registry foo.bar.
		{"docker.io/foo.bar/baz", "docker.io/foo.bar/baz", "docker.io/foo.bar/baz", "docker.io", "foo.bar/baz"},
		{"abc123", "docker.io/library/abc123", "abc123", "docker.io", "library/abc123"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := ParseReference(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if r.String() != tt.want || r.Familiar() != tt.familiar || r.Domain != tt.domain || r.Path != tt.path {
				t.Fatalf("got %s / %s (domain %q path %q), want %s / %s (domain %q path %q)",
					r, r.Familiar(), r.Domain, r.Path, tt.want, tt.familiar, tt.domain, tt.path)
			}
			for _, again := range []string{r.String(), r.Familiar()} {
				if r2, err := ParseReference(again); err != nil || r2 != r {
					t.Fatalf("reparse %q = %+v, %v", again, r2, err)
				}
			}
		})
	}
}

func TestParseReferenceErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `invalid reference format: "": empty reference`},
		{"Foo", `invalid reference format: "Foo": repository name must be lowercase`},
		{"foo/Bar:tag", "must be lowercase"},
		{"busybox:", "invalid tag format"},
		{"busybox:-x", "invalid tag format"},
		{"busybox:" + strings.Repeat("a", 129), "invalid tag format"},
		{"busybox:a b", "invalid tag format"},
		{":latest", "at least one component"},
		{"@" + dgst, "at least one component"},
		{"busybox@sha256:abc", "invalid digest format"},
		{"busybox@sha256:" + strings.ToUpper(hex64), "invalid digest"},
		{"busybox@md5:" + hex64[:32], "unsupported digest algorithm"},
		{"busybox@" + dgst + "@x", "invalid digest"},
		{"a::b", "must start and end"},
		{"foo//bar", "empty component"},
		{"foo/-bar", "must start and end"},
		{"foo..bar", `invalid separator ".."`},
		{"foo___bar", `invalid separator "___"`},
		{"foo-_bar", `invalid separator "-_"`},
		{hex64, "64-byte hexadecimal"},
		{"host:abc/x", "invalid registry host"},
		{"-host.com/x", "invalid registry host"},
		{"host-.com/x", "invalid registry host"},
		{"[::1/x", "invalid registry host"},
		{"[zz]:5000/x", "invalid registry host"},
		{"example.com/" + strings.Repeat("a", 250), "not be more than 255 characters"},
		{" busybox", "must start and end"},
		{"busybox ", "must start and end"},
		{"busy box", "invalid separator"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			r, err := ParseReference(tt.in)
			if err == nil {
				t.Fatalf("parsed as %s, want an error", r)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "invalid reference format: ") {
				t.Fatalf("error %q, want it to contain %q", err, tt.want)
			}
			var re *ReferenceError
			if !errors.Is(err, ErrInvalidReference) || !errors.As(err, &re) || re.Input != tt.in {
				t.Fatalf("error %v does not wrap a ReferenceError for the input", err)
			}
			if !errdefs.Is(err, errdefs.KindInvalidArgument) {
				t.Fatalf("error %v is not an invalid argument", err)
			}
		})
	}
}

func TestWithDefaultTag(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":           "docker.io/library/busybox:latest",
		"busybox:1":         "docker.io/library/busybox:1",
		"busybox@" + dgst:   "docker.io/library/busybox@" + dgst,
		"x/y:t@" + dgst:     "docker.io/x/y:t@" + dgst,
		"localhost:5000/ab": "localhost:5000/ab:latest",
	} {
		r, err := ParseReference(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.WithDefaultTag().String(); got != want {
			t.Errorf("%s: got %s, want %s", in, got, want)
		}
	}
}

func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"busybox", "busybox:1.36", "localhost:5000/x/y@" + dgst, "[::1]:5000/foo:bar",
		"docker.io/foo.bar/baz", "Foo", "a::b", "index.docker.io/library/busybox:latest", hex64, "x/y:t@" + dgst} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseReference(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidReference) || !strings.HasPrefix(err.Error(), "invalid reference format: ") {
				t.Fatalf("%q: error %v is not a reference error", s, err)
			}
			return
		}
		for _, again := range []string{r.String(), r.Familiar()} {
			r2, err := ParseReference(again)
			if err != nil || r2 != r {
				t.Fatalf("%q parsed as %+v; its form %q reparses as %+v, %v", s, r, again, r2, err)
			}
		}
		if len(r.Name()) > maxNameLength {
			t.Fatalf("%q: name longer than %d", s, maxNameLength)
		}
	})
}
