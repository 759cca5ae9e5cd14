package registry

import (
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	"github.com/vbauerster/cupwriter"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/berth-dev/berth/internal/image"
)

// Status is where one blob of a pull or a push stands, in docker's words.
type Status int

const (
	Queued      Status = iota // pull: the layer will be downloaded ("Pulling fs layer")
	Downloading               // bytes are arriving; Current of Total
	Verifying                 // the download is complete, its digest is being checked
	Downloaded                // the blob is in the content store ("Download complete")
	Extracting                // the caller unpacks the layer; Current of Total
	Complete                  // the caller unpacked the layer ("Pull complete")
	Exists                    // pull: the blob was already stored ("Already exists")
	Preparing                 // push: the blob will be uploaded
	Pushing                   // push: bytes are leaving; Current of Total
	Pushed                    // push: the registry holds the blob now
	LayerExists               // push: the registry held the blob already ("Layer already exists")
	Failed                    // the blob's download or upload failed
)

var statusText = [...]string{
	Queued:      "Pulling fs layer",
	Downloading: "Downloading",
	Verifying:   "Verifying Checksum",
	Downloaded:  "Download complete",
	Extracting:  "Extracting",
	Complete:    "Pull complete",
	Exists:      "Already exists",
	Preparing:   "Preparing",
	Pushing:     "Pushing",
	Pushed:      "Pushed",
	LayerExists: "Layer already exists",
	Failed:      "Failed",
}

// String is the status as docker prints it.
func (s Status) String() string {
	if s < 0 || int(s) >= len(statusText) {
		return fmt.Sprintf("Status(%d)", int(s))
	}
	return statusText[s]
}

// transient reports whether docker shows s only while it lasts: these are
// not printed as lines of their own when the output is not a terminal.
func (s Status) transient() bool {
	return s == Downloading || s == Extracting || s == Pushing
}

// Update is one change in a blob's state.
type Update struct {
	Digest  digest.Digest
	Status  Status
	Current int64 // bytes done, for Downloading, Extracting and Pushing
	Total   int64 // bytes in all; 0 when unknown
}

// ID is the blob as docker names it in progress lines: 12 hex digits.
func (u Update) ID() string { return shortDigest(u.Digest) }

// Progress receives the updates of a pull or a push. Updates for different
// blobs arrive from several goroutines at once; each blob's arrive in order.
// Update must not block for long: the transfer waits for it.
type Progress interface {
	Update(Update)
}

// ProgressFunc adapts a function to Progress.
type ProgressFunc func(Update)

// Update calls f(u).
func (f ProgressFunc) Update(u Update) { f(u) }

func report(p Progress, u Update) {
	if p != nil {
		p.Update(u)
	}
}

func shortDigest(d digest.Digest) string {
	enc := d.Encoded()
	return enc[:min(12, len(enc))]
}

// IsTerminal reports whether w is a terminal, where the Printer draws
// progress bars.
func IsTerminal(w io.Writer) bool {
	return cupwriter.New(w, false).IsTerminal()
}

// Printer shows a pull or a push as docker does: on a terminal a line per
// blob, redrawn in place with a progress bar; elsewhere a plain line per
// change of status. It implements Progress; Println adds the lines around
// (the header, "Digest: ...", "Status: ..."). Call Close when the transfer
// and whatever the caller reports after it (unpacking) are done.
type Printer struct {
	w   io.Writer
	tty bool

	mu     sync.Mutex
	p      *mpb.Progress // on a terminal, made with the first blob
	blobs  map[digest.Digest]*blobLine
	closed bool
}

type blobLine struct {
	id  string
	bar *mpb.Bar

	mu      sync.Mutex
	status  Status
	current int64
	total   int64
}

// ttyWidth is the line width when the terminal's cannot be read.
const ttyWidth = 120

// NewPrinter returns a Printer writing to w, with progress bars if tty
// (see IsTerminal).
func NewPrinter(w io.Writer, tty bool) *Printer {
	return &Printer{w: w, tty: tty, blobs: map[digest.Digest]*blobLine{}}
}

