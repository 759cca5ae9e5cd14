// Package registry pulls images from and pushes images to registries that
// speak the distribution (v2) API, over go-containerregistry's transport:
// token and basic auth, credentials in docker's config.json format, plain
// HTTP for loopback and for registries the user marks insecure, and CAs from a
// certs.d directory as docker's /etc/docker/certs.d. Blobs go into (and come
// from) the content store; unpacking layers is the caller's business.
package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
)

// DockerHubHost is where docker.io's registry API answers.
const DockerHubHost = "index.docker.io"

// Options say how to reach registries; the zero value reaches them
// anonymously over verified TLS (plain HTTP only on loopback).
type Options struct {
	// Keychain finds credentials for a registry (see FileKeychain); nil
	// means anonymous.
	Keychain authn.Keychain
	// Insecure lists registries ("host", "host:port" or a CIDR) that may be
	// reached over plain HTTP, or over TLS without verifying the
	// certificate, as docker's --insecure-registry.
	Insecure []string
	// CertsDir holds a directory per registry ("host:port" or "host") with
	// extra CAs (*.crt) and client certificates (*.cert with its *.key),
	// as docker's /etc/docker/certs.d; "" for none.
	CertsDir string
	// UserAgent is sent with every request; "" for go-containerregistry's.
	UserAgent string
}

// APIHost returns the host[:port] a registry domain's API answers on:
// docker.io's is index.docker.io.
func APIHost(domain string) string {
	switch domain {
	case "", image.DefaultDomain, DockerHubHost, "registry-1.docker.io":
		return DockerHubHost
	}
	return domain
}

// repository returns ref's repository as go-containerregistry names it,
// marked insecure when plain HTTP is allowed for its registry.
func (o Options) repository(ref image.Reference) (name.Repository, error) {
	reg, err := o.registry(ref.Domain)
	if err != nil {
		return name.Repository{}, err
	}
	return reg.Repo(ref.Path), nil
}

func (o Options) registry(domain string) (name.Registry, error) {
	host := APIHost(domain)
	var nopts []name.Option
	if o.plainHTTPAllowed(host) {
		nopts = append(nopts, name.Insecure)
	}
	reg, err := name.NewRegistry(host, nopts...)
	if err != nil {
		return name.Registry{}, errdefs.InvalidArgument(fmt.Errorf("registry %q: %w", domain, err))
	}
	return reg, nil
}

// plainHTTPAllowed reports whether host (host[:port]) may be reached over
// plain HTTP: loopback always, others when listed in Insecure.
func (o Options) plainHTTPAllowed(host string) bool {
	h := hostOnly(host)
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	if ip != nil && ip.IsLoopback() {
		return true
	}
	return o.isInsecure(host)
}

func (o Options) isInsecure(host string) bool {
	h := hostOnly(host)
	ip := net.ParseIP(h)
	for _, entry := range o.Insecure {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		if _, block, err := net.ParseCIDR(entry); err == nil {
			if ip != nil && block.Contains(ip) {
				return true
			}
			continue
		}
		e := normalizeServer(entry)
		if e == host || e == h || APIHost(e) == host {
			return true
		}
	}
	return false
}

// hostOnly strips the port from host[:port], and the brackets from an IPv6
// address.
func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return strings.Trim(host, "[]")
}

// baseTransport is what every request to host goes through, below the
// authentication: TLS with certs.d's CAs, the plain HTTP guard, retries of
// network flakes. closeIdle releases its idle connections.
func (o Options) baseTransport(host string) (rt http.RoundTripper, closeIdle func(), err error) {
	tlsConfig, err := o.tlsConfig(host)
	if err != nil {
		return nil, nil, err
	}
	t := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   30 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   50,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: 5 * time.Minute,
		TLSClientConfig:       tlsConfig,
	}
	rt = transport.NewRetry(&httpGuard{inner: t, o: o})
	if o.UserAgent != "" {
		rt = transport.NewUserAgent(rt, o.UserAgent)
	}
	return rt, t.CloseIdleConnections, nil
}

