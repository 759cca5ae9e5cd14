#!/usr/bin/env bash
# Benchmark `berth pull` (download + unpack) of a ~200 MB, 5-layer gzip image
# from Debian's docker-registry on loopback, against:
#   tar     the floor: no download, `tar -xzf` of the same compressed layer
#           blobs, in order, into one directory;
#   podman  `podman pull` into a fresh --root/--runroot (overlay);
#   docker  `docker pull` on a fresh private dockerd (overlay2).
# Every run starts from an empty root, after `sync; echo 3 >
# /proc/sys/vm/drop_caches`; runs are interleaved across tools, N each, and the
# table gives the median wall time and its ratio to the floor's.
# Needs root, python3, curl, jq, docker-registry; podman and dockerd+docker are
# skipped when missing. Environment: N (runs, default 3), BERTH (a berth
# binary; else built into bench/.bin), TOOLS (default "tar berth podman
# docker"), DROP_CACHES=0 (keep the page cache between runs).
# Talks to 127.0.0.1 only. Leaves nothing behind: registry, daemons, mounts and
# temp dirs are removed on exit, however it exits. See bench/README.md.
set -euo pipefail

N=${N:-3}
TOOLS=${TOOLS:-"tar berth podman docker"}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
REGISTRY_BIN=/usr/bin/docker-registry
work=
reg_pid=
dockerd_pid=
host_dirs=(/run/docker/plugins /run/docker /run/containerd/s /run/containerd/fifo /run/containerd
	/var/lib/containers/cache /var/lib/containers /run/containers/networks /run/containers)
declare -A host_dir_was=()

die() {
	echo "${0##*/}: $*" >&2
	exit 1
}

stop_pid() { # stop process $1 (TERM, then KILL after 20 s) and reap it
	local pid=$1 i
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 200; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

umount_under() { # lazily unmount everything mounted under $1, deepest first
	awk -v w="$1" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r |
		xargs -r -n1 umount -l 2>/dev/null || true
}

cleanup() {
	set +e
	trap - EXIT INT TERM
	stop_dockerd
	stop_pid "$reg_pid"
	if [ -n "$work" ]; then
		umount_under "$work"
		rm -rf "$work"
	fi
	# Fixed host paths the clients make whatever their flags say: removed
	# when this script made them (podman's blob cache with its content).
	local d
	for d in "${host_dirs[@]}"; do
		[ "${host_dir_was[$d]:-1}" = 0 ] || continue
		case $d in /var/lib/containers/cache) rm -rf "$d" ;; *) rmdir "$d" 2>/dev/null ;; esac
	done
}

drop_caches() {
	sync
	[ "${DROP_CACHES:-1}" = 0 ] || echo 3 >/proc/sys/vm/drop_caches
}

now() { date +%s.%N; }

# --- setup --------------------------------------------------------------------
[ "$(id -u)" = 0 ] || die "needs root"
for t in python3 curl jq "$REGISTRY_BIN"; do
	command -v "$t" >/dev/null || die "needs $t (apt-get install -y python3 curl jq docker-registry)"
done
tools=()
for t in $TOOLS; do
	case $t in
	tar | berth) tools+=("$t") ;;
	podman) if command -v podman >/dev/null; then tools+=(podman); else echo "(podman not installed: skipped)"; fi ;;
	docker) if command -v dockerd >/dev/null && command -v docker >/dev/null; then tools+=(docker); else echo "(dockerd/docker not installed: skipped)"; fi ;;
	*) die "unknown tool $t" ;;
	esac
done
for d in "${host_dirs[@]}"; do
	if [ -d "$d" ]; then host_dir_was[$d]=1; else host_dir_was[$d]=0; fi
done
if [ -z "${BERTH:-}" ]; then
	(cd "$repo" && go build -tags osusergo,netgo -ldflags '-extldflags "-static"' -o "$here/.bin/berth" ./cmd/berth)
	BERTH=$here/.bin/berth
