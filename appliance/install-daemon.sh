#!/usr/bin/env bash
# Installs and starts vmbackupd (already built: dist/daemon/main.js), as root; idempotent.
# Called by the Debian package's postinst (VMBACKUP_PACKAGED=1, VMBACKUP_ROOT=/usr/lib/vmbackup/current:
# the unit and the logrotate rule come with the package) or from a checkout (the test bed).
#   install-daemon.sh --stop   stops the daemon (systemd unit, or the background process)
#   - the vmbackup group; /var/lib/vmbackup 0750 root:vmbackup; /srv/vmbackup for repositories
#   - systemd: /etc/systemd/system/vmbackupd.service, enabled and (re)started, when PID 1 is
#     systemd; otherwise vmbackupd runs in the background with a pid file (/run/vmbackup/vmbackupd.pid)
#     and its log in /var/log/vmbackupd.log
#   - an SSH user `console` whose login opens the console (login shell = /usr/local/bin/vmbackup-console)
# Environment: VMBACKUP_STATE_DIR, VMBACKUP_SOCKET override the defaults (tests use them).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${VMBACKUP_ROOT:-$PWD}
PACKAGED=${VMBACKUP_PACKAGED:-}
. appliance/lib.sh
need_root

STATE_DIR=${VMBACKUP_STATE_DIR:-/var/lib/vmbackup}
SOCKET=${VMBACKUP_SOCKET:-/run/vmbackup/api.sock}
RUN_DIR=$(dirname "$SOCKET")
PIDFILE="$RUN_DIR/vmbackupd.pid"
NODE="$ROOT/node_modules/.bin/node"
# systemd is PID 1 (sd_booted(3)); a container or chroot without it runs the daemon in the background.
under_systemd() { [ -d /run/systemd/system ]; }

stop_background() {
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    kill -TERM "$(cat "$PIDFILE")"
    for _ in $(seq 1 600); do kill -0 "$(cat "$PIDFILE")" 2>/dev/null || break; sleep 0.2; done
  fi
  rm -f "$PIDFILE"
}

if [ "${1:-}" = --stop ]; then
  if under_systemd; then systemctl stop vmbackupd.service 2>/dev/null || true; else stop_background; fi
  exit 0
fi

[ -x "$NODE" ] || die "node is not installed in $ROOT/node_modules (run appliance/install.sh)"
[ -f "$ROOT/dist/daemon/main.js" ] || die "vmbackupd is not built ($ROOT/dist/daemon/main.js missing; run appliance/install.sh)"

log "group vmbackup and directories"
getent group vmbackup >/dev/null || groupadd --system vmbackup
# Members of vmbackup-console get the console as their only SSH login (the Match block below):
# the installer's console user (an admin) and the operators "vmbackup user add" makes.
getent group vmbackup-console >/dev/null || groupadd --system vmbackup-console
install -d -m 0750 -o root -g vmbackup "$STATE_DIR"
install -d -m 0750 -o root -g vmbackup /srv/vmbackup
install -d -m 0700 /var/tmp/vmbackup

log "console user"
cat > /usr/local/bin/vmbackup-console <<WRAPPER
#!/bin/sh
# Login shell of the SSH user 'console' (installed by $ROOT/appliance/install-daemon.sh).
# Nothing of the client's environment reaches the console but a checked TERM: a long or odd
# LC_ALL or LANG (sshd accepts LC_* from clients) must not change or crash it (docs/security.md).
# Arguments (sshd's -c with a command from the ssh line) are ignored.
case "\$TERM" in
  ''|*[!A-Za-z0-9._+-]*) TERM=xterm-256color ;;
esac
[ "\${#TERM}" -le 64 ] || TERM=xterm-256color
exec env -i TERM="\$TERM" HOME="\$HOME" USER="\$USER" LOGNAME="\$LOGNAME" LANG=C.UTF-8 \\
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
  VMBACKUP_SOCKET="$SOCKET" MIMALLOC_PURGE_DELAY=3 "$NODE" "$ROOT/dist/cli/main.js" console