// tlsConfig trusts the system's CAs plus those under CertsDir/<host>, and
// presents the client certificate found there; Insecure registries are not
// verified.
func (o Options) tlsConfig(host string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.isInsecure(host) {
		cfg.InsecureSkipVerify = true
	}
	if o.CertsDir == "" {
		return cfg, nil
	}
	dirs := []string{host}
	if h := hostOnly(host); h != host {
		dirs = append(dirs, h)
	}
	if host == DockerHubHost {
		dirs = append(dirs, image.DefaultDomain)
	}
	for _, d := range dirs {
		dir := filepath.Join(o.CertsDir, filepath.Clean("/" + d)[1:])
		entries, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read certificates for %s: %w", host, err)
		}
		for _, e := range entries {
			p := filepath.Join(dir, e.Name())
			switch {
			case strings.HasSuffix(e.Name(), ".crt"):
				pem, err := os.ReadFile(p)
				if err != nil {
					return nil, fmt.Errorf("read CA for %s: %w", host, err)
				}
				if cfg.RootCAs == nil {
					if cfg.RootCAs, err = x509.SystemCertPool(); err != nil || cfg.RootCAs == nil {
						cfg.RootCAs = x509.NewCertPool()
					}
				}
				if !cfg.RootCAs.AppendCertsFromPEM(pem) {
					return nil, errdefs.InvalidArgument(fmt.Errorf("CA file %s for %s holds no PEM certificate", p, host))
				}
			case strings.HasSuffix(e.Name(), ".cert"):
				key := strings.TrimSuffix(p, ".cert") + ".key"
				pair, err := tls.LoadX509KeyPair(p, key)
				if err != nil {
					return nil, errdefs.InvalidArgument(fmt.Errorf("client certificate %s for %s (with key %s): %w", p, host, key, err))
				}
				cfg.Certificates = append(cfg.Certificates, pair)
			}
		}
		break
	}
	return cfg, nil
}

// httpGuard refuses plain HTTP to hosts where it is not allowed, whatever
// go-containerregistry's own heuristics (it tries HTTP on private networks)
// or a redirect would do.
type httpGuard struct {
	inner http.RoundTripper
	o     Options
}

func (g *httpGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.o.plainHTTPAllowed(req.URL.Host) {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, errdefs.Permission(fmt.Errorf("plain HTTP to %s is not allowed: mark the registry insecure to allow it", req.URL.Host))
	}
	return g.inner.RoundTrip(req)
}

// session is an authenticated connection to one repository. close
// releases its connections.
type session struct {
	repo   name.Repository
	rt     http.RoundTripper
	authed bool // whether credentials were found for the registry
	close  func()
}

// connect pings repo's registry and authenticates for scopes (pull, or push
// and pull), as the registry's challenge asks.
func (o Options) connect(ctx context.Context, repo name.Repository, scopes ...string) (*session, error) {
	base, closeIdle, err := o.baseTransport(repo.RegistryStr())
	if err != nil {
		return nil, err
	}
	auth, err := o.authenticator(repo)
	if err != nil {
		closeIdle()
		return nil, err
	}
	authed := auth != authn.Anonymous
	full := make([]string, len(scopes))
	for i, s := range scopes {
		full[i] = repo.Scope(s)
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth, base, full)
	if err != nil {
		closeIdle()
		return nil, explain(err, "connect to "+repo.RegistryStr(), repo, authed)
	}
	return &session{repo: repo, rt: rt, authed: authed, close: closeIdle}, nil
}

func (o Options) authenticator(res authn.Resource) (authn.Authenticator, error) {
	if o.Keychain == nil {
		return authn.Anonymous, nil
	}
	auth, err := o.Keychain.Resolve(res)
	if err != nil {
		return nil, fmt.Errorf("credentials for %s: %w", res.RegistryStr(), err)
	}
	if auth == nil {
		return authn.Anonymous, nil
	}
	return auth, nil
}

func (s *session) client() *http.Client { return &http.Client{Transport: s.rt} }

func (s *session) url(path string) string {
	return fmt.Sprintf("%s://%s/v2/%s/%s", s.repo.Scheme(), s.repo.RegistryStr(), s.repo.RepositoryStr(), path)
}

