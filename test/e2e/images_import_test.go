package e2e

import (
	"encoding/json"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestImageImport imports a busybox root filesystem and takes the image
// through what users do with one: list, inspect, tag, history, rmi.
func TestImageImport(t *testing.T) {
	e := newImageEnv(t)
	tarPath := busyboxTar(t)

	id := strings.TrimSpace(e.must("import",
		"--change", `CMD ["sh", "-c", "echo hi"]`,
		"-c", "ENV FOO=bar", "-c", "WORKDIR /srv", "-c", "USER nobody",
		"-c", "EXPOSE 8080", "-c", "LABEL org.test=yes", "-c", "VOLUME /data", "-c", "STOPSIGNAL SIGINT",
		"-m", "first import", tarPath, "busybox-test:v1"))
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(id) {
		t.Fatalf("import printed %q, want the image ID", id)
	}
	short := strings.TrimPrefix(id, "sha256:")[:12]

	// From stdin, untagged.
	f, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res := e.berthStdin(f, "import", "-")
	if res.code != 0 {
		t.Fatalf("import -: %+v", res)
	}
	dangling := strings.TrimSpace(res.stdout)

	out := e.must("images")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("images: want a header and 2 rows, got:\n%s", out)
	}
	if !regexp.MustCompile(`^REPOSITORY +TAG       IMAGE ID       CREATED +SIZE$`).MatchString(lines[0]) {
		t.Errorf("images header: %q", lines[0])
	}
	row := regexp.MustCompile(`^busybox-test +v1 +` + short + ` +(Less than a second|\d+ seconds?) ago +\d+(\.\d+)?MB$`)
	if !hasLine(lines, row) {
		t.Errorf("images: no row for busybox-test:v1 like %s:\n%s", row, out)
	}
	if !hasLine(lines, regexp.MustCompile(`^<none> +<none> +`+strings.TrimPrefix(dangling, "sha256:")[:12]+` `)) {
		t.Errorf("images: no <none> row for the untagged import:\n%s", out)
	}

	// Quiet, filters, templates, JSON.
	if got := e.must("images", "-q", "--filter", "dangling=false"); strings.TrimSpace(got) != short {
		t.Errorf("images -q -f dangling=false: %q", got)
	}
	if got := e.must("images", "--no-trunc", "-q", "-f", "dangling=true"); strings.TrimSpace(got) != dangling {
		t.Errorf("images -q -f dangling=true --no-trunc: %q", got)
	}
	if got := e.must("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", "busybox-test"); strings.TrimSpace(got) != "busybox-test:v1 "+short {
		t.Errorf("images --format: %q", got)
	}
	if got := e.must("images", "-f", "label=org.test=yes", "--format", "{{.Repository}}"); strings.TrimSpace(got) != "busybox-test" {
		t.Errorf("images -f label: %q", got)
	}
	if got := e.must("images", "-f", "reference=busy*", "--format", "table {{.Repository}}\t{{.Tag}}"); got != "REPOSITORY     TAG\nbusybox-test   v1\n" {
		t.Errorf("images --format table: %q", got)
	}
	var row0 map[string]string
	if err := json.Unmarshal([]byte(strings.Split(e.must("images", "--format", "json", "busybox-test:v1"), "\n")[0]), &row0); err != nil || row0["ID"] != short || row0["Tag"] != "v1" {
		t.Errorf("images --format json: %v %v", row0, err)
	}
	if got := e.must("images", "-q", "-f", "since=busybox-test:v1"); strings.TrimSpace(got) != strings.TrimPrefix(dangling, "sha256:")[:12] {
		t.Errorf("images -f since: %q", got)
	}
	if got := e.must("images", "-q", "-f", "before="+dangling); strings.TrimSpace(got) != short {
		t.Errorf("images -f before: %q", got)
	}
	e.fails("invalid filter 'bogus'", "images", "-f", "bogus=1")

	// inspect: docker's JSON.
	var insp []map[string]any
	if err := json.Unmarshal([]byte(e.must("image", "inspect", "busybox-test:v1")), &insp); err != nil || len(insp) != 1 {
		t.Fatalf("image inspect: %v", err)
	}
	img := insp[0]
	cfg, _ := img["Config"].(map[string]any)
	checks := map[string]any{
		"Id": id, "Comment": "first import", "Os": "linux",
	}
	for k, want := range checks {
		if img[k] != want {
			t.Errorf("inspect %s = %v, want %v", k, img[k], want)
		}
	}
	if got, _ := json.Marshal(cfg["Cmd"]); string(got) != `["sh","-c","echo hi"]` {
		t.Errorf("inspect Config.Cmd = %s", got)
	}
	if cfg["WorkingDir"] != "/srv" || cfg["User"] != "nobody" || cfg["StopSignal"] != "SIGINT" {
		t.Errorf("inspect Config: %v", cfg)
	}
	if env, _ := json.Marshal(cfg["Env"]); !strings.Contains(string(env), "FOO=bar") {
		t.Errorf("inspect Config.Env = %s", env)
	}
	if _, ok := cfg["ExposedPorts"].(map[string]any)["8080/tcp"]; !ok {
		t.Errorf("inspect Config.ExposedPorts = %v", cfg["ExposedPorts"])
	}
	rootfs, _ := img["RootFS"].(map[string]any)
	if rootfs["Type"] != "layers" || len(rootfs["Layers"].([]any)) != 1 {
		t.Errorf("inspect RootFS = %v", rootfs)
	}
	if gd, _ := img["GraphDriver"].(map[string]any); gd["Name"] == "" || gd["Name"] == nil {
		t.Errorf("inspect GraphDriver = %v", gd)
	}
	if got := e.must("inspect", "--format", "{{.Id}} {{index .RepoTags 0}} {{.Config.WorkingDir}}", short); strings.TrimSpace(got) != id+" busybox-test:v1 /srv" {
		t.Errorf("inspect --format: %q", got)
	}
	res = e.fails("No such image: nothere", "image", "inspect", "nothere")
	if strings.TrimSpace(res.stdout) != "[]" {
		t.Errorf("image inspect of a missing image printed %q, want []", res.stdout)
	}
	e.fails("No such object: nothere", "inspect", "nothere")

	// tag, then rmi of one tag keeps the image.
	e.must("tag", "busybox-test:v1", "127.0.0.1:5000/team/app:2")
	e.must("image", "tag", short, "busybox-test")
	e.fails("No such image: missing:latest", "tag", "missing", "x:1")
	if got := e.must("images", "--format", "{{.Repository}}:{{.Tag}}", "-f", "dangling=false"); strings.Join(strings.Fields(got), " ") != "127.0.0.1:5000/team/app:2 busybox-test:latest busybox-test:v1" {
		t.Errorf("after tag: %q", got)
	}

	// history.
	hist := e.must("history", "busybox-test:v1")
	hl := strings.Split(strings.TrimSpace(hist), "\n")
	if len(hl) != 2 || !strings.HasPrefix(hl[0], "IMAGE          CREATED") || !strings.Contains(hl[0], "CREATED BY") ||
		!strings.HasPrefix(hl[1], short+"   ") || !strings.HasSuffix(hl[1], "first import") {
		t.Errorf("history:\n%s", hist)
	}
	if got := e.must("history", "-q", "--no-trunc", "busybox-test:v1"); strings.TrimSpace(got) != id {
		t.Errorf("history -q --no-trunc: %q", got)
	}
	if got := e.must("history", "-H=false", "--format", "{{.Size}}", "busybox-test:v1"); !regexp.MustCompile(`^\d+\n$`).MatchString(got) {
		t.Errorf("history -H=false: %q", got)
	}

	// rmi: a tag at a time, then the image.
	if got := e.must("rmi", "busybox-test"); strings.TrimSpace(got) != "Untagged: busybox-test:latest" {
		t.Errorf("rmi of one tag: %q", got)
	}
	e.fails("No such image: busybox-test:latest", "rmi", "busybox-test")
	res = e.berth("rmi", short)
	if res.code != 1 || !strings.Contains(res.stderr, "conflict: unable to delete "+short+" (must be forced) - image is referenced in multiple repositories") {
		t.Errorf("rmi of an image in two repositories: %+v", res)
	}
	out = e.must("rmi", "-f", short)
	for _, want := range []string{"Untagged: busybox-test:v1", "Untagged: 127.0.0.1:5000/team/app:2", "Deleted: " + id} {
		if !strings.Contains(out, want) {
			t.Errorf("rmi -f: %q lacks %q", out, want)
		}
	}

	// prune removes the dangling import; then nothing is left anywhere.
	out = e.must("image", "prune", "-f")
	if !strings.Contains(out, "deleted: "+dangling) || !strings.Contains(out, "Total reclaimed space: ") {
		t.Errorf("image prune -f: %q", out)
	}
	if out := e.must("images", "-q"); out != "" {
		t.Errorf("images after rmi and prune: %q", out)
	}
	if recs, dirs := e.storageLayers(driverOf(t, e)); recs != 0 || dirs != 0 {
		t.Errorf("after removing every image: %d layer records and %d driver dirs remain", recs, dirs)
	}
	if blobs, _ := os.ReadDir(e.root + "/content/blobs/sha256"); len(blobs) != 0 {
		t.Errorf("after removing every image: %d blobs remain", len(blobs))
	}
}

func hasLine(lines []string, re *regexp.Regexp) bool {
	for _, l := range lines {
		if re.MatchString(l) {
			return true
		}
	}
	return false
}

// driverOf is the storage driver berth picked for the env's root.
func driverOf(t *testing.T, e *imageEnv) string {
	t.Helper()
	return strings.TrimSpace(e.must("info", "--format", "{{.Driver}}"))
}
