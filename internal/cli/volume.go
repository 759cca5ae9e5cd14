package cli

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/errdefs"
	"github.com/berth-dev/berth/internal/volume"
)

// volumeCmd is `berth volume`: create, ls, inspect, rm and prune.
func volumeCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{Use: "volume COMMAND", Short: "Manage volumes", Args: cobra.ArbitraryArgs, RunE: group}
	cmd.AddCommand(volumeCreateCmd(g), volumeLsCmd(g), volumeInspectCmd(g), volumeRmCmd(g), volumePruneCmd(g))
	return cmd
}

// openVolumes opens the volume store under --root, knowing from the
// engine's containers which volumes are in use.
func (g *globalOptions) openVolumes() (*volume.Store, error) {
	e, err := g.openEngine()
	if err != nil {
		return nil, err
	}
	defer e.Close()
	return e.Volumes()
}

// volumeKVFlag is a repeatable "key=value" flag (--label, --opt); a bare
// key has an empty value.
type volumeKVFlag struct {
	what   string
	values map[string]string
}

func (f *volumeKVFlag) Set(v string) error {
	k, val, _ := strings.Cut(v, "=")
	if f.what == "label" {
		if strings.TrimSpace(k) == "" {
			return fmt.Errorf("invalid label '%s': empty name", v)
		}
		if strings.ContainsAny(k, " \t\r\n\v\f") {
			return fmt.Errorf("label '%s' contains whitespaces", k)
		}
	}
	if f.values == nil {
		f.values = map[string]string{}
	}
	f.values[k] = val
	return nil
}

func (f *volumeKVFlag) String() string {
	keys := make([]string, 0, len(f.values))
	for k := range f.values {
		keys = append(keys, k+"="+f.values[k])
	}
	sort.Strings(keys)
	return "[" + strings.Join(keys, " ") + "]"
}

func (f *volumeKVFlag) Type() string {
	if f.what == "label" {
		return "list"
	}
	return "map"
}

// all returns the values, an empty map when none were given: docker's CLI
// sends {} and inspect shows it.
func (f *volumeKVFlag) all() map[string]string {
	if f.values == nil {
		return map[string]string{}
	}
	return f.values
}

func volumeCreateCmd(g *globalOptions) *cobra.Command {
	var driver, name string
	labels := volumeKVFlag{what: "label"}
	opts := volumeKVFlag{what: "opt"}
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return fmt.Errorf("%q requires at most 1 argument.\nSee '%s --help'.\n\nUsage:  %s\n\n%s",
					cmd.CommandPath(), cmd.CommandPath(), usageLine(cmd), cmd.Short)
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if name != "" && name != args[0] {
					return errdefs.InvalidArgument(errors.New("conflicting options: either specify --name or provide positional arg, not both"))
				}
				name = args[0]
			}
			if err := volume.ValidateDriver(driver); err != nil {
				if name != "" {
					return fmt.Errorf("create %s: %w", name, err)
				}
				return err
			}
			s, err := g.openVolumes()
			if err != nil {
				return err
			}
			v, err := s.Create(name, opts.all(), labels.all())
			if err != nil {
				return err
			}
			fmt.Println(v.Name)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&driver, "driver", "d", volume.DriverName, "Specify volume driver name")
	fl.Var(&labels, "label", "Set metadata for a volume")
	fl.VarP(&opts, "opt", "o", "Set driver specific options")
	fl.StringVar(&name, "name", "", "Specify volume name")
	_ = fl.MarkHidden("name")
	return cmd
}

const volumesTable = "table {{.Driver}}\t{{.Name}}"

func volumesHeader() map[string]string {
	return map[string]string{
		"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
		"Labels": "LABELS", "Links": "LINKS", "Size": "SIZE",
		"Group": "GROUP", "Availability": "AVAILABILITY", "Status": "STATUS",
	}
}