fi
BERTH=$(realpath "$BERTH")
# Short: podman refuses a runroot over 50 characters.
work=$(mktemp -d /tmp/bpull.XXXXXX)
chmod 755 "$work"
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- registry on a free loopback port -----------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
reg=127.0.0.1:$port
mkdir -p "$work/registry"
cat >"$work/registry/config.yml" <<EOF
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry/data
http:
  addr: $reg
  secret: berth-bench-secret
EOF
"$REGISTRY_BIN" serve "$work/registry/config.yml" >"$work/registry/log" 2>&1 &
reg_pid=$!
for ((i = 0; ; i++)); do
	curl -fsS -o /dev/null "http://$reg/v2/" 2>/dev/null && break
	kill -0 "$reg_pid" 2>/dev/null || die "docker-registry exited: $(cat "$work/registry/log")"
	((i < 150)) || die "docker-registry did not answer on $reg"
	sleep 0.1
done

# --- the image: an OCI layout of 5 gzip layers, loaded and pushed by berth -----
echo "generating the image (5 gzip layers of mixed content)..."
python3 - "$work/layout" <<'PY'
import gzip, hashlib, io, json, os, random, sys, tarfile
out = sys.argv[1]
blobs = os.path.join(out, "blobs", "sha256")
os.makedirs(blobs)
rnd = random.Random(42)
words = [("".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 10)))) for _ in range(5000)]

def text(n):  # compressible, text-like (gzip ~3-4x)
    parts, size = [], 0
    while size < n:
        line = " ".join(rnd.choices(words, k=12)) + "\n"
        parts.append(line); size += len(line)
    return "".join(parts).encode()[:n]

chunk = text(1 << 20)
def bigtext(n):  # large compressible file, built from shuffled 1 MiB text chunks
    b = bytearray()
    while len(b) < n:
        o = rnd.randrange(0, len(chunk) - 65536)
        b += chunk[o:o + 65536] + rnd.randbytes(64)
    return bytes(b[:n])

def layer(entries):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        dirs = set()
        for path, data in entries:
            d = os.path.dirname(path)
            parts = d.split("/")
            for i in range(1, len(parts) + 1):
                p = "/".join(parts[:i])
                if p and p not in dirs:
                    dirs.add(p)
                    ti = tarfile.TarInfo(p); ti.type = tarfile.DIRTYPE; ti.mode = 0o755; ti.mtime = 1700000000
                    tf.addfile(ti)
            ti = tarfile.TarInfo(path); ti.size = len(data); ti.mode = 0o644; ti.mtime = 1700000000
            tf.addfile(ti, io.BytesIO(data))
    raw = raw.getvalue()
    gz = gzip.compress(raw, compresslevel=6, mtime=0)
    dg = hashlib.sha256(gz).hexdigest()
    with open(os.path.join(blobs, dg), "wb") as f:
        f.write(gz)
    return {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + dg, "size": len(gz)}, \
        "sha256:" + hashlib.sha256(raw).hexdigest(), len(raw)

