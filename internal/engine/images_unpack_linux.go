package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/archive"
	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/registry"
	"github.com/berth-dev/berth/internal/storage"
)

var timeNow = time.Now

func sleepTick() <-chan time.Time { return time.After(20 * time.Millisecond) }

const (
	// unpackAhead is how many layers past the one being applied are
	// decompressed (and their diff IDs checked) ahead of their turn.
	unpackAhead = 2
	// chunkSize and chunksBuffered bound what a layer decompressed ahead
	// holds in memory: 32 MiB.
	chunkSize      = 1 << 20
	chunksBuffered = 32
)

// unpackLayer is a layer to unpack: its blob in the content store and the
// digest of its uncompressed tar.
type unpackLayer struct {
	Blob   ocispec.Descriptor
	DiffID digest.Digest
	// Ahead allows decompressing the layer before its turn: the blob was
	// just downloaded or read, so the layer is most likely not unpacked
	// yet.
	Ahead bool
}

// unpacker applies an image's layers to the layer store in order, as their
// blobs become available in any order (a pull's downloads), decompressing
// the next layers while one is applied. Each layer's uncompressed stream is
// checked against its diff ID before the layer is committed.
type unpacker struct {
	cs       *content.Store
	st       *storage.Store
	progress registry.Progress

	mu      sync.Mutex
	slots   map[int]*slot
	cur     int
	total   int           // -1 until known
	counted chan struct{} // closed when total is known
	ctx     context.Context
}

type slot struct {
	ready  chan struct{}
	isSet  bool
	layer  unpackLayer
	stream *layerStream
}

func newUnpacker(ctx context.Context, cs *content.Store, st *storage.Store, p registry.Progress) *unpacker {
	return &unpacker{cs: cs, st: st, progress: p, slots: map[int]*slot{}, total: -1,
		counted: make(chan struct{}), ctx: ctx}
}

func (u *unpacker) slotLocked(i int) *slot {
	s := u.slots[i]
	if s == nil {
		s = &slot{ready: make(chan struct{})}
		u.slots[i] = s
	}
	return s
}

// ready says layer i's blob is in the content store. It does not block.
func (u *unpacker) ready(i int, l unpackLayer) {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.slotLocked(i)
	if s.isSet {
		return
	}
	s.isSet, s.layer = true, l
	close(s.ready)
	u.kickLocked()
}

// finish says the image has n layers, all ready.
func (u *unpacker) finish(n int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.total < 0 {
		u.total = n
		close(u.counted)
	}
}

// kickLocked starts decompressing the ready layers within reach.
func (u *unpacker) kickLocked() {
	for j := u.cur + 1; j <= u.cur+unpackAhead; j++ {
		s := u.slots[j]
		if s == nil || !s.isSet || s.stream != nil || !s.layer.Ahead {
			continue
		}
		s.stream = startStream(u.ctx, u.cs, s.layer)
	}
}

// streamFor returns layer i's stream, started now if it was not ahead.
func (u *unpacker) streamFor(i int) *layerStream {
	u.mu.Lock()
	defer u.mu.Unlock()
	s := u.slots[i]
	if s.stream == nil {
		s.stream = startStream(u.ctx, u.cs, s.layer)
	}
	return s.stream
}

// unpacked is what run made: the reference to the top layer it holds, and
// each layer's size.
type unpacked struct {
	Top   digest.Digest
	Sizes []int64
}

// run applies the layers in order until all are applied (see finish) or
// ctx ends. It holds a reference to the top layer applied so far, and on
// failure releases it.
func (u *unpacker) run(ctx context.Context) (unpacked, error) {
	var out unpacked
	var parent digest.Digest
	fail := func(err error) (unpacked, error) {
		u.stopAll()
		if parent != "" {
			releaseAll(u.st, []digest.Digest{parent})
		}
		return unpacked{}, err
	}
	for i := 0; ; i++ {
		u.mu.Lock()
		s := u.slotLocked(i)
		u.cur = i
		u.kickLocked()
		u.mu.Unlock()
		select {
		case <-s.ready:
		case <-u.counted:
			if i >= u.total {
				return out, nil
			}
			select {
			case <-s.ready:
			case <-ctx.Done():
				return fail(context.Cause(ctx))
			}
		case <-ctx.Done():
			return fail(context.Cause(ctx))
		}
		l := s.layer
		lr := &lazyReader{open: func() *layerStream { return u.streamFor(i) }, u: u, l: l}
		chain, size, err := u.st.ApplyLayer(ctx, parent, l.DiffID, lr)
		u.mu.Lock()
		if st := s.stream; st != nil {
			s.stream = nil
			st.stop()
		}
		u.mu.Unlock()
		if err != nil {
			if ctx.Err() != nil {
				err = context.Cause(ctx)
			}
			return fail(fmt.Errorf("unpack layer %s: %w", l.Blob.Digest, err))
		}
		if lr.used || l.Ahead {
			report(u.progress, registry.Update{Digest: l.Blob.Digest, Status: registry.Complete, Current: l.Blob.Size, Total: l.Blob.Size})
		}
		if parent != "" {
			// The new layer stands on it now, and holds it.
			if err := u.st.Release(parent); err != nil {
				parent = chain
				return fail(err)
			}
		}
		parent = chain
		out.Top = chain
		out.Sizes = append(out.Sizes, size)
	}
}

