package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/engine/store"
	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/monitor"
	"github.com/berth-dev/berth/internal/network"
	"github.com/berth-dev/berth/internal/registry"
	"github.com/berth-dev/berth/internal/runtime"
)

// addContainerCommands registers docker's container commands, at the top
// level and under "container".
func addContainerCommands(root *cobra.Command, g *globalOptions) {
	connectNetwork = func(ctx context.Context, g *globalOptions, netName, ref string, opts network.AttachOptions) error {
		return g.withEngine(func(e *engine.Engine) error { return e.Connect(ctx, netName, ref, opts) })
	}
	disconnectNetwork = func(ctx context.Context, g *globalOptions, netName, ref string, force bool) error {
		return g.withEngine(func(e *engine.Engine) error { return e.Disconnect(ctx, netName, ref) })
	}
	top := func() []*cobra.Command {
		return []*cobra.Command{createCmd(g), runCmd(g), startCmd(g), stopCmd(g), restartCmd(g), killCmd(g),
			rmCmd(g, "rm"), psCmd(g, "ps"), logsCmd(g), waitCmd(g), execCmd(g), attachCmd(g), pauseCmd(g),
			unpauseCmd(g), renameCmd(g), diffCmd(g), exportCmd(g), topCmd(g), portCmd(g)}
	}
	root.AddCommand(top()...)
	c := &cobra.Command{Use: "container", Short: "Manage containers", Args: cobra.ArbitraryArgs, RunE: group}
	c.AddCommand(top()...)
	c.AddCommand(psCmd(g, "ls"), containerInspectCmd(g), containerPruneCmd(g))
	root.AddCommand(c)
	root.AddCommand(&cobra.Command{
		Use:    "__monitor",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			e, err := g.openEngine()
			if err != nil {
				return err
			}
			defer e.Close()
			return e.RunMonitor()
		},
	})
	addExtraContainerCommands(root, g)
}

// openEngine opens the engine under --root and --runroot.
func (g *globalOptions) openEngine() (*engine.Engine, error) {
	return engine.Open(engine.Options{
		ImagesOptions: engine.ImagesOptions{
			Root:          g.root,
			StorageDriver: g.storageDriver,
			Registry:      g.registryOptions(),
		},
		RunRoot:      g.runRoot,
		CgroupParent: os.Getenv("BERTH_CGROUP_PARENT"),
	})
}

func (g *globalOptions) withEngine(fn func(*engine.Engine) error) error {
	e, err := g.openEngine()
	if err != nil {
		return err
	}
	defer e.Close()
	return fn(e)
}

// forEach runs fn for each argument, printing each error as docker does
// and failing at the end if any failed.
func forEach(args []string, fn func(string) error) error {
	failed := false
	for _, a := range args {
		if err := fn(a); err != nil {
			fmt.Fprintf(os.Stderr, "Error response from daemon: %v\n", err)
			failed = true
		}
	}
	if failed {
		return &exitError{code: 1}
	}
	return nil
}

// runError is docker run's failure: "berth: MSG" and 125, or 126/127 when
// the command could not be run.
func runError(cmdName string, err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	code := 125
	msg := err.Error()
	lower := strings.ToLower(msg)
	switch {
	case strings.Contains(lower, "executable file not found"), strings.Contains(lower, "not found in $path"),
		strings.Contains(lower, "no such file or directory"):
		code = 127
	case strings.Contains(lower, "permission denied"):
		code = 126
	}
	if errdefs.Is(err, errdefs.KindInvalidArgument) || errdefs.Is(err, errdefs.KindConflict) || errdefs.Is(err, errdefs.KindNotFound) {
		code = 125
	}
	return &statusError{code: code, msg: fmt.Sprintf("berth: Error response from daemon: %s\n\nRun 'berth %s --help' for more information", msg, cmdName)}
}

