# Shared by appliance/install.sh and test/run.sh. Every step is idempotent.

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

need_root() {
  [ "$(id -u)" -eq 0 ] || die "run this as root (sudo $0)"
}

# Installs the named Debian packages that are not installed yet.
install_debian_packages() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# npm ci when package-lock.json changed since the last install. npm itself runs on whatever
# Node the machine has (Debian's or the image's); the appliance and the tests run on the
# Node LTS pinned in package.json, which npm installs into node_modules/.bin/node.
install_node_modules() {
  command -v npm >/dev/null || install_debian_packages nodejs npm
  local stamp=node_modules/.vmbackup-lock-sha
  local want
  want=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [ ! -x node_modules/.bin/node ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "installing npm packages (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error
    echo "$want" > "$stamp"
  fi
}

# The Debian package's dependencies (appliance/build-deb.sh writes them into its control file;
# test/package/debian-root.sh fetches them for the offline install test): what the appliance runs
# (appliance/packages.txt) and what the maintainer scripts use; documentation and log rotation
# are recommended only. One name per line.
RECOMMENDED_PACKAGES="logrotate man-db bash-completion"
deb_depends() {
  grep -v '^#' appliance/packages.txt | grep -vxF -e logrotate -e man-db -e bash-completion
  printf '%s\n' passwd debianutils
}
deb_recommends() {
  printf '%s\n' $RECOMMENDED_PACKAGES
}
