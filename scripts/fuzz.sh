#!/usr/bin/env bash
# Fuzz the service through its own OpenAPI document with schemathesis (PyPI): the examples,
# coverage, fuzzing and stateful phases, positive and negative data, every check. Fails on any
# server error or any response the document does not allow.
#
#   scripts/fuzz.sh [SECONDS]      time budget of each of the two runs (default 60);
#                                  MONGODB_URL set: fuzz on MongoDB
#
# Strings are any Unicode (UTF-8; FUZZ_CODEC=ascii narrows them): the organization-name pattern
# spells the server's rule out character by character, and scripts/fuzz_hooks.py tells the
# generator the one rule JSON Schema cannot state, passwords' 72-byte (not character) limit.
set -euo pipefail
cd "$(dirname "$0")/.."

MAX_TIME="${1:-60}"
VERSION="4.32.5"
VENV="${SCHEMATHESIS_VENV:-$HOME/.cache/org-service/schemathesis-$VERSION}"
if [ ! -x "$VENV/bin/schemathesis" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$VERSION"
fi

. scripts/lib.sh
WORK="$(mktemp -d "${TMPDIR:-/tmp}/org-fuzz.XXXXXX")"
trap 'kill "${SERVICE:-}" 2>/dev/null || true; rm -rf "$WORK"' EXIT
STORE_ENV=()
if [ -n "${MONGODB_URL:-}" ]; then
  STORE_ENV=(MONGODB_URL="$MONGODB_URL" MASTER_DB_NAME="fuzz_$(date +%s)_$$")
fi
start_service "$WORK" "${STORE_ENV[@]}" RATE_LIMITS=off BCRYPT_COST=4 \
  SECRET_KEY="fuzzing-secret-key-of-at-least-32-bytes"

# A real admin, so guarded operations are reached with a valid token too.
curl -fsS -X POST "$BASE/org/create" -H 'Content-Type: application/json' \
  -d '{"organization_name": "Fuzz Org", "email": "fuzz@fuzz.example", "password": "FuzzPass123!"}' >/dev/null
TOKEN="$(curl -fsS -X POST "$BASE/admin/login" -H 'Content-Type: application/json' \
  -d '{"email": "fuzz@fuzz.example", "password": "FuzzPass123!"}' \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')"

REPORT_DIR="${CARGO_TARGET_DIR:-target}/schemathesis/$([ -n "${MONGODB_URL:-}" ] && echo mongodb || echo embedded)"
mkdir -p "$REPORT_DIR"
status=0
fuzz() {
  SCHEMATHESIS_HOOKS=fuzz_hooks PYTHONPATH="$PWD/scripts" \
  "$VENV/bin/schemathesis" run "$BASE/openapi.json" \
    --checks all --phases examples,coverage,fuzzing,stateful --mode all \
    --generation-codec "${FUZZ_CODEC:-utf-8}" --max-time "$MAX_TIME" --seed 20261129 \
    -H "Authorization: Bearer $TOKEN" --no-color \
    --report junit --report-dir "$REPORT_DIR/$1" "${@:2}" || status=$?
}
# First without the operations that end the token's session (log out, change the password,
# delete the organization), so every guarded operation is fuzzed past its guard; then all of
# them, those included, with every check. The first run leaves out two checks that cannot hold
# with a valid token: `missing_required_header` (the token is added to every request by -H, so
# the "missing" Authorization is still sent), and `positive_data_acceptance` (schema-valid
# requests that are refused for what no JSON Schema here says: a stale If-Match (412), an
# opaque cursor this service did not issue, a `filter` string that is not a JSON object, a
# document key starting with `$` (422), an invitation or member state (409/410)).
fuzz guarded --exclude-operation-id-regex '^(logout_admin|change_password|delete_org)$' \
  --exclude-checks positive_data_acceptance,missing_required_header
fuzz all

if grep -q "panicked" "$WORK/service.log"; then
  echo "fuzz.sh: the service panicked:" >&2
  grep -A5 "panicked" "$WORK/service.log" >&2
  status=1
fi
exit "$status"
