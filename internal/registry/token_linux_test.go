package registry

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/internal/errdefs"
)

// tokenServer issues the JWTs distribution's token auth accepts (ES256,
// signed by a certificate in the registry's rootcertbundle, sent as x5c) to
// testUser, and tokens without access to anonymous clients.
type tokenServer struct {
	key     *ecdsa.PrivateKey
	certDER []byte
	issued  atomic.Int32
}

const (
	tokenIssuer  = "berth-test-issuer"
	tokenService = "berth-test-registry"
)

func newTokenServer(t *testing.T) (ts *tokenServer, realm, bundle string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "berth test token signer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ts = &tokenServer{key: key, certDER: der}
	bundle = filepath.Join(t.TempDir(), "token.pem")
	writeFile(t, bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(ts.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })
	// "localhost", not 127.0.0.1: go-containerregistry refuses realms on
	// private IP literals other than the registry's own host:port.
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return ts, "http://localhost:" + port + "/token", bundle
}

func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	var access []map[string]any
	user, pass, hasAuth := r.BasicAuth()
	if hasAuth && (user != testUser || pass != testPassword) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"invalid username or password"}]}`))
		return
	}
	if hasAuth {
		for _, scope := range r.URL.Query()["scope"] {
			parts := strings.SplitN(scope, ":", 3)
			if len(parts) == 3 {
				access = append(access, map[string]any{"type": parts[0], "name": parts[1], "actions": strings.Split(parts[2], ",")})
			}
		}
	}
	now := time.Now()
	claims := map[string]any{
		"iss": tokenIssuer, "sub": user, "aud": r.URL.Query().Get("service"),
		"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
		"jti": base64.RawURLEncoding.EncodeToString(big.NewInt(now.UnixNano()).Bytes()), "access": access,
	}
	header := map[string]any{"typ": "JWT", "alg": "ES256", "x5c": []string{base64.StdEncoding.EncodeToString(ts.certDER)}}
	enc := func(v any) string {
		data, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(data)
	}
	signing := enc(header) + "." + enc(claims)
	sum := sha256.Sum256([]byte(signing))
	rr, ss, err := ecdsa.Sign(rand.Reader, ts.key, sum[:])
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	sig := make([]byte, 64)
	rr.FillBytes(sig[:32])
	ss.FillBytes(sig[32:])
	token := signing + "." + base64.RawURLEncoding.EncodeToString(sig)
	ts.issued.Add(1)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token": token, "expires_in": 300, "issued_at": now.Format(time.RFC3339)})
}

// TestTokenAuth pushes and pulls through a registry that wants bearer
// tokens from a token server, as Docker Hub and most registries do.
func TestTokenAuth(t *testing.T) {
	ts, realm, bundle := newTokenServer(t)
	host := startRegistry(t, registryConfig{token: &tokenAuth{realm: realm, bundle: bundle}})
	ctx := context.Background()
	src := newStore(t)
	mdesc := putImage(t, src, hostPlatform(), gzipLayer(t, tarFiles(t, map[string][]byte{"token": []byte("yes\n")})))
	ref := mustRef(t, host+"/team/app:v1")
	authFile := filepath.Join(t.TempDir(), "auth.json")
	opts := Options{Keychain: FileKeychain(authFile)}

	_, err := Push(ctx, src, ref, mdesc, PushOptions{Options: opts})
	t.Logf("anonymous push: %v", err)
	if !errdefs.Is(err, errdefs.KindPermission) || !strings.Contains(err.Error(), "berth login") {
		t.Errorf("anonymous push: %v", err)
	}
	if err := Login(ctx, host, testUser, "wrong", authFile, Options{}); !errdefs.Is(err, errdefs.KindPermission) ||
		!strings.Contains(err.Error(), "wrong username or password") {
		t.Errorf("login with a wrong password: %v", err)
	}
	if err := Login(ctx, host, testUser, testPassword, authFile, Options{}); err != nil {
		t.Fatalf("login: %v", err)
	}
	if _, err := Push(ctx, src, ref, mdesc, PushOptions{Options: opts}); err != nil {
		t.Fatalf("push: %v", err)
	}
	res, err := Pull(ctx, newStore(t), ref, PullOptions{Options: opts})
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	if res.RepoDigest != mdesc.Digest {
		t.Errorf("repo digest %s, want %s", res.RepoDigest, mdesc.Digest)
	}
	if ts.issued.Load() == 0 {
		t.Error("no token was issued")
	}
}