// ensureImage pulls req's image when the pull policy asks for it.
func ensureImage(ctx context.Context, e *engine.Engine, ref, policy string, quiet bool) error {
	_, err := e.Images().Inspect(ctx, ref)
	missing := errdefs.Is(err, errdefs.KindNotFound)
	if err != nil && !missing {
		return err
	}
	switch policy {
	case "", "missing":
		if !missing {
			return nil
		}
	case "never":
		if missing {
			return errdefs.NotFound(fmt.Errorf("No such image: %s", ref))
		}
		return nil
	case "always":
	default:
		return errdefs.InvalidArgument(fmt.Errorf("invalid pull option: '%s': must be one of \"always\", \"missing\" or \"never\"", policy))
	}
	if missing {
		fmt.Fprintf(os.Stderr, "Unable to find image '%s' locally\n", withLatest(ref))
	}
	var w io.Writer = os.Stderr
	if quiet {
		w = io.Discard
	}
	pr := registry.NewPrinter(w, !quiet && registry.IsTerminal(os.Stderr))
	defer pr.Close()
	res, err := e.Images().Pull(ctx, ref, engine.PullOptions{Progress: pr})
	if err != nil {
		return err
	}
	pr.PullDone(res.PullResult, res.Newer)
	return nil
}

func withLatest(ref string) string {
	last := ref[strings.LastIndex(ref, "/")+1:]
	if strings.Contains(last, ":") || strings.Contains(ref, "@") {
		return ref
	}
	return ref + ":latest"
}

func createContainer(ctx context.Context, e *engine.Engine, req *createRequest) (string, error) {
	if err := ensureImage(ctx, e, req.Image, req.Pull, req.Quiet); err != nil {
		return "", err
	}
	cr := engine.CreateRequest{Name: req.Name, Config: req.Config, HostConfig: req.HostConfig}
	if req.IPv4Address.IsValid() || len(req.Aliases) > 0 || req.MacAddress != "" {
		cr.Networking = &store.Networking{IP: req.IPv4Address, Aliases: req.Aliases, MAC: req.MacAddress}
	}
	rec, warnings, err := e.Create(ctx, cr)
	for _, w := range warnings {
		fmt.Fprintf(os.Stderr, "WARNING: %s\n", w)
	}
	if err != nil {
		return "", err
	}
	return rec.ID, nil
}

func createCmd(g *globalOptions) *cobra.Command {
	var rf *runFlags
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  requiresArgs(1, "argument"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := rf.parse(cmd.Flags(), args)
			if err != nil {
				return &statusError{code: 125, msg: fmt.Sprintf("berth: %v\n\nRun 'berth create --help' for more information", err)}
			}
			return g.withEngine(func(e *engine.Engine) error {
				id, err := createContainer(cmd.Context(), e, req)
				if err != nil {
					return runError("create", err)
				}
				fmt.Println(id)
				return nil
			})
		},
	}
	cmd.Flags().SetInterspersed(false)
	rf = addRunFlags(cmd.Flags())
	// -h is --hostname here, as in docker.
	cmd.Flags().Bool("help", false, "Print usage")
	return cmd
}

func runCmd(g *globalOptions) *cobra.Command {
	var rf *runFlags
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  requiresArgs(1, "argument"),
		RunE: func(cmd *cobra.Command, args []string) error {
			req, err := rf.parse(cmd.Flags(), args)
			if err != nil {
				return &statusError{code: 125, msg: fmt.Sprintf("berth: %v\n\nRun 'berth run --help' for more information", err)}
			}
			pt := engine.NewPhaseTimer()
			defer pt.Done("cli-run")
			return g.withEngine(func(e *engine.Engine) error {
				pt.Mark("open")
				ctx := cmd.Context()
				id, err := createContainer(ctx, e, req)
				pt.Mark("create")
				if err != nil {
					return runError("run", err)
				}
				if req.Detach {
					if _, err := e.Start(ctx, id); err != nil {
						return runError("run", startFailed(ctx, e, id, err))
					}
					fmt.Println(id)
					return nil
				}
				code, err := runAttached(ctx, e, id, req)
				if err != nil {
					return runError("run", startFailed(ctx, e, id, err))
				}
				return exitWith(code)
			})
		},
	}
	cmd.Flags().SetInterspersed(false)
	rf = addRunFlags(cmd.Flags())
	// -h is --hostname here, as in docker.
	cmd.Flags().Bool("help", false, "Print usage")
	return cmd
}

