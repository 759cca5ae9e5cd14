package cli

import (
	"encoding/json"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/pflag"
)

// parseRun parses a `run` command line (flags, then IMAGE [COMMAND] [ARG...]).
func parseRun(t *testing.T, args ...string) (*createRequest, error) {
	t.Helper()
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := addRunFlags(fs)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return f.parse(fs, fs.Args())
}

func mustParseRun(t *testing.T, args ...string) *createRequest {
	t.Helper()
	req, err := parseRun(t, args...)
	if err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return req
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not contain %q", err, want)
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunFlagsDefaults(t *testing.T) {
	req := mustParseRun(t, "alpine")
	c, hc := req.Config, req.HostConfig
	if req.Image != "alpine" || c.Image != "alpine" || c.Cmd != nil || c.Entrypoint != nil {
		t.Errorf("image/cmd: %q %q %q %q", req.Image, c.Image, c.Cmd, c.Entrypoint)
	}
	if !c.AttachStdout || !c.AttachStderr || c.AttachStdin || c.OpenStdin || c.StdinOnce || c.Tty {
		t.Errorf("attach defaults: %+v", c)
	}
	if req.Pull != "missing" || !req.SigProxy || req.Detach || req.Quiet {
		t.Errorf("client defaults: %+v", req)
	}
	if hc.NetworkMode != "default" || req.Networks != nil || req.Aliases != nil {
		t.Errorf("network defaults: %q %q %q", hc.NetworkMode, req.Networks, req.Aliases)
	}
	if hc.RestartPolicy != (container.RestartPolicy{Name: "no"}) {
		t.Errorf("restart default: %+v", hc.RestartPolicy)
	}
	if *hc.MemorySwappiness != -1 || *hc.PidsLimit != 0 || *hc.OomKillDisable {
		t.Errorf("resource pointers: %d %d %v", *hc.MemorySwappiness, *hc.PidsLimit, *hc.OomKillDisable)
	}
	if c.StopTimeout != nil || hc.Init != nil || c.Healthcheck != nil {
		t.Errorf("unset pointers must stay nil: %v %v %v", c.StopTimeout, hc.Init, c.Healthcheck)
	}
	// docker sends empty collections, not null, for these.
	if hc.DNSSearch == nil || hc.DNSOptions == nil || c.Labels == nil || c.Volumes == nil ||
		hc.Ulimits == nil || hc.Devices == nil || hc.Tmpfs == nil || hc.LogConfig.Config == nil {
		t.Errorf("empty collections must not be nil: %+v", hc)
	}
	if hc.DNS != nil || c.Env != nil || hc.Binds != nil {
		t.Errorf("unset lists must be nil: %v %v %v", hc.DNS, c.Env, hc.Binds)
	}
}

func TestRunFlagsCommandAfterImage(t *testing.T) {
	// Flags after the image belong to the command.
	req := mustParseRun(t, "-t", "alpine", "ls", "-l", "--rm")
	if !reflect.DeepEqual(req.Config.Cmd, []string{"ls", "-l", "--rm"}) || req.HostConfig.AutoRemove {
		t.Errorf("cmd %q autoremove %v", req.Config.Cmd, req.HostConfig.AutoRemove)
	}
	if _, err := parseRun(t, "--rm"); err == nil {
		t.Error("no image: want error")
	}
}

func TestRunFlagsFields(t *testing.T) {
	t.Setenv("BERTH_TEST_FROM_ENV", "envval")
	tests := []struct {
		name  string
		args  []string
		check func(*testing.T, *createRequest)
	}{
		{"name platform pull quiet", []string{"--name", "web", "--platform", "linux/arm64", "--pull", "always", "-q", "img"}, func(t *testing.T, r *createRequest) {
			if r.Name != "web" || r.Platform != "linux/arm64" || r.Pull != "always" || !r.Quiet {
				t.Errorf("%+v", r)
			}
		}},
		{"env", []string{"-e", "A=1", "--env", "BERTH_TEST_FROM_ENV", "-e", "BERTH_TEST_UNSET_XYZ", "img"}, func(t *testing.T, r *createRequest) {
			want := []string{"A=1", "BERTH_TEST_FROM_ENV=envval", "BERTH_TEST_UNSET_XYZ"}
			if !reflect.DeepEqual(r.Config.Env, want) {
				t.Errorf("env %q", r.Config.Env)
			}
		}},
		{"user workdir hostname", []string{"-u", "1000:1000", "-w", "/app", "-h", "box", "--domainname", "example.org", "img"}, func(t *testing.T, r *createRequest) {
			c := r.Config
			if c.User != "1000:1000" || c.WorkingDir != "/app" || c.Hostname != "box" || c.Domainname != "example.org" {
				t.Errorf("%+v", c)
			}
		}},
		{"labels", []string{"-l", "a=b", "--label", "flag", "img"}, func(t *testing.T, r *createRequest) {
			if !reflect.DeepEqual(r.Config.Labels, map[string]string{"a": "b", "flag": ""}) {
				t.Errorf("%v", r.Config.Labels)
			}
		}},
		{"stop", []string{"--stop-signal", "SIGINT", "--stop-timeout", "0", "--init", "img"}, func(t *testing.T, r *createRequest) {
			if r.Config.StopSignal != "SIGINT" || r.Config.StopTimeout == nil || *r.Config.StopTimeout != 0 || r.HostConfig.Init == nil || !*r.HostConfig.Init {
				t.Errorf("%+v", r.Config)
			}
		}},
		{"init=false is sent", []string{"--init=false", "img"}, func(t *testing.T, r *createRequest) {
			if r.HostConfig.Init == nil || *r.HostConfig.Init {
				t.Errorf("init %v", r.HostConfig.Init)
			}
		}},
		{"log", []string{"--log-driver", "json-file", "--log-opt", "max-size=10m", "--log-opt", "max-file=3", "img"}, func(t *testing.T, r *createRequest) {
			want := container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "3"}}
			if !reflect.DeepEqual(r.HostConfig.LogConfig, want) {
				t.Errorf("%+v", r.HostConfig.LogConfig)
			}
		}},
		{"resources", []string{"--memory-reservation", "64m", "--memory-swappiness", "10", "--oom-kill-disable", "--oom-score-adj", "-500",
			"-c", "512", "--cpu-period", "100000", "--cpu-quota", "50000", "--cpuset-cpus", "0-1", "--cpuset-mems", "0",
			"--pids-limit", "100", "--blkio-weight", "300", "--cgroup-parent", "/custom", "--shm-size", "1g", "img"}, func(t *testing.T, r *createRequest) {
			h := r.HostConfig
			if h.MemoryReservation != 64<<20 || *h.MemorySwappiness != 10 || !*h.OomKillDisable || h.OomScoreAdj != -500 ||
				h.CPUShares != 512 || h.CPUPeriod != 100000 || h.CPUQuota != 50000 || h.CpusetCpus != "0-1" || h.CpusetMems != "0" ||
				*h.PidsLimit != 100 || h.BlkioWeight != 300 || h.CgroupParent != "/custom" || h.ShmSize != 1<<30 {
				t.Errorf("%+v", h.Resources)
			}
		}},
		{"security", []string{"--privileged", "--read-only", "--cap-add", "NET_ADMIN", "--cap-drop", "ALL", "--group-add", "audio",
			"--userns", "host", "--cgroupns", "private", "--pid", "host", "--ipc", "shareable", "--uts", "host", "img"}, func(t *testing.T, r *createRequest) {
			h := r.HostConfig
			if !h.Privileged || !h.ReadonlyRootfs || !reflect.DeepEqual(h.CapAdd, []string{"NET_ADMIN"}) || !reflect.DeepEqual(h.CapDrop, []string{"ALL"}) ||
				!reflect.DeepEqual(h.GroupAdd, []string{"audio"}) || h.UsernsMode != "host" || h.CgroupnsMode != "private" ||
				h.PidMode != "host" || h.IpcMode != "shareable" || h.UTSMode != "host" {
				t.Errorf("%+v", h)
			}
		}},
		{"pid container", []string{"--pid", "container:db", "img"}, func(t *testing.T, r *createRequest) {
			if r.HostConfig.PidMode != "container:db" {
				t.Errorf("%q", r.HostConfig.PidMode)
			}
		}},
		{"tmpfs volumes-from", []string{"--tmpfs", "/run", "--tmpfs", "/tmp:rw,size=64m", "--volumes-from", "data:ro", "img"}, func(t *testing.T, r *createRequest) {
			if !reflect.DeepEqual(r.HostConfig.Tmpfs, map[string]string{"/run": "", "/tmp": "rw,size=64m"}) ||
				!reflect.DeepEqual(r.HostConfig.VolumesFrom, []string{"data:ro"}) {
				t.Errorf("%v %v", r.HostConfig.Tmpfs, r.HostConfig.VolumesFrom)
			}
		}},
		{"sysctl annotation storage runtime", []string{"--sysctl", "net.ipv4.ip_forward=1", "--annotation", "a=b", "--storage-opt", "size=10G",
			"--runtime", "crun", "--isolation", "default", "--cidfile", "/tmp/cid", "--volume-driver", "local", "img"}, func(t *testing.T, r *createRequest) {
			h := r.HostConfig
			if h.Sysctls["net.ipv4.ip_forward"] != "1" || h.Annotations["a"] != "b" || h.StorageOpt["size"] != "10G" ||
				h.Runtime != "crun" || h.Isolation != "default" || h.ContainerIDFile != "/tmp/cid" || h.VolumeDriver != "local" {
				t.Errorf("%+v", h)
			}
		}},
		{"dns hosts links", []string{"--dns", "1.1.1.1", "--dns", "2001:db8::1", "--dns-search", "example.com.", "--dns-option", "ndots:2",
			"--dns-opt", "timeout:1", "--add-host", "db=10.0.0.2", "--add-host", "v6:[::1]", "--add-host", "gw:host-gateway", "--link", "db:database", "img"}, func(t *testing.T, r *createRequest) {
			h := r.HostConfig
			if !reflect.DeepEqual(h.DNS, []netip.Addr{netip.MustParseAddr("1.1.1.1"), netip.MustParseAddr("2001:db8::1")}) ||
				!reflect.DeepEqual(h.DNSSearch, []string{"example.com"}) || !reflect.DeepEqual(h.DNSOptions, []string{"ndots:2", "timeout:1"}) ||
				!reflect.DeepEqual(h.ExtraHosts, []string{"db:10.0.0.2", "v6:::1", "gw:host-gateway"}) || !reflect.DeepEqual(h.Links, []string{"db:database"}) {
				t.Errorf("%v %v %v %v %v", h.DNS, h.DNSSearch, h.DNSOptions, h.ExtraHosts, h.Links)
			}
		}},
		{"device cgroup rule", []string{"--device-cgroup-rule", "c 1:3 rwm", "--device-cgroup-rule", "b *:* r", "img"}, func(t *testing.T, r *createRequest) {
			if !reflect.DeepEqual(r.HostConfig.DeviceCgroupRules, []string{"c 1:3 rwm", "b *:* r"}) {
				t.Errorf("%q", r.HostConfig.DeviceCgroupRules)
			}
		}},
		{"devices", []string{"--device", "/dev/fuse", "--device", "/dev/sda:/dev/xvda:r", "--device", "/dev/kvm:rw", "--device", "nvidia.com/gpu=all", "img"}, func(t *testing.T, r *createRequest) {
			want := []container.DeviceMapping{
				{PathOnHost: "/dev/fuse", PathInContainer: "/dev/fuse", CgroupPermissions: "rwm"},
				{PathOnHost: "/dev/sda", PathInContainer: "/dev/xvda", CgroupPermissions: "r"},
				{PathOnHost: "/dev/kvm", PathInContainer: "/dev/kvm", CgroupPermissions: "rw"},
			}
			if !reflect.DeepEqual(r.HostConfig.Devices, want) {
				t.Errorf("%+v", r.HostConfig.Devices)
			}
			cdi := []container.DeviceRequest{{Driver: "cdi", DeviceIDs: []string{"nvidia.com/gpu=all"}}}
			if !reflect.DeepEqual(r.HostConfig.DeviceRequests, cdi) {
				t.Errorf("%+v", r.HostConfig.DeviceRequests)
			}
		}},
		{"healthcheck", []string{"--health-cmd", "curl -f localhost", "--health-interval", "5s", "--health-timeout", "2s",
			"--health-retries", "3", "--health-start-period", "10s", "--health-start-interval", "1s", "img"}, func(t *testing.T, r *createRequest) {
			want := &container.HealthConfig{Test: []string{"CMD-SHELL", "curl -f localhost"}, Interval: 5 * time.Second,
				Timeout: 2 * time.Second, Retries: 3, StartPeriod: 10 * time.Second, StartInterval: time.Second}
			if !reflect.DeepEqual(r.Config.Healthcheck, want) {
				t.Errorf("%+v", r.Config.Healthcheck)
			}
		}},
		{"no healthcheck", []string{"--no-healthcheck", "img"}, func(t *testing.T, r *createRequest) {
			if !reflect.DeepEqual(r.Config.Healthcheck, &container.HealthConfig{Test: []string{"NONE"}}) {
				t.Errorf("%+v", r.Config.Healthcheck)
			}
		}},
		{"kernel memory ignored", []string{"--kernel-memory", "50m", "img"}, func(t *testing.T, r *createRequest) {
			if r.HostConfig.Memory != 0 {
				t.Errorf("memory %d", r.HostConfig.Memory)
			}
		}},
		{"publish all expose", []string{"-P", "--expose", "3000-3001/udp", "--expose", "22", "img"}, func(t *testing.T, r *createRequest) {
			want := network.PortSet{
				network.MustParsePort("3000/udp"): {}, network.MustParsePort("3001/udp"): {}, network.MustParsePort("22/tcp"): {},
			}
			if !r.HostConfig.PublishAllPorts || !reflect.DeepEqual(r.Config.ExposedPorts, want) || len(r.HostConfig.PortBindings) != 0 {
				t.Errorf("%v %v", r.Config.ExposedPorts, r.HostConfig.PortBindings)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.check(t, mustParseRun(t, tt.args...))
		})
	}
}

