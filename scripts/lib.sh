# Shared by the scripts that run the service for a check (fuzz.sh, docs-browser-check.sh).
# Source it from the repository root.

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_service WORKDIR [VAR=value ...]: builds the debug binary, starts it on a free loopback
# port with the given environment (the embedded store in WORKDIR unless MONGODB_URL is among
# them), waits until it answers, and sets SERVICE (its pid) and BASE (its URL). The caller
# kills "$SERVICE" when done.
start_service() {
  local work="$1"
  shift
  cargo build --quiet --locked
  local port
  port="$(free_port)"
  env DATABASE_PATH="$work/service.db" HOST=127.0.0.1 PORT="$port" RUST_LOG=warn "$@" \
    "${CARGO_TARGET_DIR:-target}/debug/org-service" >"$work/service.log" 2>&1 &
  SERVICE=$!
  BASE="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do
    curl -fsS "$BASE/health/live" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "start_service: the service did not answer; its log:" >&2
  cat "$work/service.log" >&2
  return 1
}
