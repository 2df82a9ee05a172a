#!/usr/bin/env bash
# The demo lab's privileged part, run as root by vmbackupd (POST /demo-lab) or by hand:
#   demo-lab.sh up   [options]  libvirt + QEMU installed and running, two small VMs with no OS
#                               ("<prefix>web": 256 MiB qcow2 with an ext4 file system + 64 MiB raw
#                               data disk; "<prefix>db": 128 MiB qcow2 with an ext4 file system),
#                               defined and running; the oVirt simulator running on 127.0.0.1
#                               with its two default VMs that have disks.
#                               Prints one JSON line on stdout (what it made); progress on stderr.
#   demo-lab.sh down [options]  stops the simulator, destroys and undefines the VMs, removes their
#                               files (never a VM it did not create: only domains whose disks are
#                               under --dir).
#   demo-lab.sh sim-run [options]  the simulator in the foreground (the systemd unit runs this).
# Options: --prefix demo-   --dir /var/lib/vmbackup-demo   --sim-dir /var/lib/vmbackup/demo
#          --sim-port 8443  --no-packages (skip apt; fail with a hint when something is missing)
# Idempotent: what exists and runs already is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
. appliance/lib.sh

ACTION=${1:-up}
[ $# -gt 0 ] && shift
case "$ACTION" in -h|--help|help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;; esac
PREFIX=demo-
DIR=/var/lib/vmbackup-demo
SIM_DIR=/var/lib/vmbackup/demo
SIM_PORT=8443
PACKAGES=1
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX=$2; shift 2 ;;
    --dir) DIR=$2; shift 2 ;;
    --sim-dir) SIM_DIR=$2; shift 2 ;;
    --sim-port) SIM_PORT=$2; shift 2 ;;
    --no-packages) PACKAGES=0; shift ;;
    *) die "unknown option $1 (see the top of $0)" ;;
  esac
