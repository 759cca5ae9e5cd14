package registry

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-dev/berth/internal/errdefs"
)

// dockerHubKey is the key docker stores Docker Hub's credentials under.
const dockerHubKey = "https://index.docker.io/v1/"

// ErrNotLoggedIn is wrapped by Logout when the file holds no credentials for
// the registry.
var ErrNotLoggedIn = errors.New("not logged in")

// DefaultAuthFile is where berth keeps logins: $BERTH_CONFIG/auth.json,
// else ~/.config/berth/auth.json.
func DefaultAuthFile() string {
	if dir := os.Getenv("BERTH_CONFIG"); dir != "" {
		return filepath.Join(dir, "auth.json")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".config", "berth", "auth.json")
}

// DockerConfigFile is docker's credentials file: $DOCKER_CONFIG/config.json,
// else ~/.docker/config.json. berth reads it after its own.
func DockerConfigFile() string {
	if dir := os.Getenv("DOCKER_CONFIG"); dir != "" {
		return filepath.Join(dir, "config.json")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".docker", "config.json")
}

// normalizeServer reduces the ways users name a registry to berth login
// (https://host/v2/, host:port, docker.io, "") to host[:port], with Docker
// Hub as index.docker.io.
func normalizeServer(server string) string {
	s := strings.TrimSpace(server)
	s = strings.TrimPrefix(s, "https://")
	s = strings.TrimPrefix(s, "http://")
	if i := strings.IndexByte(s, '/'); i >= 0 {
		s = s[:i]
	}
	return APIHost(strings.ToLower(s))
}

// credentialKey is the key a registry's credentials are stored under: docker's
// own, so that the file stays readable by docker.
func credentialKey(server string) string {
	host := normalizeServer(server)
	if host == DockerHubHost {
		return dockerHubKey
	}
	return host
}

// authEntry is one registry's entry in a credentials file.
type authEntry struct {
	Auth          string `json:"auth,omitempty"`
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

func (e authEntry) config() (authn.AuthConfig, error) {
	cfg := authn.AuthConfig{Username: e.Username, Password: e.Password,
		IdentityToken: e.IdentityToken, RegistryToken: e.RegistryToken}
	if e.Auth != "" {
		raw, err := base64.StdEncoding.DecodeString(e.Auth)
		if err != nil {
			return cfg, fmt.Errorf("auth field is not base64: %w", err)
		}
		user, pass, ok := strings.Cut(string(raw), ":")
		if !ok {
			return cfg, errors.New("auth field is not user:password")
		}
		cfg.Username, cfg.Password = user, pass
	}
	return cfg, nil
}

func (e authEntry) empty() bool {
	return e.Auth == "" && e.Username == "" && e.Password == "" && e.IdentityToken == "" && e.RegistryToken == ""
}

// authFile is a credentials file in docker's config.json format. Keys
// other than auths (docker's credsStore, proxies, ...) are kept as they are.
type authFile struct {
	path  string
	other map[string]json.RawMessage
	auths map[string]authEntry
}

func readAuthFile(path string) (*authFile, error) {
	f := &authFile{path: path, other: map[string]json.RawMessage{}, auths: map[string]authEntry{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read credentials file: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return f, nil
	}
	if err := json.Unmarshal(data, &f.other); err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("credentials file %s is not valid JSON: %w", path, err))
	}
	if raw, ok := f.other["auths"]; ok {
		if err := json.Unmarshal(raw, &f.auths); err != nil {
			return nil, errdefs.InvalidArgument(fmt.Errorf("credentials file %s: auths: %w", path, err))
		}
		if f.auths == nil {
			f.auths = map[string]authEntry{}
		}
	}
	return f, nil
}

// lookup returns the keys under which f holds host's credentials.
func (f *authFile) lookup(host string) []string {
	var keys []string
	for k := range f.auths {
		if normalizeServer(k) == host {
			keys = append(keys, k)
		}
	}
	return keys
}

