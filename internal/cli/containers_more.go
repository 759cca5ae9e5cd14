package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/logs"
	"github.com/berth-dev/berth/internal/runtime"
)

func logsCmd(g *globalOptions) *cobra.Command {
	var follow, timestamps, details bool
	var since, until, tail string
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  exactlyArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := logs.ReadOptions{Follow: follow, Tail: -1}
			var err error
			if tail != "" && tail != "all" {
				if _, err := fmt.Sscan(tail, &opts.Tail); err != nil {
					return errdefs.InvalidArgument(fmt.Errorf("invalid value for \"tail\": %s", tail))
				}
			}
			if opts.Since, err = parseTimeArg(since); err != nil {
				return err
			}
			if opts.Until, err = parseTimeArg(until); err != nil {
				return err
			}
			return g.withEngine(func(e *engine.Engine) error {
				stdout := bufio.NewWriter(os.Stdout)
				defer stdout.Flush()
				return e.Logs(cmd.Context(), args[0], opts, func(m logs.Message) error {
					var w io.Writer = stdout
					if m.Stream == "stderr" {
						stdout.Flush()
						w = os.Stderr
					}
					if timestamps {
						fmt.Fprint(w, m.Time.UTC().Format("2006-01-02T15:04:05.000000000Z")+" ")
					}
					_, err := w.Write(m.Line)
					if follow {
						stdout.Flush()
					}
					return err
				})
			})
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&follow, "follow", "f", false, "Follow log output")
	fl.BoolVarP(&timestamps, "timestamps", "t", false, "Show timestamps")
	fl.BoolVar(&details, "details", false, "Show extra details provided to logs")
	fl.StringVar(&since, "since", "", "Show logs since timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)")
	fl.StringVar(&until, "until", "", "Show logs before a timestamp (e.g. \"2013-01-02T13:23:37Z\") or relative (e.g. \"42m\" for 42 minutes)")
	fl.StringVarP(&tail, "tail", "n", "all", "Number of lines to show from the end of the logs")
	return cmd
}

// parseTimeArg reads docker's --since/--until: RFC 3339, a unix time or
// a duration before now.
func parseTimeArg(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, time.RFC3339, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	var secs float64
	if _, err := fmt.Sscan(s, &secs); err == nil {
		return time.Unix(0, int64(secs*1e9)), nil
	}
	return time.Time{}, errdefs.InvalidArgument(fmt.Errorf("invalid value for \"since\": failed to parse value as time or duration: %q", s))
}

