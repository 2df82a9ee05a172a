#!/usr/bin/env bash
# Test bed: libguestfs (file-level restore, test/cli/files.test.ts) boots a Linux kernel in its
# appliance. A machine without one in /boot (a container) gets the Debian kernel package's files
# unpacked into /var/lib/vmbackup-test/guestfs-kernel — not installed: no initramfs, no boot
# loader — and test/setup.ts points supermin at it (SUPERMIN_KERNEL, SUPERMIN_MODULES).
# libguestfs builds its appliance from them at its first start (cached in /var/tmp/.guestfs-0).
# Idempotent.
set -euo pipefail

D=/var/lib/vmbackup-test/guestfs-kernel
if ! ls /boot/vmlinuz-* > /dev/null 2>&1 && ! ls "$D"/boot/vmlinuz-* > /dev/null 2>&1; then
  pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
  [ -n "$pkg" ] || { echo "no linux-image package found for libguestfs" >&2; exit 1; }
  tmp=$(mktemp -d)
  (cd "$tmp" && apt-get download -qq -o APT::Sandbox::User=root "$pkg")
  rm -rf "$D.new"
  dpkg-deb -x "$tmp"/*.deb "$D.new"
  # supermin reads modules.dep, which the package's postinst would have made.
  k=$(ls "$D.new"/boot/vmlinuz-* | head -1)
  depmod -b "$D.new" "${k##*/vmlinuz-}"
  rm -rf "$tmp" "$D"
  mv "$D.new" "$D"
fi
# supermin copies the modules' directory tree with the host's /lib/modules as its model.
mkdir -p /lib/modules
