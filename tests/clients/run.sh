#!/usr/bin/env bash
# Runs the real-client checks: a virtualenv with BlueKing's Python client (requirements.txt),
# a cmdb-lite server on a free loopback port with an in-memory store and `--auth auth.json`, every
# script of this folder against it. Exits non-zero if any script fails or the server cannot be started.
#
#   tests/clients/run.sh [path/to/cmdb-lite]     (default: target/debug/cmdb-lite, built if absent)
#
# The virtualenv is kept in target/clients-venv (CLIENTS_VENV overrides); pip only installs what
# is missing. Needs python3 with the venv module and pip, and access to PyPI on the first run.
set -euo pipefail
cd "$(dirname "$0")/../.."

bin=${1:-target/debug/cmdb-lite}
venv=${CLIENTS_VENV:-target/clients-venv}
python=${PYTHON:-python3}

if [ ! -x "$bin" ]; then
  cargo build --locked
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "clients: creating virtualenv $venv"
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/clients/requirements.txt
"$venv/bin/python" -m pip freeze --disable-pip-version-check | grep -i '^bkapi' | sed 's/^/clients: /'

out=$(mktemp)
server=
stop_server() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    server=
  fi
}
trap 'stop_server; rm -f "$out"' EXIT

# Starts a fresh server (demo dataset, in memory, the apps and users of auth.json, admin routes
# on) and sets $addr.
start_server() {
  "$bin" serve --memory --admin --listen 127.0.0.1:0 --auth tests/clients/auth.json >"$out" 2>&1 &
  server=$!
  addr=
  for _ in $(seq 1 100); do
    addr=$(sed -n 's#^cmdb-lite listening on \(http://.*\)$#\1#p' "$out")
    [ -n "$addr" ] && return 0
    kill -0 "$server" 2>/dev/null || break
    sleep 0.1
  done
  echo "clients: cmdb-lite did not start:" >&2
  cat "$out" >&2
  return 1
}

status=0
for script in tests/clients/*.py; do
  start_server
  echo "clients: running $script against $addr"
  if ! "$venv/bin/python" "$script" "$addr"; then
    echo "clients: $script FAILED"
    status=1
  fi
  if ! kill -0 "$server" 2>/dev/null; then
    echo "clients: cmdb-lite exited during $script:" >&2
    cat "$out" >&2
    status=1
  fi
  stop_server
done
exit $status
