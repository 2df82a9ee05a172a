#!/usr/bin/env bash
# Runs the whole test suite on a fresh Debian 12 machine, as root:
#   installs what the tests need (Debian packages, npm packages), builds, starts the
#   test bed (libvirtd, sshd, ...) through the scripts in test/setup.d/, and runs vitest.
# Idempotent: a second run skips what is already installed.
# Arguments are passed to vitest (for example a file filter).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# shellcheck source=appliance/lib.sh
. appliance/lib.sh

need_root
install_debian_packages $(cat appliance/packages.txt test/packages.txt | grep -v '^#')
install_node_modules
export PATH="$ROOT/node_modules/.bin:$PATH"   # the pinned Node LTS first (README: Runtime)
log "runtime: node $(node --version)"

mkdir -p test-artifacts
# The fresh Debian 12 root of the package test (test/package/): made once per machine, in the
# background while the rest is set up and the first test files run (the test waits for it).
log "test bed: test/package/debian-root.sh in the background (log: test-artifacts/debian-root.log)"
setsid bash test/package/debian-root.sh > test-artifacts/debian-root.log 2>&1 < /dev/null &

# Type-checking runs beside the test bed and the tests (it needs ~10 s of one core); its result
# counts as theirs does: a type error fails the run, with the compiler's output at the end.
log "type-checking (in the background: test-artifacts/tsc.log)"
node node_modules/typescript/bin/tsc -p test/tsconfig.json > test-artifacts/tsc.log 2>&1 &
tsc_pid=$!

for setup in test/setup.d/*.sh; do
  [ -e "$setup" ] || continue
  log "test bed: $setup"
  bash "$setup"
done

log "running the tests"
set +e
node node_modules/vitest/vitest.mjs run --config test/vitest.config.ts --reporter=default --reporter=json \
  --outputFile.json=test-artifacts/vitest.json "$@"
status=$?
if ! wait "$tsc_pid"; then
  cat test-artifacts/tsc.log
  log "type-checking failed (above)"
  status=1
fi
set -e
# One plain closing line that CI reads: "N passed, N failed, N skipped".
node -e '
  const r = JSON.parse(require("fs").readFileSync("test-artifacts/vitest.json", "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
' || true
exit $status
