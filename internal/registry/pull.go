package registry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/image"
)

// DefaultJobs is how many blobs a pull or a push transfers at once.
const DefaultJobs = 3

// Schema 1 manifests, which berth refuses.
const (
	mediaTypeSchema1       = "application/vnd.docker.distribution.manifest.v1+json"
	mediaTypeSchema1Signed = "application/vnd.docker.distribution.manifest.v1+prettyjws"
)

// maxIndexDepth bounds indexes nested in indexes.
const maxIndexDepth = 4

// PullOptions tune Pull.
type PullOptions struct {
	Options
	// Platform is the platform to pick from a multi-platform image
	// (--platform); nil picks the host's, or one it also runs.
	Platform *ocispec.Platform
	// Progress receives an update per layer blob; nil for none.
	Progress Progress
	// Jobs is how many blobs download at once; 0 means DefaultJobs.
	Jobs int
	// LayerReady, when set, is called as soon as a layer's blob is in the
	// content store (downloaded or found there), so that the caller can
	// start unpacking it while others download. It is called from several
	// goroutines, in any order, and must not block.
	LayerReady func(index int, l Layer)
}

// Layer is a layer of a pulled image.
type Layer struct {
	image.Layer                   // the blob's descriptor and the diff ID
	Compression image.Compression // as the blob's media type says
	Fetched     bool              // downloaded by this pull; false when it was stored already
}

// PullResult describes a pulled image, whose index (if any), manifest, config and
// layer blobs are in the content store.
type PullResult struct {
	// Reference is the reference pulled, with :latest added when it named
	// neither a tag nor a digest.
	Reference image.Reference
	// RepoDigest is the digest the reference resolved to: the index's for
	// a multi-platform image, else the manifest's (docker's RepoDigest).
	RepoDigest digest.Digest
	// Image describes the image for image.Store.Put: its manifest
	// descriptor (Platform set), the index it was picked from, config and
	// layers. Layer sizes and Size are the unpacker's to fill.
	Image image.Image
	// Manifest and Config are the parsed manifest and config; ConfigData
	// the config as stored.
	Manifest   *ocispec.Manifest
	Config     *image.Config
	ConfigData []byte
	// Layers are the image's layers, bottom first.
	Layers []Layer
	// Fetched counts the blobs this pull downloaded (manifests included):
	// 0 when everything was stored already.
	Fetched int
}

