package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImagePushPull pushes an imported busybox image to a registry on
// loopback and pulls it into a fresh root: same image, same digest.
func TestImagePushPull(t *testing.T) {
	reg := startRegistry(t)
	src := newImageEnv(t)
	ref := reg + "/berth/busybox:1.0"
	id := strings.TrimSpace(src.must("import", "-c", `CMD ["sh"]`, busyboxTar(t), ref))

	out := src.must("push", ref)
	for _, want := range []string{"The push refers to repository [" + reg + "/berth/busybox]", ": Pushed", "1.0: digest: sha256:"} {
		if !strings.Contains(out, want) {
			t.Errorf("push output lacks %q:\n%s", want, out)
		}
	}
	// Pushing again uploads nothing.
	if out := src.must("push", ref); !strings.Contains(out, "Layer already exists") {
		t.Errorf("second push:\n%s", out)
	}
	src.fails("An image does not exist locally with the tag: "+reg+"/berth/nothing", "push", reg+"/berth/nothing")
	pushedDigest := strings.TrimSpace(src.must("images", "--digests", "--format", "{{.Digest}}", reg+"/berth/busybox"))
	if !strings.HasPrefix(pushedDigest, "sha256:") {
		t.Fatalf("after push, the image has no repository digest: %q", pushedDigest)
	}

	dst := newImageEnv(t)
	out = dst.must("pull", ref)
	for _, want := range []string{"1.0: Pulling from berth/busybox", ": Pull complete", "Digest: " + pushedDigest,
		"Status: Downloaded newer image for " + ref, ref} {
		if !strings.Contains(out, want) {
			t.Errorf("pull output lacks %q:\n%s", want, out)
		}
	}
	if got := strings.TrimSpace(dst.must("images", "-q", "--no-trunc")); got != id {
		t.Errorf("pulled image ID %q, pushed %q", got, id)
	}
	var insp []struct {
		RepoTags, RepoDigests []string
		Size                  int64
	}
	if err := json.Unmarshal([]byte(dst.must("image", "inspect", ref)), &insp); err != nil {
		t.Fatal(err)
	}
	if len(insp) != 1 || insp[0].RepoTags[0] != ref || insp[0].RepoDigests[0] != reg+"/berth/busybox@"+pushedDigest || insp[0].Size == 0 {
		t.Errorf("inspect after pull: %+v", insp)
	}
	// Again: nothing to do.
	if out := dst.must("pull", ref); !strings.Contains(out, "Status: Image is up to date for "+ref) {
		t.Errorf("second pull:\n%s", out)
	}
	// By digest, quietly.
	if out := dst.must("pull", "-q", reg+"/berth/busybox@"+pushedDigest); strings.TrimSpace(out) != reg+"/berth/busybox@"+pushedDigest {
		t.Errorf("pull -q by digest: %q", out)
	}
	res := dst.fails("not found", "pull", reg+"/berth/busybox:nope")
	if !strings.Contains(res.stderr, "Error: ") {
		t.Errorf("pull of a missing tag: %q", res.stderr)
	}
	if out := dst.must("images", "-q"); len(strings.Fields(out)) != 1 {
		t.Errorf("images after the failed pull: %q", out)
	}
}

// TestPullSharedBase pulls two images that share a base layer: the base
// is unpacked once, and removing one image keeps what the other needs.
func TestPullSharedBase(t *testing.T) {
	reg := startRegistry(t)
	base := randomLayer(t, "base", 4<<20, 50)
	app1 := randomLayer(t, "app1", 1<<20, 10)
	app2 := randomLayer(t, "app2", 1<<20, 10)
	pushed(t, reg+"/shared/one:v1", ociLayout(t, reg+"/shared/one:v1", []string{"sh"}, base, app1))
	pushed(t, reg+"/shared/two:v1", ociLayout(t, reg+"/shared/two:v1", []string{"sh"}, base, app2))

	e := newImageEnv(t)
	e.must("pull", reg+"/shared/one:v1")
	out := e.must("pull", reg+"/shared/two:v1")
	if !strings.Contains(out, "Already exists") {
		t.Errorf("the second pull did not find the base:\n%s", out)
	}
	driver := driverOf(t, e)
	if recs, dirs := e.storageLayers(driver); recs != 3 || dirs != 3 {
		t.Errorf("two images over one base: %d layer records and %d %s dirs, want 3 and 3", recs, dirs, driver)
	}
	blobs, _ := os.ReadDir(filepath.Join(e.root, "content", "blobs", "sha256"))
	// base, app1, app2, 2 configs, 2 manifests.
	if len(blobs) != 7 {
		t.Errorf("content store holds %d blobs, want 7", len(blobs))
	}
	if out := e.must("system", "df"); !strings.Contains(out, "Images          2         0") {
		t.Errorf("system df:\n%s", out)
	}

	e.must("rmi", reg+"/shared/one:v1")
	if recs, dirs := e.storageLayers(driver); recs != 2 || dirs != 2 {
		t.Errorf("after rmi of one: %d layer records and %d dirs, want 2 and 2", recs, dirs)
	}
	e.must("rmi", reg+"/shared/two:v1")
	if recs, dirs := e.storageLayers(driver); recs != 0 || dirs != 0 {
		t.Errorf("after rmi of both: %d layer records and %d dirs, want none", recs, dirs)
	}
	if blobs, _ := os.ReadDir(filepath.Join(e.root, "content", "blobs", "sha256")); len(blobs) != 0 {
		t.Errorf("after rmi of both: %d blobs remain", len(blobs))
	}
}
