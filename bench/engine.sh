#!/usr/bin/env bash
# Benchmark berth's engine (`berth run`, `berth exec`, ...) against docker,
# podman and bare crun, on one busybox image made here (never pulled):
#   1. `run --rm IMG true`, N runs each, interleaved, timed by bench/benchtime;
#   2. `exec CONTAINER true` into a running `sleep`, N runs each;
#   3. memory of the engine's own processes per idle detached container (PSS),
#      with M containers running;
#   4. wall time to start M detached containers one after another, then P at a
#      time (xargs -P), and to remove them.
# berth's rows need `berth run`; until berth has it they read "engine not
# available". docker runs on a private dockerd, podman on private roots;
# everything lives under one temporary directory.
# Needs root, busybox-static, python3, GNU time; docker (docker.io,
# containerd), podman (conmon) and crun are each skipped when missing.
# Environment: N (runs per row, default 30), M (containers, default 50),
# P (parallel starts, default 8), WARMUP (default 2), ENGINES (default
# "berth docker podman crun"), BERTH (a berth binary; else built into
# bench/.bin), KEEP_HUGETLB=1 (see runtime.sh).
# Leaves nothing behind, however it exits: containers, daemons, mounts,
# cgroups, the firewall chains podman's netavark adds, temp dirs. See
# bench/README.md.
set -euo pipefail

N=${N:-30}
M=${M:-50}
P=${P:-8}
WARMUP=${WARMUP:-2}
ENGINES=${ENGINES:-"berth docker podman crun"}
IMG=localhost/berth-bench-busybox:latest
started=$SECONDS

source "$(dirname "$0")/lib.sh"

have() { command -v "$1" >/dev/null; }
engines=()
for e in $ENGINES; do
	case $e in
	berth) engines+=(berth) ;;
	docker) if have dockerd && have docker && have containerd && have containerd-shim-runc-v2; then engines+=(docker); else echo "(docker, dockerd or containerd not installed: docker skipped)"; fi ;;
	podman) if have podman && have conmon; then engines+=(podman); else echo "(podman or conmon not installed: podman skipped)"; fi ;;
	crun) if have crun; then engines+=(crun); else echo "(crun not installed: crun skipped)"; fi ;;
	*) die "unknown engine $e (ENGINES takes berth docker podman crun)" ;;
	esac
done
uses() { case " ${engines[*]} " in *" $1 "*) return 0 ;; esac; return 1; }
# lib.sh's cleanup deletes the containers of the OCI runtimes in RUNTIMES
# (berth's runtime root is never made here, so it is a no-op).
RUNTIMES=berth
if uses crun; then RUNTIMES=crun; fi

# --- host state the peers may change, recorded before anything runs -----------------
# Fixed host paths the clients make whatever their flags say; removed at exit
# if this script made them.
host_dirs=(/run/docker/plugins /run/docker /run/containerd/s /run/containerd/fifo /run/containerd
	/var/lib/containers/cache /var/lib/containers /run/containers/networks /run/containers /run/netns)
declare -A host_dir_was=()
for d in "${host_dirs[@]}"; do
	if [ -d "$d" ]; then host_dir_was[$d]=1; else host_dir_was[$d]=0; fi
done
# podman's default network (netavark) adds iptables chains, may set
# ip_forward and make nftables tables and a bridge.
ip_forward_was=$(cat /proc/sys/net/ipv4/ip_forward)
netavark_was=$( (iptables-save 2>/dev/null || true) | grep -c NETAVARK || true)
nft_tables_was=$( (nft list tables 2>/dev/null || true) | sort)
podman0_was=0
if ip link show podman0 >/dev/null 2>&1; then podman0_was=1; fi
libpod_parent_was=0
if [ -d /sys/fs/cgroup/memory/libpod_parent ]; then libpod_parent_was=1; fi

bench_setup
cleanup_hooks+=(engine_cleanup)
chmod 755 "$work" # conmon and the containers' processes reach into it
host_pidns=$(readlink /proc/self/ns/pid)

