package cli

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/engine/store"
	"github.com/berth-dev/berth/internal/runtime"
)

func startCmd(g *globalOptions) *cobra.Command {
	var attach, interactive bool
	var detachKeys string
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  requiresArgs(1, "argument"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withEngine(func(e *engine.Engine) error {
				ctx := cmd.Context()
				if attach || interactive {
					if len(args) > 1 {
						return fmt.Errorf("you cannot start and attach multiple containers at once")
					}
					rec, err := e.Get(args[0])
					if err != nil {
						return err
					}
					req := &createRequest{Config: rec.Config, SigProxy: true, DetachKeys: detachKeys}
					cfg := *rec.Config
					cfg.AttachStdout, cfg.AttachStderr = true, true
					cfg.AttachStdin = interactive && cfg.OpenStdin
					if !interactive {
						cfg.OpenStdin = false
					}
					req.Config = &cfg
					code, err := runAttached(ctx, e, rec.ID, req)
					if err != nil {
						return err
					}
					return exitWith(code)
				}
				return forEach(args, func(ref string) error {
					if _, err := e.Start(ctx, ref); err != nil {
						return err
					}
					fmt.Println(ref)
					return nil
				})
			})
		},
	}
	cmd.Flags().BoolVarP(&attach, "attach", "a", false, "Attach STDOUT/STDERR and forward signals")
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "Attach container's STDIN")
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

func stopLike(g *globalOptions, use, short string, fn func(ctx context.Context, e *engine.Engine, ref string, timeout *int) error) *cobra.Command {
	var timeout int
	var signal string
	cmd := &cobra.Command{
		Use:   use + " [OPTIONS] CONTAINER [CONTAINER...]",
		Short: short,
		Args:  requiresArgs(1, "argument"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var t *int
			if cmd.Flags().Changed("timeout") || cmd.Flags().Changed("time") {
				t = &timeout
			}
			return g.withEngine(func(e *engine.Engine) error {
				return forEach(args, func(ref string) error {
					if signal != "" {
						if _, err := runtime.ParseSignal(signal); err != nil {
							return err
						}
					}
					if err := fn(cmd.Context(), e, ref, t); err != nil {
						return err
					}
					fmt.Println(ref)
					return nil
				})
			})
		},
	}
	cmd.Flags().IntVarP(&timeout, "timeout", "t", 0, "Seconds to wait before killing the container")
	cmd.Flags().IntVar(&timeout, "time", 0, "Seconds to wait before killing the container (deprecated: use --timeout)")
	_ = cmd.Flags().MarkHidden("time")
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "Signal to send to the container")
	return cmd
}

func stopCmd(g *globalOptions) *cobra.Command {
	return stopLike(g, "stop", "Stop one or more running containers", func(ctx context.Context, e *engine.Engine, ref string, t *int) error {
		return e.Stop(ctx, ref, t)
	})
}

func restartCmd(g *globalOptions) *cobra.Command {
	return stopLike(g, "restart", "Restart one or more containers", func(ctx context.Context, e *engine.Engine, ref string, t *int) error {
		return e.Restart(ctx, ref, t)
	})
}

func killCmd(g *globalOptions) *cobra.Command {
	var signal string
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers",
		Args:  requiresArgs(1, "argument"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withEngine(func(e *engine.Engine) error {
				return forEach(args, func(ref string) error {
					if err := e.Kill(cmd.Context(), ref, signal); err != nil {
						return err
					}
					fmt.Println(ref)
					return nil
				})
			})
		},
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "Signal to send to the container")
	return cmd
}

func rmCmd(g *globalOptions, use string) *cobra.Command {
	var opts engine.RemoveOptions
	cmd := &cobra.Command{
		Use:     use + " [OPTIONS] CONTAINER [CONTAINER...]",
		Aliases: aliases(use, "remove"),
		Short:   "Remove one or more containers",
		Args:    requiresArgs(1, "argument"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withEngine(func(e *engine.Engine) error {
				return forEach(args, func(ref string) error {
					if err := e.Remove(cmd.Context(), ref, opts); err != nil {
						return err
					}
					fmt.Println(ref)
					return nil
				})
			})
		},
	}
	cmd.Flags().BoolVarP(&opts.Force, "force", "f", false, "Force the removal of a running container (uses SIGKILL)")
	cmd.Flags().BoolVarP(&opts.Volumes, "volumes", "v", false, "Remove anonymous volumes associated with the container")
	cmd.Flags().BoolP("link", "l", false, "Remove the specified link")
	return cmd
}

func simpleCmd(g *globalOptions, use, short string, fn func(ctx context.Context, e *engine.Engine, ref string) error) *cobra.Command {
	return &cobra.Command{
		Use:   use + " CONTAINER [CONTAINER...]",
		Short: short,
		Args:  requiresArgs(1, "argument"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withEngine(func(e *engine.Engine) error {
				return forEach(args, func(ref string) error {
					if err := fn(cmd.Context(), e, ref); err != nil {
						return err
					}
					fmt.Println(ref)
					return nil
				})
			})
		},
	}
}

func pauseCmd(g *globalOptions) *cobra.Command {
	return simpleCmd(g, "pause", "Pause all processes within one or more containers", func(ctx context.Context, e *engine.Engine, ref string) error {
		return e.Pause(ctx, ref)
	})
}

