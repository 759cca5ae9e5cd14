#!/usr/bin/env bash
# Where the time of `<rt> run` goes: traces K runs per runtime with ftrace
# (syscall, process and cgroup tracepoints of the runtime and its children;
# no ptrace, so little overhead) and prints the median length of each phase,
# from the runtime's exec to its exit, side by side for berth, crun and runc.
# Also lists the syscalls that took 1 ms or more (median count per run and
# total time), which is where kernel waits (RCU grace periods) show.
# Environment: K (runs per runtime, default 20), BERTH, RUNTIMES, KEEP_TRACE=dir
# (keep the raw traces there). Needs root and tracefs; mounts tracefs at
# /sys/kernel/tracing if it is not (and unmounts it at exit); restores the
# tracing settings it changes. See bench/README.md.
set -euo pipefail

K=${K:-20}
source "$(dirname "$0")/lib.sh"
T=/sys/kernel/tracing
mounted_tracefs=
trace_touched=
trace_restore() {
	if [ -n "$trace_touched" ]; then
		echo 0 >$T/tracing_on
		echo 0 >$T/events/enable
		echo >$T/set_event_pid
		echo >$T/trace
		echo "$saved_clock" >$T/trace_clock
		echo "$saved_buf" >$T/buffer_size_kb
		echo "$saved_fork" >$T/options/event-fork
	fi
	if [ -n "$mounted_tracefs" ]; then umount $T; fi
}
cleanup_hooks+=(trace_restore)
bench_setup

if [ ! -e $T/tracing_on ]; then
	mount -t tracefs nodev $T
	mounted_tracefs=1
fi
[ -z "$(cat $T/set_event_pid)" ] && [ "$(cat $T/tracing_on)" = 0 ] ||
	die "ftrace is in use by someone else (tracing_on or set_event_pid set)"
saved_clock=$(sed 's/.*\[\(.*\)\].*/\1/' $T/trace_clock)
saved_buf=$(cat $T/buffer_size_kb)
saved_fork=$(cat $T/options/event-fork)
trace_touched=1
echo mono >$T/trace_clock
echo 16384 >$T/buffer_size_kb
echo 1 >$T/options/event-fork
echo 0 >$T/events/enable
for s in mkdir mkdirat mount pivot_root fcntl openat read recvmsg unshare clone clone3 wait4 waitid \
	execve rmdir unlinkat setns write exit_group; do
	echo 1 >$T/events/syscalls/sys_enter_$s/enable
	echo 1 >$T/events/syscalls/sys_exit_$s/enable
done
for e in sched/sched_process_fork sched/sched_process_exec sched/sched_process_exit \
	cgroup/cgroup_mkdir cgroup/cgroup_rmdir cgroup/cgroup_attach_task; do
	echo 1 >$T/events/$e/enable
done

print_versions
echo "K=$K traced runs per runtime, interleaved; median ms per phase"
mkdir -p "$work/run" "$work/traces"
for ((k = 1; k <= K; k++)); do
	for rt in $RUNTIMES; do
		id=$PREFIX-$rt-$k
		bundle_config "$work/run/config.json" '["true"]' "/$id"
		echo >$T/trace
		# The shell puts itself in set_event_pid and becomes the runtime.
		sh -c "echo \$\$ >$T/set_event_pid; echo 1 >$T/tracing_on; exec \"\$@\"" sh \
			$(rt_cmd "$rt") run --bundle "$work/run" "$id" </dev/null >/dev/null
		echo 0 >$T/tracing_on
		echo >$T/set_event_pid
		cat $T/trace >"$work/traces/$rt.$k"
	done
done
echo 0 >$T/events/enable

# Inside berth's run: bench/berthphases does Run's steps through berth's
# runtime package and times each (untraced).
phases=
case " $RUNTIMES " in *" berth "*)
	(cd "$repo" && go build -tags benchphases -o "$here/.bin/berthphases" ./bench/berthphases)
	for ((k = 1; k <= K; k++)); do
		id=$PREFIX-phases-$k
		bundle_config "$work/run/config.json" '["true"]' "/$id"
		"$here/.bin/berthphases" "$work/state/berth" "$work/run" "$id" </dev/null 2>>"$work/phases" >/dev/null
	done
	phases=$work/phases
	;;