// write replaces the file atomically, readable by its owner only.
func (f *authFile) write() error {
	auths, err := json.Marshal(f.auths)
	if err != nil {
		return err
	}
	f.other["auths"] = auths
	data, err := json.MarshalIndent(f.other, "", "\t")
	if err != nil {
		return err
	}
	data = append(data, '\n')
	dir := filepath.Dir(f.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write credentials file: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".auth-*.json")
	if err != nil {
		return fmt.Errorf("write credentials file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write credentials file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write credentials file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write credentials file: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return fmt.Errorf("write credentials file: %w", err)
	}
	return nil
}

// FileKeychain finds credentials in files of docker's config.json format
// ("auths" entries with a base64 "auth"), the first file that names the
// registry winning: pass berth's file, then docker's. Missing files are
// skipped; the files are read at each lookup, so a login made meanwhile is
// seen. Credential helpers (credsStore, credHelpers) are not run.
func FileKeychain(paths ...string) authn.Keychain {
	return fileKeychain(paths)
}

type fileKeychain []string

func (k fileKeychain) Resolve(res authn.Resource) (authn.Authenticator, error) {
	host := normalizeServer(res.RegistryStr())
	for _, p := range k {
		if p == "" {
			continue
		}
		f, err := readAuthFile(p)
		if err != nil {
			return nil, err
		}
		for _, key := range f.lookup(host) {
			e := f.auths[key]
			if e.empty() {
				continue
			}
			cfg, err := e.config()
			if err != nil {
				return nil, errdefs.InvalidArgument(fmt.Errorf("credentials file %s, entry %s: %w", p, key, err))
			}
			return authn.FromConfig(cfg), nil
		}
	}
	return authn.Anonymous, nil
}

// Login checks user and password against server's registry (an
// authenticated GET /v2/, with the registry's token exchange if it asks for
// one) and, if they are accepted, stores them in the credentials file at
// path under docker's key for the server.
func Login(ctx context.Context, server, user, password, path string, opts Options) error {
	host := normalizeServer(server)
	if user == "" || password == "" {
		return errdefs.InvalidArgument(fmt.Errorf("login to %s: username and password are required", host))
	}
	if err := verifyLogin(ctx, host, authn.AuthConfig{Username: user, Password: password}, opts); err != nil {
		return err
	}
	f, err := readAuthFile(path)
	if err != nil {
		return err
	}
	for _, k := range f.lookup(host) {
		delete(f.auths, k)
	}
	f.auths[credentialKey(host)] = authEntry{Auth: base64.StdEncoding.EncodeToString([]byte(user + ":" + password))}
	return f.write()
}

func verifyLogin(ctx context.Context, host string, cfg authn.AuthConfig, opts Options) error {
	what := "login to " + host
	reg, err := opts.registry(host)
	if err != nil {
		return err
	}
	base, closeIdle, err := opts.baseTransport(reg.RegistryStr())
	if err != nil {
		return err
	}
	defer closeIdle()
	repo := reg.Repo("login")
	rt, err := transport.NewWithContext(ctx, reg, authn.FromConfig(cfg), base, nil)
	if err != nil {
		return loginError(err, what, repo.Registry.RegistryStr())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, reg.Scheme()+"://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return loginError(err, what, reg.RegistryStr())
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if err := transport.CheckError(resp, http.StatusOK); err != nil {
		return loginError(err, what, reg.RegistryStr())
	}
	return nil
}

func loginError(err error, what, host string) error {
	var terr *transport.Error
	if errors.As(err, &terr) && (terr.StatusCode == http.StatusUnauthorized || terr.StatusCode == http.StatusForbidden ||
		hasCode(terr, transport.UnauthorizedErrorCode) || hasCode(terr, transport.DeniedErrorCode)) {
		return errdefs.Permission(fmt.Errorf("%s: wrong username or password (%s)", what, registryMessage(terr)))
	}
	reg, _ := Options{}.registry(host)
	return explain(err, what, reg.Repo("login"), true)
}

// Logout removes server's credentials from the file at path. It returns an
// error wrapping ErrNotLoggedIn when the file holds none.
func Logout(server, path string) error {
	host := normalizeServer(server)
	f, err := readAuthFile(path)
	if err != nil {
		return err
	}
	keys := f.lookup(host)
	if len(keys) == 0 {
		return errdefs.NotFound(fmt.Errorf("logout from %s: %w", host, ErrNotLoggedIn))
	}
	for _, k := range keys {
		delete(f.auths, k)
	}
	return f.write()
}
