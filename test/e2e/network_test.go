package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// freePort is a TCP port on 127.0.0.1 nobody listens on now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// httpGet fetches url from the host, retrying while the server starts.
func httpGet(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	var last error
	for i := 0; i < 50; i++ {
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(body)
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("GET %s: %v", url, last)
	return ""
}

// The default bridge: an address, a published port on 127.0.0.1, other
// containers reach it by address; none has only lo.
func TestNetworkBridgeAndPorts(t *testing.T) {
	e := newEngineEnv(t)
	port := freePort(t)
	e.must("run", "-d", "--name", "web", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "bb",
		"sh", "-c", "mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 80 -h /www")
	if got := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", port)); got != "hello-from-web\n" {
		t.Errorf("published port: %q", got)
	}
	if got := strings.TrimSpace(e.must("port", "web")); got != fmt.Sprintf("80/tcp -> 127.0.0.1:%d", port) {
		t.Errorf("port: %q", got)
	}
	ip := e.inspect("web", "{{.NetworkSettings.Networks.bridge.IPAddress}}")
	if !strings.HasPrefix(ip, strings.TrimSuffix(e.subnet, "0/24")) {
		t.Fatalf("address %q is not in the env's subnet %s", ip, e.subnet)
	}
	if got := e.run("bb", "wget", "-qO-", "http://"+ip+"/"); got != "hello-from-web\n" {
		t.Errorf("container to container: %q", got)
	}
	if got := e.run("bb", "sh", "-c", "ls /sys/class/net | sort | tr '\\n' ' '"); got != "eth0 lo " {
		t.Errorf("bridge container's links: %q", got)
	}
	if got := e.run("--network", "none", "bb", "sh", "-c", "ls /sys/class/net | tr '\\n' ' '"); got != "lo " {
		t.Errorf("--network none links: %q", got)
	}
	// A taken host port: a clear error, nothing half-made.
	res := e.berth("run", "-d", "--name", "clash", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "bb", "sleep", "100")
	if res.code == 0 || !strings.Contains(strings.ToLower(res.stderr), "port") {
		t.Errorf("taken port: exit %d: %s", res.code, res.stderr)
	}
	if got := e.inspect("clash", "{{.State.Status}}"); got == "running" {
		t.Errorf("the clashing container runs")
	}
	e.must("rm", "-f", "web", "clash")
	if _, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 500*time.Millisecond); err == nil {
		t.Errorf("port %d still answers after rm", port)
	}
	if out, _ := exec.Command("nft", "list", "table", "ip", e.table).Output(); strings.Contains(string(out), fmt.Sprint(port)) {
		t.Errorf("a rule for port %d is left:\n%s", port, out)
	}
}