func TestRunFlagsAttach(t *testing.T) {
	type attach struct{ in, out, errs, open, once, tty bool }
	tests := []struct {
		args []string
		want attach
	}{
		{[]string{"img"}, attach{out: true, errs: true}},
		{[]string{"-it", "img"}, attach{in: true, out: true, errs: true, open: true, once: true, tty: true}},
		{[]string{"-i", "-d", "img"}, attach{open: true}},
		{[]string{"-d", "img"}, attach{}},
		{[]string{"-a", "STDERR", "img"}, attach{errs: true}},
		{[]string{"-a", "stdin", "-a", "stdout", "img"}, attach{in: true, out: true}},
		{[]string{"-i", "-a", "stdout", "img"}, attach{in: true, out: true, open: true, once: true}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			c := mustParseRun(t, tt.args...).Config
			got := attach{c.AttachStdin, c.AttachStdout, c.AttachStderr, c.OpenStdin, c.StdinOnce, c.Tty}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	req := mustParseRun(t, "-d", "--sig-proxy=false", "--detach-keys", "ctrl-p,ctrl-q", "img")
	if !req.Detach || req.SigProxy || req.DetachKeys != "ctrl-p,ctrl-q" {
		t.Errorf("%+v", req)
	}
}

func TestRunFlagsEnvFile(t *testing.T) {
	t.Setenv("BERTH_TEST_HOST_VAR", "from host")
	good := writeFile(t, "env", "\xEF\xBB\xBF# comment\n\nA=1\n  B=spaced value \nC=\"quoted\"\nBERTH_TEST_HOST_VAR\nBERTH_TEST_NOT_SET_ABC\nEMPTY=\n")
	second := writeFile(t, "env2", "A=2\n")
	req := mustParseRun(t, "--env-file", good, "--env-file", second, "-e", "A=3", "img")
	want := []string{"A=1", "B=spaced value ", `C="quoted"`, "BERTH_TEST_HOST_VAR=from host", "EMPTY=", "A=2", "A=3"}
	if !reflect.DeepEqual(req.Config.Env, want) {
		t.Errorf("env\n got %q\nwant %q", req.Config.Env, want)
	}

	tests := []struct {
		name, content, want string
	}{
		{"whitespace in key", "A=1\nBAD KEY=2\n", "invalid env file (%s): line 2: variable 'BAD KEY' contains whitespaces"},
		{"no name", "\n# x\n=value\n", "invalid env file (%s): line 3: no variable name on line '=value'"},
		{"bad utf8", "A=\xff\n", "invalid env file (%s): line 1: invalid utf8 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, "env", tt.content)
			_, err := parseRun(t, "--env-file", p, "img")
			wantErr(t, err, "--env-file: "+strings.Replace(tt.want, "%s", p, 1))
		})
	}
	missing := filepath.Join(t.TempDir(), "nope")
	_, err := parseRun(t, "--env-file", missing, "img")
	wantErr(t, err, "--env-file: open "+missing+": no such file or directory")
}

func TestRunFlagsLabelFile(t *testing.T) {
	t.Setenv("BERTH_TEST_LABEL", "x")
	p := writeFile(t, "labels", "# labels\ncom.example.a=1\nBERTH_TEST_LABEL\ncom.example.b=2\n")
	req := mustParseRun(t, "--label-file", p, "-l", "com.example.b=override", "img")
	// A bare key in a label file is dropped, as docker does.
	want := map[string]string{"com.example.a": "1", "com.example.b": "override"}
	if !reflect.DeepEqual(req.Config.Labels, want) {
		t.Errorf("labels %v", req.Config.Labels)
	}
	bad := writeFile(t, "labels", "a b=c\n")
	_, err := parseRun(t, "--label-file", bad, "img")
	wantErr(t, err, "--label-file: invalid env file ("+bad+"): line 1: variable 'a b' contains whitespaces")
}

func TestRunFlagsRestart(t *testing.T) {
	tests := []struct {
		args    []string
		want    container.RestartPolicy
		wantErr string
	}{
		{args: []string{"--restart", "no"}, want: container.RestartPolicy{Name: "no"}},
		{args: []string{"--restart", ""}, want: container.RestartPolicy{}},
		{args: []string{"--restart", "always"}, want: container.RestartPolicy{Name: "always"}},
		{args: []string{"--restart", "unless-stopped"}, want: container.RestartPolicy{Name: "unless-stopped"}},
		{args: []string{"--restart", "on-failure"}, want: container.RestartPolicy{Name: "on-failure"}},
		{args: []string{"--restart", "on-failure:5"}, want: container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 5}},
		{args: []string{"--restart", "no", "--rm"}, want: container.RestartPolicy{Name: "no"}},
		{args: []string{"--restart", ":3"}, wantErr: "invalid restart policy format: no policy provided before colon"},
		{args: []string{"--restart", "on-failure:x"}, wantErr: "invalid restart policy format: maximum retry count must be an integer"},
		{args: []string{"--restart", "always:3"}, wantErr: "invalid restart policy: maximum retry count can only be used with 'on-failure'"},
		{args: []string{"--restart", "on-failure:-1"}, wantErr: "invalid restart policy: maximum retry count cannot be negative"},
		{args: []string{"--restart", "sometimes"}, wantErr: "invalid restart policy: unknown policy 'sometimes'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"},
		{args: []string{"--restart", "always", "--rm"}, wantErr: "conflicting options: cannot specify both --restart and --rm"},
		{args: []string{"--rm", "--restart", "on-failure:2"}, wantErr: "conflicting options: cannot specify both --restart and --rm"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			req, err := parseRun(t, append(tt.args, "img")...)
			if tt.wantErr != "" {
				wantErr(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if req.HostConfig.RestartPolicy != tt.want {
				t.Errorf("got %+v, want %+v", req.HostConfig.RestartPolicy, tt.want)
			}
		})
	}
	// -d with --rm is allowed in modern docker.
	if req := mustParseRun(t, "-d", "--rm", "img"); !req.HostConfig.AutoRemove || !req.Detach {
		t.Errorf("-d --rm: %+v", req)
	}
}

func TestRunFlagsPublish(t *testing.T) {
	type binding struct{ port, ip, hostPort string }
	tests := []struct {
		spec string
		want []binding
	}{
		{"80", []binding{{"80/tcp", "", ""}}},
		{"8080:80", []binding{{"80/tcp", "", "8080"}}},
		{"127.0.0.1:8080:80/udp", []binding{{"80/udp", "127.0.0.1", "8080"}}},
		{"127.0.0.1::80", []binding{{"80/tcp", "127.0.0.1", ""}}},
		{"8000-8001:80-81", []binding{{"80/tcp", "", "8000"}, {"81/tcp", "", "8001"}}},
		{"80-81/udp", []binding{{"80/udp", "", ""}, {"81/udp", "", ""}}},
		{"8000-8010:80", []binding{{"80/tcp", "", "8000-8010"}}},
		{"[::1]:8080:80", []binding{{"80/tcp", "::1", "8080"}}},
		{"::1:8080:80", []binding{{"80/tcp", "::1", "8080"}}},
		{"53:53/UDP", []binding{{"53/udp", "", "53"}}},
		{"9000:9000/sctp", []binding{{"9000/sctp", "", "9000"}}},
		{"published=8080,target=80", []binding{{"80/tcp", "", "8080"}}},
		{"target=53,published=5353,protocol=udp", []binding{{"53/udp", "", "5353"}}},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			req := mustParseRun(t, "-p", tt.spec, "img")
			wantExposed := network.PortSet{}
			wantMap := network.PortMap{}
			for _, b := range tt.want {
				p := network.MustParsePort(b.port)
				wantExposed[p] = struct{}{}
				var ip netip.Addr
				if b.ip != "" {
					ip = netip.MustParseAddr(b.ip)
				}
				wantMap[p] = append(wantMap[p], network.PortBinding{HostIP: ip, HostPort: b.hostPort})
			}
			if !reflect.DeepEqual(req.Config.ExposedPorts, wantExposed) {
				t.Errorf("exposed %v, want %v", req.Config.ExposedPorts, wantExposed)
			}
			if !reflect.DeepEqual(req.HostConfig.PortBindings, wantMap) {
				t.Errorf("bindings %v, want %v", req.HostConfig.PortBindings, wantMap)
			}
		})
	}

	// The same container port published twice keeps both bindings.
	req := mustParseRun(t, "-p", "8080:80", "-p", "127.0.0.1:9090:80", "img")
	if got := req.HostConfig.PortBindings[network.MustParsePort("80/tcp")]; len(got) != 2 || got[1].HostPort != "9090" {
		t.Errorf("bindings %v", got)
	}
	// The API JSON uses docker's "80/tcp" keys and "HostIp".
	js, err := json.Marshal(req.HostConfig.PortBindings)
	if err != nil || !strings.Contains(string(js), `"80/tcp":[{"HostIp":"","HostPort":"8080"},{"HostIp":"127.0.0.1","HostPort":"9090"}]`) {
		t.Errorf("json %s %v", js, err)
	}

	errs := []struct{ spec, want string }{
		{"", "no port specified: <empty>"},
		{"8080:", "no port specified: 8080:<empty>"},
		{"abc", "invalid containerPort: abc"},
		{"70000", "invalid containerPort: 70000"},
		{"x:80", "invalid hostPort: x"},
		{"1.2.3:80:80", "invalid IP address: 1.2.3"},
		{"8000-8002:80-81", "invalid ranges specified for container and host Ports: 80-81 and 8000-8002"},
		{"81-80", "invalid containerPort: 81-80"},
		{"80/icmp", "invalid proto: icmp"},
		{"published=80,target", "invalid publish opts format (should be name=value but got 'target')"},
	}
	for _, tt := range errs {
		t.Run("error "+tt.spec, func(t *testing.T) {
			_, err := parseRun(t, "-p", tt.spec, "img")
			wantErr(t, err, tt.want)
		})
	}
	_, err = parseRun(t, "--expose", "80-x", "img")
	wantErr(t, err, "invalid range format for --expose: ")
}

