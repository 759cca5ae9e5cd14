package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
)

// Image is what the store records about one image: the platform-specific
// manifest it was pulled, loaded or built as, and what `docker images`,
// `image inspect` and `history` show without reading blobs. Its ID is the
// digest of its config, as docker's image IDs are.
type Image struct {
	ID       digest.Digest       `json:"id"`
	Manifest ocispec.Descriptor  `json:"manifest"`
	Index    *ocispec.Descriptor `json:"index,omitempty"` // the index the manifest was picked from
	Config   ocispec.Descriptor  `json:"config"`
	Layers   []Layer             `json:"layers"`
	Platform ocispec.Platform    `json:"platform"`
	Created  time.Time           `json:"created"`          // from the config
	Size     int64               `json:"size"`             // unpacked size of all layers
	Labels   map[string]string   `json:"labels,omitempty"` // the config's, for filters
	Added    time.Time           `json:"added"`
	// LastTagTime is when a tag last pointed at the image.
	LastTagTime time.Time `json:"lastTagTime,omitzero"`

	// RepoTags and RepoDigests are the references that point at the
	// image, familiar and sorted (busybox:latest, busybox@sha256:...).
	// Get and List fill them; Put ignores them.
	RepoTags    []string `json:"-"`
	RepoDigests []string `json:"-"`
}

// NewImage describes the image that manifest (the descriptor of m) and its
// parsed config make. Layer sizes and Size are left for the caller, who
// knows them once the layers are unpacked.
func NewImage(manifest ocispec.Descriptor, m *ocispec.Manifest, cfg *Config) (Image, error) {
	layers, err := Layers(m, cfg)
	if err != nil {
		return Image{}, err
	}
	img := Image{ID: m.Config.Digest, Manifest: manifest, Config: m.Config, Layers: layers,
		Platform: cfg.Platform(), Labels: cfg.Config.Labels}
	if cfg.Created != nil {
		img.Created = *cfg.Created
	}
	return img, nil
}

// ShortID is the ID as docker shows it: 12 hex digits.
func (img Image) ShortID() string {
	enc := img.ID.Encoded()
	return enc[:min(12, len(enc))]
}

// DiffIDs lists the layers' diff IDs, bottom first.
func (img Image) DiffIDs() []digest.Digest {
	out := make([]digest.Digest, len(img.Layers))
	for i, l := range img.Layers {
		out[i] = l.DiffID
	}
	return out
}

// ChainID identifies the image's whole layer stack in the layer graph
// ("" for an image without layers).
func (img Image) ChainID() digest.Digest { return identity.ChainID(img.DiffIDs()) }

// Dangling reports whether no tag points at the image (docker's
// <none>:<none>).
func (img Image) Dangling() bool { return len(img.RepoTags) == 0 }

// Blobs lists the content store blobs the image needs: index, manifest,
// config and layers.
func (img Image) Blobs() []digest.Digest {
	out := []digest.Digest{img.Manifest.Digest, img.Config.Digest}
	if img.Index != nil {
		out = append(out, img.Index.Digest)
	}
	for _, l := range img.Layers {
		out = append(out, l.Blob.Digest)
	}
	return out
}

// Store maps references to images under <root>/image, in one JSON file
// replaced atomically (write, fsync, rename) under a flock: each CLI
// process opens, updates and leaves; readers need no lock.
type Store struct {
	dir string
}

const storeVersion = 1

type state struct {
	Version int                      `json:"version"`
	Images  map[digest.Digest]*Image `json:"images"`
	// Refs maps full references (docker.io/library/busybox:latest,
	// ...@sha256:...) to image IDs.
	Refs map[string]digest.Digest `json:"refs"`
}

// Open returns the image store under root (berth's root dir).
func Open(root string) (*Store, error) {
	s := &Store{dir: filepath.Join(root, "image")}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	return s, nil
}

func (s *Store) file() string { return filepath.Join(s.dir, "images.json") }

func (s *Store) load() (*state, error) {
	st := &state{Version: storeVersion, Images: map[digest.Digest]*Image{}, Refs: map[string]digest.Digest{}}
	raw, err := os.ReadFile(s.file())
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read image store: %w", err)
	}
	if err := json.Unmarshal(raw, st); err != nil {
		return nil, fmt.Errorf("read image store %s: corrupt: %w", s.file(), err)
	}
	if st.Version != storeVersion {
		return nil, fmt.Errorf("read image store %s: version %d, this berth reads %d", s.file(), st.Version, storeVersion)
	}
	if st.Images == nil {
		st.Images = map[digest.Digest]*Image{}
	}
	if st.Refs == nil {
		st.Refs = map[string]digest.Digest{}
	}
	return st, nil
}

