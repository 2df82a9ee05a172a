#!/usr/bin/env bash
# Test bed: an sshd on 127.0.0.1:2222 that stands in for a remote libvirt host.
# Root logs in with a test key only; the host key is recorded in a test known_hosts.
# Everything lives in /var/lib/vmbackup-test/sshd; the system's sshd config is not touched.
# Idempotent: keeps keys and a running sshd.
set -euo pipefail

D=/var/lib/vmbackup-test/sshd
PORT=2222
mkdir -p "$D" /run/sshd
chmod 700 "$D"

[ -f "$D/host_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C vmbackup-test-host -f "$D/host_ed25519"
[ -f "$D/client_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C vmbackup-test-client -f "$D/client_ed25519"
cp "$D/client_ed25519.pub" "$D/authorized_keys"
chmod 600 "$D/authorized_keys"
echo "[127.0.0.1]:$PORT $(cut -d' ' -f1,2 "$D/host_ed25519.pub")" >"$D/known_hosts"

OLD=$(cat "$D/sshd_config" 2>/dev/null || true)
cat >"$D/sshd_config" <<CONF
Port $PORT
ListenAddress 127.0.0.1
HostKey $D/host_ed25519
PidFile $D/sshd.pid
AuthorizedKeysFile $D/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
AllowStreamLocalForwarding yes
AllowTcpForwarding yes
MaxStartups 100:30:200
MaxSessions 100
LogLevel ERROR
# Debian's bash sources ~/.bashrc when sshd starts it, unless SHLVL says the shell is nested; a
# machine's root .bashrc (pyenv's init on the CI machine: ~100 processes and 0.5 CPU s) would
# otherwise run for every command the tests send, and dominate their time.
SetEnv SHLVL=1
CONF

if [ -f "$D/sshd.pid" ] && kill -0 "$(cat "$D/sshd.pid")" 2>/dev/null; then
  # A changed configuration: the listener reads it again (sessions that run keep theirs).
  [ "$OLD" = "$(cat "$D/sshd_config")" ] || kill -HUP "$(cat "$D/sshd.pid")"
  exit 0
fi
/usr/sbin/sshd -f "$D/sshd_config" -E "$D/sshd.log"
for _ in $(seq 1 50); do
  if ssh-keyscan -p "$PORT" 127.0.0.1 >/dev/null 2>&1; then exit 0; fi
  sleep 0.1
done
echo "sshd did not come up; see $D/sshd.log" >&2
exit 1
