package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
)

func hostPlatform() ocispec.Platform {
	return ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
}

// TestPushPullBusybox pushes a busybox image made here, pulls it into a
// fresh store, and checks that every digest survived the round trip.
func TestPushPullBusybox(t *testing.T) {
	host := startRegistry(t, registryConfig{})
	ctx := context.Background()
	src := newStore(t)
	bb := busybox(t)
	mdesc := putImage(t, src, hostPlatform(), bb)
	ref := mustRef(t, host+"/test/busybox:1.0")

	var pushOut bytes.Buffer
	pp := NewPrinter(&pushOut, false)
	pp.Pushing(ref)
	pushed, err := Push(ctx, src, ref, mdesc, PushOptions{Progress: pp})
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	pp.PushDone(pushed)
	if pushed.Uploaded != 2 {
		t.Errorf("uploaded %d blobs, want 2 (config and layer)", pushed.Uploaded)
	}
	id := shortDigest(digestOf(bb.data))
	for _, line := range []string{
		"The push refers to repository [" + host + "/test/busybox]",
		id + ": Preparing",
		id + ": Pushed",
		"1.0: digest: " + mdesc.Digest.String() + " size: " + itoa(mdesc.Size),
	} {
		if !hasLine(pushOut.String(), line) {
			t.Errorf("push output lacks %q:\n%s", line, pushOut.String())
		}
	}

	// A second push finds everything there.
	var again bytes.Buffer
	pushed, err = Push(ctx, src, ref, mdesc, PushOptions{Progress: NewPrinter(&again, false)})
	if err != nil {
		t.Fatalf("second push: %v", err)
	}
	if pushed.Uploaded != 0 || !hasLine(again.String(), id+": Layer already exists") {
		t.Errorf("second push uploaded %d blobs, output:\n%s", pushed.Uploaded, again.String())
	}

	dst := newStore(t)
	var pullOut bytes.Buffer
	pr := NewPrinter(&pullOut, false)
	pr.Pulling(ref)
	res, err := Pull(ctx, dst, ref, PullOptions{Progress: pr})
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	for _, l := range res.Layers {
		pr.Update(Update{Digest: l.Blob.Digest, Status: Complete})
	}
	pr.PullDone(res, true)
	if res.RepoDigest != mdesc.Digest || res.Image.Manifest.Digest != mdesc.Digest {
		t.Errorf("repo digest %s, manifest %s, want %s", res.RepoDigest, res.Image.Manifest.Digest, mdesc.Digest)
	}
	if res.Image.Index != nil {
		t.Errorf("index %v for a single manifest", res.Image.Index)
	}
	if len(res.Layers) != 1 || res.Layers[0].Blob.Digest != digestOf(bb.data) || res.Layers[0].DiffID != bb.diffID ||
		res.Layers[0].Compression != image.Gzip || !res.Layers[0].Fetched {
		t.Errorf("layers %+v", res.Layers)
	}
	if res.Fetched != 3 {
		t.Errorf("fetched %d blobs, want 3 (manifest, config, layer)", res.Fetched)
	}
	if res.Image.Platform.Architecture != runtime.GOARCH || res.Config.Config.Cmd[0] != "sh" {
		t.Errorf("platform %v, config %+v", res.Image.Platform, res.Config.Config)
	}
	for _, d := range res.Image.Blobs() {
		got, err := dst.ReadBlob(ctx, d)
		if err != nil {
			t.Fatalf("blob %s: %v", d, err)
		}
		want, _ := src.ReadBlob(ctx, d)
		if !bytes.Equal(got, want) {
			t.Errorf("blob %s differs from the one pushed", d)
		}
	}
	for _, line := range []string{
		"1.0: Pulling from test/busybox",
		id + ": Pulling fs layer",
		id + ": Download complete",
		id + ": Pull complete",
		"Digest: " + mdesc.Digest.String(),
		"Status: Downloaded newer image for " + host + "/test/busybox:1.0",
	} {
		if !hasLine(pullOut.String(), line) {
			t.Errorf("pull output lacks %q:\n%s", line, pullOut.String())
		}
	}

	// Pulling again skips every blob.
	rec := &recorder{}
	res, err = Pull(ctx, dst, ref, PullOptions{Progress: rec})
	if err != nil {
		t.Fatalf("second pull: %v", err)
	}
	if res.Fetched != 0 || res.Layers[0].Fetched {
		t.Errorf("second pull fetched %d blobs", res.Fetched)
	}
	if got := rec.statuses(digestOf(bb.data)); len(got) != 1 || got[0] != Exists {
		t.Errorf("second pull statuses %v, want [Already exists]", got)
	}

	// By digest too.
	byDigest := mustRef(t, host+"/test/busybox@"+mdesc.Digest.String())
	if res, err = Pull(ctx, newStore(t), byDigest, PullOptions{}); err != nil || res.RepoDigest != mdesc.Digest {
		t.Fatalf("pull by digest: %v", err)
	}

	// A tag that is not there.
	_, err = Pull(ctx, newStore(t), mustRef(t, host+"/test/busybox:nope"), PullOptions{})
	if !errdefs.Is(err, errdefs.KindNotFound) || !strings.Contains(err.Error(), "manifest unknown") {
		t.Errorf("missing tag: %v (kind %v)", err, errdefs.KindOf(err))
	}
}

