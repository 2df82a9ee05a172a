#!/usr/bin/env bash
# Test bed: a real S3 server — OpenStack Swift (Debian 12's swift-proxy, swift-object,
# swift-container, swift-account) with its s3api middleware — on 127.0.0.1:8380, for the S3
# repository backend. One device, one replica, tempauth with one S3 user (access key
# "test:tester", secret "swift-test-secret-4711") and the memcached that tempauth requires (on 127.0.0.1:11311);
# the proxy pipeline carries s3api, slo, dlo and versioned_writes as s3api needs them. Everything lives in /var/lib/vmbackup-test/swift;
# /etc/swift/swift.conf (which every Swift server reads) is written only when the package left
# none. A second proxy serves the same store over TLS on 127.0.0.1:8381 with a certificate of a
# test CA made here (ca.pem): the S3 client's certificate checks are tested against it, and
# restic (the benchmarks' peer, whose S3 client signs payloads in aws-chunked form over plain HTTP,
# which s3api refuses) uses it. Idempotent: servers that run with this very configuration and
# answer are kept.
set -euo pipefail

D=/var/lib/vmbackup-test/swift
ETC=$D/etc
SRV=$D/srv
PROXY=8380
PROXY_TLS=8381
ACCOUNT=16202
CONTAINER=16201
OBJECT=16200
MEMCACHED=11311

mkdir -p "$ETC" "$SRV/d1" "$D/run" "$D/log"
chmod 700 "$D"

if [ ! -s /etc/swift/swift.conf ]; then
  mkdir -p /etc/swift
  cat >/etc/swift/swift.conf <<CONF
[swift-hash]
swift_hash_path_suffix = vmbackup-test-$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
[storage-policy:0]
name = Policy-0
default = yes
CONF
fi

server_conf() { # name port app
  cat >"$ETC/$1-server.conf" <<CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $2
devices = $SRV
mount_check = false
swift_dir = $ETC
workers = 0
user = root
log_address = $D/log/$1.sock

[pipeline:main]
pipeline = $1-server

[app:$1-server]
use = egg:swift#$1
CONF
}
server_conf account $ACCOUNT
server_conf container $CONTAINER
server_conf object $OBJECT

cat >"$ETC/proxy-server.conf" <<CONF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $PROXY
swift_dir = $ETC
workers = 0
user = root
log_address = $D/log/proxy.sock

[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo versioned_writes proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true

[filter:s3api]
use = egg:swift#s3api
location = us-east-1

[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = swift-test-secret-4711 .admin

[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$MEMCACHED

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
[filter:versioned_writes]
use = egg:swift#versioned_writes
allow_versioned_writes = true
CONF

# The test CA and the proxy's certificate (127.0.0.1 and localhost), once.
if [ ! -s "$ETC/proxy.key" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=vmbackup test S3 CA" \
    -keyout "$ETC/ca.key" -out "$ETC/ca.pem" >/dev/null 2>&1
  openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$ETC/proxy.key" -out "$ETC/proxy.csr" >/dev/null 2>&1
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$ETC/san.ext"
  openssl x509 -req -in "$ETC/proxy.csr" -CA "$ETC/ca.pem" -CAkey "$ETC/ca.key" -CAcreateserial -days 3650 \
    -extfile "$ETC/san.ext" -out "$ETC/proxy.pem" >/dev/null 2>&1
  chmod 600 "$ETC/ca.key" "$ETC/proxy.key"
fi
sed -e "s/^bind_port = $PROXY\$/bind_port = $PROXY_TLS\ncert_file = ${ETC//\//\\/}\/proxy.pem\nkey_file = ${ETC//\//\\/}\/proxy.key/" \
  -e "s/proxy.sock/proxy-tls.sock/" "$ETC/proxy-server.conf" >"$ETC/proxy-tls-server.conf"

for ring in account:$ACCOUNT container:$CONTAINER object:$OBJECT; do
  name=${ring%%:*}
  port=${ring##*:}
  if [ ! -f "$ETC/$name.ring.gz" ]; then
    rm -f "$ETC/$name.builder"
    swift-ring-builder "$ETC/$name.builder" create 8 1 1 >/dev/null
    swift-ring-builder "$ETC/$name.builder" add "r1z1-127.0.0.1:$port/d1" 100 >/dev/null
    swift-ring-builder "$ETC/$name.builder" rebalance >/dev/null
  fi
done

stamp=$(cat "$ETC"/*.conf | sha256sum | cut -c1-16)
if [ "$(cat "$D/run/config.stamp" 2>/dev/null)" = "$stamp" ] && curl -fsS --max-time 2 "http://127.0.0.1:$PROXY/healthcheck" >/dev/null 2>&1 &&
  curl -fsS --max-time 2 --cacert "$ETC/ca.pem" "https://127.0.0.1:$PROXY_TLS/healthcheck" >/dev/null 2>&1; then
  exit 0
fi

# Stop what an earlier start left (another configuration, or it did not answer), then start
# memcached and the four servers.
for pidfile in "$D"/run/*.pid; do
  [ -e "$pidfile" ] || continue
  kill "$(cat "$pidfile")" 2>/dev/null || true
  rm -f "$pidfile"
done
setsid memcached -u root -l 127.0.0.1 -p "$MEMCACHED" -U 0 -m 64 >"$D/log/memcached.log" 2>&1 </dev/null &
echo $! >"$D/run/memcached.pid"
for name in account container object proxy proxy-tls; do
  setsid "/usr/bin/swift-${name%-tls}-server" "$ETC/$name-server.conf" >"$D/log/$name.log" 2>&1 </dev/null &
  echo $! >"$D/run/$name.pid"
done

for _ in $(seq 1 100); do
  if curl -fsS --max-time 2 "http://127.0.0.1:$PROXY/healthcheck" >/dev/null 2>&1 &&
    curl -fsS --max-time 2 --cacert "$ETC/ca.pem" "https://127.0.0.1:$PROXY_TLS/healthcheck" >/dev/null 2>&1; then
    echo "$stamp" >"$D/run/config.stamp"
    exit 0
  fi
  sleep 0.2
done
echo "swift proxy did not answer on 127.0.0.1:$PROXY; logs in $D/log" >&2
tail -n 20 "$D"/log/*.log >&2
exit 1