esac
if [ -n "${KEEP_TRACE:-}" ]; then
	mkdir -p "$KEEP_TRACE" && cp "$work"/traces/* "$KEEP_TRACE"/
fi

python3 - "$work/traces" "$phases" $RUNTIMES <<'EOF'
import collections, glob, re, statistics, sys

tdir, phases, runtimes = sys.argv[1], sys.argv[2], sys.argv[3:]
line_re = re.compile(r'^\s*(.+)-(\d+)\s+\[\d+\]\s+\S+\s+([\d.]+):\s+([a-z0-9_]+):?\s?(.*)$')

def parse(path):
    ev = []
    for l in open(path):
        if l.startswith('#'):
            continue
        m = line_re.match(l)
        if m:
            comm, pid, ts, name, rest = m.groups()
            ev.append((float(ts) * 1000, int(pid), name, rest))
    return ev

def analyse(ev):
    t0 = ev[0][0]
    first = lambda pred: next((t for t, p, n, r in ev if pred(p, n, r)), None)
    last = lambda pred: next((t for t, p, n, r in reversed(ev) if pred(p, n, r)), None)
    # The container process is the one that calls pivot_root.
    ctr = next((p for t, p, n, r in ev if n == 'sys_pivot_root'), None)
    if ctr is None:
        return None
    at = {
        'first cgroup mkdir': first(lambda p, n, r: n == 'cgroup_mkdir'),
        'container process forked': first(lambda p, n, r: n == 'sched_process_fork' and f'child_pid={ctr} ' in r + ' '),
        # runc moves the container's parent (runc init) instead.
        'last cgroup attach': last(lambda p, n, r: n == 'cgroup_attach_task'),
        'first mount in the container': first(lambda p, n, r: p == ctr and n == 'sys_mount' and not r.startswith('->')),
        'pivot_root': first(lambda p, n, r: p == ctr and n == 'sys_pivot_root'),
        'exec of true': last(lambda p, n, r: p == ctr and n == 'sched_process_exec'),
        'true exits': first(lambda p, n, r: p == ctr and n == 'sched_process_exit'),
        'runtime exits': last(lambda p, n, r: n == 'sched_process_exit'),
    }
    if None in at.values():
        return None
    attach1 = first(lambda p, n, r: n == 'cgroup_attach_task')
    dur = collections.defaultdict(float)
    slow = collections.defaultdict(list)
    open_ = {}
    for t, p, n, r in ev:
        if not n.startswith('sys_'):
            continue
        if not r.startswith('->'):
            open_[(p, n)] = (t, r.lstrip('('))
            continue
        if (p, n) not in open_:
            continue
        st, args = open_.pop((p, n))
        d = t - st
        if n == 'sys_write' and p != ctr and st <= attach1 <= t:
            dur['write to cgroup.procs (1st controller)'] += d
        if n == 'sys_fcntl' and 'cmd: 0x406,' in args and int(args.split('arg: ')[1].rstrip(')'), 16) >= 64:
            dur['fcntl(F_DUPFD_CLOEXEC, >= 64)'] += d
        if p == ctr and at['pivot_root'] <= st <= at['exec of true']:
            dur['container blocked waiting for start'] = max(dur['container blocked waiting for start'], d)
        if d >= 1.0:
            key = n[4:]
            if n == 'sys_fcntl':
                key += '(cmd ' + args.split('cmd: ')[1].split(',')[0] + ')'
            slow[f"{key} [{'container' if p == ctr else 'runtime'}]"].append(d)
    dur['delete (true exits -> runtime exits)'] = at['runtime exits'] - at['true exits']
    dur['until true runs (runtime exec -> exec of true)'] = at['exec of true'] - t0
    return {k: v - t0 for k, v in at.items()}, dur, slow

res = {}
for rt in runtimes:
    at_all, dur_all = collections.defaultdict(list), collections.defaultdict(list)
    slow_all = collections.defaultdict(list)
    n = 0
    for path in sorted(glob.glob(f'{tdir}/{rt}.*')):
        r = analyse(parse(path))
        if r is None:
            continue
        n += 1
        at, dur, slow = r
        for k, v in at.items():
            at_all[k].append(v)
        for k in ['until true runs (runtime exec -> exec of true)', 'delete (true exits -> runtime exits)',
                  'write to cgroup.procs (1st controller)', 'fcntl(F_DUPFD_CLOEXEC, >= 64)',
                  'container blocked waiting for start']:
            dur_all[k].append(dur.get(k, 0.0))
        for k, ds in slow.items():
            slow_all[k].append(ds)
    res[rt] = (n, at_all, dur_all, slow_all)

def table(title, idx):
    keys = list(res[runtimes[0]][idx].keys())
    print(f"\n{title:50}" + ''.join(f'{rt:>9}' for rt in runtimes))
    for k in keys:
        cells = [statistics.median(res[rt][idx][k]) if res[rt][idx].get(k) else None for rt in runtimes]
        print(f'{k:50}' + ''.join(f'{c:9.2f}' if c is not None else f"{'-':>9}" for c in cells))

table('timeline: ms since the runtime\'s exec (median)', 1)
table('durations, ms (median)', 2)
print(f"{'traced runs analysed':50}" + ''.join(f'{res[rt][0]:>9}' for rt in runtimes))
for rt in runtimes:
    n, _, _, slow_all = res[rt]
    if not n:
        continue
    print(f'\n{rt}: syscalls of >= 1 ms (runs of {n} with one, median count and ms in such a run)')
    items = sorted(slow_all.items(), key=lambda kv: -sum(map(sum, kv[1])))
    for key, per_run in items[:10]:
        print(f'  {key:44} {len(per_run):3d}  x{statistics.median(map(len, per_run)):<4g}'
              f' {statistics.median(map(sum, per_run)):8.2f}')
if phases:
    steps = collections.defaultdict(list)
    for l in open(phases):
        if l.startswith('phases '):
            for kv in l.split()[1:]:
                k, v = kv.split('=')
                steps[k].append(float(v))
    if steps:
        n = len(steps['total'])
        print(f"\nberth's run step by step (bench/berthphases, untraced, from main() on; median ms of {n}):")
        for k, vs in steps.items():
            print(f'  {k:20} {statistics.median(vs):8.2f}')
EOF