// TestPullMultiArch pulls the host's manifest from an index of two
// platforms, and the other one with --platform.
func TestPullMultiArch(t *testing.T) {
	if runtime.GOARCH != "amd64" && runtime.GOARCH != "arm64" {
		t.Skipf("the index holds amd64 and arm64 images, the host is %s", runtime.GOARCH)
	}
	host := startRegistry(t, registryConfig{})
	ctx := context.Background()
	src := newStore(t)
	amd := putImage(t, src, ocispec.Platform{OS: "linux", Architecture: "amd64"},
		gzipLayer(t, tarFiles(t, map[string][]byte{"arch": []byte("amd64\n")})))
	arm := putImage(t, src, ocispec.Platform{OS: "linux", Architecture: "arm64"},
		gzipLayer(t, tarFiles(t, map[string][]byte{"arch": []byte("arm64\n")})))
	idx := putIndex(t, src, amd, arm)
	ref := mustRef(t, host+"/multi:latest")
	if _, err := Push(ctx, src, ref, idx, PushOptions{}); err != nil {
		t.Fatalf("push index: %v", err)
	}

	want := map[string]ocispec.Descriptor{"amd64": amd, "arm64": arm}
	other := map[string]string{"amd64": "arm64", "arm64": "amd64"}[runtime.GOARCH]
	for _, tc := range []struct {
		name     string
		platform *ocispec.Platform
		arch     string
	}{
		{"host", nil, runtime.GOARCH},
		{"--platform " + other, &ocispec.Platform{OS: "linux", Architecture: other}, other},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := newStore(t)
			res, err := Pull(ctx, dst, ref, PullOptions{Platform: tc.platform})
			if err != nil {
				t.Fatalf("pull: %v", err)
			}
			if res.RepoDigest != idx.Digest || res.Image.Index == nil || res.Image.Index.Digest != idx.Digest {
				t.Errorf("repo digest %s, index %v, want %s", res.RepoDigest, res.Image.Index, idx.Digest)
			}
			if res.Image.Manifest.Digest != want[tc.arch].Digest || res.Image.Platform.Architecture != tc.arch ||
				res.Image.Manifest.Platform == nil || res.Image.Manifest.Platform.Architecture != tc.arch {
				t.Errorf("picked %s (%v), want %s", res.Image.Manifest.Digest, res.Image.Platform, tc.arch)
			}
			for _, d := range res.Image.Blobs() {
				if !dst.Exists(ctx, d) {
					t.Errorf("blob %s not stored", d)
				}
			}
		})
	}

	_, err := Pull(ctx, newStore(t), ref, PullOptions{Platform: &ocispec.Platform{OS: "linux", Architecture: "s390x"}})
	if !errors.Is(err, image.ErrNoMatchingPlatform) || !errdefs.Is(err, errdefs.KindNotFound) ||
		!strings.Contains(err.Error(), "linux/amd64, linux/arm64") {
		t.Errorf("pull for s390x: %v", err)
	}

	// --platform on a single-platform image that is for another platform.
	single := mustRef(t, host+"/single:latest")
	if _, err := Push(ctx, src, single, amd, PushOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = Pull(ctx, newStore(t), single, PullOptions{Platform: &ocispec.Platform{OS: "linux", Architecture: "arm64"}})
	if !errors.Is(err, image.ErrNoMatchingPlatform) {
		t.Errorf("pull arm64 from an amd64 image: %v", err)
	}
}

// TestPullZstd pulls an image whose layer is zstd-compressed.
func TestPullZstd(t *testing.T) {
	host := startRegistry(t, registryConfig{})
	ctx := context.Background()
	src := newStore(t)
	l := zstdLayer(t, tarFiles(t, map[string][]byte{"hello": bytes.Repeat([]byte("zstd "), 1000)}))
	mdesc := putImage(t, src, hostPlatform(), l)
	ref := mustRef(t, host+"/zstd:latest")
	if _, err := Push(ctx, src, ref, mdesc, PushOptions{}); err != nil {
		t.Fatalf("push: %v", err)
	}
	res, err := Pull(ctx, newStore(t), ref, PullOptions{})
	if err != nil {
		t.Fatalf("pull: %v", err)
	}
	if len(res.Layers) != 1 || res.Layers[0].Compression != image.Zstd || res.Layers[0].Blob.MediaType != ocispec.MediaTypeImageLayerZstd {
		t.Errorf("layers %+v", res.Layers)
	}
}