// Update records u and shows it.
func (p *Printer) Update(u Update) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	b, ok := p.blobs[u.Digest]
	if !ok {
		b = &blobLine{id: u.ID()}
		p.blobs[u.Digest] = b
		if p.tty {
			if p.p == nil {
				p.p = mpb.New(mpb.WithOutput(p.w), mpb.WithWidth(ttyWidth), mpb.ForceTTY(), mpb.WithAutoRefresh())
			}
			b.bar, _ = p.p.Add(1, b, mpb.BarFillerTrim())
		}
	}
	b.mu.Lock()
	changed := !ok || b.status != u.Status
	b.status, b.current, b.total = u.Status, u.Current, u.Total
	b.mu.Unlock()
	if !p.tty && changed && !u.Status.transient() {
		fmt.Fprintf(p.w, "%s: %s\n", b.id, u.Status)
	}
}

// Fill draws b's line: "id: Downloading [==>   ] 1.2MB/3.4MB".
func (b *blobLine) Fill(w io.Writer, stat decor.Statistics) error {
	b.mu.Lock()
	status, cur, total := b.status, b.current, b.total
	b.mu.Unlock()
	line := b.id + ": " + status.String()
	if status.transient() && total > 0 {
		line += " " + progressBar(cur, total, 50) + " " + byteCount(cur) + "/" + byteCount(total)
	}
	if stat.AvailableWidth > 0 && len(line) > stat.AvailableWidth {
		line = line[:stat.AvailableWidth]
	}
	_, err := io.WriteString(w, line)
	return err
}

// progressBar is docker's: [=====>      ].
func progressBar(cur, total int64, width int) string {
	cur = min(max(cur, 0), total)
	n := int(int64(width) * cur / total)
	var sb strings.Builder
	sb.WriteByte('[')
	switch {
	case n >= width:
		sb.WriteString(strings.Repeat("=", width))
	default:
		sb.WriteString(strings.Repeat("=", n))
		sb.WriteByte('>')
		sb.WriteString(strings.Repeat(" ", width-n-1))
	}
	sb.WriteByte(']')
	return sb.String()
}

// byteCount writes n in decimal units as docker does: 1.23MB.
func byteCount(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	f := float64(n)
	for _, s := range []string{"kB", "MB", "GB", "TB"} {
		f /= unit
		if f < unit {
			return fmt.Sprintf("%.3g%s", f, s)
		}
	}
	return fmt.Sprintf("%.3gPB", f/unit)
}

// Println prints a line: above the bars while they are drawn.
func (p *Printer) Println(a ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	line := fmt.Sprintln(a...)
	if p.p != nil && !p.closed {
		_, _ = p.p.Write([]byte(line))
		return
	}
	_, _ = io.WriteString(p.w, line)
}

// Close draws the bars a last time and stops; later updates are dropped
// and later lines printed plainly.
func (p *Printer) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	prog := p.p
	for _, b := range p.blobs {
		if b.bar != nil {
			b.bar.SetTotal(-1, true)
		}
	}
	p.p = nil
	p.mu.Unlock()
	if prog != nil {
		prog.Wait()
	}
}

// Pulling prints docker's first line of a pull: "latest: Pulling from
// library/busybox".
func (p *Printer) Pulling(ref image.Reference) {
	ref = ref.WithDefaultTag()
	id := ref.Tag
	if ref.Digest != "" {
		id = ref.Digest.String()
	}
	p.Println(id + ": Pulling from " + ref.Path)
}

// PullDone closes p and prints docker's last lines of a pull: the digest, the
// status (newer is whether anything changed locally) and the reference.
func (p *Printer) PullDone(res *PullResult, newer bool) {
	p.Close()
	p.Println("Digest: " + res.RepoDigest.String())
	if newer {
		p.Println("Status: Downloaded newer image for " + res.Reference.Familiar())
	} else {
		p.Println("Status: Image is up to date for " + res.Reference.Familiar())
	}
	p.Println(res.Reference.String())
}

// Pushing prints docker's first line of a push: "The push refers to
// repository [docker.io/library/busybox]".
func (p *Printer) Pushing(ref image.Reference) {
	p.Println("The push refers to repository [" + ref.Name() + "]")
}

// PushDone closes p and prints docker's last line of a push: "latest: digest:
// sha256:... size: 527".
func (p *Printer) PushDone(res *PushResult) {
	p.Close()
	id := res.Reference.Tag
	if id == "" {
		id = res.Manifest.Digest.String()
	}
	p.Println(fmt.Sprintf("%s: digest: %s size: %d", id, res.Manifest.Digest, res.Manifest.Size))
}
