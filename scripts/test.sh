#!/usr/bin/env bash
# The one command that runs every test: installs what the tests need (scripts/setup.sh), then the
# whole Rust workspace's tests (unit, HTTP, CLI, and interop against real external tools), then a
# short smoke run of every fuzz target.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

scripts/setup.sh
export MEDIASEAL_PYTHON="$ROOT/.venv/bin/python"

echo "== cargo test (workspace)"
cargo test --workspace --locked --no-fail-fast

echo "== fuzz smoke"
scripts/fuzz-smoke.sh "${FUZZ_SECONDS:-10}"

echo "== all tests passed"
