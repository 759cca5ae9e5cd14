package engine

import (
	"slices"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/berth-dev/berth/internal/engine/store"
	"github.com/berth-dev/berth/internal/image"
)

// A committed image runs as its container ran: the image's config under
// the container's.
func TestCommitRunConfig(t *testing.T) {
	port := network.MustParsePort("8080/tcp")
	rec := &store.Container{
		ImageConfig: &image.RunConfig{Env: []string{"PATH=/bin", "A=img"}, Cmd: []string{"sh"}, WorkingDir: "/srv",
			ExposedPorts: map[string]struct{}{"80/tcp": {}}, Labels: map[string]string{"from": "image"}},
		Config: &container.Config{Env: []string{"A=ctr"}, Cmd: []string{"top"}, User: "nobody",
			ExposedPorts: network.PortSet{port: {}}, Labels: map[string]string{"set": "run"}},
	}
	run := commitRunConfig(rec)
	if !slices.Equal(run.Env, []string{"PATH=/bin", "A=ctr"}) || !slices.Equal(run.Cmd, []string{"top"}) ||
		run.User != "nobody" || run.WorkingDir != "/srv" {
		t.Fatalf("config: %+v", run)
	}
	if _, ok := run.ExposedPorts["80/tcp"]; !ok {
		t.Fatalf("image port lost: %v", run.ExposedPorts)
	}
	if _, ok := run.ExposedPorts["8080/tcp"]; !ok {
		t.Fatalf("container port lost: %v", run.ExposedPorts)
	}
	if run.Labels["from"] != "image" || run.Labels["set"] != "run" {
		t.Fatalf("labels: %v", run.Labels)
	}
	if err := ApplyChanges(&run, []string{"ENV B=1", `CMD ["echo","hi"]`}); err != nil {
		t.Fatal(err)
	}
	if rec.ImageConfig.Env[1] != "A=img" || len(rec.ImageConfig.ExposedPorts) != 1 {
		t.Fatal("commitRunConfig changed the record's image config")
	}
}