func (s *Store) save(st *state) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("write image store: %w", err)
	}
	tmp := s.file() + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("write image store: %w", err)
	}
	_, err = f.Write(raw)
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err == nil {
		err = os.Rename(tmp, s.file())
	}
	if err == nil {
		err = syncDir(s.dir)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write image store: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// update runs fn on the current state under the store's lock and saves
// what it leaves, unless it fails.
func (s *Store) update(ctx context.Context, fn func(*state) error) error {
	unlock, err := lockFile(ctx, filepath.Join(s.dir, "images.lock"))
	if err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	defer unlock()
	st, err := s.load()
	if err != nil {
		return err
	}
	if err := fn(st); err != nil {
		return err
	}
	return s.save(st)
}

// storedRef is the key a reference is recorded under: name:tag or
// name@digest (a reference with both is recorded by digest, as docker
// pulls it).
func storedRef(r Reference) (Reference, error) {
	if r.Path == "" {
		return Reference{}, errdefs.InvalidArgument(errors.New("empty image reference"))
	}
	r = r.WithDefaultTag()
	if r.Digest != "" {
		r.Tag = ""
	}
	return r, nil
}

// Put records img (replacing what was recorded under its ID, but keeping
// when it was added) and points refs at it: tags move from whatever image
// they named before, which stays (dangling if that was its last tag).
// A reference without tag or digest means :latest.
func (s *Store) Put(ctx context.Context, img Image, refs ...Reference) (Image, error) {
	if img.ID == "" {
		img.ID = img.Config.Digest
	}
	if img.ID != img.Config.Digest {
		return Image{}, errdefs.InvalidArgument(fmt.Errorf("store image %s: its ID must be its config digest %s", img.ID, img.Config.Digest))
	}
	for _, d := range img.Blobs() {
		if err := d.Validate(); err != nil {
			return Image{}, errdefs.InvalidArgument(fmt.Errorf("store image %s: invalid digest %q: %w", img.ID, string(d), err))
		}
	}
	keys := make([]string, len(refs))
	tagged := false
	for i, r := range refs {
		r, err := storedRef(r)
		if err != nil {
			return Image{}, err
		}
		keys[i] = r.String()
		tagged = tagged || r.Tag != ""
	}
	if img.Size == 0 {
		for _, l := range img.Layers {
			img.Size += l.Size
		}
	}
	img.RepoTags, img.RepoDigests = nil, nil
	var out Image
	err := s.update(ctx, func(st *state) error {
		now := time.Now().UTC()
		img.Added, img.LastTagTime = now, time.Time{}
		if old, ok := st.Images[img.ID]; ok {
			img.Added, img.LastTagTime = old.Added, old.LastTagTime
		}
		if tagged {
			img.LastTagTime = now
		}
		stored := img
		st.Images[img.ID] = &stored
		for _, k := range keys {
			st.Refs[k] = img.ID
		}
		out = st.view(img.ID)
		return nil
	})
	return out, err
}

// view returns the image id with its references filled in.
func (st *state) view(id digest.Digest) Image {
	var refs []Reference
	for key, target := range st.Refs {
		if target != id {
			continue
		}
		if r, err := ParseReference(key); err == nil {
			refs = append(refs, r)
		}
	}
	return st.viewWith(id, refs)
}

// viewWith returns the image id with refs as its references.
func (st *state) viewWith(id digest.Digest, refs []Reference) Image {
	img := *st.Images[id]
	img.RepoTags, img.RepoDigests = nil, nil
	for _, r := range refs {
		if r.Digest != "" {
			img.RepoDigests = append(img.RepoDigests, r.Familiar())
		} else {
			img.RepoTags = append(img.RepoTags, r.Familiar())
		}
	}
	slices.Sort(img.RepoTags)
	slices.Sort(img.RepoDigests)
	return img
}

// refsOf lists the keys of the references that point at id.
func (st *state) refsOf(id digest.Digest) []string {
	var out []string
	for key, target := range st.Refs {
		if target == id {
			out = append(out, key)
		}
	}
	slices.Sort(out)
	return out
}

func noSuchImage(s string) error {
	// Docker's wording, which scripts and the Docker API clients match.
	return errdefs.NotFound(fmt.Errorf("No such image: %s", s))
}

// resolve finds the image s names, as docker does: a reference (busybox,
// busybox:1.36, busybox@sha256:...), a full ID (sha256:<hex> or <hex>),
// or a unique prefix of an ID's hex. key is the reference it matched, or
// "" when s named the ID.
func (st *state) resolve(s string) (id digest.Digest, key string, err error) {
	if s == "" {
		return "", "", errdefs.InvalidArgument(errors.New("empty image name or ID"))
	}
	hex := strings.TrimPrefix(s, string(digest.Canonical)+":")
	if isFullID(hex) {
		d := digest.NewDigestFromEncoded(digest.Canonical, hex)
		if _, ok := st.Images[d]; ok {
			return d, "", nil
		}
		return "", "", noSuchImage(s)
	}
	ref, perr := ParseReference(s)
	display := s
	if perr == nil {
		ref, _ = storedRef(ref)
		display = ref.Familiar()
		if id, ok := st.Refs[ref.String()]; ok {
			return id, ref.String(), nil
		}
		if ref.Digest != "" { // pulled under another name, or by tag only
			for id, img := range st.Images {
				if img.Manifest.Digest == ref.Digest || (img.Index != nil && img.Index.Digest == ref.Digest) {
					return id, "", nil
				}
			}
		}
	}
	if hex != "" && len(hex) < 64 && isHex(hex) {
		var found []digest.Digest
		for id := range st.Images {
			if strings.HasPrefix(id.Encoded(), hex) {
				found = append(found, id)
			}
		}
		switch len(found) {
		case 1:
			return found[0], "", nil
		case 0:
		default:
			return "", "", errdefs.InvalidArgument(fmt.Errorf("image ID prefix %q is ambiguous: it matches %d images; give more digits", hex, len(found)))
		}
	}
	if perr != nil {
		return "", "", perr
	}
	return "", "", noSuchImage(display)
}

// Get returns the image that nameOrID names: a reference, a full ID, or a
// unique ID prefix (docker's short IDs are 12 hex digits).
func (s *Store) Get(ctx context.Context, nameOrID string) (Image, error) {
	st, err := s.load()
	if err != nil {
		return Image{}, err
	}
	id, _, err := st.resolve(nameOrID)
	if err != nil {
		return Image{}, err
	}
	return st.view(id), nil
}

// List returns every image, newest first (by config creation time).
func (s *Store) List(ctx context.Context) ([]Image, error) {
	st, err := s.load()
	if err != nil {
		return nil, err
	}
	refs := map[digest.Digest][]Reference{}
	for key, id := range st.Refs {
		if r, err := ParseReference(key); err == nil {
			refs[id] = append(refs[id], r)
		}
	}
	out := make([]Image, 0, len(st.Images))
	for id := range st.Images {
		out = append(out, st.viewWith(id, refs[id]))
	}
	slices.SortFunc(out, func(a, b Image) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		return strings.Compare(string(a.ID), string(b.ID))
	})
	return out, nil
}