specs = [
    # 1: a "base system": 12000 small text files (0.5-8 KiB)
    lambda: [("usr/share/doc/pkg%03d/file%05d.txt" % (i // 100, i), text(rnd.randint(512, 8192))) for i in range(12000)],
    # 2: large compressible files
    lambda: [("opt/data/big%d.txt" % i, bigtext(20 << 20)) for i in range(3)],
    # 3: large incompressible files
    lambda: [("opt/blob/rand%d.bin" % i, rnd.randbytes(15 << 20)) for i in range(3)],
    # 4: mixed mid-size files: "libraries" (random) and "sources" (text)
    lambda: [("usr/lib/app/lib%04d.so" % i, rnd.randbytes(rnd.randint(8 << 10, 64 << 10))) for i in range(400)] +
            [("usr/src/app/src%04d.c" % i, text(rnd.randint(4 << 10, 32 << 10))) for i in range(1000)],
    # 5: a small top layer: config files and one mid-size binary
    lambda: [("etc/app/conf%03d.conf" % i, text(rnd.randint(256, 2048))) for i in range(300)] +
            [("usr/bin/app", rnd.randbytes(8 << 20))],
]
layers, diffs, total_raw = [], [], 0
for s in specs:
    d, diff, n = layer(s())
    layers.append(d); diffs.append(diff); total_raw += n

def put(obj, mt):
    b = json.dumps(obj, separators=(",", ":")).encode()
    dg = hashlib.sha256(b).hexdigest()
    with open(os.path.join(blobs, dg), "wb") as f:
        f.write(b)
    return {"mediaType": mt, "digest": "sha256:" + dg, "size": len(b)}

config = put({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/usr/bin/app"]},
              "rootfs": {"type": "layers", "diff_ids": diffs},
              "history": [{"created_by": "bench layer %d" % (i + 1)} for i in range(len(diffs))]},
             "application/vnd.oci.image.config.v1+json")
manifest = put({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": config, "layers": layers}, "application/vnd.oci.image.manifest.v1+json")
manifest["annotations"] = {"io.containerd.image.name": "docker.io/berth-bench/pull:latest"}
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [manifest]}, f)
with open(os.path.join(out, "oci-layout"), "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
print("  %d layers: %.0f MB unpacked, %.0f MB compressed" % (len(layers), total_raw / 1e6, sum(l["size"] for l in layers) / 1e6))
PY
image=$reg/bench/pull:latest
b0=("$BERTH" --root "$work/seed/root" --runroot "$work/seed/run" --insecure-registry "$reg")
"${b0[@]}" load -q -i "$work/layout" >/dev/null
"${b0[@]}" tag berth-bench/pull:latest "$image"
"${b0[@]}" push -q "$image" >/dev/null
umount_under "$work/seed"
rm -rf "$work/seed" "$work/layout"

# The floor's input: the layer blobs exactly as the registry serves them.
accept="application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json"
curl -fsS -H "Accept: $accept" "http://$reg/v2/bench/pull/manifests/latest" >"$work/manifest.json"
mkdir -p "$work/blobs"
nl=0
for dg in $(jq -r '.layers[].digest' "$work/manifest.json"); do
	nl=$((nl + 1))
	curl -fsS -o "$work/blobs/$nl.tar.gz" "http://$reg/v2/bench/pull/blobs/$dg"
done
csize=$(du -cb "$work"/blobs/*.tar.gz | tail -1 | cut -f1)
echo "  pushed $image: $nl layers, $((csize / 1000000)) MB compressed"

# --- the tools ------------------------------------------------------------------
# prep_<tool> makes a fresh root (not timed); run_<tool> is timed; done_<tool>
# removes what it made.
prep_tar() { mkdir -p "$work/run/tar"; }
run_tar() {
	local i
	for ((i = 1; i <= nl; i++)); do tar -xzf "$work/blobs/$i.tar.gz" -C "$work/run/tar"; done
}

prep_berth() { mkdir -p "$work/run/berth"; }
run_berth() {
	"$BERTH" --root "$work/run/berth/root" --runroot "$work/run/berth/run" --insecure-registry "$reg" \
		pull -q "$image" >/dev/null
}

podman_conf() {
	mkdir -p "$work/podman-conf"
	echo 'unqualified-search-registries = []' >"$work/podman-conf/registries.conf"
	printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' \
		"$work/run/podman/root" "$work/run/podman/runroot" >"$work/podman-conf/storage.conf"
	printf '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' >"$work/podman-conf/containers.conf"
	echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$work/podman-conf/policy.json"
}
podman_cmd() {
	CONTAINERS_REGISTRIES_CONF=$work/podman-conf/registries.conf \
		CONTAINERS_STORAGE_CONF=$work/podman-conf/storage.conf \
		CONTAINERS_CONF=$work/podman-conf/containers.conf \
		podman --root "$work/run/podman/root" --runroot "$work/run/podman/runroot" \
		--tmpdir "$work/run/podman/tmp" --storage-driver overlay \
		--cgroup-manager cgroupfs --events-backend file "$@"
}
prep_podman() {
	[ -d "$work/podman-conf" ] || podman_conf
	mkdir -p "$work/run/podman"
	rm -rf /var/lib/containers/cache # its blob cache, kept whatever --root says
}
run_podman() {
	podman_cmd pull -q --tls-verify=false --signature-policy "$work/podman-conf/policy.json" "$image" >/dev/null
}
done_podman() {
	podman_cmd rmi -a -f >/dev/null 2>&1 || true
	podman_cmd system reset -f >/dev/null 2>&1 || true
	umount_under "$work/run/podman"
	if [ "${host_dir_was[/var/lib/containers/cache]}" = 0 ]; then rm -rf /var/lib/containers/cache; fi
}

dsock=
prep_docker() {
	local d=$work/run/docker i
	mkdir -p "$d/config"
	echo "{\"deprecated-key-path\": \"$d/key.json\"}" >"$d/daemon.json"
	dsock=$d/docker.sock
	dockerd --config-file "$d/daemon.json" --data-root "$d/data" --exec-root "$d/exec" \
		--pidfile "$d/dockerd.pid" -H "unix://$dsock" --storage-driver overlay2 \
		--insecure-registry "$reg" --bridge none --iptables=false --ip6tables=false \
		--ip-masq=false --userland-proxy=false --exec-opt native.cgroupdriver=cgroupfs \
		>"$d/dockerd.log" 2>&1 &
	dockerd_pid=$!
	for ((i = 0; ; i++)); do
		DOCKER_HOST=unix://$dsock DOCKER_CONFIG=$d/config docker version >/dev/null 2>&1 && break
		kill -0 "$dockerd_pid" 2>/dev/null || die "dockerd exited: $(tail -5 "$d/dockerd.log")"
		((i < 400)) || die "dockerd did not answer on $dsock: $(tail -5 "$d/dockerd.log")"
		sleep 0.1
	done
}
run_docker() {
	DOCKER_HOST=unix://$dsock DOCKER_CONFIG=$work/run/docker/config docker pull -q "$image" >/dev/null
}
stop_dockerd() {
	[ -n "$dockerd_pid" ] || return 0
	stop_pid "$dockerd_pid"
	dockerd_pid=
	umount_under "$work/run/docker"
}
done_docker() { stop_dockerd; }

# --- runs ---------------------------------------------------------------------------
echo "tar:    $(tar --version | head -1)"
echo "berth:  $("$BERTH" --version 2>/dev/null | head -1)"
for t in "${tools[@]}"; do
	case $t in
	podman) echo "podman: $(podman --version) (overlay)" ;;
	docker) echo "docker: $(dockerd --version) (overlay2)" ;;
	esac
done
cached=", page cache dropped before each"
[ "${DROP_CACHES:-1}" != 0 ] || cached=", page cache kept"
echo "N=$N runs per tool, interleaved, each into an empty root$cached; wall seconds"
echo
declare -A times=()
for ((r = 1; r <= N; r++)); do
	for t in "${tools[@]}"; do
		rm -rf "$work/run"
		mkdir -p "$work/run"
		"prep_$t"
		drop_caches
		t0=$(now)
		"run_$t" || die "$t: pull failed (run $r)"
		t1=$(now)
		times[$t]+="$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}') "
		if declare -F "done_$t" >/dev/null; then "done_$t"; fi
		umount_under "$work/run"
		rm -rf "$work/run"
	done
done

python3 - "${tools[@]}" <<PY
import statistics, sys
times = {$(for t in "${tools[@]}"; do printf '"%s": [%s], ' "$t" "$(echo ${times[$t]} | tr ' ' ',')"; done)}
floor = statistics.median(times["tar"]) if "tar" in times else None
print("%-8s %9s %15s   %s" % ("tool", "median_s", "ratio_to_floor", "runs_s"))
for t in sys.argv[1:]:
    m = statistics.median(times[t])
    ratio = "%.2fx" % (m / floor) if floor else "-"
    print("%-8s %9.2f %15s   %s" % (t, m, ratio, " ".join("%.2f" % x for x in times[t])))
PY