WRAPPER
chmod 0755 /usr/local/bin/vmbackup-console
grep -qx /usr/local/bin/vmbackup-console /etc/shells 2>/dev/null || echo /usr/local/bin/vmbackup-console >> /etc/shells
if ! getent passwd console >/dev/null; then
  useradd --create-home --shell /usr/local/bin/vmbackup-console --groups vmbackup,vmbackup-console --comment 'vmbackup console' console
else
  usermod --shell /usr/local/bin/vmbackup-console --append --groups vmbackup,vmbackup-console console
fi
# No password, but not locked either: useradd's "!" makes sshd refuse even key logins when it
# runs without PAM. "*" allows only keys (add them to ~console/.ssh/authorized_keys).
if [ "$(getent shadow console | cut -d: -f2)" = '!' ]; then usermod -p '*' console; fi
if [ -d /etc/ssh/sshd_config.d ]; then
  cat > /etc/ssh/sshd_config.d/50-vmbackup-console.conf <<'SSHD'
# Console users get the console and nothing else (installed by vmbackup, docs/security.md):
# no forwarding of any kind (TCP, unix sockets, agent, X11, tunnels), no ~/.ssh/rc, a terminal.
Match Group vmbackup-console
    ForceCommand /usr/local/bin/vmbackup-console
    DisableForwarding yes
    AllowTcpForwarding no
    AllowStreamLocalForwarding no
    AllowAgentForwarding no
    X11Forwarding no
    PermitTunnel no
    PermitUserRC no
    PermitTTY yes
SSHD
fi

if [ -n "$PACKAGED" ]; then
  # An appliance installed from a checkout before the package: its unit in /etc would override
  # the package's, and its wrappers in /usr/local would shadow /usr/bin/vmbackup.
  if grep -qs 'install-daemon.sh, which replaces @ROOT@\|Installed by appliance/install-daemon.sh' /etc/systemd/system/vmbackupd.service; then rm -f /etc/systemd/system/vmbackupd.service; fi
  if grep -qs '^# Installed by .*/appliance/install.sh' /usr/local/bin/vmbackup; then rm -f /usr/local/bin/vmbackup; fi
  rm -f /usr/local/share/man/man1/vmbackup*.1
fi

if under_systemd; then
  log "systemd unit vmbackupd.service"
  [ -n "$PACKAGED" ] || sed "s|@ROOT@|$ROOT|g" systemd/vmbackupd.service > /etc/systemd/system/vmbackupd.service
  systemctl daemon-reload
  systemctl enable vmbackupd.service
  # Type=notify: returns once the daemon reported READY, fails when it does not start.
  systemctl restart vmbackupd.service || die "vmbackupd did not start; see journalctl -u vmbackupd"
  systemctl reload ssh 2>/dev/null || true
else
  log "no systemd: starting vmbackupd in the background (log: /var/log/vmbackupd.log, rotated weekly)"
  [ -n "$PACKAGED" ] || install -m 0644 appliance/logrotate.d/vmbackupd /etc/logrotate.d/vmbackupd
  install -d -m 0750 -o root -g vmbackup "$RUN_DIR"
  stop_background
  # A socket left by a daemon that died must not pass for the new one's.
  rm -f "$SOCKET"
  # The same libuv pool as the systemd unit (chunk fsyncs and LZ4 share it).
  (umask 0027; MIMALLOC_PURGE_DELAY=3 setsid "$NODE" "$ROOT/dist/daemon/main.js" --state-dir "$STATE_DIR" --socket "$SOCKET" \
      >>/var/log/vmbackupd.log 2>&1 < /dev/null & echo $! > "$PIDFILE")
fi

log "waiting for the control socket $SOCKET"
for _ in $(seq 1 150); do
  [ -S "$SOCKET" ] && break
  # Without systemd: a daemon that exited will not make its socket.
  if ! under_systemd && ! kill -0 "$(cat "$PIDFILE" 2>/dev/null || echo 0)" 2>/dev/null; then break; fi
  sleep 0.2
done
[ -S "$SOCKET" ] || die "vmbackupd did not start; see journalctl -u vmbackupd or /var/log/vmbackupd.log"
log "vmbackupd is running"
