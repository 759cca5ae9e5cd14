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
