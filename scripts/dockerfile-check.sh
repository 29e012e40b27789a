#!/usr/bin/env bash
# Replays the Dockerfile's build stage without a Docker daemon: copies exactly what its COPY
# lines copy (minus what .dockerignore leaves out) into an empty directory, runs its RUN lines
# there in order, offline, and checks that the binary it produced runs. A missing COPY (the
# `benches/` that once broke `docker build`) fails here as it would in `docker build`.
#
#   scripts/dockerfile-check.sh
#
# The cargo steps share the project's target directory (CARGO_TARGET_DIR or ./target), so
# already-built dependencies are reused; run it after the other builds.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
export CARGO_NET_OFFLINE=true
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The build stage: from the first FROM to the next, continuation lines joined.
python3 - "$root/Dockerfile" >"$work/steps" <<'PY'
import sys
lines, joined = open(sys.argv[1]).read().splitlines(), []
buf = ""
for line in lines:
    if line.strip().startswith("#"):
        continue
    buf += line.rstrip("\\").strip() + " " if line.rstrip().endswith("\\") else line.strip()
    if not line.rstrip().endswith("\\"):
        if buf:
            joined.append(buf)
        buf = ""
froms = [i for i, l in enumerate(joined) if l.upper().startswith("FROM ")]
stage = joined[froms[0] + 1 : froms[1] if len(froms) > 1 else None]
for step in stage:
    word, _, rest = step.partition(" ")
    if word.upper() in ("COPY", "RUN", "WORKDIR"):
        print(f"{word.upper()}\t{rest}")
PY

ignored() {
  # .dockerignore patterns, matched against the copied path
  local path="$1"
  while IFS= read -r pattern; do
    [[ -z "$pattern" || "$pattern" == \#* ]] && continue
    pattern="${pattern%/}"
    # shellcheck disable=SC2053
    [[ "$path" == $pattern || "$path" == $pattern/* ]] && return 0
  done <"$root/.dockerignore"
  return 1
}

dest="$work/ctx"
mkdir -p "$dest"
while IFS=$'\t' read -r kind args; do
  case "$kind" in
    WORKDIR) ;; # the stage's working directory is the temp directory
    COPY)
      read -r -a parts <<<"$args"
      target="${parts[-1]}"
      for src in "${parts[@]:0:${#parts[@]}-1}"; do
        [[ "$src" == --* ]] && continue
        if ignored "$src"; then continue; fi
        if [[ -d "$root/$src" ]]; then
          mkdir -p "$dest/$target"
          (cd "$root/$src" && find . -type f) | while read -r f; do
            rel="${src%/}/${f#./}"
            ignored "$rel" && continue
            mkdir -p "$(dirname "$dest/$target/${f#./}")"
            cp "$root/$rel" "$dest/$target/${f#./}"
          done
        else
          cp "$root/$src" "$dest/$target"
        fi
      done
      ;;
    RUN)
      echo "dockerfile-check: RUN $args"
      (cd "$dest" && bash -euo pipefail -c "$args")
      ;;
  esac
done <"$work/steps"

"$CARGO_TARGET_DIR/release/org-service" --version
echo "dockerfile-check: the Dockerfile's build stage builds a working binary"