# Persistent roots under $work/e, run roots on a tmpfs (as /run is on most
# hosts) under $work/rt. Short paths: podman refuses a runroot over 50
# characters, and sockets live there.
mkdir -p "$work/e" "$work/rt"
mount -t tmpfs -o size=1g,mode=0755 tmpfs "$work/rt"
tar -C "$rootfs" --owner=0 --group=0 --numeric-owner -cf "$work/rootfs.tar" .

# --- the engines' command lines ------------------------------------------------------
# Plain strings, word-split where used: benchtime splits them on spaces
# anyway, and no path here has one.
B="$BERTH --root $work/e/berth --runroot $work/rt/berth"
D=docker
PM="podman --root $work/e/podman --runroot $work/rt/podman --tmpdir $work/rt/ptmp --volumepath $work/e/pvol
	--network-config-dir $work/e/pnet --storage-driver overlay --cgroup-manager cgroupfs --events-backend file"
PM=$(echo $PM)
C="crun --root $work/state/crun"
# --ulimit: podman asks for nofile 1048576, which this host's hard limit
# refuses.
podman_run="run --pull never --cgroup-parent /$PREFIX-podman --ulimit nofile=20000:20000 --ulimit nproc=32768:32768"
docker_run="run --pull never"
berth_run=run
berth_ok=0
berth_net= # --network none, where berth takes it
dockerd_pid=
podman_ready=0 # podman's configuration is in place (cleanup may call it)

berth_flag() { $B run --help 2>/dev/null | grep -q -- "$1"; }

# Every berth process outside the containers: the binary is ours and its pid
# namespace is the host's (a container's init runs berth too, before exec).
berth_pids() {
	local p
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/exe" 2>/dev/null)" = "$BERTH" ] || continue
		[ "$(readlink "$p/ns/pid" 2>/dev/null)" = "$host_pidns" ] || continue
		echo "${p#/proc/}"
	done
}
# Processes named $1 (prefix) whose command line names this run's directory.
named_pids() {
	local p comm
	for p in /proc/[0-9]*; do
		comm=$(cat "$p/comm" 2>/dev/null) || continue
		case $comm in "$1"*) ;; *) continue ;; esac
		grep -qaF "$work" "$p/cmdline" 2>/dev/null || continue
		echo "${p#/proc/}"
	done
}

# rm_all ENGINE removes every container of ENGINE.
rm_all() {
	local ids id
	case $1 in
	berth)
		ids=$({ $B ps -aq 2>/dev/null || true; cat "$work"/ids-berth* 2>/dev/null || true; } | sort -u)
		if [ -n "$ids" ]; then $B rm -f $ids >/dev/null 2>&1 || true; fi
		rm -f "$work"/ids-berth*
		;;
	docker)
		ids=$($D ps -aq 2>/dev/null) || true
		if [ -n "$ids" ]; then $D rm -f $ids >/dev/null 2>&1 || true; fi
		;;
	podman) $PM rm -a -f -t 0 >/dev/null 2>&1 || true ;;
	crun)
		for id in $($C list -q 2>/dev/null); do $C delete -f "$id" >/dev/null 2>&1 || true; done
		;;
	esac
}

# running ENGINE prints how many of its containers run.
running() {
	case $1 in
	berth) $B ps -q | wc -l ;;
	docker) $D ps -q | wc -l ;;
	podman) $PM ps -q | wc -l ;;
	crun) $C list | awk 'NR > 1 && $3 == "running"' | wc -l ;;
	esac
}