// startFailed records a failed start; a --rm container goes.
func startFailed(ctx context.Context, e *engine.Engine, id string, err error) error {
	if rec, gerr := e.Get(id); gerr == nil && rec.HostConfig.AutoRemove && !rec.Running() {
		_ = e.Remove(context.WithoutCancel(ctx), id, engine.RemoveOptions{Force: true, Volumes: true})
	}
	return err
}

func exitWith(code int) error {
	if code == 0 {
		return nil
	}
	return &exitError{code: code}
}

// runAttached starts container id with the terminal attached as docker
// run does without -d: stdin with -i, a raw terminal with -t, signals
// proxied, detach keys.
func runAttached(ctx context.Context, e *engine.Engine, id string, req *createRequest) (int, error) {
	cfg := req.Config
	s := engine.Streams{}
	if cfg.AttachStdout {
		s.Stdout = os.Stdout
	}
	if cfg.AttachStderr {
		s.Stderr = os.Stderr
	}
	if cfg.Tty && s.Stderr == nil {
		s.Stderr = os.Stdout
	}
	if cfg.AttachStdin || cfg.OpenStdin {
		s.Stdin = os.Stdin
	}
	restore := func() {}
	if cfg.Tty && runtime.IsTerminal(os.Stdin) {
		var err error
		if restore, err = runtime.MakeRaw(int(os.Stdin.Fd())); err != nil {
			return 0, err
		}
		if ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ); err == nil {
			s.Width, s.Height = ws.Col, ws.Row
		}
		resize := make(chan monitor.Resize, 1)
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, unix.SIGWINCH)
		go func() {
			for range winch {
				if ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ); err == nil {
					resize <- monitor.Resize{Width: ws.Col, Height: ws.Row}
				}
			}
		}()
		s.Resize = resize
		keys := req.DetachKeys
		if keys == "" {
			keys = "ctrl-p,ctrl-q"
		}
		s.DetachKeys, _ = parseDetachKeys(keys)
	}
	defer restore()
	if req.SigProxy && !cfg.Tty {
		ch := make(chan os.Signal, 16)
		signal.Notify(ch, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)
		defer signal.Stop(ch)
		go func() {
			for sig := range ch {
				if us, ok := sig.(unix.Signal); ok {
					_ = e.Kill(context.WithoutCancel(ctx), id, fmt.Sprint(int(us)))
				}
			}
		}()
	}
	exit, err := e.StartAttached(context.WithoutCancel(ctx), id, s, false)
	if errors.Is(err, engine.ErrDetached) {
		restore()
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return exit.Code, nil
}

// parseDetachKeys reads docker's "ctrl-p,ctrl-q" notation.
func parseDetachKeys(s string) ([]byte, error) {
	var out []byte
	for _, k := range strings.Split(s, ",") {
		k = strings.TrimSpace(k)
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case strings.HasPrefix(k, "ctrl-") && len(k) == 6:
			c := k[5]
			switch {
			case c >= 'a' && c <= 'z':
				out = append(out, c-'a'+1)
			case c == '@':
				out = append(out, 0)
			case c == '[':
				out = append(out, 27)
			case c == '\\':
				out = append(out, 28)
			case c == ']':
				out = append(out, 29)
			case c == '^':
				out = append(out, 30)
			case c == '_':
				out = append(out, 31)
			default:
				return nil, fmt.Errorf("invalid detach keys (%s) provided", s)
			}
		default:
			return nil, fmt.Errorf("invalid detach keys (%s) provided", s)
		}
	}
	return out, nil
}