func execCmd(g *globalOptions) *cobra.Command {
	var o engine.ExecOptions
	var envFiles []string
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  requiresArgs(2, "argument"),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Cmd = args[1:]
			for _, f := range envFiles {
				kv, err := readKVFile(f, os.LookupEnv)
				if err != nil {
					return err
				}
				o.Env = append(kv, o.Env...)
			}
			for i, kv := range o.Env {
				if !strings.Contains(kv, "=") {
					if v, ok := os.LookupEnv(kv); ok {
						o.Env[i] = kv + "=" + v
					}
				}
			}
			pt := engine.NewPhaseTimer()
			defer pt.Done("cli-exec")
			return g.withEngine(func(e *engine.Engine) error {
				pt.Mark("open")
				code, err := e.Exec(cmd.Context(), args[0], o)
				pt.Mark("exec")
				if err != nil {
					if errdefs.Is(err, errdefs.KindNotFound) || errdefs.Is(err, errdefs.KindConflict) {
						return fmt.Errorf("Error response from daemon: %w", err)
					}
					msg := err.Error()
					code := 126
					if strings.Contains(msg, "executable file not found") || strings.Contains(msg, "no such file or directory") {
						code = 127
					}
					return &statusError{code: code, msg: "OCI runtime exec failed: " + msg}
				}
				return exitWith(code)
			})
		},
	}
	cmd.Flags().SetInterspersed(false)
	fl := cmd.Flags()
	fl.BoolVarP(&o.Detach, "detach", "d", false, "Detached mode: run command in the background")
	fl.BoolVarP(&o.Interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fl.BoolVarP(&o.Tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fl.StringArrayVarP(&o.Env, "env", "e", nil, "Set environment variables")
	fl.StringArrayVar(&envFiles, "env-file", nil, "Read in a file of environment variables")
	fl.StringVarP(&o.User, "user", "u", "", "Username or UID (format: \"<name|uid>[:<group|gid>]\")")
	fl.StringVarP(&o.WorkingDir, "workdir", "w", "", "Working directory inside the container")
	fl.BoolVar(&o.Privileged, "privileged", false, "Give extended privileges to the command")
	fl.String("detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

func attachCmd(g *globalOptions) *cobra.Command {
	var noStdin, sigProxy bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  exactlyArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withEngine(func(e *engine.Engine) error {
				rec, err := e.Get(args[0])
				if err != nil {
					return err
				}
				if !rec.Running() {
					return errdefs.Conflict(errors.New("You cannot attach to a stopped container, start it first"))
				}
				s := engine.Streams{Stdout: os.Stdout, Stderr: os.Stderr}
				if rec.Config.OpenStdin && !noStdin {
					s.Stdin = os.Stdin
				}
				if rec.Config.Tty && runtime.IsTerminal(os.Stdin) {
					restore, err := runtime.MakeRaw(int(os.Stdin.Fd()))
					if err != nil {
						return err
					}
					defer restore()
					keys := detachKeys
					if keys == "" {
						keys = "ctrl-p,ctrl-q"
					}
					s.DetachKeys, _ = parseDetachKeys(keys)
				}
				exit, err := e.StartAttached(cmd.Context(), rec.ID, s, true)
				if errors.Is(err, engine.ErrDetached) {
					return nil
				}
				if err != nil {
					return err
				}
				return exitWith(exit.Code)
			})
		},
	}
	cmd.Flags().BoolVar(&noStdin, "no-stdin", false, "Do not attach STDIN")
	cmd.Flags().BoolVar(&sigProxy, "sig-proxy", true, "Proxy all received signals to the process")
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

func diffCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "diff CONTAINER",
		Short: "Inspect changes to files or directories on a container's filesystem",
		Args:  exactlyArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withEngine(func(e *engine.Engine) error {
				changes, err := e.Diff(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				w := bufio.NewWriter(os.Stdout)
				for _, c := range changes {
					fmt.Fprintln(w, c.String())
				}
				return w.Flush()
			})
		},
	}
}