func unpauseCmd(g *globalOptions) *cobra.Command {
	return simpleCmd(g, "unpause", "Unpause all processes within one or more containers", func(ctx context.Context, e *engine.Engine, ref string) error {
		return e.Unpause(ctx, ref)
	})
}

func renameCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  exactlyArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withEngine(func(e *engine.Engine) error {
				return e.Rename(cmd.Context(), args[0], args[1])
			})
		},
	}
}

func waitCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  requiresArgs(1, "argument"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withEngine(func(e *engine.Engine) error {
				return forEach(args, func(ref string) error {
					exit, err := e.Wait(cmd.Context(), ref)
					if err != nil {
						return err
					}
					fmt.Println(exit.Code)
					return nil
				})
			})
		},
	}
}

const psTable = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"

func psHeader() map[string]string {
	return map[string]string{
		"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "RunningFor": "CREATED", "CreatedAt": "CREATED AT",
		"Status": "STATUS", "Ports": "PORTS", "Names": "NAMES", "State": "STATE", "Size": "SIZE", "Labels": "LABELS",
		"Mounts": "MOUNTS", "Networks": "NETWORKS", "LocalVolumes": "LOCAL VOLUMES",
	}
}

func psCmd(g *globalOptions, use string) *cobra.Command {
	var all, quiet, noTrunc, latest, size bool
	var last int
	var format string
	var filters []string
	cmd := &cobra.Command{
		Use:     use + " [OPTIONS]",
		Aliases: aliases(use, "list"),
		Short:   "List containers",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f := map[string][]string{}
			for _, kv := range filters {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("bad format of filter (expected name=value)")
				}
				switch k {
				case "id", "name", "label", "status", "exited", "ancestor":
				default:
					return fmt.Errorf("invalid filter '%s'", k)
				}
				f[k] = append(f[k], v)
			}
			return g.withEngine(func(e *engine.Engine) error {
				list, err := e.ListContainers(cmd.Context(), engine.ContainerListOptions{All: all || latest || last > 0, Filters: f})
				if err != nil {
					return err
				}
				if latest {
					last = 1
				}
				if last > 0 && len(list) > last {
					list = list[:last]
				}
				if quiet {
					format = "{{.ID}}"
				}
				table := psTable
				if size {
					table += "\t{{.Size}}"
				}
				out, err := newRows(os.Stdout, format, table, psHeader())
				if err != nil {
					return err
				}
				for _, c := range list {
					if err := out.add(psRow(e, cmd.Context(), c, !noTrunc, size)); err != nil {
						return err
					}
				}
				return out.flush()
			})
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only display container IDs")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	fl.BoolVarP(&latest, "latest", "l", false, "Show the latest created container (includes all states)")
	fl.IntVarP(&last, "last", "n", -1, "Show n last created containers (includes all states)")
	fl.BoolVarP(&size, "size", "s", false, "Display total file sizes")
	fl.StringVar(&format, "format", "", "Format output using a custom template: 'table', 'table TEMPLATE', 'json' or a Go template")
	fl.StringArrayVarP(&filters, "filter", "f", nil, "Filter output based on conditions provided")
	return cmd
}

func psRow(e *engine.Engine, ctx context.Context, c *store.Container, trunc, size bool) map[string]string {
	cfg := engine.EffectiveConfig(c)
	command := strings.Join(append(append([]string{}, cfg.Entrypoint...), cfg.Cmd...), " ")
	id := c.ID
	image := c.ImageName
	if trunc {
		id = engine.ShortID(id)
		command = ellipsis(command, 20)
	}
	labels := make([]string, 0, len(cfg.Labels))
	for k, v := range cfg.Labels {
		labels = append(labels, k+"="+v)
	}
	row := map[string]string{
		"ID": id, "Image": image, "Command": strconv.Quote(command), "RunningFor": since(c.Created),
		"CreatedAt": createdAt(c.Created), "Status": statusText(c), "Ports": "", "Names": c.Name,
		"State": c.State.Status, "Labels": strings.Join(labels, ","), "Mounts": "", "Networks": string(c.HostConfig.NetworkMode),
	}
	if size {
		if n, err := e.ContainerSize(ctx, c.ID); err == nil {
			row["Size"] = humanSize(n) + " (virtual " + humanSize(n) + ")"
		}
	}
	return row
}

// statusText is docker ps's STATUS column.
func statusText(c *store.Container) string {
	st := c.State
	switch st.Status {
	case store.StatusRunning:
		return "Up " + humanDuration(time.Since(st.StartedAt))
	case store.StatusPaused:
		return "Up " + humanDuration(time.Since(st.StartedAt)) + " (Paused)"
	case store.StatusRestarting:
		return fmt.Sprintf("Restarting (%d) %s ago", st.ExitCode, humanDuration(time.Since(st.FinishedAt)))
	case store.StatusExited:
		if st.FinishedAt.IsZero() {
			return "Created"
		}
		return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, humanDuration(time.Since(st.FinishedAt)))
	case store.StatusRemoving:
		return "Removal In Progress"
	case store.StatusDead:
		return "Dead"
	}
	return "Created"
}
