package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime"
)

// addExtraContainerCommands registers stats, update, commit, cp, events
// and version at the top level, the container ones under "container" too,
// and events and prune under "system".
func addExtraContainerCommands(root *cobra.Command, g *globalOptions) {
	root.AddCommand(statsCmd(g), updateCmd(g), commitCmd(g), cpCmd(g), eventsCmd(g), versionCmd(g))
	for _, c := range root.Commands() {
		switch c.Name() {
		case "container":
			c.AddCommand(statsCmd(g), updateCmd(g), commitCmd(g), cpCmd(g))
		case "system":
			c.AddCommand(eventsCmd(g), systemPruneCmd(g))
		}
	}
}

// daemonError prints err as docker's CLI prints the daemon's errors and
// makes the command exit 1.
func daemonError(err error) error {
	if err == nil || errors.Is(err, context.Canceled) {
		return err
	}
	fmt.Fprintf(os.Stderr, "Error response from daemon: %v\n", err)
	return &exitError{code: 1}
}

const statsTable = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

func statsHeader() map[string]string {
	return map[string]string{"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
		"MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}
}

// statsRow is one line of docker stats: CPU % from two samples.
func statsRow(ref string, prev, cur engine.StatsSample, trunc bool) map[string]string {
	id := cur.ID
	if trunc {
		id = engine.ShortID(id)
	}
	return map[string]string{
		"Container": ref, "ID": id, "Name": cur.Name,
		"CPUPerc":  fmt.Sprintf("%.2f%%", engine.CPUPercent(prev, cur)),
		"MemUsage": bytesSize(int64(cur.MemUsage)) + " / " + bytesSize(int64(cur.MemLimit)),
		"MemPerc":  fmt.Sprintf("%.2f%%", engine.MemPercent(cur)),
		"NetIO":    humanSize(int64(cur.NetRx)) + " / " + humanSize(int64(cur.NetTx)),
		"BlockIO":  humanSize(int64(cur.BlockRead)) + " / " + humanSize(int64(cur.BlockWrite)),
		"PIDs":     fmt.Sprint(cur.Pids),
	}
}

func statsCmd(g *globalOptions) *cobra.Command {
	var all, noStream, noTrunc bool
	var format string
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [CONTAINER...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withEngine(func(e *engine.Engine) error {
				ctx := cmd.Context()
				// Without names, the containers are listed anew at each
				// refresh: new ones appear, removed ones go.
				refs := func() ([]string, error) {
					if len(args) > 0 {
						return args, nil
					}
					list, err := e.ListContainers(ctx, engine.ContainerListOptions{All: all})
					if err != nil {
						return nil, err
					}
					out := make([]string, 0, len(list))
					for i := len(list) - 1; i >= 0; i-- { // oldest first, as docker
						out = append(out, list[i].ID)
					}
					return out, nil
				}
				type sample struct {
					ref string
					s   engine.StatsSample
				}
				take := func(first bool) ([]sample, error) {
					names, err := refs()
					if err != nil {
						return nil, err
					}
					var out []sample
					for _, r := range names {
						s, err := e.Stats(ctx, r)
						if err != nil {
							if first && len(args) > 0 {
								return nil, daemonError(err)
							}
							continue // gone meanwhile
						}
						out = append(out, sample{r, s})
					}
					return out, nil
				}
				prev, err := take(true)
				if err != nil {
					return err
				}
				// docker samples once a second; --no-stream needs only the
				// two samples a CPU % takes.
				interval := time.Second
				if noStream {
					interval = 500 * time.Millisecond
				}
				for {
					select {
					case <-ctx.Done():
						return nil
					case <-time.After(interval):
					}
					cur, err := take(false)
					if err != nil {
						return err
					}
					before := map[string]engine.StatsSample{}
					for _, p := range prev {
						before[p.s.ID] = p.s
					}
					if !noStream {
						fmt.Print("\033[2J\033[H")
					}
					out, err := newRows(os.Stdout, format, statsTable, statsHeader())
					if err != nil {
						return err
					}
					for _, c := range cur {
						if err := out.add(statsRow(c.ref, before[c.s.ID], c.s, !noTrunc)); err != nil {
							return err
						}
					}
					if err := out.flush(); err != nil {
						return err
					}
					if noStream {
						return nil
					}
					prev = cur
				}
			})
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	fl.StringVar(&format, "format", "", "Format output using a custom template: 'table', 'table TEMPLATE', 'json' or a Go template")
	fl.BoolVar(&noStream, "no-stream", false, "Disable streaming stats and only pull the first result")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate output")
	return cmd
}

func updateCmd(g *globalOptions) *cobra.Command {
	var (
		memory, memoryReservation, kernelMemory memValue
		memorySwap                              memSwapValue
		cpus                                    cpusValue
		restart                                 string
		u                                       container.UpdateConfig
		pidsLimit                               int64
		blkioWeight                             uint16
	)
	cmd := &cobra.Command{
		Use:   "update [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Update configuration of one or more containers",
		Args:  requiresArgs(1, "argument"),
		RunE: func(cmd *cobra.Command, args []string) error {
			fl := cmd.Flags()
			changed := false
			cmd.LocalFlags().VisitAll(func(f *pflag.Flag) { changed = changed || f.Changed })
			if !changed {
				return errors.New("You must provide one or more flags when using this command.")
			}
			u.Memory, u.MemoryReservation, u.MemorySwap = int64(memory), int64(memoryReservation), int64(memorySwap)
			u.NanoCPUs, u.BlkioWeight = int64(cpus), blkioWeight
			if fl.Changed("pids-limit") {
				u.PidsLimit = &pidsLimit
			}
			if fl.Changed("restart") {
				p, err := parseRestartPolicy(restart)
				if err != nil {
					return err
				}
				if err := container.ValidateRestartPolicy(p); err != nil {
					return err
				}
				u.RestartPolicy = p
				if p.Name == "" {
					u.RestartPolicy.Name = container.RestartPolicyDisabled
				}
			}
			return g.withEngine(func(e *engine.Engine) error {
				return forEach(args, func(ref string) error {
					if err := e.Update(cmd.Context(), ref, u); err != nil {
						return err
					}
					fmt.Println(ref)
					return nil
				})
			})
		},
	}
	fl := cmd.Flags()
	fl.Uint16Var(&blkioWeight, "blkio-weight", 0, "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)")
	fl.Int64Var(&u.CPUPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	fl.Int64Var(&u.CPUQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	fl.Int64Var(&u.CPURealtimePeriod, "cpu-rt-period", 0, "Limit the CPU real-time period in microseconds")
	fl.Int64Var(&u.CPURealtimeRuntime, "cpu-rt-runtime", 0, "Limit the CPU real-time runtime in microseconds")
	fl.Int64VarP(&u.CPUShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	fl.Var(&cpus, "cpus", "Number of CPUs")
	fl.StringVar(&u.CpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	fl.StringVar(&u.CpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	fl.VarP(&memory, "memory", "m", "Memory limit")
	fl.Var(&memoryReservation, "memory-reservation", "Memory soft limit")
	fl.Var(&memorySwap, "memory-swap", "Swap limit equal to memory plus swap: -1 to enable unlimited swap")
	fl.Var(&kernelMemory, "kernel-memory", "Kernel memory limit (deprecated)")
	_ = fl.MarkHidden("kernel-memory")
	fl.Int64Var(&pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")
	fl.StringVar(&restart, "restart", "", "Restart policy to apply when a container exits")
	return cmd
}

func commitCmd(g *globalOptions) *cobra.Command {
	var opts engine.CommitOptions
	cmd := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 2 {
				return fmt.Errorf("%q requires at least 1 and at most 2 arguments.\nSee '%s --help'.\n\nUsage:  %s\n\n%s",
					cmd.CommandPath(), cmd.CommandPath(), usageLine(cmd), cmd.Short)
			}
			return requiresArgs(1, "argument")(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 {
				opts.Reference = args[1]
			}
			return g.withEngine(func(e *engine.Engine) error {
				img, err := e.Commit(cmd.Context(), args[0], opts)
				if err != nil {
					return daemonError(err)
				}
				fmt.Println(img.ID.String())
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&opts.Author, "author", "a", "", "Author (e.g., \"John Hannibal Smith <hannibal@a-team.com>\")")
	fl.StringArrayVarP(&opts.Changes, "change", "c", nil, "Apply Dockerfile instruction to the created image")
	fl.StringVarP(&opts.Message, "message", "m", "", "Commit message")
	fl.BoolVarP(&opts.Pause, "pause", "p", true, "Pause container during commit")
	return cmd
}

// splitCpArg splits docker cp's CONTAINER:PATH; a path that is absolute
// or starts with "." is local even with a colon in it.
func splitCpArg(arg string) (ctr, path string) {
	if strings.HasPrefix(arg, "/") {
		return "", arg
	}
	ctr, path, ok := strings.Cut(arg, ":")
	if !ok || strings.HasPrefix(ctr, ".") {
		return "", arg
	}
	return ctr, path
}

func cpCmd(g *globalOptions) *cobra.Command {
	var opts engine.CopyOptions
	var quiet bool
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n\tberth cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files/folders between a container and the local filesystem",
		Long: "Copy files/folders between a container and the local filesystem\n\n" +
			"Use '-' as the source to read a tar archive from stdin\n" +
			"and extract it to a directory destination in a container.\n" +
			"Use '-' as the destination to stream a tar archive of a\n" +
			"container source to stdout.",
		Args: exactlyArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			srcCtr, src := splitCpArg(args[0])
			dstCtr, dst := splitCpArg(args[1])
			switch {
			case src == "":
				return errors.New("source can not be empty")
			case dst == "":
				return errors.New("destination can not be empty")
			case srcCtr != "" && dstCtr != "":
				return errors.New("copying between containers is not supported")
			case srcCtr == "" && dstCtr == "":
				return errors.New("must specify at least one container source")
			}
			quiet = quiet || !runtime.IsTerminal(os.Stderr)
			return g.withEngine(func(e *engine.Engine) error {
				ctx := cmd.Context()
				var n int64
				var err error
				to := args[1]
				if srcCtr != "" {
					n, err = e.CopyFromContainer(ctx, srcCtr, src, dst, os.Stdout, opts)
				} else {
					n, err = e.CopyToContainer(ctx, dstCtr, src, dst, os.Stdin, opts)
				}
				if err != nil {
					if errdefs.Is(err, errdefs.KindNotFound) {
						return daemonError(err)
					}
					return err
				}
				if !quiet && dst != "-" {
					fmt.Fprintf(os.Stderr, "Successfully copied %s to %s\n", humanSize4(n), to)
				}
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&opts.Archive, "archive", "a", false, "Archive mode (copy all uid/gid information)")
	fl.BoolVarP(&opts.FollowLink, "follow-link", "L", false, "Always follow symbol link in SRC_PATH")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached")
	return cmd
}

// rfc3339NanoFixed is docker's event time: nanoseconds always nine digits.
const rfc3339NanoFixed = "2006-01-02T15:04:05.000000000Z07:00"

// eventLine is docker events' default output for m.
func eventLine(m events.Message) string {
	var b strings.Builder
	b.WriteString(time.Unix(0, m.TimeNano).Format(rfc3339NanoFixed))
	fmt.Fprintf(&b, " %s %s %s", m.Type, m.Action, m.Actor.ID)
	if len(m.Actor.Attributes) > 0 {
		keys := make([]string, 0, len(m.Actor.Attributes))
		for k := range m.Actor.Attributes {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		attrs := make([]string, len(keys))
		for i, k := range keys {
			attrs[i] = k + "=" + m.Actor.Attributes[k]
		}
		fmt.Fprintf(&b, " (%s)", strings.Join(attrs, ", "))
	}
	return b.String()
}

func eventsCmd(g *globalOptions) *cobra.Command {
	var since, until, format string
	var filters []string
	cmd := &cobra.Command{
		Use:   "events [OPTIONS]",
		Short: "Get real time events from the server",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := engine.ParseEventFilters(filters)
			if err != nil {
				return err
			}
			var opts engine.EventsOptions
			opts.Filters = f
			if opts.Since, err = parseTimeArg(since); err != nil {
				return err
			}
			if opts.Until, err = parseTimeArg(until); err != nil {
				return errdefs.InvalidArgument(fmt.Errorf("invalid value for \"until\": failed to parse value as time or duration: %q", until))
			}
			print := func(m events.Message) error {
				fmt.Println(eventLine(m))
				return nil
			}
			if format != "" {
				if format == "json" {
					format = "{{json .}}"
				}
				tmpl, err := parseTemplate(format)
				if err != nil {
					return err
				}
				print = func(m events.Message) error {
					if err := tmpl.Execute(os.Stdout, m); err != nil {
						return errdefs.InvalidArgument(fmt.Errorf("template: %w", err))
					}
					fmt.Println()
					return nil
				}
			}
			return g.withEngine(func(e *engine.Engine) error {
				return e.Events(cmd.Context(), opts, print)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&filters, "filter", "f", nil, "Filter output based on conditions provided")
	fl.StringVar(&format, "format", "", "Format output using a custom template: 'json' or a Go template")
	fl.StringVar(&since, "since", "", "Show all events created since timestamp")
	fl.StringVar(&until, "until", "", "Stream events until this timestamp")
	return cmd
}

// apiVersion is the Docker Engine API version of the types berth speaks
// (github.com/moby/moby/api 1.56).
const apiVersion = "1.56"

// versionInfo is docker version's: the CLI and the engine (the same
// binary, daemonless) with its runtime.
type versionInfo struct {
	Client clientVersion
	Server serverVersion
}

type clientVersion struct {
	Version, APIVersion, GoVersion, GitCommit, BuildTime, Os, Arch, Context string
}

type serverVersion struct {
	Platform      struct{ Name string }
	Components    []versionComponent
	Version       string
	APIVersion    string `json:"ApiVersion"`
	GitCommit     string
	GoVersion     string
	Os, Arch      string
	KernelVersion string
	BuildTime     string
}

type versionComponent struct {
	Name    string
	Version string
	Details map[string]string `json:",omitempty"`
}

// buildVCS returns the commit and time the binary was built from, when Go
// recorded them.
func buildVCS() (commit, built string) {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value[:min(7, len(s.Value))]
			case "vcs.time":
				if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
					built = t.Local().Format(time.ANSIC)
				}
			}
		}
	}
	return commit, built
}

func newVersionInfo() versionInfo {
	commit, built := buildVCS()
	v := versionInfo{
		Client: clientVersion{Version: Version, APIVersion: apiVersion, GoVersion: goruntime.Version(), GitCommit: commit,
			BuildTime: built, Os: goruntime.GOOS, Arch: goruntime.GOARCH, Context: "default"},
		Server: serverVersion{Version: Version, APIVersion: apiVersion, GitCommit: commit, GoVersion: goruntime.Version(),
			Os: goruntime.GOOS, Arch: goruntime.GOARCH, KernelVersion: kernelVersion(), BuildTime: built},
	}
	v.Server.Platform.Name = "berth"
	v.Server.Components = []versionComponent{
		{Name: "Engine", Version: Version, Details: map[string]string{"ApiVersion": apiVersion, "GitCommit": commit,
			"GoVersion": goruntime.Version(), "Os": goruntime.GOOS, "Arch": goruntime.GOARCH, "KernelVersion": v.Server.KernelVersion,
			"BuildTime": built, "Experimental": "false"}},
		{Name: "berth-runtime", Version: Version, Details: map[string]string{"SpecVersion": specs.Version}},
	}
	return v
}

func kernelVersion() string {
	data, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(data))
}

func printVersion(w io.Writer, v versionInfo) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	orDash := func(s string) string {
		if s == "" {
			return "-"
		}
		return s
	}
	p("Client:")
	p(" Version:           %s", v.Client.Version)
	p(" API version:       %s", v.Client.APIVersion)
	p(" Go version:        %s", v.Client.GoVersion)
	p(" Git commit:        %s", orDash(v.Client.GitCommit))
	p(" Built:             %s", orDash(v.Client.BuildTime))
	p(" OS/Arch:           %s/%s", v.Client.Os, v.Client.Arch)
	p(" Context:           %s", v.Client.Context)
	p("")
	p("Server: %s", v.Server.Platform.Name)
	p(" Engine:")
	p("  Version:          %s", v.Server.Version)
	p("  API version:      %s", v.Server.APIVersion)
	p("  Go version:       %s", v.Server.GoVersion)
	p("  Git commit:       %s", orDash(v.Server.GitCommit))
	p("  Built:            %s", orDash(v.Server.BuildTime))
	p("  OS/Arch:          %s/%s", v.Server.Os, v.Server.Arch)
	p("  Experimental:     false")
	for _, c := range v.Server.Components[1:] {
		p(" %s:", c.Name)
		p("  Version:          %s", c.Version)
		if sv := c.Details["SpecVersion"]; sv != "" {
			p("  Spec version:     %s", sv)
		}
	}
}

func versionCmd(g *globalOptions) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version [OPTIONS]",
		Short: "Show the berth version information",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := newVersionInfo()
			if format != "" {
				return executeTemplate(os.Stdout, format, v)
			}
			printVersion(os.Stdout, v)
			return nil
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template: 'json' or a Go template")
	return cmd
}

func systemPruneCmd(g *globalOptions) *cobra.Command {
	var opts engine.SystemPruneOptions
	var force bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused data",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force {
				images := "all dangling images"
				cache := "unused build cache"
				if opts.All {
					images = "all images without at least one container associated to them"
					cache = "all build cache"
				}
				lines := []string{"all stopped containers", "all networks not used by at least one container"}
				if opts.Volumes {
					lines = append(lines, "all anonymous volumes not used by at least one container")
				}
				lines = append(lines, images, cache)
				warning := "WARNING! This will remove:\n  - " + strings.Join(lines, "\n  - ") + "\n"
				if !confirm(warning) {
					return nil
				}
			}
			return g.withEngine(func(e *engine.Engine) error {
				rep, err := e.SystemPrune(cmd.Context(), opts)
				if len(rep.Containers) > 0 {
					fmt.Println("Deleted Containers:")
					for _, id := range rep.Containers {
						fmt.Println(id)
					}
					fmt.Println()
				}
				if len(rep.Volumes) > 0 {
					fmt.Println("Deleted Volumes:")
					for _, name := range rep.Volumes {
						fmt.Println(name)
					}
					fmt.Println()
				}
				if len(rep.Images.Untagged) > 0 || len(rep.Images.Deleted) > 0 {
					fmt.Println("Deleted Images:")
					for _, u := range rep.Images.Untagged {
						fmt.Printf("untagged: %s\n", u)
					}
					for _, d := range rep.Images.Deleted {
						fmt.Printf("deleted: %s\n", d)
					}
					fmt.Println()
				}
				fmt.Printf("Total reclaimed space: %s\n", humanSize(rep.SpaceReclaimed))
				return err
			})
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&opts.All, "all", "a", false, "Remove all unused images not just dangling ones")
	fl.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	fl.BoolVar(&opts.Volumes, "volumes", false, "Prune anonymous volumes")
	fl.StringArray("filter", nil, "Provide filter values (e.g. \"label=<key>=<value>\")")
	return cmd
}
