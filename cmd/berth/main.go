// Command berth is a container engine (docker's commands), an OCI runtime
// (runc's, as `berth runtime` or through a link named berth-runtime), and,
// hidden, the init process of its containers.
package main

import (
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/internal/cli"
	"github.com/berth-dev/berth/internal/runtime/initproc"
	// Joins namespaces before the Go runtime starts; see the package.
	_ "github.com/berth-dev/berth/internal/runtime/nsenter"
)

func main() {
	switch {
	case len(os.Args) > 1 && os.Args[1] == initproc.Arg:
		initproc.Main()
	case filepath.Base(os.Args[0]) == "berth-runtime":
		os.Exit(cli.RuntimeMain(os.Args[1:]))
	default:
		os.Exit(cli.Main(os.Args[1:]))
	}
}
