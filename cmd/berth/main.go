// Command berth is a container engine (docker's commands), an OCI runtime
// (runc's, as `berth runtime` or through a link named berth-runtime), and,
// hidden, the init process of its containers; started as berth-init, it is
// the tini-like PID 1 of `berth run --init`.
package main

import (
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/cli"
	"github.com/berth-dev/berth/internal/runtime/initproc"
	"github.com/berth-dev/berth/internal/tini"
	// Joins namespaces before the Go runtime starts; see the package.
	_ "github.com/berth-dev/berth/internal/runtime/nsenter"
)

func main() {
	switch {
	// First: as a container's PID 1 its arguments are the user's command.
	case filepath.Base(os.Args[0]) == "berth-init":
		os.Exit(tini.Main(os.Args[1:]))
	case len(os.Args) > 1 && os.Args[1] == initproc.Arg:
		initproc.Main()
	case filepath.Base(os.Args[0]) == "berth-runtime":
		os.Exit(cli.RuntimeMain(os.Args[1:]))
	default:
		os.Exit(cli.Main(os.Args[1:]))
	}
}
