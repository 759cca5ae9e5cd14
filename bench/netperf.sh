#!/usr/bin/env bash
# bench/netperf.sh: what a published port costs. A busybox httpd in a berth
# container on the default bridge serves a SIZE_MB file from tmpfs; curl on
# the host downloads it RUNS times through the published port on 127.0.0.1
# and directly from the container's address, interleaved; medians in MB/s.
# (Setup cost of bridge vs none, side by side with podman: bench/engine.sh.)
#
#   sudo bench/netperf.sh            # RUNS=7 SIZE_MB=256
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
RUNS=${RUNS:-7}
SIZE_MB=${SIZE_MB:-256}
RUNTIMES=berth
# shellcheck source=bench/lib.sh
. "$here/lib.sh"
bench_setup

root=$work/berth-root
B="$BERTH --root $root/root --runroot $root/run"
export BERTH_BRIDGE=bnp$$ BERTH_NFT_TABLE=berth_netperf_$$ BERTH_SUBNET_POOL=10.250.$(($$ % 250)).0/24
netperf_cleanup() {
	$B rm -f np-web >/dev/null 2>&1 || true
	[ -f "$root/run/monitor.pid" ] && kill -9 "$(cat "$root/run/monitor.pid")" 2>/dev/null || true
	ip link del "$BERTH_BRIDGE" 2>/dev/null || true
	nft delete table ip "$BERTH_NFT_TABLE" 2>/dev/null || true
	umount_under "$root" || true
	bench_cleanup
}
trap netperf_cleanup EXIT

tar -C "$rootfs" -cf "$work/rootfs.tar" .
$B import "$work/rootfs.tar" np-busybox >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
$B run -d --name np-web --tmpfs /www:size=$((SIZE_MB + 16))m -p "127.0.0.1:$port:80" np-busybox \
	sh -c "dd if=/dev/zero of=/www/blob bs=1M count=$SIZE_MB 2>/dev/null && exec httpd -f -p 80 -h /www" >/dev/null
ip=$($B inspect -f '{{.NetworkSettings.Networks.bridge.IPAddress}}' np-web)
for _ in $(seq 50); do curl -sf -o /dev/null "http://$ip/blob" && break; sleep 0.2; done

speed() { curl -sf -o /dev/null -w '%{speed_download}' "$1"; }
published=() direct=()
for i in $(seq "$RUNS"); do
	if ((i % 2)); then
		published+=("$(speed "http://127.0.0.1:$port/blob")")
		direct+=("$(speed "http://$ip/blob")")
	else
		direct+=("$(speed "http://$ip/blob")")
		published+=("$(speed "http://127.0.0.1:$port/blob")")
	fi
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
p=$(median "${published[@]}")
d=$(median "${direct[@]}")
echo "# netperf.sh"
echo
bench_stamp
echo
echo "$SIZE_MB MB over HTTP (busybox httpd in the container, curl on the host), $RUNS runs each, interleaved:"
echo
echo "| path | median MB/s | ÷ direct |"
echo "|---|--:|--:|"
awk -v p="$p" -v d="$d" -v port="$port" -v ip="$ip" 'BEGIN {
	printf "| direct to the container, %s:80 | %.0f | 1.00 |\n", ip, d / 1e6
	printf "| published port, 127.0.0.1:%s | %.0f | %.2f |\n", port, p / 1e6, p / d
}'