// Tag points target (a name with a tag, or none for :latest) at the image
// source names, as `docker tag` does.
func (s *Store) Tag(ctx context.Context, source string, target Reference) error {
	if target.Digest != "" {
		return errdefs.InvalidArgument(fmt.Errorf("tag %s: refusing to create a tag with a digest reference", target.Familiar()))
	}
	target, err := storedRef(target)
	if err != nil {
		return err
	}
	return s.update(ctx, func(st *state) error {
		id, _, err := st.resolve(source)
		if err != nil {
			return err
		}
		st.Refs[target.String()] = id
		st.Images[id].LastTagTime = time.Now().UTC()
		return nil
	})
}

// Untag removes the reference ref (a name alone means :latest) and returns
// the image it named, with the references it has left. The image stays,
// even when ref was its last; Remove is `docker rmi`.
func (s *Store) Untag(ctx context.Context, ref Reference) (Image, error) {
	ref, err := storedRef(ref)
	if err != nil {
		return Image{}, err
	}
	var out Image
	err = s.update(ctx, func(st *state) error {
		id, ok := st.Refs[ref.String()]
		if !ok {
			return noSuchImage(ref.Familiar())
		}
		delete(st.Refs, ref.String())
		out = st.view(id)
		return nil
	})
	return out, err
}

// Delete removes the image id and every reference to it, and returns it:
// the caller releases its layers and collects its blobs (GC).
func (s *Store) Delete(ctx context.Context, id digest.Digest) (Image, error) {
	var out Image
	err := s.update(ctx, func(st *state) error {
		if _, ok := st.Images[id]; !ok {
			return noSuchImage(id.String())
		}
		out = st.view(id)
		for _, key := range st.refsOf(id) {
			delete(st.Refs, key)
		}
		delete(st.Images, id)
		return nil
	})
	return out, err
}

// RemoveOptions tune Remove.
type RemoveOptions struct {
	// Force untags an image referenced from several repositories and
	// deletes one that a stopped container uses, as `docker rmi -f`.
	Force bool
	// InUse reports a container that uses the image id, if any, and
	// whether it is running. Nil means none does. Remove calls it with
	// the store locked: it must not call back into the Store.
	InUse func(id digest.Digest) (container string, running bool)
}

