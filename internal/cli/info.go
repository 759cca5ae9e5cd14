package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/engine"
)

func infoCmd(g *globalOptions, use string) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   use + " [OPTIONS]",
		Short: "Display system-wide information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withEngine(func(e *engine.Engine) error {
				info, err := e.Info(cmd.Context(), engine.InfoOptions{Version: Version, Runtime: "berth"})
				if err != nil {
					return err
				}
				if format != "" {
					return executeTemplate(os.Stdout, format, info)
				}
				printInfo(os.Stdout, info)
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template: 'json' or a Go template")
	return cmd
}

func printInfo(w io.Writer, i *engine.Info) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p("Client:")
	p(" Version:    %s", Version)
	p(" Context:    default")
	p(" Debug Mode: false")
	p("")
	p("Server:")
	p(" Containers: %d", i.Containers)
	p("  Running: %d", i.ContainersRunning)
	p("  Paused: %d", i.ContainersPaused)
	p("  Stopped: %d", i.ContainersStopped)
	p(" Images: %d", i.Images)
	p(" Server Version: %s", i.ServerVersion)
	p(" Storage Driver: %s", i.Driver)
	for _, kv := range i.DriverStatus {
		p("  %s: %s", kv[0], kv[1])
	}
	p(" Logging Driver: %s", i.LoggingDriver)
	p(" Cgroup Driver: %s", i.CgroupDriver)
	p(" Cgroup Version: %s", i.CgroupVersion)
	p(" Runtimes: %s", strings.Join(i.Runtimes, " "))
	p(" Default Runtime: %s", i.DefaultRuntime)
	p(" Kernel Version: %s", i.KernelVersion)
	p(" Operating System: %s", i.OperatingSystem)
	p(" OSType: %s", i.OSType)
	p(" Architecture: %s", i.Architecture)
	p(" CPUs: %d", i.NCPU)
	p(" Total Memory: %s", bytesSize(i.MemTotal))
	p(" Name: %s", i.Name)
	p(" Docker Root Dir: %s", i.DockerRootDir)
	p(" Debug Mode: false")
	p(" Experimental: false")
	p(" Insecure Registries:")
	for _, r := range i.InsecureRegistries {
		p("  %s", r)
	}
	p(" Live Restore Enabled: false")
}
