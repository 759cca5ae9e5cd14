#!/usr/bin/env bash
# One command from a fresh Debian machine to a running container: installs
# what berth needs, builds it, makes a busybox bundle and runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
export PATH=/usr/local/go/bin:$PATH
make build

bundle=$(mktemp -d /tmp/berth-quickstart.XXXXXX)
trap 'rm -rf "$bundle"' EXIT
mkdir -p "$bundle/rootfs/bin"
cp /bin/busybox "$bundle/rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
	[ "$applet" = busybox ] || ln -sf busybox "$bundle/rootfs/bin/$applet"
done
./bin/berth runtime spec --bundle "$bundle"
# No terminal: print and exit.
sed -i 's/"terminal": true/"terminal": false/; s/"sh"$/"sh", "-c", "echo hello from $(hostname), pid $$; cat \/proc\/self\/cgroup | head -3"/' "$bundle/config.json"
./bin/berth runtime --root /run/berth/quickstart run --bundle "$bundle" "quickstart-$$"