// volumeRow is a volume's fields for ls: docker's, with "N/A" for what
// only `system df` or swarm fill in.
func volumeRow(v volume.Volume) map[string]string {
	labels := make([]string, 0, len(v.Labels))
	for k, val := range v.Labels {
		labels = append(labels, k+"="+val)
	}
	sort.Strings(labels)
	return map[string]string{
		"Name": v.Name, "Driver": v.Driver, "Scope": v.Scope, "Mountpoint": v.Mountpoint,
		"Labels": strings.Join(labels, ","), "Links": "N/A", "Size": "N/A",
		"Group": "N/A", "Availability": "N/A", "Status": "N/A",
	}
}

func volumeLsCmd(g *globalOptions) *cobra.Command {
	var quiet bool
	var format string
	var filters []string
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := volume.ParseFilters(filters)
			if err != nil {
				return err
			}
			s, err := g.openVolumes()
			if err != nil {
				return err
			}
			list, err := s.List(f)
			if err != nil {
				return err
			}
			// As docker's: -q shortens the default table only; an explicit
			// --format wins.
			if quiet && (format == "" || format == "table") {
				format = "{{.Name}}"
			}
			out, err := newRows(os.Stdout, format, volumesTable, volumesHeader())
			if err != nil {
				return err
			}
			for _, v := range list {
				if err := out.add(volumeRow(v)); err != nil {
					return err
				}
			}
			return out.flush()
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only display volume names")
	fl.StringVar(&format, "format", "", "Format output using a custom template: 'table', 'table TEMPLATE', 'json' or a Go template")
	fl.StringArrayVarP(&filters, "filter", "f", nil, "Provide filter values (e.g. \"dangling=true\")")
	return cmd
}

func volumeInspectCmd(g *globalOptions) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] VOLUME [VOLUME...]",
		Short: "Display detailed information on one or more volumes",
		Args:  requiresArgs(1, "volume"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.openVolumes()
			if err != nil {
				return err
			}
			found := []volume.Volume{}
			var errs []string
			for _, name := range args {
				v, err := s.Get(name)
				switch {
				case errdefs.Is(err, errdefs.KindNotFound):
					errs = append(errs, "No such volume: "+name)
				case err != nil:
					errs = append(errs, err.Error())
				default:
					found = append(found, v)
				}
			}
			return writeInspect(format, found, errs)
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template: 'json' or a Go template")
	return cmd
}

func volumeRmCmd(g *globalOptions) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes",
		Args:    requiresArgs(1, "volume"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := g.openVolumes()
			if err != nil {
				return err
			}
			failed := false
			for _, name := range args {
				if err := s.Remove(name, force); err != nil {
					fmt.Fprintf(os.Stderr, "Error: %v\n", err)
					failed = true
					continue
				}
				fmt.Println(name)
			}
			if failed {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of one or more volumes")
	return cmd
}

func volumePruneCmd(g *globalOptions) *cobra.Command {
	var all, force bool
	var filters []string
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused local volumes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := volume.ParseFilters(filters)
			if err != nil {
				return err
			}
			warning := "WARNING! This will remove anonymous local volumes not used by at least one container."
			if all {
				if _, ok := f["all"]; ok {
					return errdefs.InvalidArgument(errors.New("conflicting options: cannot specify both --all and --filter all=1"))
				}
				f["all"] = []string{"true"}
				warning = "WARNING! This will remove all local volumes not used by at least one container."
			}
			if !force && !confirm(warning) {
				return nil
			}
			s, err := g.openVolumes()
			if err != nil {
				return err
			}
			removed, reclaimed, err := s.Prune(f)
			if len(removed) > 0 {
				fmt.Println("Deleted Volumes:")
				for _, name := range removed {
					fmt.Println(name)
				}
				fmt.Println()
			}
			fmt.Printf("Total reclaimed space: %s\n", humanSize4(reclaimed))
			return err
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "Remove all unused volumes, not just anonymous ones")
	fl.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	fl.StringArrayVar(&filters, "filter", nil, "Provide filter values (e.g. \"label=<label>\")")
	return cmd
}
