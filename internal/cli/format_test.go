package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"

	"github.com/berth-dev/berth/internal/engine"
)

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 512: "512B", 1000: "1kB", 4_261_000: "4.26MB", 128_000_000: "128MB", 1_234_567_890: "1.23GB"} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
	if got := humanSize4(4_261_234); got != "4.261MB" {
		t.Errorf("humanSize4 = %q", got)
	}
	if got := bytesSize(25_272_000_000); got != "23.54GiB" {
		t.Errorf("bytesSize = %q", got)
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "Less than a second", time.Second: "1 second", 30 * time.Second: "30 seconds",
		90 * time.Second: "About a minute", 10 * time.Minute: "10 minutes", 50 * time.Minute: "50 minutes",
		time.Hour: "About an hour", 5 * time.Hour: "5 hours", 72 * time.Hour: "3 days",
		21 * 24 * time.Hour: "3 weeks", 90 * 24 * time.Hour: "3 months", 800 * 24 * time.Hour: "2 years",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestImagesTable(t *testing.T) {
	id := digest.FromString("image")
	d := digest.FromString("manifest")
	imgs := []engine.ImageSummary{
		{ID: id, RepoTags: []string{"busybox:latest", "busybox:1.36", "localhost:5000/bb:v1"},
			RepoDigests: []string{"busybox@" + d.String()}, Created: time.Now().Add(-90 * time.Second), Size: 4_261_000},
		{ID: digest.FromString("dangling"), Created: time.Now().Add(-3 * time.Hour), Size: 512},
	}
	var buf bytes.Buffer
	out, err := newRows(&buf, "", imagesTable, imagesHeader())
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		for _, r := range imageRows(img, false, true) {
			if err := out.add(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := out.flush(); err != nil {
		t.Fatal(err)
	}
	short := id.Encoded()[:12]
	dshort := digest.FromString("dangling").Encoded()[:12]
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	expect := []string{
		"REPOSITORY          TAG       IMAGE ID       CREATED              SIZE",
		"busybox             latest    " + short + "   About a minute ago   4.26MB",
		"busybox             1.36      " + short + "   About a minute ago   4.26MB",
		"localhost:5000/bb   v1        " + short + "   About a minute ago   4.26MB",
		"<none>              <none>    " + dshort + "   3 hours ago          512B",
	}
	if strings.Join(lines, "\n") != strings.Join(expect, "\n") {
		t.Errorf("images table:\n%s\nwant:\n%s", buf.String(), strings.Join(expect, "\n"))
	}

	rows := imageRows(imgs[0], true, false)
	if len(rows) != 3 || rows[0]["Digest"] != d.String() || rows[0]["ID"] != id.String() || rows[2]["Digest"] != "<none>" {
		t.Errorf("rows with digests: %v", rows)
	}
}

func TestTemplates(t *testing.T) {
	var buf bytes.Buffer
	type inspect struct {
		ID     string `json:"Id"`
		Config struct{ Cmd []string }
		Size   int64
	}
	v := inspect{ID: "sha256:x", Size: 2025400}
	v.Config.Cmd = []string{"sh", "-c"}
	for format, want := range map[string]string{
		"{{.ID}}":                    "sha256:x",
		"{{.Id}} {{.Size}}":          "sha256:x 2025400",
		"{{json .Config.Cmd}}":       `["sh","-c"]`,
		"{{join .Config.Cmd \",\"}}": "sh,-c",
		"{{upper .ID}}\\t{{.Size}}":  "SHA256:X\t2025400",
		"{{truncate .ID 4}}":         "sha…",
	} {
		buf.Reset()
		if err := executeTemplate(&buf, format, v); err != nil {
			t.Errorf("%s: %v", format, err)
			continue
		}
		if got := strings.TrimSuffix(buf.String(), "\n"); got != want {
			t.Errorf("%s: %q, want %q", format, got, want)
		}
	}
	// As docker's: a field that is nowhere reads "<no value>".
	buf.Reset()
	if err := executeTemplate(&buf, "{{.Nope}}", v); err != nil || buf.String() != "<no value>\n" {
		t.Errorf("a template naming no field: %q, %v", buf.String(), err)
	}
	if err := executeTemplate(&buf, "{{.Nope", v); err == nil {
		t.Error("a broken template parsed")
	}
}