func exportCmd(g *globalOptions) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Export a container's filesystem as a tar archive",
		Args:  exactlyArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var w io.Writer = os.Stdout
			if output == "" && runtime.IsTerminal(os.Stdout) {
				return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
			}
			return g.withEngine(func(e *engine.Engine) error {
				if output != "" {
					f, err := os.CreateTemp(dirOf(output), ".export-*")
					if err != nil {
						return fmt.Errorf("failed to export container: %w", err)
					}
					defer os.Remove(f.Name())
					bw := bufio.NewWriterSize(f, 1<<20)
					if err := e.Export(cmd.Context(), args[0], bw); err != nil {
						f.Close()
						return err
					}
					if err := bw.Flush(); err != nil {
						f.Close()
						return err
					}
					if err := f.Close(); err != nil {
						return err
					}
					return os.Rename(f.Name(), output)
				}
				bw := bufio.NewWriterSize(w, 1<<20)
				if err := e.Export(cmd.Context(), args[0], bw); err != nil {
					return err
				}
				return bw.Flush()
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return cmd
}

func dirOf(path string) string {
	if i := strings.LastIndex(path, "/"); i >= 0 {
		if i == 0 {
			return "/"
		}
		return path[:i]
	}
	return "."
}

func topCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Args:  requiresArgs(1, "argument"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withEngine(func(e *engine.Engine) error {
				titles, procs, err := e.Top(cmd.Context(), args[0], args[1:])
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(os.Stdout, 20, 1, 3, ' ', 0)
				fmt.Fprintln(tw, strings.Join(titles, "\t"))
				for _, p := range procs {
					fmt.Fprintln(tw, strings.Join(p, "\t"))
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().SetInterspersed(false)
	return cmd
}

func portCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  requiresArgs(1, "argument"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withEngine(func(e *engine.Engine) error {
				info, err := e.Inspect(cmd.Context(), args[0], false)
				if err != nil {
					return err
				}
				var keys []string
				byKey := map[string][]string{}
				for p, bindings := range info.NetworkSettings.Ports {
					for _, b := range bindings {
						host := b.HostIP.String()
						if b.HostIP.Is6() {
							host = "[" + host + "]"
						}
						if len(byKey[p.String()]) == 0 {
							keys = append(keys, p.String())
						}
						byKey[p.String()] = append(byKey[p.String()], host+":"+b.HostPort)
					}
				}
				sort.Strings(keys)
				if len(args) > 1 {
					want := args[1]
					if !strings.Contains(want, "/") {
						want += "/tcp"
					}
					if len(byKey[want]) == 0 {
						return fmt.Errorf("No public port '%s' published for %s", want, strings.TrimPrefix(info.Name, "/"))
					}
					for _, h := range byKey[want] {
						fmt.Println(h)
					}
					return nil
				}
				for _, k := range keys {
					for _, h := range byKey[k] {
						fmt.Printf("%s -> %s\n", k, h)
					}
				}
				return nil
			})
		},
	}
}

func containerInspectCmd(g *globalOptions) *cobra.Command {
	var format string
	var size, isolation bool
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Display detailed information on one or more containers",
		Args:  requiresArgs(1, "argument"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withEngine(func(e *engine.Engine) error {
				if isolation {
					return inspectIsolation(e, cmd, args, format)
				}
				return inspectObjects(e, cmd, args, format, size, "container", false)
			})
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template: 'json' or a Go template")
	cmd.Flags().BoolVarP(&size, "size", "s", false, "Display total file sizes")
	isolationFlag(cmd, &isolation)
	return cmd
}

// inspectObjects prints docker's inspect array for containers (and, when
// images is set, for images that are not containers).
func inspectObjects(e *engine.Engine, cmd *cobra.Command, names []string, format string, size bool, noun string, images bool) error {
	var found []any
	var errs []string
	for _, n := range names {
		v, err := e.Inspect(cmd.Context(), n, size)
		if err == nil {
			found = append(found, v)
			continue
		}
		if errdefs.Is(err, errdefs.KindNotFound) && images {
			img, ierr := e.Images().Inspect(cmd.Context(), n)
			if ierr == nil {
				found = append(found, img)
				continue
			}
			if !errdefs.Is(ierr, errdefs.KindNotFound) {
				err = ierr
			}
		}
		if errdefs.Is(err, errdefs.KindNotFound) {
			errs = append(errs, fmt.Sprintf("No such %s: %s", noun, n))
			continue
		}
		errs = append(errs, err.Error())
	}
	if format != "" {
		for _, v := range found {
			if err := executeTemplate(os.Stdout, format, v); err != nil {
				return err
			}
		}
	} else {
		if found == nil {
			found = []any{}
		}
		data, err := json.MarshalIndent(found, "", "    ")
		if err != nil {
			return err
		}
		fmt.Println(string(data))
	}
	for _, m := range errs {
		fmt.Fprintf(os.Stderr, "Error: %s\n", m)
	}
	if len(errs) > 0 {
		return &exitError{code: 1}
	}
	return nil
}

func containerPruneCmd(g *globalOptions) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force {
				fmt.Print("WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ")
				answer, _ := bufio.NewReader(os.Stdin).ReadString('\n')
				if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
					return nil
				}
			}
			return g.withEngine(func(e *engine.Engine) error {
				removed, reclaimed, err := e.PruneContainers(cmd.Context())
				if len(removed) > 0 {
					fmt.Println("Deleted Containers:")
					for _, id := range removed {
						fmt.Println(id)
					}
					fmt.Println()
				}
				fmt.Printf("Total reclaimed space: %s\n", humanSize(reclaimed))
				return err
			})
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().StringArray("filter", nil, "Provide filter values (e.g. \"until=<timestamp>\")")
	return cmd
}
