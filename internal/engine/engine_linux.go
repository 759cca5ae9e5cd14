package engine

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"sync"

	"github.com/berth-dev/berth/internal/engine/store"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/network"
	"github.com/berth-dev/berth/internal/runtime"
)

// Options say where the engine keeps its state and how it reaches the
// rest of the machine.
type Options struct {
	ImagesOptions
	// RunRoot holds what does not survive a reboot: bundles, the
	// runtime's state, the monitor's socket.
	RunRoot string
	// Binary is berth's own executable: the monitor and --init run it.
	Binary string
	// CgroupParent holds the containers' cgroups unless a container says
	// otherwise (--cgroup-parent); "/berth" by default.
	CgroupParent string
}

// Engine is berth's container engine over one root. Like Images, it holds
// no lock between calls.
type Engine struct {
	images     *Images
	opts       Options
	containers *store.Store

	netMu sync.Mutex
	net   *network.Manager // opened at first use
}

// Open opens the engine's stores under opts.Root and opts.RunRoot.
func Open(opts Options) (*Engine, error) {
	if opts.RunRoot == "" {
		return nil, errdefs.InvalidArgument(errors.New("open engine: no run directory"))
	}
	abs, err := filepath.Abs(opts.RunRoot)
	if err != nil {
		return nil, fmt.Errorf("open engine: %w", err)
	}
	opts.RunRoot = abs
	if opts.Binary == "" {
		if opts.Binary, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("open engine: find berth's binary: %w", err)
		}
	}
	img, err := OpenImages(opts.ImagesOptions)
	if err != nil {
		return nil, err
	}
	opts.Root = img.Root()
	cs, err := store.Open(filepath.Join(opts.Root, "containers"))
	if err != nil {
		img.Close()
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(opts.RunRoot, "containers"), 0o711); err != nil {
		img.Close()
		return nil, fmt.Errorf("open engine: %w", err)
	}
	return &Engine{images: img, opts: opts, containers: cs}, nil
}

// Images is the image service.
func (e *Engine) Images() *Images { return e.images }

// Close releases what the engine holds open.
func (e *Engine) Close() error { return e.images.Close() }

// Containers is the container store.
func (e *Engine) Containers() *store.Store { return e.containers }

// runtime is berth's own OCI runtime, with its state under the run root.
func (e *Engine) runtime() *runtime.Runtime {
	return &runtime.Runtime{Root: filepath.Join(e.opts.RunRoot, "runtime")}
}

// bundleDir is where container id's config.json and per-container files
// (hostname, hosts, resolv.conf) are written at start.
func (e *Engine) bundleDir(id string) string {
	return filepath.Join(e.opts.RunRoot, "containers", id)
}

func (e *Engine) monitorSocket() string { return filepath.Join(e.opts.RunRoot, "monitor.sock") }

// Get resolves a container name, ID or ID prefix.
func (e *Engine) Get(ref string) (*store.Container, error) {
	c, err := e.containers.Find(ref)
	if err != nil {
		return nil, err
	}
	return e.refresh(c), nil
}

func newID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b[:])
}

// validName is docker's rule for container names.
var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

var nameLeft = []string{"amber", "brave", "calm", "clever", "crisp", "dapper", "eager", "fancy", "gentle",
	"happy", "jolly", "keen", "lively", "lucid", "merry", "nimble", "noble", "plucky", "quiet", "rapid",
	"serene", "shiny", "sturdy", "sunny", "swift", "tidy", "upbeat", "vivid", "witty", "zesty"}

var nameRight = []string{"anchor", "barge", "buoy", "canal", "cove", "delta", "dock", "ferry", "fjord",
	"galley", "harbor", "hull", "inlet", "jetty", "keel", "lagoon", "marina", "mast", "pier", "quay",
	"reef", "rudder", "sail", "schooner", "shoal", "skiff", "sloop", "tide", "wharf", "yawl"}

func randomName() string {
	pick := func(list []string) string {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(list))))
		return list[n.Int64()]
	}
	return pick(nameLeft) + "_" + pick(nameRight)
}

// ShortID is docker's 12-digit form of an ID.
func ShortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
