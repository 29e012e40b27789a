#!/usr/bin/env bash
# FerretDB v1.24.2 (a MongoDB wire-protocol server over SQLite) for the MongoDB leg of the tests
# and the benchmarks. See ../shared/FERRETDB.md for what it supports.
#
#   scripts/ferretdb.sh install        go install the binary (skipped when already there)
#   scripts/ferretdb.sh start          start on a free loopback port in a fresh temp directory;
#                                      prints `export TEST_MONGODB_URL=...` and `export FERRETDB_PID=...`
#   scripts/ferretdb.sh stop [DIR]     stop the server started in DIR (default: the last one)
#
# Environment: FERRETDB_BIN_DIR (default ~/.cache/org-service/bin), FERRETDB_VERSION (v1.24.2).
set -euo pipefail

VERSION="${FERRETDB_VERSION:-v1.24.2}"
BIN_DIR="${FERRETDB_BIN_DIR:-$HOME/.cache/org-service/bin}"
BIN="$BIN_DIR/ferretdb"
STATE_FILE="${TMPDIR:-/tmp}/org-service-ferretdb.last"

install() {
  if [ -x "$BIN" ] && "$BIN" --version 2>/dev/null | grep -q "${VERSION#v}"; then
    return 0
  fi
  command -v go >/dev/null || { echo "ferretdb.sh: Go is required to install FerretDB" >&2; exit 1; }
  mkdir -p "$BIN_DIR"
  echo "ferretdb.sh: building FerretDB $VERSION into $BIN_DIR (first time takes a few minutes)" >&2
  # A plain `go install …@version` builds a binary that panics at start: the module lacks the
  # generated build/version/version.txt. So fetch the module, add that file, and build it.
  local src work
  src="$(go mod download -json "github.com/FerretDB/FerretDB@$VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  work="$(mktemp -d "${TMPDIR:-/tmp}/ferretdb-src.XXXXXX")"
  cp -r "$src/." "$work/"
  chmod -R u+w "$work"
  echo "$VERSION" >"$work/build/version/version.txt"
  (cd "$work" && go build -o "$BIN" ./cmd/ferretdb) >&2
  rm -rf "$work"
  "$BIN" --version >/dev/null
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

start() {
  install
  local dir port
  dir="$(mktemp -d "${TMPDIR:-/tmp}/ferretdb.XXXXXX")"
  mkdir -p "$dir/data" "$dir/state"
  port="$(free_port)"
  "$BIN" --handler=sqlite --sqlite-url="file:$dir/data/" --state-dir="$dir/state" \
    --listen-addr="127.0.0.1:$port" --debug-addr=- --telemetry=disable --log-level=warn \
    >"$dir/ferretdb.log" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/pid"
  echo "$port" >"$dir/port"
  echo "$dir" >"$STATE_FILE"
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "export TEST_MONGODB_URL='mongodb://127.0.0.1:$port/?directConnection=true&serverSelectionTimeoutMS=2000'"
      echo "export FERRETDB_PID=$pid"
      echo "export FERRETDB_DIR='$dir'"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "ferretdb.sh: FerretDB exited; its log:" >&2
      cat "$dir/ferretdb.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "ferretdb.sh: FerretDB did not listen on port $port within 10 s" >&2
  kill "$pid" 2>/dev/null || true
  exit 1
}

stop() {
  local dir="${1:-}"
  [ -n "$dir" ] || dir="$(cat "$STATE_FILE" 2>/dev/null || true)"
  [ -n "$dir" ] && [ -f "$dir/pid" ] || { echo "ferretdb.sh: nothing to stop" >&2; return 0; }
  kill "$(cat "$dir/pid")" 2>/dev/null || true
  rm -rf "$dir"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: $0 install|start|stop [DIR]" >&2; exit 2 ;;
esac