// TestPullResume cancels a pull halfway through a big layer, then pulls
// again: the second pull resumes from where the first stopped (an HTTP
// Range request) and the store ends up consistent.
func TestPullResume(t *testing.T) {
	host := startRegistry(t, registryConfig{})
	ctx := context.Background()
	src := newStore(t)
	big := make([]byte, 30<<20)
	if _, err := rand.Read(big); err != nil {
		t.Fatal(err)
	}
	bigLayer := plainLayer(tarFiles(t, map[string][]byte{"random": big}))
	small := gzipLayer(t, tarFiles(t, map[string][]byte{"small": []byte("small\n")}))
	mdesc := putImage(t, src, hostPlatform(), small, bigLayer)
	ref := mustRef(t, host+"/big:latest")
	if _, err := Push(ctx, src, ref, mdesc, PushOptions{}); err != nil {
		t.Fatalf("push: %v", err)
	}
	bigDigest := digestOf(bigLayer.data)

	dst := newStore(t)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rec := &recorder{hook: func(u Update) {
		if u.Digest == bigDigest && u.Status == Downloading && u.Current > 10<<20 {
			cancel()
		}
	}}
	_, err := Pull(cctx, dst, ref, PullOptions{Progress: rec})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled pull: %v", err)
	}
	if dst.Exists(ctx, bigDigest) {
		t.Fatal("the big layer is stored although its download was cancelled")
	}
	ingests, err := dst.Ingests(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var offset int64
	for _, in := range ingests {
		if in.Expected == bigDigest {
			offset = in.Offset
		}
	}
	if offset < 10<<20 || offset >= int64(len(bigLayer.data)) {
		t.Fatalf("interrupted ingest holds %d bytes (ingests %+v)", offset, ingests)
	}

	rec = &recorder{}
	var mu sync.Mutex
	ready := map[int]Layer{}
	res, err := Pull(ctx, dst, ref, PullOptions{Progress: rec, LayerReady: func(i int, l Layer) {
		mu.Lock()
		defer mu.Unlock()
		if _, dup := ready[i]; dup {
			t.Errorf("layer %d ready twice", i)
		}
		ready[i] = l
	}})
	if err != nil {
		t.Fatalf("second pull: %v", err)
	}
	if len(ready) != 2 || ready[1].Blob.Digest != bigDigest || !ready[1].Fetched || !dst.Exists(ctx, ready[0].Blob.Digest) {
		t.Errorf("layers ready: %+v", ready)
	}
	u, ok := rec.first(bigDigest, Downloading)
	if !ok || u.Current != offset {
		t.Errorf("second pull started the big layer at %d (%v), want %d", u.Current, ok, offset)
	}
	for _, d := range res.Image.Blobs() {
		if _, err := dst.ReadBlob(ctx, d); err != nil {
			t.Errorf("blob %s: %v", d, err)
		}
	}
	ingests, _ = dst.Ingests(ctx)
	if len(ingests) != 0 {
		t.Errorf("ingests left: %+v", ingests)
	}
}

// TestPullTLS reaches a registry whose certificate a CA from certs.d
// signed, and fails clearly without it.
func TestPullTLS(t *testing.T) {
	tlsFiles := makeTLS(t)
	host := startRegistry(t, registryConfig{tls: tlsFiles})
	ctx := context.Background()
	src := newStore(t)
	mdesc := putImage(t, src, hostPlatform(), gzipLayer(t, tarFiles(t, map[string][]byte{"tls": []byte("yes\n")})))
	ref := mustRef(t, host+"/tls:latest")

	_, err := Push(ctx, src, ref, mdesc, PushOptions{})
	if err == nil || !strings.Contains(err.Error(), "certs.d") {
		t.Errorf("push without the CA: %v", err)
	}

	certs := t.TempDir()
	writeFile(t, certs+"/"+host+"/ca.crt", tlsFiles.caPEM)
	opts := Options{CertsDir: certs}
	if _, err := Push(ctx, src, ref, mdesc, PushOptions{Options: opts}); err != nil {
		t.Fatalf("push with the CA: %v", err)
	}
	if _, err := Pull(ctx, newStore(t), ref, PullOptions{Options: opts}); err != nil {
		t.Fatalf("pull with the CA: %v", err)
	}
	// Insecure skips verification.
	if _, err := Pull(ctx, newStore(t), ref, PullOptions{Options: Options{Insecure: []string{host}}}); err != nil {
		t.Fatalf("pull from an insecure registry: %v", err)
	}
}
