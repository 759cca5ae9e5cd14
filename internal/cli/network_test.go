package cli

import (
	"encoding/json"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
)

// runNetworkCmd runs `berth network args...` under root with stdin and
// returns its stdout and error.
func runNetworkCmd(t *testing.T, root, stdin string, args ...string) (string, error) {
	t.Helper()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(inW, stdin)
	inW.Close()
	oldOut, oldIn := os.Stdout, os.Stdin
	os.Stdout, os.Stdin = outW, inR
	done := make(chan string)
	go func() {
		data, _ := io.ReadAll(outR)
		done <- string(data)
	}()
	cmd := networkCmd(&globalOptions{root: root, runRoot: root + "-run"})
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	cmd.SetArgs(args)
	runErr := cmd.Execute()
	os.Stdout, os.Stdin = oldOut, oldIn
	outW.Close()
	inR.Close()
	return <-done, runErr
}

func TestNetworkCommands(t *testing.T) {
	// Host object names of this test's own; these commands make no bridge
	// or rule (that happens on the first attach).
	t.Setenv("BERTH_BRIDGE", "btclitest0")
	t.Setenv("BERTH_NFT_TABLE", "berth_clitest")
	t.Setenv("BERTH_SUBNET_POOL", "10.199.40.0/24,10.199.41.0/24")
	root := t.TempDir()

	out, err := runNetworkCmd(t, root, "", "create", "--subnet", "10.199.42.0/24", "--label", "tier=front", "front")
	id := strings.TrimSpace(out)
	if err != nil || !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(id) {
		t.Fatalf("create = %q, %v", out, err)
	}
	if _, err := runNetworkCmd(t, root, "", "create", "--subnet", "10.199.42.128/25", "other"); err == nil ||
		err.Error() != "subnet 10.199.42.128/25 overlaps with network front" {
		t.Fatalf("overlapping create: %v", err)
	}
	if _, err := runNetworkCmd(t, root, "", "create", "front"); err == nil || err.Error() != "network with name front already exists" {
		t.Fatalf("duplicate create: %v", err)
	}
	if _, err := runNetworkCmd(t, root, "", "create", "--internal", "back"); err != nil {
		t.Fatal(err)
	}

	out, err = runNetworkCmd(t, root, "", "ls")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 6 || !regexp.MustCompile(`^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE$`).MatchString(lines[0]) {
		t.Fatalf("ls:\n%s", out)
	}
	for i, want := range []string{"back", "bridge", "front", "host", "none"} {
		if f := strings.Fields(lines[i+1]); len(f) != 4 || f[1] != want || len(f[0]) != 12 || f[3] != "local" {
			t.Fatalf("ls line %d: %q", i+1, lines[i+1])
		}
	}
	out, _ = runNetworkCmd(t, root, "", "ls", "-q", "--filter", "type=custom", "--no-trunc")
	if strings.Count(out, "\n") != 2 || !strings.Contains(out, id) {
		t.Fatalf("ls -q custom: %q", out)
	}
	out, _ = runNetworkCmd(t, root, "", "ls", "--format", "{{.Name}} {{.Driver}}", "--filter", "label=tier=front")
	if out != "front bridge\n" {
		t.Fatalf("ls --format: %q", out)
	}

	out, err = runNetworkCmd(t, root, "", "inspect", "front", "bridge")
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got) != 2 {
		t.Fatalf("inspect: %v\n%s", err, out)
	}
	for _, k := range []string{"Name", "Id", "Created", "Scope", "Driver", "EnableIPv4", "IPAM", "Internal", "Containers", "Options", "Labels"} {
		if _, ok := got[0][k]; !ok {
			t.Errorf("inspect lacks %s", k)
		}
	}
	if !strings.Contains(out, `"Subnet": "10.199.42.0/24"`) || !strings.Contains(out, `"Gateway": "10.199.42.1"`) ||
		!strings.Contains(out, `"com.docker.network.bridge.name": "btclitest0"`) || !strings.Contains(out, `"Subnet": "10.199.40.0/24"`) {
		t.Fatalf("inspect:\n%s", out)
	}
	out, _ = runNetworkCmd(t, root, "", "inspect", "-f", "{{.Name}} {{.Internal}}", "back")
	if out != "back true\n" {
		t.Fatalf("inspect -f: %q", out)
	}
	if _, err := runNetworkCmd(t, root, "", "inspect", "nope"); err == nil || err.Error() != "network nope not found" {
		t.Fatalf("inspect nope: %v", err)
	}

	if _, err := runNetworkCmd(t, root, "", "rm", "bridge"); err == nil {
		t.Fatal("rm bridge succeeded")
	}
	out, err = runNetworkCmd(t, root, "", "rm", "front")
	if err != nil || out != "front\n" {
		t.Fatalf("rm = %q %v", out, err)
	}
	out, err = runNetworkCmd(t, root, "", "prune", "-f")
	if err != nil || out != "Deleted Networks:\nback\n\n" {
		t.Fatalf("prune = %q %v", out, err)
	}
	if out, _ := runNetworkCmd(t, root, "", "prune", "-f"); out != "" {
		t.Fatalf("prune with nothing to do = %q", out)
	}
	if _, err := runNetworkCmd(t, root, "", "connect", "bridge", "c1"); err == nil || !strings.Contains(err.Error(), "not supported yet") {
		t.Fatalf("connect: %v", err)
	}
}