engine_cleanup() {
	set +e
	local e p left
	if [ "$berth_ok" = 1 ]; then
		rm_all berth
		# berth's monitor outlives its last container by design (it exits
		# when idle for a while): stop ours. Any other berth process left is
		# reported.
		for p in $(berth_pids); do
			grep -qaF "$work" "/proc/$p/cmdline" 2>/dev/null || ls -l "/proc/$p/fd" 2>/dev/null | grep -qF "$work" || continue
			if ! grep -qa __monitor "/proc/$p/cmdline" 2>/dev/null; then
				echo "${0##*/}: WARNING: berth process $p ($(tr '\0' ' ' <"/proc/$p/cmdline")) outlived rm -f; stopping it" >&2
			fi
			stop_pid "$p"
		done
		ip link del "$BERTH_BRIDGE" 2>/dev/null
		nft delete table ip "$BERTH_NFT_TABLE" 2>/dev/null
		left=$(mounts_under "$work/rt/berth"; mounts_under "$work/e/berth")
		if [ -n "$left" ]; then
			echo "(berth left $(echo "$left" | wc -l) mounts after rm -f; unmounting them)" >&2
		fi
	fi
	if [ "$podman_ready" = 1 ]; then rm_all podman; fi
	if [ -n "$dockerd_pid" ]; then
		rm_all docker
		[ -n "${docker_net:-}" ] && $D network rm "$docker_net" >/dev/null 2>&1
		stop_pid "$dockerd_pid"
		dockerd_pid=
	fi
	if uses crun; then rm_all crun; fi
	umount_under "$work/e"
	umount_under "$work/rt"
	# The cgroup parents the engines made (podman leaves its conmon cgroups
	# there); what berth left below its parent is a leak, so it is reported.
	left=$(find /sys/fs/cgroup -mindepth 3 -type d -path "*/$PREFIX-berth/*" 2>/dev/null)
	if [ -n "$left" ]; then
		echo "${0##*/}: WARNING: berth left cgroups after rm -f, removing:" >&2
		echo "$left" >&2
	fi
	for e in berth docker podman; do
		find /sys/fs/cgroup -mindepth 2 -maxdepth 2 -type d -name "$PREFIX-$e" 2>/dev/null |
			while read -r p; do find "$p" -depth -type d -exec rmdir {} + 2>/dev/null; done
	done
	if [ "$libpod_parent_was" = 0 ]; then
		find /sys/fs/cgroup -mindepth 2 -maxdepth 2 -type d -name libpod_parent 2>/dev/null |
			while read -r p; do find "$p" -depth -type d -exec rmdir {} + 2>/dev/null; done
	fi
	netavark_undo
	for p in "${host_dirs[@]}"; do
		[ "${host_dir_was[$p]}" = 0 ] && [ -d "$p" ] || continue
		case $p in
		/var/lib/containers/cache | /run/containers/networks) rm -rf "$p" ;;
		/run/netns) umount "$p" 2>/dev/null; rmdir "$p" 2>/dev/null ;;
		*) rmdir "$p" 2>/dev/null ;;
		esac
	done
}

