#!/usr/bin/env bash
# Brings up the vmbackup appliance on a fresh Debian 12 machine, as root, from this checkout:
# builds the Debian package (appliance/build-deb.sh: the build, the production npm packages and
# the pinned Node runtime) and installs it with apt, which brings the Debian packages it depends
# on and starts the daemon vmbackupd (systemd unit, or in the background without systemd), with
# the SSH console user. What is installed is exactly what the package test (test/package/)
# installs on a fresh Debian 12. Idempotent: run it again after `git pull` to upgrade (the
# configuration and history are kept and migrated; an upgrade whose daemon does not start rolls
# back to the version before).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. appliance/lib.sh

need_root
# To build: npm (on whatever Node the machine has) for the npm packages, dpkg-deb (Essential).
install_node_modules

DEB=$(bash appliance/build-deb.sh | tail -1)
log "installing $DEB"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# --reinstall: a checkout with new commits may carry the same version; --allow-downgrades: one
# moved back to an older commit installs that one.
apt-get install -y -qq --reinstall --allow-downgrades "$DEB"
# File-level restore (vmbackup files) reads guests' file systems with libguestfs, which boots the
# machine's own kernel in its appliance: suggested by the package (an offline install may leave it
# out), installed here.
install_debian_packages libguestfs-tools
ls /boot/vmlinuz-* > /dev/null 2>&1 || install_debian_packages linux-image-amd64

vmbackup --version
log "ready: the daemon runs; open the console with 'vmbackup console' (or ssh console@<this machine>), or see 'vmbackup --help'"
