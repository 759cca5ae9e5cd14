package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/registry"
)

func loginCmd(g *globalOptions) *cobra.Command {
	var user, password string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Authenticate to a registry",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return fmt.Errorf("%q requires at most 1 argument.\nSee '%s --help'.", cmd.CommandPath(), cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			server := registry.DockerHubHost
			if len(args) == 1 {
				server = args[0]
			}
			if password != "" {
				fmt.Fprintln(os.Stderr, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
				if passwordStdin {
					return errdefs.InvalidArgument(errors.New("--password and --password-stdin are mutually exclusive"))
				}
			}
			in := bufio.NewReader(os.Stdin)
			if passwordStdin {
				if user == "" {
					return errdefs.InvalidArgument(errors.New("must provide --username with --password-stdin"))
				}
				data, err := io.ReadAll(in)
				if err != nil {
					return err
				}
				password = strings.TrimRight(string(data), "\r\n")
			}
			if user == "" {
				fmt.Print("Username: ")
				line, _ := in.ReadString('\n')
				user = strings.TrimSpace(line)
			}
			if password == "" {
				p, err := readPassword(in)
				if err != nil {
					return err
				}
				password = p
			}
			if user == "" || password == "" {
				return errdefs.InvalidArgument(errors.New("username and password are required"))
			}
			opts := g.registryOptions()
			opts.Keychain = nil
			if err := registry.Login(cmd.Context(), server, user, password, registry.DefaultAuthFile(), opts); err != nil {
				return err
			}
			fmt.Println("Login Succeeded")
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&user, "username", "u", "", "Username")
	fl.StringVarP(&password, "password", "p", "", "Password or Personal Access Token (PAT)")
	fl.BoolVar(&passwordStdin, "password-stdin", false, "Take the Password or Personal Access Token (PAT) from stdin")
	return cmd
}

// readPassword asks for the password, without echo on a terminal.
func readPassword(in *bufio.Reader) (string, error) {
	fmt.Print("Password: ")
	fd := int(os.Stdin.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err == nil {
		noEcho := *old
		noEcho.Lflag &^= unix.ECHO
		if err := unix.IoctlSetTermios(fd, unix.TCSETS, &noEcho); err == nil {
			defer func() {
				_ = unix.IoctlSetTermios(fd, unix.TCSETS, old)
				fmt.Println()
			}()
		}
	}
	line, err := in.ReadString('\n')
	if err != nil && line == "" {
		return "", fmt.Errorf("read password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