# netavark_undo removes what podman's default network added to the host,
# where it was not there before: its iptables chains and the rules that jump
# to them, nftables tables left empty, the podman0 bridge, ip_forward.
netavark_undo() {
	local t line ch tb
	if [ "$netavark_was" = 0 ] && have iptables-save; then
		for t in filter nat mangle; do
			iptables-save -t "$t" 2>/dev/null | grep -- '^-A ' | grep -v '^-A NETAVARK' | grep NETAVARK |
				while read -r line; do eval "iptables -t $t ${line/-A/-D}" 2>/dev/null; done
			for ch in $(iptables-save -t "$t" 2>/dev/null | awk -F'[: ]' '/^:NETAVARK/ {print $2}'); do
				iptables -t "$t" -F "$ch" 2>/dev/null
			done
			for ch in $(iptables-save -t "$t" 2>/dev/null | awk -F'[: ]' '/^:NETAVARK/ {print $2}'); do
				iptables -t "$t" -X "$ch" 2>/dev/null
			done
		done
	fi
	if have nft; then
		nft list tables 2>/dev/null | sort | comm -13 <(echo "$nft_tables_was") - | while read -r line; do
			tb=${line#table }
			# Only a table without a single rule (rules carry a handle
			# comment outside chain and table lines).
			if ! nft -a list table $tb 2>/dev/null | grep '# handle' | grep -qvE '^\s*(table|chain) '; then
				nft delete table $tb 2>/dev/null
			fi
		done
	fi
	if [ "$podman0_was" = 0 ] && ip link show podman0 >/dev/null 2>&1; then ip link delete podman0 2>/dev/null; fi
	if [ "$(cat /proc/sys/net/ipv4/ip_forward)" != "$ip_forward_was" ]; then
		echo "$ip_forward_was" >/proc/sys/net/ipv4/ip_forward
	fi
}

# --- start the engines and import the image --------------------------------------------
# berth's default bridge, nft table and subnet of its own, removed at exit.
export BERTH_BRIDGE=bbe$$ BERTH_NFT_TABLE=berth_bench_$$ BERTH_SUBNET_POOL=10.252.$(($$ % 250)).0/24
if $B run --help >/dev/null 2>&1; then
	berth_ok=1
	if berth_flag '--pull'; then berth_run="run --pull never"; fi
	if berth_flag '--cgroup-parent'; then berth_run+=" --cgroup-parent /$PREFIX-berth"; fi
	mkdir -p "$work/e/berth"
	$B import "$work/rootfs.tar" "$IMG" >/dev/null || die "berth import failed"
	if berth_flag '--network' && $B $berth_run --rm --network none "$IMG" true </dev/null >/dev/null 2>&1; then
		berth_net="--network none"
	fi
fi

if uses docker; then
	dd=$work/e/docker
	mkdir -p "$dd/config"
	# Its own configuration (nothing from /etc/docker leaks in), no bridge and
	# no iptables: `docker run` gets no network but loopback.
	echo "{\"deprecated-key-path\": \"$dd/key.json\"}" >"$dd/daemon.json"
	# Flags, not DOCKER_HOST/DOCKER_CONFIG: podman reads DOCKER_CONFIG too.
	dsock=unix://$work/rt/docker.sock
	D="docker --config $dd/config -H $dsock"
	dockerd --config-file "$dd/daemon.json" --data-root "$dd/data" --exec-root "$work/rt/docker" \
		--pidfile "$work/rt/dockerd.pid" -H "$dsock" --storage-driver overlay2 \
		--bridge none --iptables=false --ip6tables=false --ip-masq=false --userland-proxy=false \
		--exec-opt native.cgroupdriver=cgroupfs --cgroup-parent "/$PREFIX-docker" \
		>"$dd/dockerd.log" 2>&1 </dev/null &
	dockerd_pid=$!
	for ((i = 0; ; i++)); do
		$D version >/dev/null 2>&1 && break
		kill -0 "$dockerd_pid" 2>/dev/null || die "dockerd exited: $(tail -5 "$dd/dockerd.log")"
		((i < 400)) || die "dockerd did not answer on $dsock: $(tail -5 "$dd/dockerd.log")"
		sleep 0.1
	done
	$D import "$work/rootfs.tar" "$IMG" >/dev/null
	# A user-defined bridge of its own, for the network-setup row: veth,
	# IPAM and bridge as docker does them (without iptables here, so a lower
	# bound of docker's default bridge).
	if $D network create --driver bridge --subnet 10.251.$(($$ % 250)).0/24 \
		-o com.docker.network.bridge.name=bdk$$ "$PREFIX-docker-net" >/dev/null 2>&1; then
		docker_net=$PREFIX-docker-net
	fi
fi

if uses podman; then
	pc=$work/e/podman-conf
	mkdir -p "$pc"
	# No registry is searched for a short name, nothing of the host's storage
	# or engine configuration leaks in.
	echo 'unqualified-search-registries = []' >"$pc/registries.conf"
	printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' \
		"$work/e/podman" "$work/rt/podman" >"$pc/storage.conf"
	printf '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n' >"$pc/containers.conf"
	export CONTAINERS_REGISTRIES_CONF=$pc/registries.conf CONTAINERS_STORAGE_CONF=$pc/storage.conf \
		CONTAINERS_CONF=$pc/containers.conf
	podman_ready=1
	$PM import -q "$work/rootfs.tar" "$IMG" >/dev/null
fi

# --- header -----------------------------------------------------------------------------
echo "# engine.sh"
echo
if [ "$berth_ok" = 1 ]; then
	echo "- berth: $($B --version 2>/dev/null | head -1) ($BERTH), \`$berth_run${berth_net:+ $berth_net}\`"
else
	echo "- berth: $($B --version 2>/dev/null | head -1) ($BERTH): engine not available (no \`berth run\`)"
fi
if uses docker; then
	echo "- docker: client $($D version --format '{{.Client.Version}}'), dockerd $($D version --format '{{.Server.Version}}'), containerd $(containerd --version | awk '{print $3}'), overlay2, cgroupfs, no bridge"
fi
if uses podman; then echo "- podman: $(podman --version | awk '{print $3}'), conmon $(conmon --version | awk 'NR == 1 {print $3}'), overlay, cgroupfs"; fi
if uses crun; then echo "- crun: $(crun --version | head -1 | awk '{print $3}'), bundles with \`berth runtime spec\`'s config"; fi
echo "- kernel $(uname -r), $(nproc) CPUs, $(awk '/^MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
echo "- N=$N runs per row after $WARMUP warm-up runs, interleaved; M=$M containers, P=$P at a time"
echo

ref=docker
if uses crun; then ref=crun; fi
uses "$ref" || ref=${engines[0]:-berth}
na_row() { # na_row COLUMNS: berth's row while it has no engine
	local cells="" i
	for ((i = 2; i < $1; i++)); do cells+=" |"; done
	echo "| berth | engine not available |$cells"
}

# try LABEL=COMMAND: run the command once (an untimed check); on failure or
# after 2 minutes say so and return 1, so that one broken engine does not stop
# the others.
try() {
	local label=${1%%=*} cmd=${1#*=}
	cmd=${cmd//\{i\}/try}
	if ! timeout -k 5 120 $cmd </dev/null >"$work/try.out" 2>&1; then
		fails+=("| $label | failed: $(head -1 "$work/try.out" | cut -c1-200 | tr '|' ' ') |")
		return 1
	fi
}

# timed TITLE RENDER ROWS...: benchtime's table in markdown.
timed() {
	local title=$1 render=$2
	shift 2
	echo "## $title"
	echo
	bench_stamp
	echo
	if [ "$#" -gt 0 ]; then
		if "$benchtime" -n "$N" -warmup "$WARMUP" -ref "$ref" ${render:+-render "$render"} "$@" \
			>"$work/bt.out" 2>&1; then
			benchtime_md "$ref" <"$work/bt.out"
		else
			echo "| | failed |"
			echo "|---|---|"
			echo "| benchtime | $(tail -c 600 "$work/bt.out" | tr '\n|' '  ') |"
		fi
	else
		echo "| | runs | median ms | p90 ms | min ms | max ms | median / $ref |"
		echo "|---|--:|--:|--:|--:|--:|--:|"
	fi
	[ "$berth_ok" = 1 ] || na_row 7
	local f
	for f in "${fails[@]}"; do echo "$f"; done
	echo
}

# --- 1. run --rm IMG true ---------------------------------------------------------------
mkdir -p "$work/run"
bundle_config "$work/run/config.tmpl" '["true"]' "/$PREFIX-{label}-{i}"
cp "$work/run/config.tmpl" "$work/run/config.json"
sed -i "s/{label}-{i}/crun-try/" "$work/run/config.json"
rows=() fails=()
for e in "${engines[@]}"; do
	case $e in
	berth)
		[ "$berth_ok" = 1 ] || continue
		r="berth=$B $berth_run --rm $IMG true" && try "$r" && rows+=("$r")
		if [ -n "$berth_net" ]; then
			r="berth --network none=$B $berth_run --rm --network none $IMG true"
			try "$r" && rows+=("$r")
		fi
		;;
	docker)
		r="docker=$D $docker_run --rm $IMG true" && try "$r" && rows+=("$r")
		if [ -n "${docker_net:-}" ]; then
			r="docker --network bridge-net=$D $docker_run --rm --network $docker_net $IMG true"
			try "$r" && rows+=("$r")
		fi
		;;
	podman)
		r="podman=$PM $podman_run --rm $IMG true" && try "$r" && rows+=("$r")
		r="podman --network none=$PM $podman_run --rm --network none $IMG true" && try "$r" && rows+=("$r")
		;;
	crun) r="crun=$C run --bundle $work/run $PREFIX-crun-{i}" && try "$r" && rows+=("$r") ;;
	esac