// A user-defined network: containers reach each other by name and alias.
// (No wget -T: busybox-static's wget crashes with it.)
func TestNetworkUserDefinedDNS(t *testing.T) {
	e := newEngineEnv(t)
	e.must("network", "create", "--subnet", strings.Replace(e.subnet, "10.24", "10.23", 1), "appnet")
	e.must("run", "-d", "--name", "api", "--network", "appnet", "--network-alias", "backend", "bb",
		"sh", "-c", "mkdir -p /www && echo api-here > /www/index.html && exec httpd -f -p 80 -h /www")
	for _, name := range []string{"api", "backend"} {
		var got string
		for i := 0; i < 30; i++ {
			got = e.berth("run", "--rm", "--network", "appnet", "bb", "wget", "-qO-", "http://"+name+"/").stdout
			if got == "api-here\n" {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if got != "api-here\n" {
			t.Errorf("wget http://%s/ on appnet: %q", name, got)
		}
	}
	if !strings.Contains(e.must("network", "ls"), "appnet") {
		t.Errorf("network ls lacks appnet")
	}
	// network connect: a container of the default bridge joins appnet and
	// is known there by name; disconnect takes it off.
	e.must("run", "-d", "--name", "late", "bb", "sh", "-c",
		"mkdir -p /www && echo late-here > /www/index.html && exec httpd -f -p 80 -h /www")
	e.must("network", "connect", "appnet", "late")
	if got := e.run("--network", "appnet", "bb", "wget", "-qO-", "http://late/"); got != "late-here\n" {
		t.Errorf("wget http://late/ after connect: %q", got)
	}
	if got := e.must("exec", "late", "sh", "-c", "ls /sys/class/net | sort | tr '\\n' ' '"); got != "eth0 eth1 lo " {
		t.Errorf("links after connect: %q", got)
	}
	e.must("network", "disconnect", "appnet", "late")
	if got := e.must("exec", "late", "sh", "-c", "ls /sys/class/net | sort | tr '\\n' ' '"); got != "eth0 lo " {
		t.Errorf("links after disconnect: %q", got)
	}
	e.must("rm", "-f", "late")
	res := e.berth("network", "rm", "appnet")
	if res.code == 0 {
		t.Errorf("rm of a network in use succeeded")
	}
	e.must("rm", "-f", "api")
	e.must("network", "rm", "appnet")
	res = e.berth("run", "--rm", "--network", "nosuchnet", "bb", "true")
	if res.code != 125 || !strings.Contains(res.stderr, "nosuchnet") {
		t.Errorf("unknown network: exit %d: %s", res.code, res.stderr)
	}
	res = e.berth("network", "create", "--subnet", "not-a-subnet", "bad")
	if res.code == 0 {
		t.Errorf("a bad subnet was accepted")
	}
}

// Thirty containers started at once get thirty distinct addresses.
func TestNetworkParallelAddresses(t *testing.T) {
	e := newEngineEnv(t)
	const n = 30
	ips := make([]string, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := e.berth("run", "-d", "--name", fmt.Sprintf("par%d", i), "bb", "sleep", "100")
			if res.code != 0 {
				t.Errorf("run %d: %s", i, res.stderr)
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := 0; i < n; i++ {
		ips[i] = e.inspect(fmt.Sprintf("par%d", i), "{{.NetworkSettings.Networks.bridge.IPAddress}}")
		if seen[ips[i]] {
			t.Errorf("address %s given twice", ips[i])
		}
		seen[ips[i]] = true
	}
	args := []string{"rm", "-f"}
	for i := 0; i < n; i++ {
		args = append(args, fmt.Sprintf("par%d", i))
	}
	e.must(args...)
}

// A crash (monitor and container killed) leaves rules and leases that the
// next monitor drops when it starts; rm leaves no veth.
func TestNetworkCrashReconcile(t *testing.T) {
	e := newEngineEnv(t)
	port := freePort(t)
	e.must("run", "-d", "--name", "victim", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "bb", "sleep", "1000")
	pid := e.inspect("victim", "{{.State.Pid}}")
	e.stopMonitor()
	if err := exec.Command("kill", "-9", pid).Run(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return e.inspect("victim", "{{.State.Status}}") == "exited" })
	// The next container starts a new monitor, which reconciles.
	e.run("bb", "true")
	out, _ := exec.Command("nft", "list", "table", "ip", e.table).Output()
	if strings.Contains(string(out), fmt.Sprint(port)) {
		t.Errorf("the crashed container's port rule is left:\n%s", out)
	}
	// Its address is free again: the network lists no endpoint of it.
	id := e.inspect("victim", "{{.Id}}")
	if out := e.must("network", "inspect", "bridge"); strings.Contains(out, id) {
		t.Errorf("the crashed container still holds an endpoint:\n%s", out)
	}
	e.must("rm", "victim")
}

// -P publishes the image's EXPOSEd ports on random host ports.
func TestNetworkPublishAll(t *testing.T) {
	e := newEngineEnv(t)
	e.must("import", "--change", "EXPOSE 80", busyboxTar(t), "web-image")
	e.must("run", "-d", "--name", "pall", "-P", "web-image",
		"sh", "-c", "mkdir -p /www && echo published-all > /www/index.html && exec httpd -f -p 80 -h /www")
	out := strings.TrimSpace(e.must("port", "pall", "80"))
	_, port, ok := strings.Cut(out, ":")
	if !ok || port == "" || port == "0" {
		t.Fatalf("port pall 80: %q", out)
	}
	if got := httpGet(t, "http://127.0.0.1:"+port+"/"); got != "published-all\n" {
		t.Errorf("GET on the random port %s: %q", port, got)
	}
	e.must("rm", "-f", "pall")
}
