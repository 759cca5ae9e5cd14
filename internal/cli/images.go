package cli

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/engine"
	"github.com/berth-dev/berth/internal/image"
	"github.com/berth-dev/berth/internal/registry"
)

// addImageCommands adds docker's image commands, at the top level and
// under `berth image`, and login, logout, info and system.
func addImageCommands(root *cobra.Command, g *globalOptions) {
	root.AddCommand(imagesCmd(g, "images"), pullCmd(g), pushCmd(g), rmiCmd(g, "rmi"), tagCmd(g),
		inspectCmd(g), historyCmd(g), saveCmd(g), loadCmd(g), importCmd(g),
		loginCmd(g), logoutCmd(g), infoCmd(g, "info"), systemCmd(g))
	img := &cobra.Command{Use: "image", Short: "Manage images", Args: cobra.ArbitraryArgs, RunE: group}
	img.AddCommand(imagesCmd(g, "ls"), pullCmd(g), pushCmd(g), rmiCmd(g, "rm"), tagCmd(g),
		imageInspectCmd(g), historyCmd(g), imagePruneCmd(g), saveCmd(g), loadCmd(g), importCmd(g))
	root.AddCommand(img)
}

// group runs a command group (image, system) without a subcommand: help,
// or an error naming the unknown subcommand.
func group(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("'%s %s' is not a berth command.\nSee '%s --help'", cmd.CommandPath(), args[0], cmd.CommandPath())
	}
	return cmd.Help()
}

// usageLine is docker's "berth rmi [OPTIONS] IMAGE [IMAGE...]".
func usageLine(cmd *cobra.Command) string {
	if cmd.HasParent() {
		return cmd.Parent().CommandPath() + " " + cmd.Use
	}
	return cmd.Use
}

// registryOptions say how to reach registries: logins from berth's
// credentials file then docker's, --insecure-registry, CAs under
// $BERTH_CERTS_DIR (default /etc/berth/certs.d, laid out as docker's
// /etc/docker/certs.d).
func (g *globalOptions) registryOptions() registry.Options {
	certs := os.Getenv("BERTH_CERTS_DIR")
	if certs == "" {
		certs = "/etc/berth/certs.d"
	}
	return registry.Options{
		Keychain:  registry.FileKeychain(registry.DefaultAuthFile(), registry.DockerConfigFile()),
		Insecure:  g.insecure,
		CertsDir:  certs,
		UserAgent: "berth/" + Version,
	}
}

// openImages opens the image service under --root.
func (g *globalOptions) openImages() (*engine.Images, error) {
	return engine.OpenImages(engine.ImagesOptions{
		Root:          g.root,
		StorageDriver: g.storageDriver,
		Registry:      g.registryOptions(),
	})
}

// withImages runs fn with the image service open.
func (g *globalOptions) withImages(fn func(*engine.Images) error) error {
	s, err := g.openImages()
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(s)
}

func requiresArgs(min int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < min {
			word := "argument"
			if min > 1 {
				word = "arguments"
			}
			return fmt.Errorf("%q requires at least %d %s.\nSee '%s --help'.\n\nUsage:  %s\n\n%s",
				cmd.CommandPath(), min, word, cmd.CommandPath(), usageLine(cmd), cmd.Short)
		}
		return nil
	}
}

func exactlyArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			word := "argument"
			if n > 1 {
				word = "arguments"
			}
			return fmt.Errorf("%q requires exactly %d %s.\nSee '%s --help'.\n\nUsage:  %s\n\n%s",
				cmd.CommandPath(), n, word, cmd.CommandPath(), usageLine(cmd), cmd.Short)
		}
		return nil
	}
}

const imagesTable = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
const imagesDigestsTable = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"

func imagesHeader() map[string]string {
	return map[string]string{
		"Repository": "REPOSITORY", "Tag": "TAG", "ID": "IMAGE ID", "Digest": "DIGEST",
		"CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE",
		"Containers": "CONTAINERS", "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE", "VirtualSize": "SIZE",
	}
}

