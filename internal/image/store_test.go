package image

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/berth-dev/berth/internal/content"
	"github.com/berth-dev/berth/internal/errdefs"
)

// The test binary doubles as a second CLI process: with BERTH_IMAGE_HELPER
// set, it tags images in a store and exits.
func TestMain(m *testing.M) {
	if os.Getenv("BERTH_IMAGE_HELPER") == "tag" {
		if err := helperTag(); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func helperTag() error {
	ctx := context.Background()
	s, err := Open(os.Getenv("BERTH_IMAGE_ROOT"))
	if err != nil {
		return err
	}
	n, _ := strconv.Atoi(os.Getenv("BERTH_IMAGE_COUNT"))
	for i := 0; n == 0 || i < n; i++ {
		ref, err := ParseReference(fmt.Sprintf("%s:%d", os.Getenv("BERTH_IMAGE_PREFIX"), i))
		if err != nil {
			return err
		}
		if err := s.Tag(ctx, "base", ref); err != nil {
			return err
		}
	}
	return nil
}

// testImage makes an image whose config, manifest and layers are distinct
// per name, sharing layer "base" when shared is set.
func testImage(name string, shared bool, created time.Time) Image {
	layers := []Layer{{Blob: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString(name + "-blob"), Size: 10},
		DiffID: digest.FromString(name + "-diff"), Size: 100}}
	if shared {
		layers = append([]Layer{{Blob: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromString("base-blob"), Size: 10},
			DiffID: digest.FromString("base-diff"), Size: 1000}}, layers...)
	}
	return Image{
		Manifest: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString(name + "-manifest"), Size: 500},
		Config:   ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromString(name + "-config"), Size: 300},
		Layers:   layers,
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		Created:  created,
	}
}