// stopAll stops every stream decompressing ahead.
func (u *unpacker) stopAll() {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, s := range u.slots {
		if s.stream != nil {
			s.stream.stop()
			s.stream = nil
		}
	}
}

func report(p registry.Progress, upd registry.Update) {
	if p != nil {
		p.Update(upd)
	}
}

// lazyReader starts layer decompression on the first Read: ApplyLayer
// does not read a layer that exists already.
type lazyReader struct {
	open func() *layerStream
	u    *unpacker
	l    unpackLayer
	s    *layerStream
	used bool
	last int64
}

func (r *lazyReader) Read(p []byte) (int, error) {
	if r.s == nil {
		r.s, r.used = r.open(), true
	}
	n, comp, err := r.s.read(p)
	// Docker shows the compressed bytes consumed; once per chunk is enough.
	if comp != r.last {
		r.last = comp
		report(r.u.progress, registry.Update{Digest: r.l.Blob.Digest, Status: registry.Extracting, Current: comp, Total: r.l.Blob.Size})
	}
	return n, err
}

// layerStream decompresses a layer blob on a goroutine of its own into a
// bounded queue of chunks, checking the diff ID at the end: a mismatch is
// the error the last Read returns, so the layer is never committed.
type layerStream struct {
	chunks chan chunk
	cancel context.CancelFunc
	done   chan struct{}
	err    error // set before chunks is closed

	cur     chunk
	curData []byte
	once    sync.Once
}

type chunk struct {
	buf  *[]byte
	n    int
	comp int64 // compressed bytes read when the chunk was made
}

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

func startStream(ctx context.Context, cs *content.Store, l unpackLayer) *layerStream {
	ctx, cancel := context.WithCancel(ctx)
	s := &layerStream{chunks: make(chan chunk, chunksBuffered), cancel: cancel, done: make(chan struct{})}
	go s.produce(ctx, cs, l)
	return s
}

func (s *layerStream) produce(ctx context.Context, cs *content.Store, l unpackLayer) {
	defer close(s.done)
	defer close(s.chunks)
	f, err := cs.Open(ctx, l.Blob.Digest)
	if err != nil {
		s.err = err
		return
	}
	defer f.Close()
	var comp atomic.Int64
	dc, err := archive.Decompress(&countingReader{r: f, n: &comp})
	if err != nil {
		s.err = errdefs.InvalidArgument(fmt.Errorf("layer %s: %w", l.Blob.Digest, err))
		return
	}
	defer dc.Close()
	if !l.DiffID.Algorithm().Available() {
		s.err = errdefs.InvalidArgument(fmt.Errorf("layer %s: diff ID %s: unsupported algorithm", l.Blob.Digest, l.DiffID))
		return
	}
	dg := l.DiffID.Algorithm().Digester()
	for {
		buf := chunkPool.Get().(*[]byte)
		n, err := io.ReadFull(dc, *buf)
		if n > 0 {
			dg.Hash().Write((*buf)[:n])
			select {
			case s.chunks <- chunk{buf: buf, n: n, comp: comp.Load()}:
			case <-ctx.Done():
				chunkPool.Put(buf)
				s.err = ctx.Err()
				return
			}
		} else {
			chunkPool.Put(buf)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			s.err = errdefs.InvalidArgument(fmt.Errorf("decompress layer %s: %w", l.Blob.Digest, err))
			return
		}
	}
	if got := dg.Digest(); got != l.DiffID {
		s.err = errdefs.InvalidArgument(fmt.Errorf("layer %s: its uncompressed content hashes to %s, but the image config says %s; the image is corrupt",
			l.Blob.Digest, got, l.DiffID))
	}
}

// read returns the next bytes and how many compressed bytes were read to
// make them.
func (s *layerStream) read(p []byte) (int, int64, error) {
	for len(s.curData) == 0 {
		if s.cur.buf != nil {
			chunkPool.Put(s.cur.buf)
			s.cur.buf = nil
		}
		c, ok := <-s.chunks
		if !ok {
			if s.err != nil {
				return 0, s.cur.comp, s.err
			}
			return 0, s.cur.comp, io.EOF
		}
		s.cur, s.curData = c, (*c.buf)[:c.n]
	}
	n := copy(p, s.curData)
	s.curData = s.curData[n:]
	return n, s.cur.comp, nil
}

// stop ends the producer and waits for it.
func (s *layerStream) stop() {
	s.once.Do(func() {
		s.cancel()
		for c := range s.chunks {
			chunkPool.Put(c.buf)
		}
		<-s.done
	})
}

type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
