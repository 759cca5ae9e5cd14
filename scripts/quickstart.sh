#!/usr/bin/env bash
# One command from a fresh Debian machine to a running container: installs
# what berth needs, builds it, makes a busybox image from Debian's
# busybox-static (no registry involved) and runs a container from it with
# the engine, as `docker run --rm` would.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
export PATH=/usr/local/go/bin:$PATH
make build

work=$(mktemp -d /tmp/berth-quickstart.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/rootfs/bin" "$work/rootfs/etc" "$work/rootfs/tmp"
cp /bin/busybox "$work/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
	[ "$applet" = busybox ] || ln -sf busybox "$work/rootfs/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$work/rootfs/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$work/rootfs/etc/group"
tar -C "$work/rootfs" -cf "$work/busybox.tar" .

./bin/berth import --change 'CMD ["sh"]' "$work/busybox.tar" busybox:quickstart >/dev/null
./bin/berth run --rm --memory 64m busybox:quickstart \
	sh -c 'echo "hello from $(hostname), pid $$, memory limit $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)"'
