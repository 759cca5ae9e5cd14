package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"
	"unicode/utf8"

	"github.com/berth-dev/berth/internal/errdefs"
)

// templateFuncs are the functions docker's --format templates have.
func templateFuncs() template.FuncMap {
	return template.FuncMap{
		"json": func(v any) (string, error) {
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			if err := enc.Encode(v); err != nil {
				return "", err
			}
			return strings.TrimSpace(buf.String()), nil
		},
		"split":    strings.Split,
		"join":     strings.Join,
		"title":    func(s string) string { return strings.ToUpper(s[:min(1, len(s))]) + s[min(1, len(s)):] },
		"lower":    strings.ToLower,
		"upper":    strings.ToUpper,
		"pad":      func(s string, l, r int) string { return strings.Repeat(" ", l) + s + strings.Repeat(" ", r) },
		"truncate": func(s string, n int) string { return ellipsis(s, n) },
		"println":  func(args ...any) string { return fmt.Sprintln(args...) },
	}
}

// parseTemplate parses a --format template as docker does: "\t" and "\n"
// typed literally in the shell stand for a tab and a newline.
func parseTemplate(format string) (*template.Template, error) {
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
	t, err := template.New("format").Funcs(templateFuncs()).Parse(format)
	if err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("template parsing error: %w", err))
	}
	return t, nil
}

// rows writes records in a docker --format: "table" (the default table),
// "table TEMPLATE" (a table with a header row), "json" (a JSON object per
// line) or a Go template (a line per record).
type rows struct {
	w       io.Writer
	tw      *tabwriter.Writer
	tmpl    *template.Template
	json    bool
	header  map[string]string
	started bool
}

// newRows prepares the output of records whose fields are header's keys.
func newRows(w io.Writer, format, defaultTable string, header map[string]string) (*rows, error) {
	r := &rows{w: w, header: header}
	switch {
	case format == "" || format == "table":
		format = defaultTable
	case format == "json":
		r.json = true
		return r, nil
	}
	table := false
	if rest, ok := strings.CutPrefix(format, "table"); ok {
		table, format = true, strings.TrimLeft(rest, " ")
	}
	t, err := parseTemplate(format)
	if err != nil {
		return nil, err
	}
	r.tmpl = t
	if table {
		r.tw = tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
		r.w = r.tw
		if err := r.line(header); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func (r *rows) line(v any) error {
	var buf bytes.Buffer
	if err := r.tmpl.Execute(&buf, v); err != nil {
		return errdefs.InvalidArgument(fmt.Errorf("template: %w", err))
	}
	buf.WriteByte('\n')
	_, err := r.w.Write(buf.Bytes())
	return err
}

// add writes one record.
func (r *rows) add(rec map[string]string) error {
	if r.json {
		data, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(r.w, "%s\n", data)
		return err
	}
	return r.line(rec)
}

// flush ends the output.
func (r *rows) flush() error {
	if r.tw != nil {
		return r.tw.Flush()
	}
	return nil
}

// executeTemplate writes v with a Go template and a newline (inspect's
// and info's --format). As docker's, a template that names fields by their
// JSON keys ({{.Id}}) is run on v's JSON when it fails on v itself.
func executeTemplate(w io.Writer, format string, v any) error {
	if format == "json" {
		format = "{{json .}}"
	}
	t, err := parseTemplate(format)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, v); err != nil {
		raw, merr := json.Marshal(v)
		if merr != nil {
			return errdefs.InvalidArgument(fmt.Errorf("template: %w", err))
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var generic any
		if dec.Decode(&generic) != nil {
			return errdefs.InvalidArgument(fmt.Errorf("template: %w", err))
		}
		buf.Reset()
		if err2 := t.Execute(&buf, generic); err2 != nil {
			return errdefs.InvalidArgument(fmt.Errorf("template: %w", err))
		}
	}
	buf.WriteByte('\n')
	_, err = w.Write(buf.Bytes())
	return err
}

// humanSize writes n bytes as docker does: decimal units, 3 significant
// digits ("4.26MB", "512B").
func humanSize(n int64) string {
	return sizeWith(n, 3, 1000, []string{"B", "kB", "MB", "GB", "TB", "PB", "EB"})
}

// humanSize4 is docker's units.HumanSize: 4 significant digits ("4.261MB").
func humanSize4(n int64) string {
	return sizeWith(n, 4, 1000, []string{"B", "kB", "MB", "GB", "TB", "PB", "EB"})
}

// bytesSize is docker's units.BytesSize: binary units ("23.47GiB").
func bytesSize(n int64) string {
	return sizeWith(n, 4, 1024, []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"})
}

func sizeWith(n int64, prec int, base float64, units []string) string {
	f := float64(n)
	i := 0
	for f >= base && i < len(units)-1 {
		f /= base
		i++
	}
	return fmt.Sprintf("%.*g%s", prec, f, units[i])
}

// humanDuration writes d as docker does ("About a minute", "3 weeks").
func humanDuration(d time.Duration) string {
	if seconds := int(d.Seconds()); seconds < 1 {
		return "Less than a second"
	} else if seconds == 1 {
		return "1 second"
	} else if seconds < 60 {
		return fmt.Sprintf("%d seconds", seconds)
	} else if minutes := int(d.Minutes()); minutes == 1 {
		return "About a minute"
	} else if minutes < 60 {
		return fmt.Sprintf("%d minutes", minutes)
	} else if hours := int(d.Hours() + 0.5); hours == 1 {
		return "About an hour"
	} else if hours < 48 {
		return fmt.Sprintf("%d hours", hours)
	} else if hours < 24*7*2 {
		return fmt.Sprintf("%d days", hours/24)
	} else if hours < 24*30*2 {
		return fmt.Sprintf("%d weeks", hours/24/7)
	} else if hours < 24*365*2 {
		return fmt.Sprintf("%d months", hours/24/30)
	}
	return fmt.Sprintf("%d years", int(d.Hours())/24/365)
}

// since is docker's CreatedSince: "4 weeks ago", "N/A" for no time.
func since(t time.Time) string {
	if t.IsZero() {
		return "N/A"
	}
	return humanDuration(time.Now().UTC().Sub(t)) + " ago"
}

// createdAt is docker's CreatedAt: the time in the local zone.
func createdAt(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Truncate(time.Second).String()
}

// ellipsis truncates s to n characters, the last an ellipsis.
func ellipsis(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	if n <= 1 {
		return string([]rune(s)[:n])
	}
	return string([]rune(s)[:n-1]) + "…"
}

// writeInspect prints inspect's output for the objects found: docker's
// indented JSON array, or format once per object; then the errors of the
// names not found, as one error.
func writeInspect[T any](format string, found []T, errs []string) error {
	if format != "" {
		for _, v := range found {
			if err := executeTemplate(os.Stdout, format, v); err != nil {
				return err
			}
		}
	} else {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "    ")
		if err := enc.Encode(found); err != nil {
			return err
		}
		if _, err := os.Stdout.Write(buf.Bytes()); err != nil {
			return err
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "\n"))
	}
	return nil
}