done
timed "1. \`run --rm IMG true\`: wall ms" "$work/run/config.tmpl:$work/run/config.json" "${rows[@]}"

# --- 2. exec CONTAINER true -------------------------------------------------------------
# Into a `sleep 3600` started detached (crun: run -d of a bundle).
mkdir -p "$work/sleep"
bundle_config "$work/sleep/config.json" '["sleep", "3600"]' "/$PREFIX-crun-sleep"
# detach COMMAND...: run it, set id to what it printed. Output to a file, not
# a pipe: a monitor that kept it open would hang a $(...).
detach() {
	id=
	timeout -k 5 120 "$@" </dev/null >"$work/id.out" 2>"$work/try.out" || return 1
	id=$(tr -d '[:space:]' <"$work/id.out")
}
rows=() fails=()
for e in "${engines[@]}"; do
	id=
	case $e in
	berth)
		[ "$berth_ok" = 1 ] || continue
		detach $B $berth_run -d $berth_net "$IMG" sleep 3600 && cat "$work/id.out" >>"$work/ids-berth"
		r="berth=$B exec $id true"
		;;
	docker)
		detach $D $docker_run -d --network none "$IMG" sleep 3600
		r="docker=$D exec $id true"
		;;
	podman)
		detach $PM $podman_run -d --network none "$IMG" sleep 3600
		r="podman=$PM exec $id true"
		;;
	crun)
		id=$PREFIX-crun-sleep
		$C run -d --bundle "$work/sleep" "$id" </dev/null >/dev/null 2>"$work/try.out" || id=
		r="crun=$C exec $id true"
		;;
	esac
	if [ -z "$id" ]; then
		fails+=("| $e | failed to start \`sleep\`: $(head -1 "$work/try.out" | cut -c1-200 | tr '|' ' ') |")
		continue
	fi
	try "$r" && rows+=("$r")
