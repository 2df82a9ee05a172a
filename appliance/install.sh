#!/usr/bin/env bash
# Brings up the vmbackup appliance on a fresh Debian 12 machine, as root, from this checkout:
# Debian packages, the pinned Node LTS and npm packages, the build, the state directory and the
# `vmbackup` command, the daemon vmbackupd (systemd unit, or in the background without systemd)
# and the SSH console user. Idempotent: run it again after `git pull` to upgrade.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. appliance/lib.sh

need_root
install_debian_packages $(grep -v '^#' appliance/packages.txt)
install_node_modules

log "building"
node_modules/.bin/node node_modules/typescript/bin/tsc -p tsconfig.json

log "state directory /var/lib/vmbackup"
getent group vmbackup >/dev/null || groupadd --system vmbackup
install -d -m 0750 -o root -g vmbackup /var/lib/vmbackup

log "installing the vmbackup command"
cat > /usr/local/bin/vmbackup <<WRAPPER
#!/bin/sh
# Installed by $ROOT/appliance/install.sh
# Chunk fsyncs and LZ4 run on libuv's thread pool; 4 threads (the default) starve a backup.
export UV_THREADPOOL_SIZE="\${UV_THREADPOOL_SIZE:-16}"
exec "$ROOT/node_modules/.bin/node" "$ROOT/dist/cli/main.js" "\$@"
WRAPPER
chmod 0755 /usr/local/bin/vmbackup

vmbackup --version
bash appliance/install-daemon.sh
log "ready: the daemon runs; open the console with 'vmbackup console' (or ssh console@<this machine>), or see 'vmbackup --help'"
