#!/usr/bin/env bash
# Benchmark berth's OCI runtime against crun and runc on one busybox bundle:
#   1. `<rt> run` of `true` (create + start + wait + delete), N runs each,
#      plus unshare(1) creating all 7 namespaces as a floor;
#   2. `<rt> exec <id> true` into a running container, N runs each;
#   3. peak RSS of `<rt> create`, and of the container's process while it
#      waits in "created".
# Runs are interleaved across runtimes and timed by bench/benchtime.
# Needs root, busybox-static, crun, runc, python3, GNU time (/usr/bin/time).
# Environment: N (runs, default 50), WARMUP (default 3), BERTH (a berth
# binary; else built into bench/.bin), RUNTIMES (default "berth crun runc"),
# KEEP_HUGETLB=1 (keep the hugetlb v1 mount this script may add for crun).
# Leaves nothing behind: containers, cgroups, mounts and temp dirs are
# removed on exit, however it exits. See bench/README.md.
set -euo pipefail

N=${N:-50}
WARMUP=${WARMUP:-3}
source "$(dirname "$0")/lib.sh"
bench_setup
print_versions
echo "N=$N timed runs per line after $WARMUP warm-up runs, interleaved; times in ms"
echo

ref=crun
case " $RUNTIMES " in *" crun "*) ;; *) ref=${RUNTIMES%% *} ;; esac

# --- 1. run -------------------------------------------------------------------
mkdir -p "$work/run"
# benchtime fills in {label} and {i} before each run: every container has its
# own id and cgroupsPath.
bundle_config "$work/run/config.tmpl" '["true"]' "/$PREFIX-{label}-{i}"
args=()
for rt in $RUNTIMES; do
	args+=("$rt=$(rt_cmd "$rt") run --bundle $work/run $PREFIX-$rt-{i}")
done
args+=("unshare-7ns=$(command -v unshare) -m -u -i -n -p -C -U -f --mount-proc $rootfs/bin/true")
"$benchtime" -n "$N" -warmup "$WARMUP" -ref "$ref" -render "$work/run/config.tmpl:$work/run/config.json" \
	-title "run: create, start, wait and delete a container running true" "${args[@]}"
echo

# --- 2. exec ------------------------------------------------------------------
mkdir -p "$work/sleep"
args=()
for rt in $RUNTIMES; do
	bundle_config "$work/sleep/config.json" '["sleep", "100000"]' "/$PREFIX-$rt-sleep"
	$(rt_cmd "$rt") run -d --bundle "$work/sleep" "$PREFIX-$rt-sleep" </dev/null >/dev/null 2>&1 ||
		die "$rt: run -d failed"
	args+=("$rt=$(rt_cmd "$rt") exec $PREFIX-$rt-sleep true")
done
"$benchtime" -n "$N" -warmup "$WARMUP" -ref "$ref" \
	-title "exec: true in a running container (sleep)" "${args[@]}"
for rt in $RUNTIMES; do
	$(rt_cmd "$rt") delete -f "$PREFIX-$rt-sleep" >/dev/null
done
echo

# --- 3. memory ------------------------------------------------------------------
# Peak RSS of the create command and the children it reaped (wait4's
# ru_maxrss, as GNU time reports it), then the container process's own peak
# (VmHWM) while it waits for start. Median of 5 creates each.
mkdir -p "$work/create"
echo "memory: peak RSS in MiB, median of 5 creates"
printf '%8s  %14s  %26s\n' "" "create command" "container process, created"
med() { printf '%s\n' "$@" | sort -n | sed -n 3p; }
for rt in $RUNTIMES; do
	peaks=() hwms=()
	for i in 1 2 3 4 5; do
		id=$PREFIX-$rt-create-$i
		bundle_config "$work/create/config.json" '["true"]' "/$id"
		/usr/bin/time -f %M -o "$work/rss" $(rt_cmd "$rt") create --bundle "$work/create" "$id" \
			</dev/null >/dev/null 2>&1 || die "$rt: create failed"
		peaks+=("$(cat "$work/rss")")
		pid=$($(rt_cmd "$rt") state "$id" | python3 -c 'import json, sys; print(json.load(sys.stdin)["pid"])')
		hwms+=("$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")")
		$(rt_cmd "$rt") delete -f "$id" >/dev/null
	done
	awk -v rt="$rt" -v p="$(med "${peaks[@]}")" -v h="$(med "${hwms[@]}")" \
		'BEGIN { printf "%8s  %14.1f  %26.1f\n", rt, p / 1024, h / 1024 }'
done