func TestRunFlagsUlimits(t *testing.T) {
	req := mustParseRun(t, "--ulimit", "nproc=10", "--ulimit", "nofile=1024:2048", "--ulimit", "nproc=20:30", "img")
	want := []*container.Ulimit{{Name: "nofile", Soft: 1024, Hard: 2048}, {Name: "nproc", Soft: 20, Hard: 30}}
	if !reflect.DeepEqual(req.HostConfig.Ulimits, want) {
		t.Errorf("ulimits %+v", req.HostConfig.Ulimits)
	}
	for spec, want := range map[string]string{
		"nofile":       `invalid argument "nofile" for "--ulimit" flag: invalid ulimit argument: nofile`,
		"bogus=1":      `invalid argument "bogus=1" for "--ulimit" flag: invalid ulimit type: bogus`,
		"nofile=20:10": `invalid argument "nofile=20:10" for "--ulimit" flag: ulimit soft limit must be less than or equal to hard limit: 20 > 10`,
	} {
		_, err := parseRun(t, "--ulimit", spec, "img")
		wantErr(t, err, want)
	}
}

func TestRunFlagsEntrypoint(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"img"}, nil},
		{[]string{"--entrypoint", "", "img"}, []string{""}},
		{[]string{"--entrypoint=", "img"}, []string{""}},
		{[]string{"--entrypoint", "/bin/sh", "img", "-c", "true"}, []string{"/bin/sh"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			if got := mustParseRun(t, tt.args...).Config.Entrypoint; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestRunFlagsMemory(t *testing.T) {
	tests := []struct {
		args      []string
		mem, swap int64
	}{
		{[]string{"-m", "512m"}, 512 << 20, 0},
		{[]string{"--memory", "1g", "--memory-swap", "2g"}, 1 << 30, 2 << 30},
		{[]string{"-m", "1024"}, 1024, 0},
		{[]string{"-m", "1.5k"}, 1536, 0},
		{[]string{"-m", "64M", "--memory-swap", "-1"}, 64 << 20, -1},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			h := mustParseRun(t, append(tt.args, "img")...).HostConfig
			if h.Memory != tt.mem || h.MemorySwap != tt.swap {
				t.Errorf("memory %d swap %d", h.Memory, h.MemorySwap)
			}
		})
	}
	errs := []struct {
		args []string
		want string
	}{
		{[]string{"-m", "x"}, `invalid argument "x" for "-m, --memory" flag: invalid size: 'x'`},
		{[]string{"--memory-swap", "lots"}, `invalid argument "lots" for "--memory-swap" flag: invalid size: 'lots'`},
		{[]string{"--shm-size", "big"}, `invalid argument "big" for "--shm-size" flag: invalid size: 'big'`},
		{[]string{"--memory-swappiness", "101"}, "invalid value: 101. Valid memory swappiness range is 0-100"},
	}
	for _, tt := range errs {
		_, err := parseRun(t, append(tt.args, "img")...)
		wantErr(t, err, tt.want)
	}
}

