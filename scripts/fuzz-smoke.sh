#!/usr/bin/env bash
# Builds every cargo-fuzz target and runs each for a few seconds (default 10), starting from the
# committed seeds in fuzz/seeds/<target>/. A crash, a leak or a build failure fails the script.
# cargo-fuzz needs nightly-only flags; RUSTC_BOOTSTRAP lets the stable toolchain accept them.
#
#   scripts/fuzz-smoke.sh [SECONDS] [TARGET ...]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT/fuzz"
SECONDS_EACH=${1:-10}
shift || true
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz is missing; run scripts/setup.sh" >&2; exit 1; }
if [ $# -gt 0 ]; then targets=("$@"); else mapfile -t targets < <(cargo fuzz list); fi
((${#targets[@]})) || { echo "no fuzz targets found" >&2; exit 1; }
# One invocation builds every target, so the shared dependencies are compiled once. A smoke run
# needs no optimiser: the dev profile builds in a fraction of the time (sanitizers, debug
# assertions and overflow checks stay on) and still runs thousands of inputs a second.
echo "-- build ${#targets[@]} targets"
if [ $# -gt 0 ] && [ ${#targets[@]} -eq 1 ]; then
  cargo fuzz build --dev "${targets[0]}"
else
  cargo fuzz build --dev
fi
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  if [ -d "seeds/$t" ]; then cp -n "seeds/$t"/* "corpus/$t/" 2>/dev/null || true; fi
  echo "-- fuzz $t (${SECONDS_EACH}s)"
  log=$(mktemp)
  if ! cargo fuzz run --dev "$t" "corpus/$t" -- -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    rm -f "$log"
    echo "fuzz target $t failed" >&2
    exit 1
  fi
  grep -E "^(#[0-9]+\s+DONE|Done)" "$log" | tail -n 1 || tail -n 1 "$log"
  rm -f "$log"
done
echo "fuzz smoke: ${#targets[@]} targets ran ${SECONDS_EACH}s each without a crash"
