package e2e

// Helpers for the tests that drive berth's runtime through real clients
// (dockerd, podman, containerd). Each test starts its own daemons on
// private state under one temporary directory, builds its image locally
// from busybox-static (no registry is ever contacted or resolved), and
// tears everything down even when it fails: containers, daemons, shims,
// mounts, cgroups and network interfaces.
//
// Debugging: BERTH_E2E_TRACE=1 puts a logging wrapper in place of the
// berth-runtime link (every call and its exit status, shown on failure);
// BERTH_E2E_LOGDIR=DIR keeps the daemons' logs and that call log.

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/testutil"
)

// testImage is the fully local name every client test gives its image.
const testImage = "localhost/berth-test-busybox:latest"

// clientEnv is one client test's private world.
type clientEnv struct {
	t *testing.T
	// dir holds every daemon's state; cleanup unmounts what is under it.
	dir string
	// runtime is a link named berth-runtime to the built berth binary.
	runtime string
	// tag is unique to this test run: cgroup parents and namespaces use it.
	tag string
	// cgroups are cgroup names (one path element) this test's clients
	// create; cleanup removes them and reports any container cgroup left.
	cgroups []string
	links   map[string]bool
	daemons []*daemon
	// hostDirs are fixed host paths the clients create whatever their
	// flags say, and whether each was there before the test.
	hostDirs map[string]bool
}

// fixedHostDirs are made by the clients in fixed places (dockerd's plugin
// directory, containerd shims' sockets); cleanup removes those the test
// made, when empty, deepest first.
var fixedHostDirs = []string{
	"/run/docker/plugins", "/run/docker", "/run/containerd/s", "/run/containerd/fifo", "/run/containerd",
	// podman import (containers/image) keeps a blob cache here for root,
	// whatever --root says.
	"/var/lib/containers/cache", "/var/lib/containers",
	// podman's network run directory, --network-config-dir or not.
	"/run/containers/networks", "/run/containers",
}