func TestRunFlagsCPUs(t *testing.T) {
	if got := mustParseRun(t, "--cpus", "1.5", "img").HostConfig.NanoCPUs; got != 1_500_000_000 {
		t.Errorf("nano cpus %d", got)
	}
	if got := mustParseRun(t, "--cpus", "0.000000001", "img").HostConfig.NanoCPUs; got != 1 {
		t.Errorf("nano cpus %d", got)
	}
	errs := []struct {
		args []string
		want string
	}{
		{[]string{"--cpus", "two"}, `invalid argument "two" for "--cpus" flag: failed to parse two as a rational number`},
		{[]string{"--cpus", "0.0000000001"}, `invalid argument "0.0000000001" for "--cpus" flag: value is too precise`},
		{[]string{"--cpus", "1", "--cpu-period", "100000"}, "Conflicting options: Nano CPUs and CPU Period cannot both be set"},
		{[]string{"--cpus", "1", "--cpu-quota", "50000"}, "Conflicting options: Nano CPUs and CPU Quota cannot both be set"},
	}
	for _, tt := range errs {
		_, err := parseRun(t, append(tt.args, "img")...)
		wantErr(t, err, tt.want)
	}
}

func TestRunFlagsSecurityOpt(t *testing.T) {
	profile := writeFile(t, "seccomp.json", "{\n  \"defaultAction\": \"SCMP_ACT_ALLOW\",\n  \"syscalls\": []\n}\n")
	req := mustParseRun(t, "--security-opt", "seccomp="+profile, "--security-opt", "no-new-privileges",
		"--security-opt", "label:disable", "--security-opt", "apparmor=unconfined", "img")
	want := []string{`seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[]}`, "no-new-privileges", "label:disable", "apparmor=unconfined"}
	if !reflect.DeepEqual(req.HostConfig.SecurityOpt, want) {
		t.Errorf("security opts %q", req.HostConfig.SecurityOpt)
	}
	if req.HostConfig.MaskedPaths != nil || req.HostConfig.ReadonlyPaths != nil {
		t.Error("masked paths must stay nil (daemon default)")
	}

	req = mustParseRun(t, "--security-opt", "seccomp=unconfined", "--security-opt", "systempaths=unconfined", "img")
	h := req.HostConfig
	if !reflect.DeepEqual(h.SecurityOpt, []string{"seccomp=unconfined"}) || h.MaskedPaths == nil || len(h.MaskedPaths) != 0 || h.ReadonlyPaths == nil {
		t.Errorf("%q %v %v", h.SecurityOpt, h.MaskedPaths, h.ReadonlyPaths)
	}

	missing := filepath.Join(t.TempDir(), "none.json")
	_, err := parseRun(t, "--security-opt", "seccomp="+missing, "img")
	wantErr(t, err, "opening seccomp profile ("+missing+") failed: open "+missing+": no such file or directory")

	bad := writeFile(t, "bad.json", "{not json")
	_, err = parseRun(t, "--security-opt", "seccomp="+bad, "img")
	wantErr(t, err, "compacting json for seccomp profile ("+bad+") failed")

	_, err = parseRun(t, "--security-opt", "label", "img")
	wantErr(t, err, `invalid --security-opt: "label"`)
}

