#!/usr/bin/env bash
# Test bed: libvirtd (+ virtlogd) started by hand, without systemd (libvirt-backup.md §8).
# Idempotent: does nothing when the QEMU driver already answers on qemu:///system.
# Runs as root on a fresh Debian 12 machine or in a container.
set -euo pipefail

URI=qemu:///system
if virsh -c "$URI" version --daemon >/dev/null 2>&1; then
  exit 0
fi

mkdir -p /var/log/libvirt /run/libvirt /var/lib/libvirt/images /var/lib/libvirt/qemu /var/cache/libvirt

# The QEMU driver refuses to start without its user, even when QEMU runs as root.
getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
getent passwd libvirt-qemu >/dev/null || useradd -r -g libvirt-qemu -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu

# QEMU as root with no security driver, no cgroups, no mount namespaces: a container has none of them.
CONF=/etc/libvirt/qemu.conf
if ! grep -q '^# vmbackup test bed' "$CONF" 2>/dev/null; then
  cat >>"$CONF" <<'CONFEOF'
# vmbackup test bed
user = "root"
group = "root"
remember_owner = 0
security_driver = "none"
namespaces = [ ]
cgroup_controllers = [ ]
CONFEOF
fi

pgrep -x virtlogd >/dev/null || virtlogd -d
# Only one of libvirtd / virtqemud may own the QEMU driver.
if ! pgrep -x libvirtd >/dev/null && ! pgrep -x virtqemud >/dev/null; then
  libvirtd -d
fi

for _ in $(seq 1 100); do
  if virsh -c "$URI" version --daemon >/dev/null 2>&1; then
    if [ -e /dev/kvm ]; then echo "libvirt test bed: KVM"; else echo "libvirt test bed: TCG (no /dev/kvm)"; fi
    exit 0
  fi
  sleep 0.2
done
echo "libvirtd did not come up; see /var/log/libvirt/" >&2
exit 1
