package registry

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/internal/errdefs"
)

// TestLoginPushPull logs in to a registry with basic auth, pushes and pulls
// with the stored credentials, and logs out.
func TestLoginPushPull(t *testing.T) {
	host := startRegistry(t, registryConfig{auth: true})
	ctx := context.Background()
	src := newStore(t)
	mdesc := putImage(t, src, hostPlatform(), gzipLayer(t, tarFiles(t, map[string][]byte{"secret": []byte("42\n")})))
	ref := mustRef(t, host+"/private/app:v1")
	authFile := filepath.Join(t.TempDir(), "berth", "auth.json")
	opts := Options{Keychain: FileKeychain(authFile)}

	// Without credentials.
	_, err := Push(ctx, src, ref, mdesc, PushOptions{Options: opts})
	if !errdefs.Is(err, errdefs.KindPermission) || !strings.Contains(err.Error(), "berth login "+host) {
		t.Errorf("push without login: %v", err)
	}

	// Wrong password: refused, nothing stored.
	err = Login(ctx, host, testUser, "wrong", authFile, Options{})
	if !errdefs.Is(err, errdefs.KindPermission) || !strings.Contains(err.Error(), "wrong username or password") {
		t.Errorf("login with a wrong password: %v", err)
	}
	if _, err := os.Stat(authFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed login wrote %s: %v", authFile, err)
	}

	if err := Login(ctx, "http://"+host+"/v2/", testUser, testPassword, authFile, Options{}); err != nil {
		t.Fatalf("login: %v", err)
	}
	f, err := readAuthFile(authFile)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := f.auths[host].Auth, base64.StdEncoding.EncodeToString([]byte(testUser+":"+testPassword)); got != want {
		t.Errorf("stored auth %q under %s, want %q (file %+v)", got, host, want, f.auths)
	}
	if fi, err := os.Stat(authFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("credentials file mode: %v, %v", fi, err)
	}

	if _, err := Push(ctx, src, ref, mdesc, PushOptions{Options: opts}); err != nil {
		t.Fatalf("push after login: %v", err)
	}
	if _, err := Pull(ctx, newStore(t), ref, PullOptions{Options: opts}); err != nil {
		t.Fatalf("pull after login: %v", err)
	}

	// Pull anonymously: denied, with the hint.
	_, err = Pull(ctx, newStore(t), ref, PullOptions{})
	if !errdefs.Is(err, errdefs.KindPermission) || !strings.Contains(err.Error(), "may require 'berth login "+host+"'") {
		t.Errorf("anonymous pull: %v", err)
	}

	// Wrong stored credentials: said so.
	bad := filepath.Join(t.TempDir(), "config.json")
	writeFile(t, bad, []byte(`{"auths":{"`+host+`":{"auth":"`+base64.StdEncoding.EncodeToString([]byte(testUser+":nope"))+`"}}}`))
	_, err = Pull(ctx, newStore(t), ref, PullOptions{Options: Options{Keychain: FileKeychain(bad)}})
	if !errdefs.Is(err, errdefs.KindPermission) || !strings.Contains(err.Error(), "refused the credentials") {
		t.Errorf("pull with wrong credentials: %v", err)
	}
	// The first file that knows the registry wins; a later one is a fallback.
	if _, err := Pull(ctx, newStore(t), ref, PullOptions{Options: Options{Keychain: FileKeychain(filepath.Join(t.TempDir(), "missing.json"), authFile)}}); err != nil {
		t.Errorf("pull with credentials from the fallback file: %v", err)
	}

	if err := Logout(host, authFile); err != nil {
		t.Fatalf("logout: %v", err)
	}
	if f, _ := readAuthFile(authFile); len(f.auths) != 0 {
		t.Errorf("credentials left after logout: %+v", f.auths)
	}
	if err := Logout(host, authFile); !errors.Is(err, ErrNotLoggedIn) {
		t.Errorf("second logout: %v", err)
	}
	_, err = Pull(ctx, newStore(t), ref, PullOptions{Options: opts})
	if !errdefs.Is(err, errdefs.KindPermission) {
		t.Errorf("pull after logout: %v", err)
	}
}