func TestRunFlagsVolumes(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	req := mustParseRun(t, "-v", "/data", "-v", "/host:/ctr:ro", "-v", "./rel:/rel", "-v", "named:/named:rw,z", "img")
	wantBinds := []string{"/host:/ctr:ro", filepath.Join(wd, "rel") + ":/rel", "named:/named:rw,z"}
	if !reflect.DeepEqual(req.HostConfig.Binds, wantBinds) {
		t.Errorf("binds %q", req.HostConfig.Binds)
	}
	if !reflect.DeepEqual(req.Config.Volumes, map[string]struct{}{"/data": {}}) {
		t.Errorf("volumes %v", req.Config.Volumes)
	}
	for spec, want := range map[string]string{
		"":            "invalid empty volume spec",
		"/a::/b":      "invalid spec: /a::/b: empty section between colons",
		"/a:/b:ro:rw": "invalid spec: /a:/b:ro:rw: too many colons",
	} {
		_, err := parseRun(t, "-v", spec, "img")
		wantErr(t, err, want)
	}
}

func TestRunFlagsMount(t *testing.T) {
	req := mustParseRun(t,
		"--mount", "type=bind,src=/host,dst=/ctr,readonly,bind-propagation=rslave",
		"--mount", "type=tmpfs,target=/scratch,tmpfs-size=64m,tmpfs-mode=1770",
		"--mount", "source=vol,target=/data,volume-nocopy,volume-label=a=b,volume-opt=o=bind",
		"img")
	want := []mount.Mount{
		{Type: mount.TypeBind, Source: "/host", Target: "/ctr", ReadOnly: true, BindOptions: &mount.BindOptions{Propagation: mount.PropagationRSlave}},
		{Type: mount.TypeTmpfs, Target: "/scratch", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 64 << 20, Mode: 0o1770}},
		{Type: mount.TypeVolume, Source: "vol", Target: "/data", VolumeOptions: &mount.VolumeOptions{
			NoCopy: true, Labels: map[string]string{"a": "b"}, DriverConfig: &mount.Driver{Options: map[string]string{"o": "bind"}}}},
	}
	if !reflect.DeepEqual(req.HostConfig.Mounts, want) {
		t.Errorf("mounts\n got %+v\nwant %+v", req.HostConfig.Mounts, want)
	}
	errs := map[string]string{
		"type=tmpfs,target=/x,bind-propagation=shared":       "cannot mix 'bind-*' options with mount type 'tmpfs'",
		"type=bind,src=/a,dst=/b,bogus=1":                    "unknown option 'bogus' in 'bogus=1'",
		"type=bind,src=/a,dst":                               "invalid field 'dst' must be a key=value pair",
		"type=bind,src=/a,dst=/b,ro=maybe":                   `invalid value for 'ro': invalid boolean value ("maybe")`,
		"type=tmpfs,dst=/b,tmpfs-size=lots":                  "invalid value for tmpfs-size: lots",
		"type=bind,src=/a,dst=/b,bind-recursive=readonly,ro": "option 'bind-recursive=readonly' requires 'bind-propagation=rprivate' to be specified in conjunction",
	}
	for spec, want := range errs {
		_, err := parseRun(t, "--mount", spec, "img")
		wantErr(t, err, want)
	}
}

