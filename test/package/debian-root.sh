#!/usr/bin/env bash
# A fresh Debian 12 root file system for the package test (test/package/deb.test.ts), made once
# per machine and kept in /var/tmp/vmbackup-test/ (rebuilt when the package's dependencies change):
#   test/package/debian-root.sh         prints the directory of a root that has
#     - debootstrap's minbase of bookworm with systemd, systemd-sysv and dbus (so it boots under
#       systemd-nspawn with a real systemd as PID 1), apt's package lists;
#     - in /var/cache/apt/archives every .deb that `apt install ./vmbackup_*.deb` needs (the
#       package's dependencies and recommendations, appliance/lib.sh deb_depends/deb_recommends),
#       downloaded here while the network is there: the install in the test itself runs with no
#       network at all (nspawn --private-network).
# test/run.sh starts it in the background before the suite, so the test seldom waits for it.
# Nothing of vmbackup is in it. Needs debootstrap, systemd-container (systemd-nspawn) and the
# Debian mirror the machine's apt uses.
set -euo pipefail
cd "$(dirname "$0")/../.."
. appliance/lib.sh
CACHE=/var/tmp/vmbackup-test
MIRROR=$(sed -n 's/^URIs: *\(http[^ ]*\/debian\)$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
[ -n "$MIRROR" ] || MIRROR=$(sed -n 's/^deb \(http[^ ]*\/debian\) bookworm main.*/\1/p' /etc/apt/sources.list 2>/dev/null | head -1)
[ -n "$MIRROR" ] || MIRROR=http://deb.debian.org/debian
WANT=$( (deb_depends; deb_recommends) | sort -u | paste -sd' ' -)
KEY=$(printf 'v1 %s %s' "$MIRROR" "$WANT" | sha256sum | cut -c1-16)
ROOT=$CACHE/debian12-$KEY
if [ -f "$ROOT/.complete" ]; then echo "$ROOT"; exit 0; fi

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
if [ -f "$ROOT/.complete" ]; then echo "$ROOT"; exit 0; fi
rm -rf "$ROOT" "$ROOT.tmp"
echo "debian-root: debootstrap bookworm from $MIRROR into $ROOT" >&2
debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$ROOT.tmp" "$MIRROR" >&2
# The same sources as the machine (bookworm, its updates and security), for the lists apt
# resolves with offline later.
SEC=${MIRROR%/debian}/debian-security
cat > "$ROOT.tmp/etc/apt/sources.list" <<SOURCES
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $SEC bookworm-security main
SOURCES
echo vmbackup-test > "$ROOT.tmp/etc/hostname"
# Keep what apt downloads: the offline install takes it from there.
echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' > "$ROOT.tmp/etc/apt/apt.conf.d/01keep"
echo "debian-root: downloading what the package needs: $WANT" >&2
# shellcheck disable=SC2086
systemd-nspawn -q --register=no --keep-unit -D "$ROOT.tmp" --pipe -E DEBIAN_FRONTEND=noninteractive \
  sh -c "apt-get update -qq && apt-get install -y -qq --download-only $WANT" >&2 </dev/null
touch "$ROOT.tmp/.complete"
mv "$ROOT.tmp" "$ROOT"
# Older roots of other dependency sets are not needed any more.
find "$CACHE" -maxdepth 1 -name 'debian12-*' ! -path "$ROOT" -exec rm -rf {} + 2>/dev/null || true
echo "$ROOT"