done
timed "2. \`exec CONTAINER true\` into a running \`sleep\`: wall ms" "" "${rows[@]}"
for e in "${engines[@]}"; do
	[ "$e" != berth ] || [ "$berth_ok" = 1 ] || continue
	rm_all "$e"
done

# --- 3 and 4. M detached containers: memory, and how fast they start --------------------
# One command per container, through xargs in both batches (-P1, then -P$P),
# so both pay the same fork/exec of the client.
mkdir -p "$work/batch"
if uses crun; then
	for ((i = 1; i <= M; i++)); do
		mkdir -p "$work/batch/b$i"
		bundle_config "$work/batch/b$i/config.json" '["sleep", "3600"]' "/$PREFIX-crun-b$i"
	done
fi
start_cmd() { # the command xargs runs per container, {} the container's number
	case $1 in
	berth) echo "$B $berth_run -d $berth_net $IMG sleep 3600" ;;
	docker) echo "$D $docker_run -d --network none $IMG sleep 3600" ;;
	podman) echo "$PM $podman_run -d --network none $IMG sleep 3600" ;;
	crun) echo "sh -c '$C create --bundle $work/batch/b{} $PREFIX-crun-b{} && $C start $PREFIX-crun-b{}'" ;;
	esac
}
# batch ENGINE PAR: start M containers, PAR at a time; sets batch_s (the
# seconds) or batch_err.
batch() {
	local t0 t1 rc=0
	batch_s= batch_err=
	t0=$EPOCHREALTIME
	# timeout kills xargs and what it started (its own process group).
	seq 1 "$M" | eval "timeout -k 10 $((60 + 10 * M)) xargs -P $2 -I{} $(start_cmd "$1")" \
		>>"$work/ids-$1" 2>"$work/batch.err" || rc=$?
	t1=$EPOCHREALTIME
	if [ "$rc" != 0 ]; then
		batch_err="xargs exit $rc: $(head -1 "$work/batch.err" | cut -c1-200 | tr '|' ' ')"
		return 1
	fi
	batch_s=$(secs "$t0" "$t1")
}
secs() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", b - a}'; }
per() { awk -v s="$1" -v m="$M" 'BEGIN {printf "%.0f", s * 1000 / m}'; }
kib() { awk -v k="$1" -v m="$M" 'BEGIN {printf "%.0f", k / m}'; }