func mustRef(t *testing.T, s string) Reference {
	t.Helper()
	r, err := ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func newImageStore(t *testing.T) (*Store, string) {
	t.Helper()
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

func put(t *testing.T, s *Store, img Image, refs ...string) Image {
	t.Helper()
	var rs []Reference
	for _, r := range refs {
		rs = append(rs, mustRef(t, r))
	}
	out, err := s.Put(context.Background(), img, rs...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestStoreGet(t *testing.T) {
	ctx := context.Background()
	s, _ := newImageStore(t)
	img := testImage("busybox", false, time.Unix(100, 0))
	idx := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromString("index"), Size: 9}
	img.Index = &idx
	stored := put(t, s, img, "busybox", "busybox@"+idx.Digest.String(), "localhost:5000/tools/busybox:1.36")
	if stored.ID != img.Config.Digest || stored.Size != 100 || stored.Added.IsZero() || stored.LastTagTime.IsZero() {
		t.Fatalf("Put returned %+v", stored)
	}
	wantTags := []string{"busybox:latest", "localhost:5000/tools/busybox:1.36"}
	wantDigests := []string{"busybox@" + idx.Digest.String()}
	id := img.Config.Digest
	for _, name := range []string{
		"busybox", "busybox:latest", "docker.io/library/busybox:latest", "index.docker.io/busybox",
		"localhost:5000/tools/busybox:1.36",
		"busybox@" + idx.Digest.String(),
		"busybox@" + img.Manifest.Digest.String(), // by manifest digest, not recorded as a ref
		id.String(), id.Encoded(), id.Encoded()[:12], "sha256:" + id.Encoded()[:5],
	} {
		got, err := s.Get(ctx, name)
		if err != nil {
			t.Errorf("Get(%s): %v", name, err)
			continue
		}
		if got.ID != id || !slices.Equal(got.RepoTags, wantTags) || !slices.Equal(got.RepoDigests, wantDigests) {
			t.Errorf("Get(%s) = %s tags %v digests %v", name, got.ID, got.RepoTags, got.RepoDigests)
		}
	}
	if got, _ := s.Get(ctx, "busybox"); got.ShortID() != id.Encoded()[:12] || got.Dangling() {
		t.Errorf("ShortID %s, dangling %v", got.ShortID(), got.Dangling())
	}

	for name, want := range map[string]string{
		"alpine":            "No such image: alpine:latest",
		"busybox:1.0":       "No such image: busybox:1.0",
		"ffff":              "No such image: ffff:latest",
		"sha256:" + hex64:   "No such image: sha256:" + hex64,
		"Foo":               `invalid reference format: "Foo": repository name must be lowercase`,
		"":                  "empty image name",
		"busybox@" + dgst:   "No such image: busybox@" + dgst,
		"localhost:5000/x/": "invalid reference format",
	} {
		_, err := s.Get(ctx, name)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Get(%q) = %v, want %q", name, err, want)
		}
		if strings.HasPrefix(want, "No such") && !errdefs.Is(err, errdefs.KindNotFound) {
			t.Errorf("Get(%q) = %v, want not found", name, err)
		}
	}
}

func TestStoreAmbiguousPrefix(t *testing.T) {
	ctx := context.Background()
	s, _ := newImageStore(t)
	// Find two images whose IDs share a first hex digit.
	seen := map[byte]string{}
	var a, b string
	for i := 0; a == ""; i++ {
		name := fmt.Sprintf("img%d", i)
		c := digest.FromString(name + "-config").Encoded()[0]
		if other, ok := seen[c]; ok {
			a, b = other, name
		}
		seen[c] = name
	}
	ia, ib := put(t, s, testImage(a, false, time.Time{})), put(t, s, testImage(b, false, time.Time{}))
	prefix := ia.ID.Encoded()[:1]
	if _, err := s.Get(ctx, prefix); err == nil || !strings.Contains(err.Error(), "ambiguous") {
		t.Fatalf("Get(%s) = %v, want ambiguous", prefix, err)
	}
	if got, err := s.Get(ctx, ib.ID.Encoded()[:12]); err != nil || got.ID != ib.ID {
		t.Fatalf("Get(short ID) = %v, %v", got.ID, err)
	}
}

func TestStoreListTagUntag(t *testing.T) {
	ctx := context.Background()
	s, _ := newImageStore(t)
	old := put(t, s, testImage("v1", false, time.Unix(100, 0)), "app")
	put(t, s, testImage("v2", false, time.Unix(200, 0)), "app") // moves app:latest

	list, err := s.List(ctx)
	if err != nil || len(list) != 2 {
		t.Fatalf("List = %v, %v", list, err)
	}
	if list[0].ID == old.ID || !slices.Equal(list[0].RepoTags, []string{"app:latest"}) || !list[1].Dangling() {
		t.Fatalf("List = %+v", list)
	}

	if err := s.Tag(ctx, old.ID.Encoded()[:12], mustRef(t, "app:v1")); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag(ctx, "app", mustRef(t, "registry.example.com/team/app")); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, "registry.example.com/team/app:latest"); got.ID == old.ID {
		t.Fatal("tag followed the wrong image")
	}
	if err := s.Tag(ctx, "app", mustRef(t, "app@"+dgst)); err == nil || !strings.Contains(err.Error(), "refusing to create a tag with a digest reference") {
		t.Fatalf("Tag with digest = %v", err)
	}
	if err := s.Tag(ctx, "nope", mustRef(t, "x")); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Fatalf("Tag of a missing image = %v", err)
	}

	img, err := s.Untag(ctx, mustRef(t, "app:v1"))
	if err != nil || img.ID != old.ID || !img.Dangling() {
		t.Fatalf("Untag = %+v, %v", img, err)
	}
	if _, err := s.Get(ctx, old.ID.String()); err != nil {
		t.Fatalf("Untag removed the image: %v", err)
	}
	if _, err := s.Untag(ctx, mustRef(t, "app:v1")); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Fatalf("second Untag = %v", err)
	}

	deleted, err := s.Delete(ctx, old.ID)
	if err != nil || deleted.ID != old.ID {
		t.Fatalf("Delete = %v", err)
	}
	if _, err := s.Delete(ctx, old.ID); !errdefs.Is(err, errdefs.KindNotFound) {
		t.Fatalf("second Delete = %v", err)
	}
}