// Pull resolves ref in its registry, picks the manifest for the platform
// from an index, and fetches the config and the layer blobs into cs: several
// at once, skipping those already stored, resuming interrupted downloads,
// each verified against its digest. It holds a content Lease while it runs;
// a caller that records the image afterwards holds its own Lease from before
// Pull until the image is recorded, so that no GC runs in between.
func Pull(ctx context.Context, cs *content.Store, ref image.Reference, opts PullOptions) (*PullResult, error) {
	ref = ref.WithDefaultTag()
	what := "pull " + ref.Familiar()
	repo, err := opts.repository(ref)
	if err != nil {
		return nil, err
	}
	release, err := cs.Lease(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer func() { _ = release() }()

	s, err := opts.connect(ctx, repo, transport.PullScope)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	defer s.close()
	pl := &puller{s: s, cs: cs, opts: &opts}

	var target name.Reference = repo.Tag(ref.Tag)
	if ref.Digest != "" {
		target = repo.Digest(ref.Digest.String())
	}
	desc, data, err := pl.manifest(ctx, target, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out := &PullResult{Reference: ref, RepoDigest: desc.Digest}
	var index *ocispec.Descriptor
	for depth := 0; image.IsIndex(desc.MediaType); depth++ {
		if depth >= maxIndexDepth {
			return nil, errdefs.InvalidArgument(fmt.Errorf("%s: indexes nested more than %d deep", what, maxIndexDepth))
		}
		idx, err := image.ParseIndex(desc.MediaType, data)
		if err != nil {
			return nil, fmt.Errorf("%s: index %s: %w", what, desc.Digest, err)
		}
		if index == nil {
			d := desc
			index = &d
		}
		child, err := image.SelectManifest(idx, pl.matcher())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		desc, data, err = pl.manifest(ctx, repo.Digest(child.Digest.String()), &child)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		desc.Platform = child.Platform
	}
	m, err := image.ParseManifest(desc.MediaType, data)
	if err != nil {
		return nil, fmt.Errorf("%s: manifest %s: %w", what, desc.Digest, err)
	}

	// The config first: the layers need its diff IDs.
	fetched, err := pl.blob(ctx, m.Config, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: config %s: %w", what, m.Config.Digest, err)
	}
	if fetched {
		pl.count()
	}
	cfgData, err := cs.ReadBlob(ctx, m.Config.Digest)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	cfg, err := image.ParseConfig(cfgData)
	if err != nil {
		return nil, fmt.Errorf("%s: config %s: %w", what, m.Config.Digest, err)
	}
	if index == nil && opts.Platform != nil && !image.Exact(*opts.Platform).Match(cfg.Platform()) {
		return nil, errdefs.NotFound(fmt.Errorf("%s: %w: the image is for %s, not %s", what,
			image.ErrNoMatchingPlatform, image.FormatPlatform(cfg.Platform()), image.FormatPlatform(*opts.Platform)))
	}
	if desc.Platform == nil {
		p := cfg.Platform()
		desc.Platform = &p
	}
	img, err := image.NewImage(desc, m, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	img.Index = index

	layers, err := pl.layers(ctx, img.Layers)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	out.Image, out.Manifest, out.Config, out.ConfigData, out.Layers = img, m, cfg, cfgData, layers
	out.Fetched = pl.fetched
	return out, nil
}

type puller struct {
	s    *session
	cs   *content.Store
	opts *PullOptions

	mu      sync.Mutex
	fetched int
}

func (pl *puller) count() {
	pl.mu.Lock()
	pl.fetched++
	pl.mu.Unlock()
}

func (pl *puller) matcher() image.Matcher {
	if pl.opts.Platform != nil {
		return image.Exact(*pl.opts.Platform)
	}
	return image.Only(image.HostPlatform())
}

// manifest fetches the manifest or index target names, checks it against
// expected (when an index named it), and stores it.
func (pl *puller) manifest(ctx context.Context, target name.Reference, expected *ocispec.Descriptor) (ocispec.Descriptor, []byte, error) {
	what := "manifest " + target.Identifier()
	if _, ok := target.(name.Tag); ok {
		what = "tag " + target.Identifier()
	}
	rd, err := remote.Get(target, remote.WithTransport(pl.s.rt), remote.WithContext(ctx))
	if err != nil {
		return ocispec.Descriptor{}, nil, explain(err, what, pl.s.repo, pl.s.authed)
	}
	data := rd.Manifest
	if len(data) > image.MaxManifestSize {
		return ocispec.Descriptor{}, nil, errdefs.InvalidArgument(fmt.Errorf("%s: %d bytes, more than the %d allowed", what, len(data), image.MaxManifestSize))
	}
	desc := ocispec.Descriptor{
		MediaType: string(rd.MediaType),
		Digest:    digest.FromBytes(data),
		Size:      int64(len(data)),
	}
	if expected != nil {
		if err := image.VerifyBlob(*expected, data); err != nil {
			return ocispec.Descriptor{}, nil, fmt.Errorf("%s: %w", what, err)
		}
		if desc.MediaType == "" {
			desc.MediaType = expected.MediaType
		}
	}
	if isSchema1(desc.MediaType, data) {
		return ocispec.Descriptor{}, nil, errdefs.NotImplemented(fmt.Errorf(
			"%s: %w: it is a Docker schema 1 manifest, deprecated since 2017; push the image again with a current docker or berth",
			what, image.ErrUnsupported))
	}
	if !image.IsIndex(desc.MediaType) && !image.IsManifest(desc.MediaType) {
		if mt := image.DetectMediaType(data); mt != "" {
			desc.MediaType = mt
		}
	}
	if !image.IsIndex(desc.MediaType) && !image.IsManifest(desc.MediaType) {
		return ocispec.Descriptor{}, nil, errdefs.NotImplemented(fmt.Errorf("%s: %w: %q is not an image", what, image.ErrUnsupported, desc.MediaType))
	}
	if !pl.cs.Exists(ctx, desc.Digest) {
		if _, err := pl.cs.Put(ctx, "", bytes.NewReader(data), desc.Digest, desc.Size); err != nil {
			return ocispec.Descriptor{}, nil, fmt.Errorf("%s: %w", what, err)
		}
		pl.count()
	}
	return desc, data, nil
}

func isSchema1(mt string, data []byte) bool {
	switch mt {
	case mediaTypeSchema1, mediaTypeSchema1Signed:
		return true
	case "", "application/json", "text/plain":
		// Old registries send schema 1 without a proper type.
		s := string(data[:min(len(data), 512)])
		return strings.Contains(s, `"schemaVersion": 1`) || strings.Contains(s, `"schemaVersion":1`)
	}
	return false
}

// layers fetches the layer blobs, Jobs at once; a blob named twice is
// fetched once.
func (pl *puller) layers(ctx context.Context, layers []image.Layer) ([]Layer, error) {
	out := make([]Layer, len(layers))
	first := map[digest.Digest]int{}
	var todo []int
	for i, l := range layers {
		c, err := image.LayerCompression(l.Blob.MediaType)
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", l.Blob.Digest, err)
		}
		out[i] = Layer{Layer: l, Compression: c}
		if _, dup := first[l.Blob.Digest]; dup {
			continue
		}
		first[l.Blob.Digest] = i
		if pl.cs.Exists(ctx, l.Blob.Digest) {
			report(pl.opts.Progress, Update{Digest: l.Blob.Digest, Status: Exists, Total: l.Blob.Size})
			continue
		}
		report(pl.opts.Progress, Update{Digest: l.Blob.Digest, Status: Queued, Total: l.Blob.Size})
		todo = append(todo, i)
	}
	ready := func(i int) {
		if pl.opts.LayerReady == nil {
			return
		}
		for j := range out {
			if out[j].Blob.Digest == out[i].Blob.Digest {
				l := out[j]
				l.Fetched = out[i].Fetched && j == i
				pl.opts.LayerReady(j, l)
			}
		}
	}
	for i := range out {
		if first[out[i].Blob.Digest] == i && !slices.Contains(todo, i) {
			ready(i)
		}
	}

	jobs := pl.opts.Jobs
	if jobs <= 0 {
		jobs = DefaultJobs
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for _, i := range todo {
		g.Go(func() error {
			d := out[i].Blob
			fetched, err := pl.blob(gctx, d, pl.opts.Progress)
			if err != nil {
				report(pl.opts.Progress, Update{Digest: d.Digest, Status: Failed, Total: d.Size})
				return fmt.Errorf("layer %s: %w", d.Digest, err)
			}
			if fetched {
				pl.count()
				out[i].Fetched = true
			}
			report(pl.opts.Progress, Update{Digest: d.Digest, Status: Downloaded, Current: d.Size, Total: d.Size})
			ready(i)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, fmt.Errorf("download layers: %w", ctxErr)
		}
		return nil, err
	}
	return out, nil
}

// maxAttempts is how many times a blob download is tried, resuming where
// the previous try stopped.
const maxAttempts = 4

// blob fetches desc into the content store unless it is there, resuming an
// interrupted download, and reports whether it downloaded anything.
func (pl *puller) blob(ctx context.Context, desc ocispec.Descriptor, p Progress) (bool, error) {
	if pl.cs.Exists(ctx, desc.Digest) {
		return false, nil
	}
	var err error
	for attempt := 1; ; attempt++ {
		err = pl.blobOnce(ctx, desc, p)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, content.ErrExists):
			return false, nil
		case ctx.Err() != nil:
			return false, ctx.Err()
		case attempt >= maxAttempts || !retryable(err):
			return false, err
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
		}
	}
}

// retryable reports whether a failed download is worth another try:
// the connection broke, the registry had a hiccup, or the data did not
// match its digest (the content store dropped it).
func retryable(err error) bool {
	if errors.Is(err, content.ErrDigestMismatch) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, errShortBody) {
		return true
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		return terr.Temporary()
	}
	return errdefs.KindOf(err) == errdefs.KindUnavailable
}

var errShortBody = errors.New("the registry sent less than the blob's size")

func (pl *puller) blobOnce(ctx context.Context, desc ocispec.Descriptor, p Progress) error {
	w, err := pl.cs.Ingest(ctx, desc.Digest.String(), desc.Digest, desc.Size)
	if err != nil {
		return err
	}
	defer w.Close() // keeps what was written for the next try

	if off := w.Offset(); off < desc.Size {
		body, err := pl.open(ctx, desc, w)
		if err != nil {
			return err
		}
		defer body.Close()
		report(p, Update{Digest: desc.Digest, Status: Downloading, Current: w.Offset(), Total: desc.Size})
		cw := &progressWriter{w: w, p: p, u: Update{Digest: desc.Digest, Status: Downloading, Current: w.Offset(), Total: desc.Size}}
		// One byte more than needed: a body that is too long fails Commit.
		n, err := io.CopyBuffer(cw, io.LimitReader(body, desc.Size-w.Offset()+1), make([]byte, 256<<10))
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return explain(fmt.Errorf("after %d bytes: %w", n, err), "download", pl.s.repo, pl.s.authed)
		}
		if w.Offset() < desc.Size {
			return errShortBody
		}
	}
	report(p, Update{Digest: desc.Digest, Status: Verifying, Current: desc.Size, Total: desc.Size})
	if _, err := w.Commit(ctx); err != nil {
		return err
	}
	return nil
}

