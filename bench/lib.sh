# Shared by bench/runtime.sh and bench/trace.sh (sourced, not run): builds
# berth and benchtime, makes the busybox bundle, and cleans up on exit.
# Callers set RUNTIMES before sourcing and call bench_setup.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
PREFIX=berth-bench-$$ # container ids and cgroup names start with this
RUNTIMES=${RUNTIMES:-"berth crun runc"}
mounted_hugetlb=
mounted_state=
work=
cleanup_hooks=()

die() {
	echo "${0##*/}: $*" >&2
	exit 1
}

rt_cmd() { # the command line of runtime $1, with its own state root
	case $1 in
	berth) echo "$BERTH runtime --root $work/state/$1" ;;
	*) echo "$(command -v "$1") --root $work/state/$1" ;;
	esac
}

bench_cleanup() {
	set +e
	trap - EXIT INT TERM
	local hook
	for hook in "${cleanup_hooks[@]}"; do $hook; done
	[ -n "$work" ] || return 0
	for rt in $RUNTIMES; do
		[ -d "$work/state/$rt" ] || continue
		for id in $($(rt_cmd "$rt") list -q 2>/dev/null); do
			$(rt_cmd "$rt") delete -f "$id" >/dev/null 2>&1
		done
	done
	if [ -n "$mounted_state" ]; then umount "$work/state"; fi
	# Whatever the runtimes left is reported (a leak is a bug), then removed.
	local left
	left=$(find /sys/fs/cgroup -mindepth 1 -maxdepth 3 -type d -name "$PREFIX*" 2>/dev/null)
	if [ -n "$left" ]; then
		echo "${0##*/}: WARNING: cgroups left behind, removing:" >&2
		echo "$left" >&2
		echo "$left" | sort -r | xargs -r rmdir 2>/dev/null
	fi
	left=$(awk -v w="$work" 'index($5, w) == 1 {print $5}' /proc/self/mountinfo | sort -r)
	if [ -n "$left" ]; then
		echo "${0##*/}: WARNING: mounts left behind, unmounting:" >&2
		echo "$left" >&2
		echo "$left" | xargs -r -n1 umount -l 2>/dev/null
	fi
	rm -rf "$work"
	if [ -n "$mounted_hugetlb" ] && [ -z "${KEEP_HUGETLB:-}" ]; then
		umount /sys/fs/cgroup/hugetlb && rmdir /sys/fs/cgroup/hugetlb 2>/dev/null
		echo "(unmounted the hugetlb v1 hierarchy mounted above)"
	fi
}

bench_setup() {
	[ "$(id -u)" = 0 ] || die "needs root"
	local tool
	for tool in /bin/busybox python3 /usr/bin/time; do
		command -v "$tool" >/dev/null || die "needs $tool (apt-get install -y busybox-static python3 time)"
	done
	for tool in $RUNTIMES; do
		[ "$tool" = berth ] || command -v "$tool" >/dev/null || die "needs $tool (apt-get install -y $tool)"
	done
	work=$(mktemp -d /tmp/berth-bench.XXXXXX)
	trap bench_cleanup EXIT
	trap 'exit 130' INT TERM

	# Container state on tmpfs, as /run is on most hosts (runc, crun and
	# berth keep theirs under /run); STATE_TMPFS=0 keeps it on $TMPDIR's disk.
	mkdir -p "$work/state"
	if [ "${STATE_TMPFS:-1}" != 0 ]; then
		mount -t tmpfs -o size=64m,mode=0711 tmpfs "$work/state"
		mounted_state=1
	fi

	mkdir -p "$here/.bin"
	if [ -z "${BERTH:-}" ]; then
		(cd "$repo" && go build -tags osusergo,netgo -ldflags '-extldflags "-static"' -o "$here/.bin/berth" ./cmd/berth)
		BERTH=$here/.bin/berth
	fi
	BERTH=$(realpath "$BERTH")
	(cd "$repo" && go build -o "$here/.bin/benchtime" ./bench/benchtime)
	benchtime=$here/.bin/benchtime

	# crun refuses a hybrid layout while a controller (hugetlb) is left on v2.
	if [ -d /sys/fs/cgroup/unified ] && grep -q '^hugetlb' /proc/cgroups &&
		! grep -q ' - cgroup cgroup [^ ]*hugetlb' /proc/self/mountinfo; then
		mkdir -p /sys/fs/cgroup/hugetlb
		mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb
		mounted_hugetlb=1
		echo "(mounted the hugetlb v1 hierarchy at /sys/fs/cgroup/hugetlb: crun refuses hybrid hosts without it)"
	fi

	# The rootfs: busybox-static and a link per applet.
	rootfs=$work/rootfs
	mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,run,var}
	cp /bin/busybox "$rootfs/bin/busybox"
	local applet
	for applet in $(/bin/busybox --list-full); do
		[ -e "$rootfs/$applet" ] || ln -s /bin/busybox "$rootfs/$applet"
	done
	echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
	echo 'root:x:0:' >"$rootfs/etc/group"
	(cd "$work" && "$BERTH" runtime spec)
}