func TestRunFlagsNetworks(t *testing.T) {
	req := mustParseRun(t, "--network", "appnet", "--net", "backend", "--network-alias", "web", "--ip", "10.1.0.5",
		"--ip6", "fd00::5", "--mac-address", "92:d0:c6:0a:29:33", "img")
	if req.HostConfig.NetworkMode != "appnet" || !reflect.DeepEqual(req.Networks, []string{"backend"}) || !reflect.DeepEqual(req.Aliases, []string{"web"}) {
		t.Errorf("%q %q %q", req.HostConfig.NetworkMode, req.Networks, req.Aliases)
	}
	if req.IPv4Address != netip.MustParseAddr("10.1.0.5") || req.IPv6Address != netip.MustParseAddr("fd00::5") || req.MacAddress != "92:d0:c6:0a:29:33" {
		t.Errorf("%v %v %v", req.IPv4Address, req.IPv6Address, req.MacAddress)
	}
	req = mustParseRun(t, "--network", "name=appnet,alias=a1,alias=a2", "img")
	if req.HostConfig.NetworkMode != "appnet" || !reflect.DeepEqual(req.Aliases, []string{"a1", "a2"}) {
		t.Errorf("%q %q", req.HostConfig.NetworkMode, req.Aliases)
	}
	for _, mode := range []string{"host", "none", "bridge", "container:db"} {
		if got := mustParseRun(t, "--network", mode, "img").HostConfig.NetworkMode; string(got) != mode {
			t.Errorf("network %q: got %q", mode, got)
		}
	}
	errs := []struct {
		args []string
		want string
	}{
		{[]string{"--network-alias", "web"}, "network-scoped aliases are only supported for user-defined networks"},
		{[]string{"--network", "a", "--network", "a"}, `network "a" is specified multiple times`},
		{[]string{"--network", "host", "--network", "a"}, "conflicting options: cannot attach both user-defined and non-user-defined network-modes"},
		{[]string{"--network", "name=a,alias=x", "--network-alias", "y"}, "conflicting options: cannot specify both --network-alias and per-network alias"},
		{[]string{"--network", "alias=x"}, "network name/id is not specified"},
		{[]string{"--network", "name=a,bogus=1"}, "invalid field key bogus"},
		{[]string{"--mac-address", "nope"}, "nope is not a valid mac address"},
		{[]string{"--ip", "nope"}, `invalid argument "nope" for "--ip" flag`},
	}
	for _, tt := range errs {
		_, err := parseRun(t, append(tt.args, "img")...)
		wantErr(t, err, tt.want)
	}
}

func TestRunFlagsErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--pull", "sometimes"}, `invalid pull option: 'sometimes': must be one of "always", "missing" or "never"`},
		{[]string{"--gpus", "all"}, "--gpus is not supported"},
		{[]string{"-a", "stdio"}, `invalid argument "stdio" for "-a, --attach" flag: valid streams are STDIN, STDOUT and STDERR`},
		{[]string{"-a", "stdout", "-d"}, "conflicting options: cannot specify both --attach and --detach"},
		{[]string{"--detach-keys", "ctrl-1"}, "invalid detach keys (ctrl-1): Unknown character: 'ctrl-1'"},
		{[]string{"-e", "=x"}, `invalid argument "=x" for "-e, --env" flag: invalid environment variable: =x`},
		{[]string{"-l", " =x"}, `invalid label ' =x': empty name`},
		{[]string{"--sysctl", "kernel.panic=1"}, `sysctl 'kernel.panic=1' is not allowed`},
		{[]string{"--add-host", "db"}, `bad format for add-host: "db"`},
		{[]string{"--add-host", "db:nope"}, `invalid IP address in add-host: "nope"`},
		{[]string{"--dns", "1.2.3"}, "IP address is not correctly formatted: 1.2.3"},
		{[]string{"--dns-search", "-bad-.com"}, "-bad-.com is not a valid domain"},
		{[]string{"--link", "a:b:c"}, "bad format for links: a:b:c"},
		{[]string{"--device-cgroup-rule", "x 1:2 rwm"}, "invalid device cgroup format 'x 1:2 rwm'"},
		{[]string{"--device", "/dev/sda:dev/xvda"}, "dev/xvda is not an absolute path"},
		{[]string{"--device", "/dev/sda:/dev/xvda:rx"}, "bad mode specified: rx"},
		{[]string{"--log-driver", "none", "--log-opt", "a=b"}, "invalid logging opts for driver none"},
		{[]string{"--storage-opt", "size"}, "invalid storage option"},
		{[]string{"--pid", "container:"}, "--pid: invalid PID mode"},
		{[]string{"--uts", "private"}, "--uts: invalid UTS mode"},
		{[]string{"--userns", "private"}, "--userns: invalid USER mode"},
		{[]string{"--cgroupns", "shared"}, "--cgroupns: invalid CGROUP mode"},
		{[]string{"--ipc", "bogus"}, "invalid IPC mode: bogus"},
		{[]string{"--isolation", "hyperv"}, "invalid isolation 'hyperv' on linux"},
		{[]string{"--no-healthcheck", "--health-cmd", "true"}, "--no-healthcheck conflicts with --health-* options"},
		{[]string{"--health-interval", "-1s"}, "--health-interval cannot be negative"},
		{[]string{"--health-retries", "-1"}, "--health-retries cannot be negative"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			_, err := parseRun(t, append(tt.args, "img")...)
			wantErr(t, err, tt.want)
		})
	}
}

