package cli

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
)

// runVolumeCmd runs `berth volume args...` under root with stdin, and
// returns its stdout and error.
func runVolumeCmd(t *testing.T, root, stdin string, args ...string) (string, error) {
	t.Helper()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(inW, stdin); err != nil {
		t.Fatal(err)
	}
	inW.Close()
	oldOut, oldIn := os.Stdout, os.Stdin
	os.Stdout, os.Stdin = outW, inR
	done := make(chan string)
	go func() {
		data, _ := io.ReadAll(outR)
		done <- string(data)
	}()
	cmd := volumeCmd(&globalOptions{root: root, runRoot: root + "-run"})
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetArgs(args)
	runErr := cmd.Execute()
	os.Stdout, os.Stdin = oldOut, oldIn
	outW.Close()
	inR.Close()
	return <-done, runErr
}

func TestVolumeCommands(t *testing.T) {
	root := t.TempDir()
	out, err := runVolumeCmd(t, root, "", "create", "--label", "a=b", "-o", "type=tmpfs", "-o", "device=tmpfs", "data")
	if err != nil || out != "data\n" {
		t.Fatalf("create = %q, %v", out, err)
	}
	out, err = runVolumeCmd(t, root, "", "create")
	anon := strings.TrimSpace(out)
	if err != nil || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(anon) {
		t.Fatalf("create anonymous = %q, %v", out, err)
	}
	if _, err := runVolumeCmd(t, root, "", "create", "-d", "nfs", "x1"); err == nil || err.Error() != `create x1: error looking up volume plugin nfs: plugin "nfs" not found` {
		t.Errorf("create -d nfs: %v", err)
	}
	if _, err := runVolumeCmd(t, root, "", "create", "--name", "a1", "b1"); err == nil || !strings.HasPrefix(err.Error(), "conflicting options") {
		t.Errorf("create --name a1 b1: %v", err)
	}

	out, err = runVolumeCmd(t, root, "", "ls")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if err != nil || len(lines) != 3 || lines[0] != "DRIVER    VOLUME NAME" || !strings.Contains(out, "local     data\n") || !strings.Contains(out, "local     "+anon+"\n") {
		t.Errorf("ls = %q, %v", out, err)
	}
	out, err = runVolumeCmd(t, root, "", "ls", "-q", "--filter", "label=a=b")
	if err != nil || out != "data\n" {
		t.Errorf("ls -q --filter = %q, %v", out, err)
	}
	out, err = runVolumeCmd(t, root, "", "list", "--format", "{{.Name}}|{{.Labels}}|{{.Scope}}", "-f", "name=dat")
	if err != nil || out != "data|a=b|local\n" {
		t.Errorf("ls --format = %q, %v", out, err)
	}
	if _, err := runVolumeCmd(t, root, "", "ls", "--filter", "bogus=1"); err == nil || err.Error() != "invalid filter 'bogus'" {
		t.Errorf("ls bad filter: %v", err)
	}

	out, err = runVolumeCmd(t, root, "", "inspect", "data")
	var vols []map[string]any
	if err != nil || json.Unmarshal([]byte(out), &vols) != nil || len(vols) != 1 {
		t.Fatalf("inspect = %q, %v", out, err)
	}
	if v := vols[0]; v["Name"] != "data" || v["Driver"] != "local" || v["Scope"] != "local" || !strings.HasSuffix(v["Mountpoint"].(string), "/volumes/data/_data") {
		t.Errorf("inspect = %v", v)
	}
	if !strings.HasPrefix(out, "[\n    {\n        \"CreatedAt\": ") {
		t.Errorf("inspect layout: %q", out)
	}
	out, err = runVolumeCmd(t, root, "", "inspect", "--format", "{{.Name}} {{.Options.type}}", "data", "nope")
	if out != "data tmpfs\n" || err == nil || err.Error() != "No such volume: nope" {
		t.Errorf("inspect --format = %q, %v", out, err)
	}
	out, err = runVolumeCmd(t, root, "", "inspect", "nope")
	if out != "[]\n" || err == nil {
		t.Errorf("inspect missing = %q, %v", out, err)
	}

	// Prune: declined, then anonymous only, then all.
	out, err = runVolumeCmd(t, root, "n\n", "prune")
	if err != nil || out != "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue? [y/N] " {
		t.Errorf("prune declined = %q, %v", out, err)
	}
	out, err = runVolumeCmd(t, root, "y\n", "prune")
	if err != nil || !strings.HasSuffix(out, "Deleted Volumes:\n"+anon+"\n\nTotal reclaimed space: 0B\n") {
		t.Errorf("prune = %q, %v", out, err)
	}
	out, err = runVolumeCmd(t, root, "", "prune", "-f")
	if err != nil || out != "Total reclaimed space: 0B\n" {
		t.Errorf("prune again = %q, %v", out, err)
	}
	if _, err := runVolumeCmd(t, root, "", "prune", "-a", "-f", "--filter", "all=1"); err == nil || !strings.HasPrefix(err.Error(), "conflicting options") {
		t.Errorf("prune -a --filter all: %v", err)
	}

	out, err = runVolumeCmd(t, root, "", "rm", "data", "nope")
	var ee *exitError
	if out != "data\n" || !errors.As(err, &ee) || ee.code != 1 {
		t.Errorf("rm = %q, %v", out, err)
	}
	out, err = runVolumeCmd(t, root, "", "rm", "-f", "nope")
	if out != "nope\n" || err != nil {
		t.Errorf("rm -f missing = %q, %v", out, err)
	}
	out, _ = runVolumeCmd(t, root, "", "ls", "-q")
	if out != "" {
		t.Errorf("left: %q", out)
	}
}
