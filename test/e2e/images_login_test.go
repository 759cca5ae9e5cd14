package e2e

import (
	"strings"
	"testing"
)

// TestImagePushLogin pushes to and pulls from a registry that wants a
// password: refused before `berth login`, accepted after, refused again
// after `berth logout`.
func TestImagePushLogin(t *testing.T) {
	reg := startRegistryWith(t, true)
	e := newImageEnv(t)
	ref := reg + "/private/busybox:v1"
	e.must("import", busyboxTar(t), ref)

	e.fails("berth login "+reg, "push", ref)
	e.fails("wrong username or password", "login", "-u", testUser, "-p", "wrong", reg)
	res := e.berthStdin(strings.NewReader(testPassword+"\n"), "login", "-u", testUser, "--password-stdin", reg)
	if res.code != 0 || strings.TrimSpace(res.stdout) != "Login Succeeded" {
		t.Fatalf("login --password-stdin: %+v", res)
	}
	e.must("push", ref)
	e.must("rmi", ref)
	if out := e.must("pull", ref); !strings.Contains(out, "Status: Downloaded newer image for "+ref) {
		t.Errorf("pull after login:\n%s", out)
	}

	if out := e.must("logout", reg); strings.TrimSpace(out) != "Removing login credentials for "+reg {
		t.Errorf("logout: %q", out)
	}
	if out := e.must("logout", reg); strings.TrimSpace(out) != "Not logged in to "+reg {
		t.Errorf("second logout: %q", out)
	}
	e.must("rmi", ref)
	e.fails("berth login "+reg, "pull", ref)
}