func TestRunFlagsDetachKeys(t *testing.T) {
	for _, keys := range []string{"ctrl-p,ctrl-q", "a,b", "ctrl-@", "ctrl-\\", "CTRL-X"} {
		if err := validateDetachKeys(keys); err != nil {
			t.Errorf("%q: %v", keys, err)
		}
	}
	for _, keys := range []string{"ctrl-", "ab", "ctrl-pp", "ctrl-p,,"} {
		if err := validateDetachKeys(keys); err == nil {
			t.Errorf("%q: want error", keys)
		}
	}
}

func TestRunFlagsHelp(t *testing.T) {
	// The flags docker documents, with their shorthands.
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	addRunFlags(fs)
	short := map[string]string{"detach": "d", "interactive": "i", "tty": "t", "env": "e", "workdir": "w", "user": "u",
		"volume": "v", "hostname": "h", "label": "l", "memory": "m", "cpu-shares": "c", "publish": "p",
		"publish-all": "P", "quiet": "q", "attach": "a"}
	for name, sh := range short {
		fl := fs.Lookup(name)
		if fl == nil || fl.Shorthand != sh {
			t.Errorf("--%s: want shorthand -%s, got %+v", name, sh, fl)
		}
	}
	for _, name := range []string{"rm", "name", "env-file", "entrypoint", "mount", "tmpfs", "volumes-from", "domainname",
		"label-file", "restart", "stop-signal", "stop-timeout", "init", "log-driver", "log-opt", "memory-swap",
		"memory-reservation", "memory-swappiness", "kernel-memory", "oom-kill-disable", "oom-score-adj", "cpus",
		"cpu-period", "cpu-quota", "cpuset-cpus", "cpuset-mems", "pids-limit", "blkio-weight", "ulimit", "sysctl",
		"shm-size", "device", "device-cgroup-rule", "gpus", "privileged", "read-only", "cap-add", "cap-drop",
		"security-opt", "userns", "pid", "ipc", "uts", "cgroupns", "cgroup-parent", "network", "net", "network-alias",
		"ip", "ip6", "mac-address", "add-host", "dns", "dns-search", "dns-option", "expose", "runtime", "platform",
		"pull", "group-add", "health-cmd", "health-interval", "health-timeout", "health-retries", "health-start-period",
		"health-start-interval", "no-healthcheck", "sig-proxy", "detach-keys", "isolation", "annotation", "storage-opt"} {
		if fs.Lookup(name) == nil {
			t.Errorf("--%s is not defined", name)
		}
	}
	if fs.Lookup("restart").DefValue != "no" || fs.Lookup("pull").DefValue != "missing" || fs.Lookup("sig-proxy").DefValue != "true" ||
		fs.Lookup("memory-swappiness").DefValue != "-1" {
		t.Error("defaults differ from docker's")
	}
}

func FuzzParsePortSpec(f *testing.F) {
	for _, s := range []string{"80", "8080:80", "127.0.0.1:8080:80/udp", "127.0.0.1::80", "8000-8001:80-81", "[::1]:1-2:3/sctp", ":::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := parsePortSpec(s)
		if err == nil && len(ms) == 0 {
			t.Errorf("%q: no mappings and no error", s)
		}
	})
}

func FuzzParseKVLines(f *testing.F) {
	f.Add([]byte("\xEF\xBB\xBFA=1\n# c\n  B\n=x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines, err := parseKVLines(data, func(string) (string, bool) { return "v", true })
		if err != nil {
			return
		}
		for _, l := range lines {
			if !strings.Contains(l, "=") {
				t.Errorf("line without '=': %q", l)
			}
		}
	})
}

func FuzzParseMount(f *testing.F) {
	f.Add("type=bind,src=/a,dst=/b,ro")
	f.Add(`"type=volume",target=/x,volume-opt=a=b`)
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = parseMount(s)
	})
}
