#!/usr/bin/env bash
# Installs what berth needs to build and test on Debian 12, as root.
# Idempotent: packages already present are left as they are.
set -euo pipefail

packages=(busybox-static libseccomp-dev gcc libc6-dev make git ca-certificates)
if [ "${1:-}" = "--test" ]; then
	# Peers and clients the tests and benchmarks drive side by side.
	packages+=(runc crun podman conmon containernetworking-plugins docker.io containerd docker-registry apache2-utils hyperfine time strace iproute2 nftables curl btrfs-progs)
fi
missing=()
for p in "${packages[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Go: the machine image ships it in /usr/local/go; go.mod's toolchain line
# lets an older go fetch the right one through the module proxy.
if ! command -v go >/dev/null 2>&1; then
	if [ -x /usr/local/go/bin/go ]; then
		export PATH=/usr/local/go/bin:$PATH
	else
		apt-get install -y -qq golang-go >/dev/null
	fi
fi
go version

# crun and podman refuse a hybrid cgroup layout while hugetlb is left on
# the v2 hierarchy: mount it as v1 where the host is hybrid.
if [ -d /sys/fs/cgroup/unified ] && [ -d /sys/fs/cgroup/memory ] && ! mountpoint -q /sys/fs/cgroup/hugetlb 2>/dev/null; then
	if grep -qw hugetlb /proc/cgroups; then
		mkdir -p /sys/fs/cgroup/hugetlb
		mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb || echo "note: could not mount hugetlb cgroup v1" >&2
	fi
fi

# overlayfs for the overlay storage driver and containerd's snapshotter.
modprobe overlay 2>/dev/null || true