mem_rows=() start_rows=()
for e in "${engines[@]}"; do
	if [ "$e" = berth ] && [ "$berth_ok" != 1 ]; then continue; fi
	dpss0=0 cpss0=0 cpid=
	if [ "$e" = docker ]; then
		cpid=$(pgrep -P "$dockerd_pid" -x containerd | head -1) || true
		dpss0=$(pss_kib "$dockerd_pid") cpss0=$(pss_kib $cpid)
	fi
	if ! batch "$e" 1; then
		mem_rows+=("| $e | failed: $batch_err | | | |")
		start_rows+=("| $e | failed: $batch_err | | | | |")
		rm_all "$e"
		continue
	fi
	seq_s=$batch_s
	n=$(running "$e")
	note=
	[ "$n" = "$M" ] || note=" (only $n of $M running)"
	# Idle means idle: every engine gets the same 5 s to settle after the
	# last start before its memory is read (berth's monitor trims itself
	# after 2 s without clients).
	sleep 5
	case $e in
	berth)
		pids=$(berth_pids)
		nmon=0 nother=0
		for p in $pids; do
			if grep -qa __monitor "/proc/$p/cmdline" 2>/dev/null; then nmon=$((nmon + 1)); else nother=$((nother + 1)); fi
		done
		k=$(pss_kib $pids)
		mem_rows+=("| berth | every berth process outside the containers: $nmon \`__monitor\`, $nother other$note | $k | $(kib "$k") |")
		;;
	podman)
		pids=$(named_pids conmon)
		k=$(pss_kib $pids)
		mem_rows+=("| podman | $(echo $pids | wc -w) conmon$note | $k | $(kib "$k") |")
		;;
	docker)
		pids=$(named_pids containerd-shim)
		k=$(pss_kib $pids)
		dg=$(($(pss_kib "$dockerd_pid") - dpss0))
		cg=$(($(pss_kib $cpid) - cpss0))
		mem_rows+=("| docker | $(echo $pids | wc -w) containerd-shim$note | $k | $(kib "$k") |")
		mem_rows+=("| docker | dockerd's growth | $dg | $(kib "$dg") |")
		mem_rows+=("| docker | **shims + dockerd's growth** | $((k + dg)) | **$(kib $((k + dg)))** |")
		mem_rows+=("| docker | containerd's growth (not in the sum) | $cg | $(kib "$cg") |")
		;;
	crun) mem_rows+=("| crun | none: no process but the container's$note | 0 | 0 |") ;;
	esac
	t0=$EPOCHREALTIME
	rm_all "$e"
	rm_s=$(secs "$t0" "$EPOCHREALTIME")
	if ! batch "$e" "$P"; then
		start_rows+=("| $e | $seq_s | $(per "$seq_s") | failed: $batch_err | | $rm_s |")
		rm_all "$e"
		continue
	fi
	par_s=$batch_s
	n2=$(running "$e")
	[ "$n2" = "$M" ] || note+=" (-P$P: only $n2 of $M running)"
	rm_all "$e"
	start_rows+=("| $e$note | $seq_s | $(per "$seq_s") | $par_s | $(per "$par_s") | $rm_s |")
done

echo "## 3. Memory per idle detached container (\`run -d IMG sleep 3600\`, M=$M)"
echo
bench_stamp
echo
echo "PSS from /proc/PID/smaps_rollup of the engine's own processes, not the containers'."
echo
echo "| engine | processes counted | total PSS KiB | KiB per container |"
echo "|---|---|--:|--:|"
[ "$berth_ok" = 1 ] || na_row 4
for r in "${mem_rows[@]}"; do echo "$r"; done
echo
echo "## 4. Starting M=$M detached containers (\`run -d IMG sleep 3600\`): wall seconds"
echo
bench_stamp
echo
echo "crun: \`crun create\` + \`crun start\` of prepared bundles. Remove: all M, after the first batch."
echo
echo "| engine | one after another s | ms each | $P at a time s | ms each | remove all s |"
echo "|---|--:|--:|--:|--:|--:|"
[ "$berth_ok" = 1 ] || na_row 6
for r in "${start_rows[@]}"; do echo "$r"; done
echo
echo "_took $((SECONDS - started)) s_"
