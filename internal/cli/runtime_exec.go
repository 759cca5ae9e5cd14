package cli

import (
	"encoding/json"
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/runtime"
)

func runtimeExecCmd(o *runtimeOptions) *cobra.Command {
	var (
		processFile, consoleSocket, pidFile, cwd, user string
		env, caps                                      []string
		gids                                           []uint
		tty, detach, noNewPrivs, ignorePaused          bool
		preserveFDs                                    int
	)
	cmd := &cobra.Command{
		Use:   "exec [flags] CONTAINER_ID [COMMAND [ARG...]]",
		Short: "Run another process in a running container",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := o.load(args[0])
			if err != nil {
				return err
			}
			var proc *specs.Process
			if processFile != "" {
				data, err := os.ReadFile(processFile)
				if err != nil {
					return err
				}
				proc = new(specs.Process)
				if err := json.Unmarshal(data, proc); err != nil {
					return errdefs.InvalidArgument(fmt.Errorf("--process %s: %w", processFile, err))
				}
			} else {
				if len(args) < 2 {
					return errdefs.InvalidArgument(fmt.Errorf("exec needs a command, or --process"))
				}
				proc = c.ProcessFromArgs(args[1:], tty)
				proc.Env = append(proc.Env, env...)
				if cwd != "" {
					proc.Cwd = cwd
				}
				if user != "" {
					uid, gid, err := runtime.ParseUser(user)
					if err != nil {
						return err
					}
					proc.User = specs.User{UID: uid, GID: gid}
				}
				for _, g := range gids {
					proc.User.AdditionalGids = append(proc.User.AdditionalGids, uint32(g))
				}
				if noNewPrivs {
					proc.NoNewPrivileges = true
				}
				if len(caps) > 0 && proc.Capabilities != nil {
					pc := *proc.Capabilities
					pc.Bounding = append(append([]string{}, pc.Bounding...), caps...)
					pc.Effective = append(append([]string{}, pc.Effective...), caps...)
					pc.Permitted = append(append([]string{}, pc.Permitted...), caps...)
					proc.Capabilities = &pc
				}
			}
			opts := runtime.ExecOptions{
				Process: proc, ConsoleSocket: absOrEmpty(consoleSocket), PidFile: pidFile,
				PreserveFDs: preserveFDs, IgnorePaused: ignorePaused, Stdio: stdio(),
			}
			if detach {
				_, err := c.Exec(opts)
				return err
			}
			if err := runtime.SetSubreaper(); err != nil {
				return err
			}
			var relay *runtime.ConsoleRelay
			if proc.Terminal && consoleSocket == "" {
				if relay, err = runtime.NewConsoleRelay(); err != nil {
					return err
				}
				opts.Console = relay.Child
			}
			forward := runtime.ForwardSignals()
			pid, err := c.Exec(opts)
			if err != nil {
				return err
			}
			forward(pid)
			if relay != nil {
				if err := relay.Start(); err != nil {
					return err
				}
				defer relay.Close()
			}
			code, err := runtime.WaitPid(pid)
			if err != nil {
				return err
			}
			if code != 0 {
				return &exitError{code: code}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.SetInterspersed(false)
	fl.StringVarP(&processFile, "process", "p", "", "path to process.json")
	fl.StringVar(&consoleSocket, "console-socket", "", "path to an AF_UNIX socket which will receive the pty master")
	fl.StringVar(&pidFile, "pid-file", "", "file to write the process id to")
	fl.StringVar(&cwd, "cwd", "", "current working directory in the container")
	fl.StringVarP(&user, "user", "u", "", "UID (format: <uid>[:<gid>])")
	fl.StringArrayVarP(&env, "env", "e", nil, "set environment variables")
	fl.StringArrayVarP(&caps, "cap", "c", nil, "add a capability to the bounding set")
	fl.UintSliceVarP(&gids, "additional-gids", "g", nil, "additional gids")
	fl.BoolVarP(&tty, "tty", "t", false, "allocate a pseudo-TTY")
	fl.BoolVarP(&detach, "detach", "d", false, "detach from the container's process")
	fl.BoolVar(&noNewPrivs, "no-new-privs", false, "set the no new privileges value for the process")
	fl.BoolVar(&ignorePaused, "ignore-paused", false, "allow exec in a paused container")
	fl.IntVar(&preserveFDs, "preserve-fds", 0, "pass N additional file descriptors to the container")
	fl.String("process-label", "", "set the asm process label (accepted, unused)")
	fl.String("apparmor", "", "set the apparmor profile (accepted, unused)")
	fl.String("cgroup", "", "run in a sub-cgroup (accepted, unused)")
	return cmd
}