done
[[ $PREFIX =~ ^[a-z][a-z0-9-]{0,20}$ ]] || die "--prefix must be lowercase letters, digits and - (got '$PREFIX')"
[[ $SIM_PORT =~ ^[0-9]+$ ]] || die "--sim-port must be a port number"
case "$DIR" in /*) ;; *) die "--dir must be an absolute path" ;; esac
case "$SIM_DIR" in /*) ;; *) die "--sim-dir must be an absolute path" ;; esac

URI=qemu:///system
WEB="${PREFIX}web"
DB="${PREFIX}db"
PASSWORD_FILE="$SIM_DIR/ovirt-sim.password"
PID_FILE="$SIM_DIR/ovirt-sim.pid"
CA_FILE="$SIM_DIR/ovirt-sim-ca.pem"
SIM_LOG="$SIM_DIR/ovirt-sim.log"
UNIT=vmbackup-ovirt-sim
has_systemd() { [ -d /run/systemd/system ]; }
virsh_q() { virsh -q -c "$URI" "$@"; }

# ---- the simulator in the foreground (systemd unit, or the background process below) ---------
sim_run() {
  [ -r "$PASSWORD_FILE" ] || die "no simulator password at $PASSWORD_FILE; run '$0 up' first"
  # The password goes through the environment (readable by root only), never the command line.
  VMBACKUP_SIM_PASSWORD=$(cat "$PASSWORD_FILE")
  export VMBACKUP_SIM_PASSWORD VMBACKUP_SIM_PORT=$SIM_PORT VMBACKUP_SIM_CA_FILE=$CA_FILE
  # The simulator makes a new CA at each start; the file appears once this one is serving.
  rm -f "$CA_FILE"
  # The Debian package carries the simulator compiled (dist-demo-sim); a checkout runs its source.
  local sim_module=$ROOT/test/ovirt-sim/index.ts loader=(--import tsx)
  if [ -f "$ROOT/dist-demo-sim/index.js" ]; then sim_module=$ROOT/dist-demo-sim/index.js; loader=(); fi
  export VMBACKUP_SIM_MODULE=$sim_module
  exec "$ROOT/node_modules/.bin/node" "${loader[@]}" --input-type=module -e '
    const {startSimulator, DEFAULT_VMS} = await import(process.env.VMBACKUP_SIM_MODULE);
    const password = process.env.VMBACKUP_SIM_PASSWORD;
    delete process.env.VMBACKUP_SIM_PASSWORD;
    const sim = await startSimulator({port: Number(process.env.VMBACKUP_SIM_PORT), password, delayMs: 100, vms: DEFAULT_VMS.filter((v) => v.disks.length > 0)});
    const {writeFileSync, renameSync} = await import("node:fs");
    const caFile = process.env.VMBACKUP_SIM_CA_FILE;
    writeFileSync(caFile + ".tmp", sim.caPem, {mode: 0o644});
    renameSync(caFile + ".tmp", caFile);
    console.log(`oVirt simulator ready: ${sim.url} user ${sim.user}, CA SHA256 ${sim.caFingerprint}, VMs: ${sim.vms.map((v) => v.name).join(", ")}`);
    const stop = () => void sim.stop().then(() => process.exit(0));
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  '
}

sim_answers() {
  curl -sfk --max-time 3 -o /dev/null "https://127.0.0.1:$SIM_PORT/ovirt-engine/services/pki-resource?resource=ca-certificate&format=X509-PEM-CA"
}

sim_pid() {
  local pid
  pid=$(cat "$PID_FILE" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

sim_up() {
  install -d -m 0700 "$SIM_DIR"
  if [ ! -s "$PASSWORD_FILE" ]; then
    log "generating the simulator's password ($PASSWORD_FILE, 0600)"
    (umask 077; openssl rand -hex 16 > "$PASSWORD_FILE")
  fi
  chmod 0600 "$PASSWORD_FILE"
  if has_systemd && [ "$SIM_PORT" = 8443 ] && [ "$SIM_DIR" = /var/lib/vmbackup/demo ]; then
    log "oVirt simulator: systemd unit $UNIT"
    sed "s|@ROOT@|$ROOT|g" systemd/$UNIT.service > /etc/systemd/system/$UNIT.service
    systemctl daemon-reload
    systemctl enable --now $UNIT.service >/dev/null 2>&1 || systemctl start $UNIT.service
  elif sim_pid >/dev/null; then
    log "oVirt simulator: already running (pid $(sim_pid))"
  else
    if sim_answers; then
      die "something else already listens on 127.0.0.1:$SIM_PORT; stop it or choose another port (--sim-port)"
    fi
    log "oVirt simulator: starting in the background on 127.0.0.1:$SIM_PORT (log $SIM_LOG)"
    setsid bash "$ROOT/appliance/demo-lab.sh" sim-run --sim-dir "$SIM_DIR" --sim-port "$SIM_PORT" >"$SIM_LOG" 2>&1 < /dev/null &
    echo $! > "$PID_FILE"
  fi
  for _ in $(seq 1 300); do
    if [ -s "$CA_FILE" ] && sim_answers; then return 0; fi
    if ! has_systemd && ! sim_pid >/dev/null; then break; fi
    sleep 0.2
  done
  tail -n 20 "$SIM_LOG" >&2 2>/dev/null || true
  die "the oVirt simulator did not come up on 127.0.0.1:$SIM_PORT (log: $SIM_LOG)"
}

sim_down() {
  if has_systemd && systemctl list-unit-files $UNIT.service >/dev/null 2>&1 && [ "$SIM_PORT" = 8443 ]; then
    systemctl disable --now $UNIT.service >/dev/null 2>&1 || true
  fi
  local pid
  if pid=$(sim_pid); then
    log "stopping the oVirt simulator (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$PID_FILE"
}

# ---- libvirt ----------------------------------------------------------------------------------
libvirt_up() {
  if [ "$PACKAGES" = 1 ]; then
    install_debian_packages qemu-system-x86 libvirt-daemon-system qemu-utils e2fsprogs openssl curl
  else
    for c in virsh qemu-img mkfs.ext4 openssl curl; do
      command -v "$c" >/dev/null || die "$c is missing; install qemu-system-x86 libvirt-daemon-system qemu-utils e2fsprogs openssl curl (or run without --no-packages)"
    done
  fi
  if virsh -c "$URI" version --daemon >/dev/null 2>&1; then return 0; fi
  if has_systemd; then
    log "starting libvirtd (systemd)"
    systemctl start virtlogd.service libvirtd.service
  else
    # No systemd (a container): start the daemons by hand, QEMU as root without a security
    # driver, cgroups or namespaces, which a container does not have.
    log "starting libvirtd and virtlogd (no systemd)"
    mkdir -p /var/log/libvirt /run/libvirt /var/lib/libvirt/images /var/lib/libvirt/qemu /var/cache/libvirt
    getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
    getent passwd libvirt-qemu >/dev/null || useradd -r -g libvirt-qemu -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu
    local conf=/etc/libvirt/qemu.conf
    if ! grep -q '^# vmbackup' "$conf" 2>/dev/null; then
      printf '%s\n' '# vmbackup demo lab (no systemd)' 'user = "root"' 'group = "root"' 'remember_owner = 0' \
        'security_driver = "none"' 'namespaces = [ ]' 'cgroup_controllers = [ ]' >> "$conf"
    fi
    pgrep -x virtlogd >/dev/null || virtlogd -d
    if ! pgrep -x libvirtd >/dev/null && ! pgrep -x virtqemud >/dev/null; then libvirtd -d; fi
  fi
  for _ in $(seq 1 100); do
    virsh -c "$URI" version --daemon >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  die "libvirtd did not come up; see /var/log/libvirt/ (or journalctl -u libvirtd)"
}

# A qcow2 image holding an ext4 file system filled from a directory (mkfs.ext4 -d needs a raw file).
make_fs_image() {
  local out=$1 size=$2 from=$3 label=$4
  [ -e "$out" ] && return 0
  local raw="$out.tmp.raw"
  truncate -s "$size" "$raw"
  mkfs.ext4 -q -F -L "$label" -d "$from" "$raw"
  qemu-img convert -q -f raw -O qcow2 "$raw" "$out.tmp"
  rm -f "$raw"
  mv "$out.tmp" "$out"
}

xml_escape() { sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' -e "s/'/\&apos;/g"; }

disk_xml() {
  local path format target
  path=$(printf '%s' "$1" | xml_escape); format=$2; target=$3
  printf "    <disk type='file' device='disk'><driver name='qemu' type='%s' discard='unmap'/><source file='%s'/><target dev='%s' bus='virtio'/></disk>\n" "$format" "$path" "$target"
}

define_vm() {
  local name=$1 vmdir=$2; shift 2
  if virsh_q domuuid "$name" >/dev/null 2>&1; then
    log "VM $name: already defined"
  else
    log "VM $name: defining"
    local type=qemu
    [ -e /dev/kvm ] && type=kvm
    {
      echo "<domain type='$type'>"
      echo "  <name>$(printf '%s' "$name" | xml_escape)</name>"
      echo "  <description>vmbackup demo lab VM (no operating system; disks hold data)</description>"
      echo "  <memory unit='MiB'>64</memory><vcpu>1</vcpu>"
      echo "  <os><type arch='x86_64' machine='q35'>hvm</type><boot dev='hd'/></os>"
      echo "  <on_poweroff>destroy</on_poweroff>"
      echo "  <devices>"
      while [ $# -gt 0 ]; do disk_xml "$1" "$2" "$3"; shift 3; done
      echo "    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>"
      echo "  </devices>"
      echo "</domain>"
    } > "$vmdir/domain.xml"
    virsh_q define "$vmdir/domain.xml" >/dev/null
  fi
  if [ "$(virsh_q domstate "$name")" != running ]; then
    log "VM $name: starting"
    virsh_q start "$name" >/dev/null
  fi
}

# True when a VM of that name is defined and its disks live under our directory.
ours() { virsh_q domblklist "$1" --details 2>/dev/null | grep -qF "$DIR/$1/"; }

vms_up() {
  local web_dir="$DIR/$WEB" db_dir="$DIR/$DB" name
  # Never adopt someone else's VM that happens to have our name.
  for name in "$WEB" "$DB"; do
    if virsh_q domuuid "$name" >/dev/null 2>&1 && ! ours "$name"; then
      die "a VM named $name exists and is not the demo lab's (its disks are not under $DIR); choose another prefix (--prefix)"
    fi
  done
  # 0755: under systemd QEMU runs as libvirt-qemu and must reach the images.
  install -d -m 0755 "$DIR" "$web_dir" "$db_dir"
  local licenses=/usr/share/common-licenses zones=/usr/share/zoneinfo
  [ -d "$licenses" ] || licenses=/usr/share/doc
  [ -d "$zones" ] || zones=/usr/share/doc
  make_fs_image "$web_dir/system.qcow2" 256M "$licenses" demo-web
  if [ ! -e "$web_dir/data.raw" ]; then
    # 4 MiB of random data at 1 MiB, the rest sparse: a raw disk (read in full, no change tracking).
    truncate -s 64M "$web_dir/data.raw.tmp"
    dd if=/dev/urandom of="$web_dir/data.raw.tmp" bs=1M seek=1 count=4 conv=notrunc status=none
    mv "$web_dir/data.raw.tmp" "$web_dir/data.raw"
  fi
  make_fs_image "$db_dir/db.qcow2" 128M "$zones" demo-db
  define_vm "$WEB" "$web_dir" "$web_dir/system.qcow2" qcow2 vda "$web_dir/data.raw" raw vdb
  define_vm "$DB" "$db_dir" "$db_dir/db.qcow2" qcow2 vda
}

vms_down() {
  local name
  for name in "$WEB" "$DB"; do
    virsh_q domuuid "$name" >/dev/null 2>&1 || continue
    # Only a VM whose disks live under our directory is ours to remove.
    if ! ours "$name"; then
      log "VM $name exists but is not the demo lab's (its disks are not under $DIR); left alone"
      continue
    fi
    log "VM $name: removing"
    virsh_q destroy "$name" >/dev/null 2>&1 || true
    virsh_q undefine "$name" --checkpoints-metadata --nvram >/dev/null 2>&1 || virsh_q undefine "$name" >/dev/null
    rm -rf "${DIR:?}/$name"
  done
}

json_string() { printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"; }

case "$ACTION" in
  sim-run) sim_run ;;
  up)
    need_root
    libvirt_up
    vms_up
    sim_up
    kvm=false; [ -e /dev/kvm ] && kvm=true
    printf '{"libvirt":{"vms":[%s,%s],"kvm":%s},"ovirt":{"url":%s,"user":"admin@internal","passwordFile":%s,"caFile":%s}}\n' \
      "$(json_string "$WEB")" "$(json_string "$DB")" "$kvm" \
      "$(json_string "https://127.0.0.1:$SIM_PORT/ovirt-engine")" "$(json_string "$PASSWORD_FILE")" "$(json_string "$CA_FILE")"
    ;;
  down)
    need_root
    sim_down
    if command -v virsh >/dev/null && virsh -c "$URI" version --daemon >/dev/null 2>&1; then vms_down; fi
    ;;
  *) die "unknown action '$ACTION': use up, down or sim-run" ;;
esac
