// Command benchtime times short commands, interleaved, and prints their
// median, p90 and ratio to a reference command. bench/runtime.sh uses it to
// compare OCI runtimes; it is not part of berth.
//
//	benchtime [-n 50] [-warmup 3] [-ref crun] [-render TMPL:OUT] LABEL=COMMAND...
//
// Each COMMAND is split on spaces (no quoting). In COMMAND, TMPL and OUT,
// {i} becomes a number unique to the run and {label} the command's label.
// With -render, TMPL is copied to OUT with the same substitutions before
// each run, outside the timed part (bench/runtime.sh uses it to give every
// container its own cgroupsPath).
//
// Iteration k runs every command once, starting with command k mod len, so
// that drift (other load, cache state) spreads over all commands alike. Each
// run is timed from just before fork to the return of wait4 with the
// monotonic clock; stdin is /dev/null and output is kept only to show it if
// the command fails (then benchtime exits 1).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

type bench struct {
	label string
	argv  []string
	times []time.Duration
}

func main() {
	n := flag.Int("n", 50, "timed runs per command")
	warmup := flag.Int("warmup", 3, "untimed runs per command first")
	ref := flag.String("ref", "", "label of the command the ratio column is relative to")
	render := flag.String("render", "", "TMPL:OUT, a file rendered before each run")
	title := flag.String("title", "", "heading of the table")
	flag.Parse()

	var benches []*bench
	for _, a := range flag.Args() {
		label, cmd, ok := strings.Cut(a, "=")
		if !ok || label == "" || strings.TrimSpace(cmd) == "" {
			fatalf("argument %q is not LABEL=COMMAND", a)
		}
		benches = append(benches, &bench{label: label, argv: strings.Fields(cmd)})
	}
	if len(benches) == 0 {
		fatalf("nothing to run")
	}
	var tmpl []byte
	var tmplOut string
	if *render != "" {
		src, out, ok := strings.Cut(*render, ":")
		if !ok {
			fatalf("-render wants TMPL:OUT")
		}
		var err error
		if tmpl, err = os.ReadFile(src); err != nil {
			fatalf("%v", err)
		}
		tmplOut = out
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		fatalf("%v", err)
	}
	// A file, not a pipe: no copying goroutine, and no waiting for a
	// process that a runtime left holding the write end.
	out, err := os.CreateTemp("", "benchtime-out-")
	if err != nil {
		fatalf("%v", err)
	}
	os.Remove(out.Name())

	seq := 0
	for k := 0; k < *warmup+*n; k++ {
		for j := range benches {
			b := benches[(k+j)%len(benches)]
			seq++
			sub := strings.NewReplacer("{i}", strconv.Itoa(seq), "{label}", b.label)
			if tmpl != nil {
				if err := os.WriteFile(sub.Replace(tmplOut), []byte(sub.Replace(string(tmpl))), 0o644); err != nil {
					fatalf("render: %v", err)
				}
			}
			argv := make([]string, len(b.argv))
			for i, s := range b.argv {
				argv[i] = sub.Replace(s)
			}
			d := runOnce(argv, devnull, out)
			if k >= *warmup {
				b.times = append(b.times, d)
			}
		}
	}

	var refMedian time.Duration
	for _, b := range benches {
		slices.Sort(b.times)
		if b.label == *ref {
			refMedian = quantile(b.times, 0.5)
		}
	}
	if *title != "" {
		fmt.Println(*title)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "%s\truns\tmedian\tp90\tmin\tmax\tmedian / %s\t\n", "", *ref)
	for _, b := range benches {
		med := quantile(b.times, 0.5)
		ratio := "-"
		if refMedian > 0 {
			ratio = fmt.Sprintf("%.2f", float64(med)/float64(refMedian))
		}
		fmt.Fprintf(w, "%s\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%s\t\n", b.label, len(b.times),
			ms(med), ms(quantile(b.times, 0.9)), ms(b.times[0]), ms(b.times[len(b.times)-1]), ratio)
	}
	w.Flush()
}

func runOnce(argv []string, stdin, out *os.File) time.Duration {
	if err := out.Truncate(0); err != nil {
		fatalf("%v", err)
	}
	if _, err := out.Seek(0, 0); err != nil {
		fatalf("%v", err)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, out, out
	t0 := time.Now()
	err := cmd.Run()
	d := time.Since(t0)
	if err != nil {
		text, _ := os.ReadFile(fmt.Sprintf("/proc/self/fd/%d", out.Fd()))
		fatalf("%s: %v\n%s", strings.Join(argv, " "), err, text)
	}
	return d
}

// quantile is the nearest-rank q-quantile of sorted, interpolating the
// median of an even count.
func quantile(sorted []time.Duration, q float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if q == 0.5 && n%2 == 0 {
		return (sorted[n/2-1] + sorted[n/2]) / 2
	}
	i := int(q*float64(n)+0.999999) - 1
	return sorted[min(max(i, 0), n-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fatalf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "benchtime: "+format+"\n", a...)
	os.Exit(1)
}
