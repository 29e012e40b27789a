#!/usr/bin/env bash
# Opens /docs (Swagger UI) and /redoc (ReDoc) in headless Chromium with every host but
# 127.0.0.1 unreachable, and checks that every operation of /openapi.json is rendered: the docs
# must work with no internet. Screenshots go to target/docs-screenshots/.
#
#   scripts/docs-browser-check.sh        (installs Debian's chromium when it is missing)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null; then
  echo "docs-browser-check: installing chromium (Debian package)" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

. scripts/lib.sh
WORK="$(mktemp -d "${TMPDIR:-/tmp}/org-docs.XXXXXX")"
trap 'kill "${SERVICE:-}" 2>/dev/null || true; cp "$WORK/chromium.log" /tmp/chromium-last.log 2>/dev/null; rm -rf "$WORK"' EXIT
start_service "$WORK"

SHOTS="${CARGO_TARGET_DIR:-target}/docs-screenshots"
mkdir -p "$SHOTS"
# No network but loopback: names do not resolve, and anything else goes to a dead proxy.
FLAGS=(--headless --no-sandbox --disable-gpu --disable-background-networking
  --disable-component-update --disable-sync --no-first-run --disable-quic
  --user-data-dir="$WORK/profile" "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"
  --proxy-server=http://127.0.0.1:9 --proxy-bypass-list=127.0.0.1
  --virtual-time-budget=20000 --window-size=1280,2400)

render() { # page name
  timeout 120 chromium "${FLAGS[@]}" --dump-dom "$BASE$1" 2>>"$WORK/chromium.log" >"$WORK/$2.html"
  timeout 120 chromium "${FLAGS[@]}" --screenshot="$SHOTS/$2.png" "$BASE$1" 2>>"$WORK/chromium.log" >/dev/null
  [ -s "$SHOTS/$2.png" ] || { echo "docs-browser-check: no screenshot of $1" >&2; exit 1; }
}
render /docs/ swagger-ui
render /redoc redoc
render / landing

curl -fsS "$BASE/openapi.json" >"$WORK/openapi.json"
python3 - "$WORK" <<'PY'
import html, json, sys
work = sys.argv[1]
spec = json.load(open(f"{work}/openapi.json"))
swagger = open(f"{work}/swagger-ui.html").read()
redoc = html.unescape(open(f"{work}/redoc.html").read())
landing = open(f"{work}/landing.html").read()
missing = []
for path, item in spec["paths"].items():
    for verb, op in item.items():
        if f'data-path="{path}"' not in swagger:
            missing.append(f"Swagger UI lacks {verb.upper()} {path}")
        summary = op.get("summary", "")
        if summary and summary not in redoc:
            missing.append(f"ReDoc lacks {verb.upper()} {path} ({summary!r})")
for link in ("/docs", "/redoc", "/openapi.json", "/health"):
    if f'href="{link}"' not in landing:
        missing.append(f"the landing page lacks a link to {link}")
if missing:
    print("\n".join(missing), file=sys.stderr)
    sys.exit(1)
ops = sum(len(item) for item in spec["paths"].values())
print(f"docs-browser-check: Swagger UI and ReDoc render all {ops} operations offline")
PY
ls -l "$SHOTS"