// explain turns an error from the registry into one sentence for users,
// classified: what failed, on what, and a hint.
func explain(err error, what string, repo name.Repository, authed bool) error {
	if err == nil {
		return nil
	}
	if ctxErr := contextError(err); ctxErr != nil {
		return fmt.Errorf("%s: %w", what, ctxErr)
	}
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	if errors.As(err, &certErr) || errors.As(err, &unknownAuth) {
		return errdefs.Unavailable(fmt.Errorf("%s: %w (add its CA as <certs.d>/%s/ca.crt, or mark the registry insecure)", what, certError(err), repo.RegistryStr()))
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		msg := registryMessage(terr)
		switch {
		case terr.StatusCode == http.StatusUnauthorized || hasCode(terr, transport.UnauthorizedErrorCode):
			if authed {
				return errdefs.Permission(fmt.Errorf("%s: the registry %s refused the credentials (%s); check them with '%s'",
					what, repo.RegistryStr(), msg, loginCommand(repo.RegistryStr())))
			}
			return errdefs.Permission(fmt.Errorf("%s: access denied for %s, the repository does not exist or may require '%s' (%s)",
				what, repo.Name(), loginCommand(repo.RegistryStr()), msg))
		case terr.StatusCode == http.StatusForbidden || hasCode(terr, transport.DeniedErrorCode):
			return errdefs.Permission(fmt.Errorf("%s: access to %s denied (%s)", what, repo.Name(), msg))
		case terr.StatusCode == http.StatusNotFound || hasCode(terr, transport.ManifestUnknownErrorCode) ||
			hasCode(terr, transport.NameUnknownErrorCode) || hasCode(terr, transport.BlobUnknownErrorCode):
			return errdefs.NotFound(fmt.Errorf("%s: not found in %s (%s)", what, repo.Name(), msg))
		case terr.StatusCode == http.StatusTooManyRequests || hasCode(terr, transport.TooManyRequestsErrorCode):
			return errdefs.Unavailable(fmt.Errorf("%s: the registry %s limits requests, try again later (%s)", what, repo.RegistryStr(), msg))
		case terr.StatusCode >= 500:
			return errdefs.Unavailable(fmt.Errorf("%s: the registry %s failed (%s)", what, repo.RegistryStr(), msg))
		}
		return fmt.Errorf("%s: %s", what, msg)
	}
	if errdefs.KindOf(err) != errdefs.KindUnknown {
		return fmt.Errorf("%s: %w", what, err)
	}
	var netErr net.Error
	var opErr *net.OpError
	if errors.As(err, &netErr) || errors.As(err, &opErr) {
		return errdefs.Unavailable(fmt.Errorf("%s: %w", what, err))
	}
	return fmt.Errorf("%s: %w", what, err)
}

// contextError returns the context error err carries, if any: a cancelled
// pull reads as cancelled, not as a network failure.
func contextError(err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return context.DeadlineExceeded
	}
	return nil
}

// certError picks the certificate error out of err (which may hold the
// failures of both HTTPS and plain HTTP).
func certError(err error) error {
	var certErr *tls.CertificateVerificationError
	if errors.As(err, &certErr) {
		return certErr
	}
	var unknownAuth x509.UnknownAuthorityError
	if errors.As(err, &unknownAuth) {
		return unknownAuth
	}
	return err
}

func hasCode(e *transport.Error, code transport.ErrorCode) bool {
	for _, d := range e.Errors {
		if d.Code == code {
			return true
		}
	}
	return false
}

// registryMessage is what the registry said, without the request's URL:
// "authentication required".
func registryMessage(e *transport.Error) string {
	if len(e.Errors) == 0 {
		return fmt.Sprintf("%d %s", e.StatusCode, http.StatusText(e.StatusCode))
	}
	parts := make([]string, 0, len(e.Errors))
	for _, d := range e.Errors {
		msg := d.Message
		if msg == "" {
			msg = strings.ReplaceAll(strings.ToLower(string(d.Code)), "_", " ")
		}
		parts = append(parts, msg)
	}
	return strings.Join(parts, "; ")
}

// loginCommand is the login users would type for the registry at host.
func loginCommand(host string) string {
	if host == DockerHubHost {
		return "berth login"
	}
	return "berth login " + host
}