# bundle_config OUT ARGS_JSON CGROUPS_PATH writes a config.json made from
# `berth runtime spec`: no terminal, the given args, an absolute root path
# (bundle dirs share the rootfs), ociVersion 1.0.2 (crun 1.8 refuses newer
# ones) and the given cgroupsPath.
bundle_config() {
	python3 - "$work" "$@" <<-'EOF'
		import json, sys
		work, out, args, cgpath = sys.argv[1:]
		c = json.load(open(work + "/config.json"))
		c["ociVersion"] = "1.0.2"
		c["process"]["terminal"] = False
		c["process"]["args"] = json.loads(args)
		c["root"]["path"] = work + "/rootfs"
		c["linux"]["cgroupsPath"] = cgpath
		json.dump(c, open(out, "w"), indent=1)
	EOF
}

print_versions() {
	echo "berth:  $("$BERTH" --version 2>/dev/null | head -1) ($BERTH)"
	local rt
	for rt in crun runc; do
		case " $RUNTIMES " in *" $rt "*) echo "$rt: $($rt --version | head -1)" ;; esac
	done
	echo "kernel: $(uname -r), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

# --- helpers of bench/engine.sh ----------------------------------------------------

# stop_pid PID stops a process: TERM, then KILL after 20 s, and reaps it when
# it is this shell's child.
stop_pid() {
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

# mounts_under DIR prints the mount points under DIR (DIR included), deepest
# first; umount_under DIR unmounts them, lazily.
mounts_under() {
	awk -v w="$1" '$5 == w || index($5, w "/") == 1 {print $5}' /proc/self/mountinfo | sort -r
}
umount_under() {
	mounts_under "$1" | xargs -r -n1 umount -l 2>/dev/null || true
}

# pss_kib PID... prints the processes' summed proportional set size in KiB
# (/proc/PID/smaps_rollup): shared pages count once over all sharers.
pss_kib() {
	local pid kib total=0
	for pid in "$@"; do
		kib=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null) || true
		total=$((total + ${kib:-0}))
	done
	echo "$total"
}

# bench_stamp prints the line above each table: date and load average.
bench_stamp() {
	echo "_$(date -u '+%Y-%m-%d %H:%M:%S UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) CPUs_"
}

# benchtime_md REF turns benchtime's table (stdin, without -title) into a
# markdown table. Labels may hold spaces: the last six fields are the numbers.
benchtime_md() {
	echo "| | runs | median ms | p90 ms | min ms | max ms | median / $1 |"
	echo "|---|--:|--:|--:|--:|--:|--:|"
	awk 'NR > 1 && NF >= 7 {
		label = $1
		for (i = 2; i <= NF - 6; i++) label = label " " $i
		printf "| %s | %s | %s | %s | %s | %s | %s |\n", label, $(NF-5), $(NF-4), $(NF-3), $(NF-2), $(NF-1), $NF
	}'
}