// open requests the blob from the writer's offset on (an HTTP Range
// request), and starts over where the registry ignores or refuses the range.
func (pl *puller) open(ctx context.Context, desc ocispec.Descriptor, w content.Writer) (io.ReadCloser, error) {
	what := "blob " + desc.Digest.String()
	for {
		off := w.Offset()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, pl.s.url("blobs/"+desc.Digest.String()), nil)
		if err != nil {
			return nil, err
		}
		if off > 0 {
			req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
		}
		resp, err := pl.s.client().Do(req)
		if err != nil {
			return nil, explain(err, what, pl.s.repo, pl.s.authed)
		}
		switch {
		case resp.StatusCode == http.StatusOK:
			if off > 0 {
				if err := w.Truncate(0); err != nil {
					resp.Body.Close()
					return nil, err
				}
			}
			return resp.Body, nil
		case resp.StatusCode == http.StatusPartialContent && off > 0:
			if start, ok := rangeStart(resp.Header.Get("Content-Range")); ok && start == off {
				return resp.Body, nil
			}
		case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && off > 0:
		default:
			err := transport.CheckError(resp, http.StatusOK)
			resp.Body.Close()
			return nil, explain(err, what, pl.s.repo, pl.s.authed)
		}
		// A range the registry could not serve as asked: start over.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		if err := w.Truncate(0); err != nil {
			return nil, err
		}
	}
}

// rangeStart parses "bytes START-END/SIZE".
func rangeStart(h string) (int64, bool) {
	rest, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, false
	}
	start, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.TrimSpace(start), 10, 64)
	return n, err == nil
}

// progressWriter reports the bytes that pass through it.
type progressWriter struct {
	w io.Writer
	p Progress
	u Update
}

func (pw *progressWriter) Write(b []byte) (int, error) {
	n, err := pw.w.Write(b)
	if n > 0 && pw.p != nil {
		pw.u.Current += int64(n)
		pw.p.Update(pw.u)
	}
	return n, err
}