func imagesCmd(g *globalOptions, use string) *cobra.Command {
	var quiet, all, digests, noTrunc bool
	var format string
	var filters []string
	cmd := &cobra.Command{
		Use:     use + " [OPTIONS] [REPOSITORY[:TAG]]",
		Aliases: aliases(use, "ls", "list"),
		Short:   "List images",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return fmt.Errorf("%q requires at most 1 argument.\nSee '%s --help'.", cmd.CommandPath(), cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				filters = append(filters, "reference="+args[0])
			}
			f, err := engine.ParseImageFilters(filters)
			if err != nil {
				return err
			}
			return g.withImages(func(s *engine.Images) error {
				list, err := s.List(cmd.Context(), engine.ListOptions{All: all, Filters: f})
				if err != nil {
					return err
				}
				table := imagesTable
				if digests {
					table = imagesDigestsTable
				}
				if quiet {
					format = "{{.ID}}"
				}
				out, err := newRows(os.Stdout, format, table, imagesHeader())
				if err != nil {
					return err
				}
				for _, img := range list {
					for _, rec := range imageRows(img, digests, !noTrunc) {
						if err := out.add(rec); err != nil {
							return err
						}
					}
				}
				return out.flush()
			})
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	fl.BoolVarP(&all, "all", "a", false, "Show all images (default hides intermediate images)")
	fl.BoolVar(&digests, "digests", false, "Show digests")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	fl.StringVar(&format, "format", "", "Format output using a custom template: 'table', 'table TEMPLATE', 'json' or a Go template")
	fl.StringArrayVarP(&filters, "filter", "f", nil, "Filter output based on conditions provided")
	return cmd
}

// imageRows makes docker's rows for one image: a row per repository and
// tag (and, with digests, per digest), or <none> rows.
func imageRows(img engine.ImageSummary, withDigests, trunc bool) []map[string]string {
	id := img.ID.String()
	if trunc {
		id = img.ID.Encoded()[:min(12, len(img.ID.Encoded()))]
	}
	base := map[string]string{
		"ID": id, "CreatedSince": since(img.Created), "CreatedAt": createdAt(img.Created),
		"Size": humanSize(img.Size), "VirtualSize": humanSize(img.Size),
		"Containers": "N/A", "SharedSize": "N/A", "UniqueSize": "N/A",
	}
	row := func(repo, tag, dgst string) map[string]string {
		r := make(map[string]string, len(base)+3)
		for k, v := range base {
			r[k] = v
		}
		r["Repository"], r["Tag"], r["Digest"] = repo, tag, dgst
		return r
	}
	if img.Dangling() {
		return []map[string]string{row("<none>", "<none>", "<none>")}
	}
	tags := map[string][]string{}
	dgsts := map[string][]string{}
	for _, t := range img.RepoTags {
		if r, err := image.ParseReference(t); err == nil {
			tags[r.FamiliarName()] = append(tags[r.FamiliarName()], r.Tag)
		}
	}
	for _, d := range img.RepoDigests {
		if r, err := image.ParseReference(d); err == nil {
			dgsts[r.FamiliarName()] = append(dgsts[r.FamiliarName()], r.Digest.String())
		}
	}
	var out []map[string]string
	for _, repo := range sortedNames(tags) {
		ds := dgsts[repo]
		delete(dgsts, repo)
		for _, tag := range tags[repo] {
			if !withDigests || len(ds) == 0 {
				d := "<none>"
				if len(ds) > 0 {
					d = ds[0]
				}
				out = append(out, row(repo, tag, d))
				continue
			}
			for _, d := range ds {
				out = append(out, row(repo, tag, d))
			}
		}
	}
	for _, repo := range sortedNames(dgsts) {
		if withDigests {
			for _, d := range dgsts[repo] {
				out = append(out, row(repo, "<none>", d))
			}
		} else {
			out = append(out, row(repo, "<none>", dgsts[repo][0]))
		}
	}
	return out
}

// aliases gives a subcommand of `berth image` docker's other names.
func aliases(use, name string, more ...string) []string {
	if use != name {
		return nil
	}
	return more
}

func sortedNames(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// shortID is an image ID as docker shows it truncated: 12 hex digits.
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	return id[:min(12, len(id))]
}
