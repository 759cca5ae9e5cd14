package cli

import (
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/internal/engine"
)

const historyTable = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"

func historyHeader() map[string]string {
	return map[string]string{"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
		"CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}
}

func historyCmd(g *globalOptions) *cobra.Command {
	var human, quiet, noTrunc bool
	var format string
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  exactlyArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withImages(func(s *engine.Images) error {
				entries, err := s.History(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				if quiet {
					format = "{{.ID}}"
				}
				out, err := newRows(os.Stdout, format, historyTable, historyHeader())
				if err != nil {
					return err
				}
				for _, e := range entries {
					if err := out.add(historyRow(e, human, !noTrunc)); err != nil {
						return err
					}
				}
				return out.flush()
			})
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&human, "human", "H", true, "Print sizes and dates in human readable format")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	fl.StringVar(&format, "format", "", "Format output using a custom template: 'table', 'table TEMPLATE', 'json' or a Go template")
	return cmd
}

func historyRow(e engine.HistoryEntry, human, trunc bool) map[string]string {
	id := e.ID
	if id == "" {
		id = "<missing>"
	} else if trunc {
		id = shortID(id)
	}
	createdBy := strings.ReplaceAll(e.CreatedBy, "\t", " ")
	if trunc {
		createdBy = ellipsis(createdBy, 45)
	}
	r := map[string]string{"ID": id, "CreatedBy": createdBy, "Comment": e.Comment,
		"CreatedAt": e.Created.Format(time.RFC3339)}
	if human {
		r["CreatedSince"] = since(e.Created)
		r["Size"] = humanSize(e.Size)
	} else {
		r["CreatedSince"] = e.Created.Format(time.RFC3339)
		r["Size"] = strconv.FormatInt(e.Size, 10)
	}
	return r
}