// RemoveReport is what Remove did, in docker's terms.
type RemoveReport struct {
	Untagged []string // familiar references removed
	// Deleted are the images removed from the store: release their
	// layers in the layer graph, then run GC for their blobs.
	Deleted []Image
}

func conflict(img Image, format string, args ...any) error {
	return errdefs.Conflict(fmt.Errorf("conflict: unable to delete %s "+format, append([]any{img.ShortID()}, args...)...))
}

// Remove is `docker rmi nameOrID`. Given a reference, it untags it (and
// the digest references of that repository when no tag of it is left) and
// deletes the image if nothing else references it and no container uses
// it. Given an ID, it deletes the image and its references, refusing
// (without Force) when they span several repositories or a stopped
// container uses it, and always when a running container does.
func (s *Store) Remove(ctx context.Context, nameOrID string, opts RemoveOptions) (RemoveReport, error) {
	inUse := opts.InUse
	if inUse == nil {
		inUse = func(digest.Digest) (string, bool) { return "", false }
	}
	var rep RemoveReport
	err := s.update(ctx, func(st *state) error {
		rep = RemoveReport{}
		id, key, err := st.resolve(nameOrID)
		if err != nil {
			return err
		}
		untag := func(k string) {
			delete(st.Refs, k)
			if r, err := ParseReference(k); err == nil {
				rep.Untagged = append(rep.Untagged, r.Familiar())
			}
		}
		img := st.view(id)
		if key != "" {
			untag(key)
			if removed, _ := ParseReference(key); removed.Tag != "" {
				st.dropOrphanDigests(id, removed.Name(), untag)
			}
			if len(st.refsOf(id)) > 0 {
				return nil
			}
			if c, _ := inUse(id); c != "" {
				return nil // a container still uses it: it stays, dangling
			}
		} else {
			refs := st.refsOf(id)
			if !opts.Force && !singleRepository(refs) {
				return conflict(img, "(must be forced) - image is referenced in multiple repositories")
			}
			if c, running := inUse(id); running {
				return conflict(img, "(cannot be forced) - image is being used by running container %s", shortContainer(c))
			} else if c != "" && !opts.Force {
				return conflict(img, "(must be forced) - image is being used by stopped container %s", shortContainer(c))
			}
			for _, k := range refs {
				untag(k)
			}
		}
		delete(st.Images, id)
		img.RepoTags, img.RepoDigests = nil, nil
		rep.Deleted = append(rep.Deleted, img)
		return nil
	})
	return rep, err
}

// dropOrphanDigests removes the digest references of repository name to
// image id once no tag of that repository names it (docker does).
func (st *state) dropOrphanDigests(id digest.Digest, name string, untag func(string)) {
	var digests []string
	for _, k := range st.refsOf(id) {
		r, err := ParseReference(k)
		if err != nil || r.Name() != name {
			continue
		}
		if r.Tag != "" {
			return
		}
		digests = append(digests, k)
	}
	for _, k := range digests {
		untag(k)
	}
}

// singleRepository: the references are all of one repository, with at
// most one tag (docker's isSingleReference).
func singleRepository(keys []string) bool {
	name, tags := "", 0
	for _, k := range keys {
		r, err := ParseReference(k)
		if err != nil {
			continue
		}
		if name != "" && r.Name() != name {
			return false
		}
		name = r.Name()
		if r.Tag != "" {
			tags++
		}
	}
	return tags <= 1
}

func shortContainer(id string) string { return id[:min(12, len(id))] }

// ReferencedBlobs returns every blob that a recorded image needs.
func (s *Store) ReferencedBlobs(ctx context.Context) (map[digest.Digest]bool, error) {
	st, err := s.load()
	if err != nil {
		return nil, err
	}
	out := map[digest.Digest]bool{}
	for _, img := range st.Images {
		for _, d := range img.Blobs() {
			out[d] = true
		}
	}
	return out, nil
}

// GC removes from cs every blob that no recorded image needs. The set of
// needed blobs is read after cs's GC lock is taken, so a pull that holds
// a content Lease until its image is recorded never loses a blob.
func (s *Store) GC(ctx context.Context, cs *content.Store) (content.GCStats, error) {
	var keep map[digest.Digest]bool
	var loadErr error
	stats, err := cs.GC(ctx, func(d digest.Digest) bool {
		if keep == nil && loadErr == nil {
			keep, loadErr = s.ReferencedBlobs(ctx)
		}
		return loadErr != nil || keep[d]
	})
	return stats, errors.Join(err, loadErr)
}