func TestStoreRemove(t *testing.T) {
	type use struct {
		container string
		running   bool
	}
	tests := []struct {
		name     string
		refs     []string // of image "a"
		other    []string // of image "b", sharing nothing
		remove   string   // "ID" for a's ID
		force    bool
		use      use
		untagged []string
		deleted  bool
		err      string
		left     []string // refs of a afterwards, if a is left
	}{
		{name: "last tag", refs: []string{"app", "app@" + dgst}, remove: "app",
			untagged: []string{"app:latest", "app@" + dgst}, deleted: true},
		{name: "one of two tags", refs: []string{"app", "app:v1"}, remove: "app:v1",
			untagged: []string{"app:v1"}, left: []string{"app:latest"}},
		{name: "tag of another repository keeps digests", refs: []string{"app", "app@" + dgst, "other:1"}, remove: "app",
			untagged: []string{"app:latest", "app@" + dgst}, left: []string{"other:1"}},
		{name: "by ID with one tag", refs: []string{"app"}, remove: "ID",
			untagged: []string{"app:latest"}, deleted: true},
		{name: "by ID, two repositories", refs: []string{"app", "other"}, remove: "ID",
			err: "(must be forced) - image is referenced in multiple repositories", left: []string{"app:latest", "other:latest"}},
		{name: "by ID, two tags of one repository", refs: []string{"app:1", "app:2"}, remove: "ID",
			err: "must be forced", left: []string{"app:1", "app:2"}},
		{name: "by ID, two repositories, forced", refs: []string{"app", "other"}, remove: "ID", force: true,
			untagged: []string{"app:latest", "other:latest"}, deleted: true},
		{name: "running container", refs: []string{"app"}, remove: "ID", force: true, use: use{"0123456789abcdef", true},
			err: "(cannot be forced) - image is being used by running container 0123456789ab", left: []string{"app:latest"}},
		{name: "stopped container", refs: []string{"app"}, remove: "ID", use: use{"c1", false},
			err: "(must be forced) - image is being used by stopped container c1", left: []string{"app:latest"}},
		{name: "stopped container, forced", refs: []string{"app"}, remove: "ID", force: true, use: use{"c1", false},
			untagged: []string{"app:latest"}, deleted: true},
		{name: "last tag of an image in use", refs: []string{"app"}, remove: "app", use: use{"c1", true},
			untagged: []string{"app:latest"}, left: []string{}},
		{name: "missing", refs: []string{"app"}, remove: "nope", err: "No such image: nope:latest", left: []string{"app:latest"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			s, _ := newImageStore(t)
			a := put(t, s, testImage("a", false, time.Time{}), tt.refs...)
			b := put(t, s, testImage("b", false, time.Time{}), "b")
			target := tt.remove
			if target == "ID" {
				target = a.ShortID()
			}
			rep, err := s.Remove(ctx, target, RemoveOptions{Force: tt.force, InUse: func(id digest.Digest) (string, bool) {
				if id == a.ID {
					return tt.use.container, tt.use.running
				}
				return "", false
			}})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("Remove = %+v, %v; want error %q", rep, err, tt.err)
				}
				if strings.HasPrefix(tt.err, "(") && (!strings.HasPrefix(err.Error(), "conflict: unable to delete "+a.ShortID()) || !errdefs.Is(err, errdefs.KindConflict)) {
					t.Fatalf("error %v is not docker's conflict", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			slices.Sort(rep.Untagged)
			if !slices.Equal(rep.Untagged, tt.untagged) {
				t.Errorf("untagged %v, want %v", rep.Untagged, tt.untagged)
			}
			if got := len(rep.Deleted) == 1 && rep.Deleted[0].ID == a.ID; got != tt.deleted || len(rep.Deleted) > 1 {
				t.Errorf("deleted %v, want a deleted: %v", rep.Deleted, tt.deleted)
			}
			after, err := s.Get(ctx, a.ID.String())
			if tt.deleted {
				if !errdefs.Is(err, errdefs.KindNotFound) {
					t.Errorf("image left after delete: %v", err)
				}
			} else if err != nil {
				t.Errorf("image gone: %v", err)
			} else if refs := append(after.RepoTags, after.RepoDigests...); !slices.Equal(refs, tt.left) && !(len(refs) == 0 && len(tt.left) == 0) {
				t.Errorf("refs left %v, want %v", refs, tt.left)
			}
			if got, err := s.Get(ctx, "b"); err != nil || got.ID != b.ID {
				t.Errorf("other image disturbed: %v", err)
			}
		})
	}
}

func TestStoreGC(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := content.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	// Store each digest an image names as a blob of its own (content does
	// not care what the bytes are as long as they hash right).
	blobs := map[digest.Digest][]byte{}
	addImage := func(name string) Image {
		img := testImage(name, true, time.Time{})
		fix := func(d *ocispec.Descriptor, label string) {
			data := []byte(label)
			d.Digest, d.Size = digest.FromBytes(data), int64(len(data))
			blobs[d.Digest] = data
			if _, err := cs.Put(ctx, "", bytes.NewReader(data), d.Digest, d.Size); err != nil {
				t.Fatal(err)
			}
		}
		fix(&img.Manifest, name+" manifest")
		fix(&img.Config, name+" config")
		fix(&img.Layers[0].Blob, "shared base layer")
		fix(&img.Layers[1].Blob, name+" layer")
		return put(t, s, img, name)
	}
	a := addImage("a")
	b := addImage("b")
	stray := []byte("stray blob")
	if _, err := cs.Put(ctx, "", bytes.NewReader(stray), digest.FromBytes(stray), int64(len(stray))); err != nil {
		t.Fatal(err)
	}

	rep, err := s.Remove(ctx, "a", RemoveOptions{})
	if err != nil || len(rep.Deleted) != 1 {
		t.Fatalf("Remove = %+v, %v", rep, err)
	}
	stats, err := s.GC(ctx, cs)
	if err != nil {
		t.Fatal(err)
	}
	if len(stats.Removed) != 4 { // a's manifest, config, own layer, and the stray blob
		t.Fatalf("GC removed %v", stats.Removed)
	}
	for _, d := range b.Blobs() {
		if !cs.Exists(ctx, d) {
			t.Errorf("GC removed %s, which b needs", d)
		}
	}
	for _, d := range []digest.Digest{a.Manifest.Digest, a.Config.Digest, a.Layers[1].Blob.Digest, digest.FromBytes(stray)} {
		if cs.Exists(ctx, d) {
			t.Errorf("GC kept %s", d)
		}
	}
}

func TestStoreSurvivesDebris(t *testing.T) {
	ctx := context.Background()
	s, root := newImageStore(t)
	put(t, s, testImage("a", false, time.Time{}), "a")
	// A crash mid-save leaves a partial temporary file: never read.
	if err := os.WriteFile(filepath.Join(root, "image", "images.json.tmp"), []byte(`{"version": 1, "ima`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	put(t, s, testImage("b", false, time.Time{}), "b")
	if list, err := s.List(ctx); err != nil || len(list) != 2 {
		t.Fatalf("List = %v, %v", list, err)
	}
	// A corrupt store file is reported, not taken as empty.
	if err := os.WriteFile(filepath.Join(root, "image", "images.json"), []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.List(ctx); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("List of a corrupt store = %v", err)
	}
}

func helperCmd(root, prefix string, count int) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "BERTH_IMAGE_HELPER=tag", "BERTH_IMAGE_ROOT="+root,
		"BERTH_IMAGE_PREFIX="+prefix, "BERTH_IMAGE_COUNT="+strconv.Itoa(count))
	cmd.Stderr = os.Stderr
	return cmd
}

func TestConcurrentTaggingFromTwoProcesses(t *testing.T) {
	ctx := context.Background()
	s, root := newImageStore(t)
	base := put(t, s, testImage("base", false, time.Time{}), "base")

	const n = 40
	var cmds []*exec.Cmd
	for _, prefix := range []string{"one", "two"} {
		cmd := helperCmd(root, prefix, n)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	// This process tags too, at the same time.
	for i := range n {
		if err := s.Tag(ctx, "base", mustRef(t, fmt.Sprintf("three:%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	for _, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("helper: %v", err)
		}
	}
	img, err := s.Get(ctx, "base")
	if err != nil {
		t.Fatal(err)
	}
	if len(img.RepoTags) != 3*n+1 || img.ID != base.ID {
		t.Fatalf("%d tags after concurrent tagging, want %d: a lost update", len(img.RepoTags), 3*n+1)
	}
}

func TestKillDuringTagging(t *testing.T) {
	ctx := context.Background()
	s, root := newImageStore(t)
	put(t, s, testImage("base", false, time.Time{}), "base")
	for i := range 5 {
		cmd := helperCmd(root, "loop", 0) // tags until killed
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(10+5*i) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
		// The store reads whole and the lock died with the process.
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := s.Tag(wctx, "base", mustRef(t, fmt.Sprintf("after:%d", i)))
		cancel()
		if err != nil {
			t.Fatalf("tag after kill %d: %v", i, err)
		}
		img, err := s.Get(ctx, "base")
		if err != nil {
			t.Fatalf("get after kill %d: %v", i, err)
		}
		t.Logf("kill %d: %d tags", i, len(img.RepoTags))
	}
}