// newClientEnv skips unless root, busybox-static and the client binaries
// are there, and registers the cleanup that leaves the host as it was.
func newClientEnv(t *testing.T, bins ...string) *clientEnv {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireBusybox(t)
	for _, b := range bins {
		if _, err := exec.LookPath(b); err != nil {
			msg := fmt.Sprintf("needs %s (apt-get install docker.io containerd podman): %v", b, err)
			if os.Getenv("CI") == "true" {
				// CI installs the clients: a skip there would hide a gap.
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	var rb [4]byte
	_, _ = rand.Read(rb[:])
	// Short: podman refuses a runroot over 50 characters, and socket
	// paths must fit in 108.
	base := os.TempDir()
	if len(base) > 16 {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "berth-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs last, after cleanup has unmounted.
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	e := &clientEnv{t: t, dir: dir, tag: "berth-e2e-" + hex.EncodeToString(rb[:]), links: netLinks(), hostDirs: map[string]bool{}}
	for _, d := range fixedHostDirs {
		e.hostDirs[d] = isDir(d)
	}
	// Others (podman's conmon, a user namespace's root) must reach it.
	_ = os.Chmod(e.dir, 0o755)
	bin := testutil.Binary(t)
	e.runtime = filepath.Join(e.dir, "bin", "berth-runtime")
	if err := os.MkdirAll(filepath.Dir(e.runtime), 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Getenv("BERTH_E2E_TRACE") != "" {
		// Debugging aid: log every call the client makes, and its status.
		script := fmt.Sprintf("#!/bin/bash\necho \"$(date +%%T.%%N) $$ call: $*\" >> %s\n(exec -a berth-runtime %s \"$@\")\nrc=$?\necho \"$(date +%%T.%%N) $$ exit $rc\" >> %s\nexit $rc\n",
			e.path("runtime-calls.log"), bin, e.path("runtime-calls.log"))
		if err := os.WriteFile(e.runtime, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	} else if err := os.Symlink(bin, e.runtime); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.cleanup)
	return e
}

func (e *clientEnv) path(elem ...string) string {
	return filepath.Join(append([]string{e.dir}, elem...)...)
}

// cgroupName registers name (one element, directly under the cgroup
// root) as made by this test, and returns it.
func (e *clientEnv) cgroupName(suffix string) string {
	n := e.tag + "-" + suffix
	e.cgroups = append(e.cgroups, n)
	return n
}

// daemon is a long-running client process (dockerd, containerd).
type daemon struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

// startDaemon starts bin with args, its output going to a log file under
// the test's directory; cleanup stops it.
func (e *clientEnv) startDaemon(name string, env []string, bin string, args ...string) *daemon {
	e.t.Helper()
	logPath := e.path(name + ".log")
	f, err := os.Create(logPath)
	if err != nil {
		e.t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	// Its own process group, so a ^C of the test does not reach it first
	// and cleanup still stops it in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("start %s: %v", name, err)
	}
	d := &daemon{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { d.err = cmd.Wait(); close(d.done) }()
	e.daemons = append(e.daemons, d)
	return d
}

// waitSocket waits until the daemon accepts connections on sock.
func (e *clientEnv) waitSocket(d *daemon, sock string, timeout time.Duration) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			return
		}
		select {
		case <-d.done:
			e.t.Fatalf("%s exited before it listened on %s: %v\n%s", d.name, sock, d.err, tail(d.log))
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s did not listen on %s within %v\n%s", d.name, sock, timeout, tail(d.log))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM, then SIGKILL if the daemon lingers.
func (d *daemon) stop(t *testing.T) {
	select {
	case <-d.done:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	start := time.Now()
	defer func() {
		if took := time.Since(start); took > 5*time.Second {
			t.Logf("%s took %v to stop", d.name, took.Round(time.Millisecond))
		}
	}()
	select {
	case <-d.done:
	case <-time.After(20 * time.Second):
		t.Errorf("%s did not stop within 20s of SIGTERM; killing it", d.name)
		_ = d.cmd.Process.Kill()
		<-d.done
	}
}

func tail(path string) string {
	data, _ := os.ReadFile(path)
	if len(data) > 6000 {
		data = data[len(data)-6000:]
	}
	return string(data)
}

// cmdResult is what one client command printed and returned.
type cmdResult struct {
	stdout, stderr string
	code           int
}

func (r cmdResult) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
}

// client runs a client command (docker, podman, ctr) with a deadline.
// Output goes to files, not pipes: a detached container may inherit them.
func (e *clientEnv) client(env []string, stdin string, bin string, args ...string) cmdResult {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, errb := tempFile(e.t), tempFile(e.t)
	cmd.Stdout, cmd.Stderr = out, errb
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	start := time.Now()
	err := cmd.Run()
	if took := time.Since(start); took > 5*time.Second {
		e.t.Logf("slow (%v): %s %s", took.Round(time.Millisecond), bin, strings.Join(args, " "))
	}
	res := cmdResult{stdout: readAll(e.t, out), stderr: readAll(e.t, errb)}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		e.t.Fatalf("%s %s: timed out\n%s", bin, strings.Join(args, " "), res)
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		e.t.Fatalf("%s %s: %v", bin, strings.Join(args, " "), err)
	}
	return res
}

// rootfsTar writes a tar of a busybox root filesystem and returns its path.
func (e *clientEnv) rootfsTar() string {
	e.t.Helper()
	dir := e.path("image-rootfs")
	if err := testutil.MakeRootfs(dir); err != nil {
		e.t.Fatalf("make busybox rootfs: %v", err)
	}
	path := e.path("rootfs.tar")
	f, err := os.Create(path)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := writeTree(f, dir); err != nil {
		e.t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// writeTree writes dir as an uncompressed tar, paths relative to dir,
// owned by root.
func writeTree(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = rel
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "root", "root"
		hdr.ModTime = time.Unix(0, 0)
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			if _, err := io.Copy(tw, f); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Close()
}

// ociArchive writes an OCI image layout tar holding one image, named name,
// whose single layer is the tar at layerPath; `ctr images import` reads it.
func (e *clientEnv) ociArchive(layerPath, name string) string {
	e.t.Helper()
	layer, err := os.ReadFile(layerPath)
	if err != nil {
		e.t.Fatal(err)
	}
	type descriptor struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int               `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	blobs := map[string][]byte{}
	add := func(mediaType string, data []byte) descriptor {
		sum := sha256.Sum256(data)
		d := "sha256:" + hex.EncodeToString(sum[:])
		blobs[d] = data
		return descriptor{MediaType: mediaType, Digest: d, Size: len(data)}
	}
	layerDesc := add("application/vnd.oci.image.layer.v1.tar", layer)
	config, _ := json.Marshal(map[string]any{
		"architecture": goruntime.GOARCH,
		"os":           "linux",
		"config": map[string]any{
			"Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			"Cmd": []string{"sh"},
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layerDesc.Digest}},
	})
	configDesc := add("application/vnd.oci.image.config.v1+json", config)
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        configDesc,
		"layers":        []descriptor{layerDesc},
	})
	manifestDesc := add("application/vnd.oci.image.manifest.v1+json", manifest)
	_, tagName, _ := strings.Cut(name[strings.LastIndex(name, "/")+1:], ":")
	manifestDesc.Annotations = map[string]string{
		"io.containerd.image.name":          name,
		"org.opencontainers.image.ref.name": tagName,
	}
	index, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     []descriptor{manifestDesc},
	})

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	put := func(name string, data []byte) {
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Unix(0, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			e.t.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			e.t.Fatal(err)
		}
	}
	put("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	put("index.json", index)
	digests := make([]string, 0, len(blobs))
	for d := range blobs {
		digests = append(digests, d)
	}
	sort.Strings(digests)
	for _, d := range digests {
		put("blobs/sha256/"+strings.TrimPrefix(d, "sha256:"), blobs[d])
	}
	if err := tw.Close(); err != nil {
		e.t.Fatal(err)
	}
	path := e.path("image-oci.tar")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return path
}

// berthState reads berth's state file for container id under a runtime
// root, as the client passed it with --root. It is how the tests tell
// that berth, not runc, ran the container: runc's state.json has no
// pidStart.
func berthState(root, id string) (map[string]any, error) {
	data, err := os.ReadFile(filepath.Join(root, id, "state.json"))
	if err != nil {
		return nil, err
	}
	var st map[string]any
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, err
	}
	if _, ok := st["pidStart"]; !ok {
		return nil, fmt.Errorf("%s/%s/state.json is not berth's (no pidStart)", root, id)
	}
	return st, nil
}

// findBerthState looks for berth's state of container id in any directory
// under root (clients add a namespace level of their own).
func findBerthState(root, id string) (string, error) {
	var found string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || found != "" {
			return nil
		}
		if d.IsDir() && d.Name() == id {
			if _, err := berthState(filepath.Dir(p), id); err == nil {
				found = p
				return filepath.SkipAll
			}
		}
		return nil
	})
	if found == "" {
		return "", fmt.Errorf("no berth state for container %s under %s", id, root)
	}
	return found, nil
}

// cleanup stops the daemons (newest first), then removes whatever they
// left on the host and reports it: processes, mounts, cgroups, links.
func (e *clientEnv) cleanup() {
	t := e.t
	for i := len(e.daemons) - 1; i >= 0; i-- {
		e.daemons[i].stop(t)
	}
	if keep := os.Getenv("BERTH_E2E_LOGDIR"); keep != "" {
		// Debugging aid: keep the daemons' logs.
		_ = os.MkdirAll(keep, 0o755)
		for _, d := range e.daemons {
			if data, err := os.ReadFile(d.log); err == nil {
				_ = os.WriteFile(filepath.Join(keep, t.Name()+"-"+d.name+".log"), data, 0o644)
			}
		}
		if data, err := os.ReadFile(e.path("runtime-calls.log")); err == nil {
			_ = os.WriteFile(filepath.Join(keep, t.Name()+"-runtime-calls.log"), data, 0o644)
		}
	}
	if t.Failed() {
		for _, d := range e.daemons {
			t.Logf("%s log:\n%s", d.name, tail(d.log))
		}
		if calls := tail(e.path("runtime-calls.log")); calls != "" {
			t.Logf("runtime calls:\n%s", calls)
		}
	}
	// Shims, conmon and podman's exit cleanup detach from their parent on
	// purpose; their command lines name our directory. Give the last ones
	// a moment to finish.
	for deadline := time.Now().Add(5 * time.Second); len(procsMentioning(e.dir)) > 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	if n := killProcsMentioning(e.dir); n > 0 {
		t.Errorf("%d process(es) outlived their daemons (killed)", n)
	}
	if n := unmountUnder(e.dir); n > 0 {
		// dockerd and containerd leave some mounts of their state behind
		// on purpose: not a failure, but nothing may stay.
		t.Logf("unmounted %d mount(s) the daemons left under %s", n, e.dir)
	}
	e.removeCgroups()
	for _, d := range fixedHostDirs {
		if e.hostDirs[d] {
			continue
		}
		if d == "/var/lib/containers/cache" {
			_ = os.Remove(filepath.Join(d, "blob-info-cache-v1.boltdb"))
		}
		_ = os.Remove(d) // only if empty: someone else may use it
	}
	for l := range netLinks() {
		if !e.links[l] {
			t.Errorf("leaked network interface %s", l)
		}
	}
	testutil.CheckNoLeaks(t, []string{e.dir}, e.cgroups)
}

// procsMentioning lists the processes (but this one) whose command line
// mentions s.
func procsMentioning(s string) []int {
	var pids []int
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	self := os.Getpid()
	for _, p := range procs {
		data, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(data, []byte(s)) {
			continue
		}
		if pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p))); pid != self {
			pids = append(pids, pid)
		}
	}
	return pids
}

// killProcsMentioning SIGKILLs processes whose command line mentions s and
// waits for them to go.
func killProcsMentioning(s string) int {
	pids := procsMentioning(s)
	for _, pid := range pids {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for time.Now().Before(deadline) {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
				break
			}
			// Reap it if it is ours; otherwise its parent does.
			_, _ = unix.Wait4(pid, nil, unix.WNOHANG, nil)
			time.Sleep(10 * time.Millisecond)
		}
	}
	return len(pids)
}

// unmountUnder detaches every mount at or below dir, deepest first.
func unmountUnder(dir string) int {
	n := 0
	for round := 0; round < 5; round++ {
		var points []string
		data, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			return n
		}
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Fields(line)
			if len(f) < 5 {
				continue
			}
			mp := unescapeMount(f[4])
			if mp == dir || strings.HasPrefix(mp, dir+"/") {
				points = append(points, mp)
			}
		}
		if len(points) == 0 {
			return n
		}
		sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
		for _, p := range points {
			if unix.Unmount(p, unix.MNT_DETACH) == nil {
				n++
			}
		}
	}
	return n
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// removeCgroups removes this test's cgroup trees in every hierarchy. A
// client leaves the parent it was told to use (as with runc); a container
// cgroup inside it is the runtime's to remove, so one left is an error.
func (e *clientEnv) removeCgroups() {
	for _, name := range e.cgroups {
		tops, _ := filepath.Glob("/sys/fs/cgroup/*/" + name)
		if top := "/sys/fs/cgroup/" + name; isDir(top) {
			tops = append(tops, top)
		}
		for _, top := range tops {
			var dirs []string
			_ = filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, p)
				}
				return nil
			})
			sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
			for _, d := range dirs {
				if d != top && !e.expectedCgroup(d) {
					e.t.Errorf("leaked cgroup %s", d)
				}
				killCgroup(d)
				if err := rmdirRetry(d); err != nil {
					e.t.Errorf("remove cgroup %s: %v", d, err)
				}
			}
		}
	}
}

// expectedCgroup: cgroups clients keep for themselves (podman's conmon).
func (e *clientEnv) expectedCgroup(dir string) bool {
	return filepath.Base(dir) == "conmon"
}

func killCgroup(dir string) {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return
	}
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
}

func rmdirRetry(dir string) error {
	var err error
	for i := 0; i < 100; i++ {
		if err = unix.Rmdir(dir); err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// netLinks lists the host's network interfaces.
func netLinks() map[string]bool {
	out := map[string]bool{}
	entries, _ := os.ReadDir("/sys/class/net")
	for _, e := range entries {
		out[e.Name()] = true
	}
	return out
}

// ulimits are the --ulimit / --default-ulimit values for the clients,
// soft = hard, lower than the clients' defaults (podman: nofile 1048576)
// and than the current hard limits: in a sandbox without
// CAP_SYS_RESOURCE a container may not raise them. (podman lowers its own
// nproc limit to 32768 before it starts conmon.)
func ulimits() (nofile, nproc string) {
	limit := func(res int, most uint64) string {
		var rl unix.Rlimit
		if err := unix.Getrlimit(res, &rl); err == nil && rl.Max < most {
			most = rl.Max
		}
		return fmt.Sprintf("%d:%d", most, most)
	}
	return "nofile=" + limit(unix.RLIMIT_NOFILE, 20000), "nproc=" + limit(unix.RLIMIT_NPROC, 32768)
}
