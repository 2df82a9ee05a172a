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
# lz4-napi's allocator keeps freed memory per thread; purging it after 3 ms keeps a backup's
# peak RSS well under 300 MiB (at once, 0, it re-faults every buffer: ~0.45 CPU s more per
# backup; docs/benchmarks.md). The pool stays at libuv's 4 threads:
# each extra thread costs tens of MiB of allocator cache for little speed on 2 cores.
export MIMALLOC_PURGE_DELAY="\${MIMALLOC_PURGE_DELAY:-3}"
exec "$ROOT/node_modules/.bin/node" "$ROOT/dist/cli/main.js" "\$@"
WRAPPER
chmod 0755 /usr/local/bin/vmbackup

vmbackup --version

log "manual pages and bash completion"
vmbackup man --out /usr/local/share/man/man1 >/dev/null
install -d -m 0755 /usr/share/bash-completion/completions
vmbackup completion bash > /usr/share/bash-completion/completions/vmbackup
mandb --quiet /usr/local/share/man 2>/dev/null || true

bash appliance/install-daemon.sh
log "ready: the daemon runs; open the console with 'vmbackup console' (or ssh console@<this machine>), or see 'vmbackup --help'"
