//go:build benchphases

// Command berthphases is bench/trace.sh's look inside `berth runtime run`:
// it does what Run does (create, start, wait, delete) through berth's own
// runtime package, and prints to stderr the wall time each step took, in
// ms, from main() on. Usage: berthphases ROOT BUNDLE ID. It is a benchmark
// aid, not part of berth; it is also the init of the containers it starts,
// as berth is.
package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/berth-dev/berth/internal/runtime"
	"github.com/berth-dev/berth/internal/runtime/initproc"
	// Joins namespaces before the Go runtime starts, as in cmd/berth.
	_ "github.com/berth-dev/berth/internal/runtime/nsenter"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == initproc.Arg {
		initproc.Main()
		return
	}
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: berthphases ROOT BUNDLE ID")
		os.Exit(2)
	}
	t0 := time.Now()
	last := t0
	var out []string
	step := func(name string) {
		now := time.Now()
		out = append(out, fmt.Sprintf("%s=%.3f", name, float64(now.Sub(last))/1e6))
		last = now
	}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "berthphases:", err)
		os.Exit(1)
	}
	r := &runtime.Runtime{Root: os.Args[1]}
	if err := runtime.SetSubreaper(); err != nil {
		fail(err)
	}
	if _, err := runtime.LoadSpec(os.Args[2]); err != nil { // Run reads it for process.terminal
		fail(err)
	}
	step("subreaper+spec")
	c, err := r.Create(runtime.CreateOptions{ID: os.Args[3], Bundle: os.Args[2],
		Stdio: [3]*os.File{os.Stdin, os.Stdout, os.Stderr}})
	if err != nil {
		fail(err)
	}
	step("create")
	stop := runtime.ForwardSignals(c.Pid)
	step("forward-signals")
	if err := c.Start(); err != nil {
		fail(err)
	}
	step("start")
	if _, err := runtime.WaitPid(c.Pid); err != nil {
		fail(err)
	}
	step("wait")
	stop()
	step("stop-forwarding")
	if err := c.Delete(true); err != nil {
		fail(err)
	}
	step("delete")
	fmt.Fprintf(os.Stderr, "phases %s total=%.3f\n", strings.Join(out, " "), float64(time.Since(t0))/1e6)
}
