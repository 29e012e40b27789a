#!/usr/bin/env bash
# Mutation testing of the pure-logic modules with cargo-mutants (version pinned, installed from
# crates.io into the project's cache on first use): every mutant of a module must make a test
# fail, or be listed in mutants-equivalent.txt with the reason it cannot.
#
#   scripts/mutants.sh [FILE ...]     the given files (default: every pure-logic module below)
#   scripts/mutants.sh --since REV    only the mutants on lines of pure-logic modules changed
#                                     since REV (what CI runs, with REV from .ci/mutants-base)
#
# Two stages. First every mutant meets the library's unit tests (`cargo test --lib`, seconds
# per mutant), which is where pure logic is tested. Then the mutants they missed, and only
# those, meet the whole suite (`cargo mutants --iterate`): the integration tests, with their
# MongoDB leg when TEST_MONGODB_URL is set. A mutant the unit tests catch is caught by the
# whole suite too, so the two stages give the whole suite's verdict on every mutant at a
# fraction of its cost. MUTANTS_INTEGRATION=1 runs the whole suite on every mutant instead;
# MUTANTS_INTEGRATION=0 stops after the first stage. Results go to target/mutants/. The script
# fails when a mutant is missed that mutants-equivalent.txt does not list (an entry is a
# substring of cargo-mutants' description of the mutant, file and function included, without
# line numbers).
set -euo pipefail
cd "$(dirname "$0")/.."

PURE=(
  src/domain/org_name.rs src/domain/email.rs src/domain/password.rs src/domain/organization.rs
  src/domain/layout.rs src/domain/team.rs src/domain/page.rs src/domain/invitation.rs
  src/auth/jwt.rs src/auth/throttle.rs src/auth/refresh.rs src/auth/password.rs
  src/client_addr.rs src/config/secret.rs src/config/parse.rs src/error.rs src/extract/mod.rs
  src/idempotency/mod.rs src/idempotency/seal.rs src/ratelimit.rs src/metrics.rs src/failpoint.rs src/routes/forms.rs
  src/routes/team_forms.rs src/domain/document.rs src/domain/filter.rs src/routes/document_forms.rs
  src/domain/api_key.rs src/auth/key_guard.rs src/routes/api_key_forms.rs
  src/domain/audit.rs src/routes/audit_forms.rs
)

OUT="${CARGO_TARGET_DIR:-target}/mutants"
mkdir -p "$OUT"
rm -f "$OUT/caught-by-unit-tests.txt" "$OUT/unviable-in-unit-stage.txt" "$OUT/timeout-in-unit-stage.txt"
args=()
if [ "${1:-}" = "--since" ]; then
  base="${2:?--since needs a revision}"
  if ! git cat-file -e "$base^{commit}" 2>/dev/null; then
    # A shallow clone lacks the base: there is no range to test, and saying so beats failing.
    echo "mutants.sh: base $base is not in this clone's history (shallow?); nothing to compare" >&2
    exit 0
  fi
  git diff "$base" -- "${PURE[@]}" >"$OUT/changes.diff"
  if [ ! -s "$OUT/changes.diff" ]; then
    echo "mutants.sh: no pure-logic module changed since $base"
    exit 0
  fi
  args+=(--in-diff "$OUT/changes.diff")
  files=("${PURE[@]}")
elif [ $# -gt 0 ]; then
  files=("$@")
else
  files=("${PURE[@]}")
fi
for f in "${files[@]}"; do args+=(--file "$f"); done

VERSION="27.1.0"
ROOT="${MUTANTS_ROOT:-$HOME/.cache/org-service/cargo-mutants-$VERSION}"
if [ ! -x "$ROOT/bin/cargo-mutants" ]; then
  cargo install cargo-mutants --version "$VERSION" --locked --root "$ROOT"
fi
export PATH="$ROOT/bin:$PATH"

# 0: every mutant caught; 2: some missed (checked against the equivalents below); 3: some made
# the tests hang until the timeout (a hang is a failure the tests saw, so those count as caught;
# cargo-mutants gives 3 even when others were missed, so missed.txt is read either way);
# others: the run itself failed (a baseline test failure, a bad diff).
run() {
  local status=0
  cargo mutants --no-shuffle --output "$OUT" "$@" || status=$?
  if [ "$status" -ne 0 ] && [ "$status" -ne 2 ] && [ "$status" -ne 3 ]; then
    echo "mutants.sh: cargo mutants failed with status $status" >&2
    exit "$status"
  fi
}

mode="${MUTANTS_INTEGRATION:-escalate}"
if [ "$mode" = "1" ]; then
  run --timeout 900 "${args[@]}"
else
  # `-C --lib` reaches the build too: without it every mutant would also rebuild the integration
  # suite it does not run (40 s a mutant on two cores instead of about 15).
  run --timeout 300 -C --lib "${args[@]}"
  if [ "$mode" != "0" ] && [ -s "$OUT/mutants.out/missed.txt" ]; then
    echo "mutants.sh: $(wc -l <"$OUT/mutants.out/missed.txt") missed by the unit tests; trying them on the whole suite"
    # --iterate skips what the first stage caught or found unviable; the outcome files then
    # hold this stage's verdict on the rest, so the counts below add both stages up.
    cp "$OUT/mutants.out/caught.txt" "$OUT/caught-by-unit-tests.txt"
    cp "$OUT/mutants.out/unviable.txt" "$OUT/unviable-in-unit-stage.txt"
    cp "$OUT/mutants.out/timeout.txt" "$OUT/timeout-in-unit-stage.txt"
    # --iterate retries timeouts too, which would cost the whole suite's 900 s timeout each:
    # it also skips what previously_caught.txt lists, so the hangs go there.
    cat "$OUT/mutants.out/timeout.txt" >>"$OUT/mutants.out/previously_caught.txt"
    run --iterate --timeout 900 "${args[@]}"
  fi
fi

missed="$OUT/mutants.out/missed.txt"
unexplained=0
if [ -s "$missed" ]; then
  while IFS= read -r mutant; do
    # Drop "src/x.rs:LINE:COL: " so entries survive edits elsewhere in the file.
    description="$(printf '%s' "$mutant" | sed -E 's/^([^:]+):[0-9]+:[0-9]+: /\1: /')"
    listed=0
    while IFS= read -r entry; do
      entry="${entry%%#*}"
      entry="$(printf '%s' "$entry" | sed -E 's/[[:space:]]+$//')"
      [ -z "$entry" ] && continue
      case "$description" in *"$entry"*) listed=1; break ;; esac
    done <mutants-equivalent.txt
    if [ "$listed" -eq 0 ]; then
      echo "MISSED: $mutant"
      unexplained=$((unexplained + 1))
    fi
  done <"$missed"
fi
# Distinct lines across the outcome files that exist (the second stage's copies exist only when
# it ran; a missing file must not fail the pipeline under pipefail).
count() {
  local f
  for f in "$@"; do if [ -f "$f" ]; then cat "$f"; fi; done | sort -u | wc -l
}
caught=$(count "$OUT/mutants.out/caught.txt" "$OUT/caught-by-unit-tests.txt")
missed_n=$(count "$missed")
unviable=$(count "$OUT/mutants.out/unviable.txt" "$OUT/unviable-in-unit-stage.txt")
hung=$(count "$OUT/mutants.out/timeout.txt" "$OUT/timeout-in-unit-stage.txt")
echo "mutants.sh: caught $caught (and $hung more by a hang), missed $missed_n ($unexplained not listed as equivalent), unviable $unviable"
[ "$unexplained" -eq 0 ]
