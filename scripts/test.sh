#!/usr/bin/env bash
# The one command that runs every test: installs what the tests need (scripts/setup.sh), checks the
# code's hygiene (rustfmt, clippy with warnings denied, rustdoc with warnings denied, cargo-deny's
# licence, source and dependency-rule checks), starts a throwaway PostgreSQL + Garage on loopback
# (scripts/services.sh), then runs the whole Rust workspace's tests (unit, HTTP, CLI, interop
# against real external tools, scale-out), the server API suites a second time on PostgreSQL +
# Garage, and a short smoke run of every fuzz target. A failing step does not stop the others.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

scripts/setup.sh
export MEDIASEAL_PYTHON="$ROOT/.venv/bin/python"

LOGS=$(mktemp -d "${TMPDIR:-/tmp}/mediaseal-test-logs.XXXXXX")
SERVICES_DIR=$(mktemp -d "${TMPDIR:-/tmp}/mediaseal-services.XXXXXX")
cleanup() {
  scripts/services.sh stop "$SERVICES_DIR" >/dev/null 2>&1 || true
  jobs -p | xargs -r kill 2>/dev/null || true
}
trap cleanup EXIT

# On a fresh machine Garage is a `cargo install`: it builds while the hygiene checks run, and the
# services start once it is there.
scripts/services.sh install >"$LOGS/services-install.log" 2>&1 &
services_install=$!

status=0
echo "== hygiene: rustfmt, clippy, rustdoc, cargo-deny"
cargo fmt --all --check || status=1
cargo clippy --workspace --all-targets --locked -q -- -D warnings || status=1
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked -q || status=1
# Licences, sources and the dependency rules of deny.toml. Advisories need the RustSec database
# from GitHub, which this machine cannot reach.
cargo deny check bans licenses sources || status=1

echo "== build the workspace's tests"
cargo test --workspace --locked --no-run -q || status=1
# The room tests spawn the worker this build made: `cargo build -p mediaseal-room-worker` from
# inside a test would resolve features for that package alone and recompile its dependencies.
export MEDIASEAL_TEST_ROOM_WORKER="${CARGO_TARGET_DIR:-$ROOT/target}/debug/mediaseal-room-worker"

# The fuzz targets (sanitizer flags, their own target directory) build at the lowest CPU priority
# while the tests run: the tests mostly wait on real peers and keep the CPU whenever they need it.
(cd fuzz && RUSTC_BOOTSTRAP=1 nice -n 19 cargo fuzz build --dev) >"$LOGS/fuzz-build.log" 2>&1 &
fuzz_build=$!

echo "== services: PostgreSQL + Garage on loopback"
if ! wait "$services_install"; then
  cat "$LOGS/services-install.log" >&2
  echo "installing PostgreSQL/Garage failed" >&2
  exit 1
fi
scripts/services.sh start "$SERVICES_DIR" >/dev/null
# shellcheck disable=SC1091
source "$SERVICES_DIR/env"
# The scale-out tests fail rather than skip when the services are missing.
export MEDIASEAL_REQUIRE_SERVICES=1

echo "== cargo test (workspace; metadata on SQLite, objects on disk)"
cargo test --workspace --locked --no-fail-fast || status=1

echo "== server API suites on PostgreSQL + Garage"
# `--workspace` keeps the feature resolution of the build above: with `-p mediaseal-server` cargo
# resolves features for that package alone and recompiles a third of the dependency graph.
MEDIASEAL_TEST_DATABASE="$MEDIASEAL_SCALE_DATABASE" \
MEDIASEAL_TEST_OBJECTS="$MEDIASEAL_SCALE_OBJECTS" \
  cargo test --workspace --locked --no-fail-fast --test api_voice --test video_api || status=1

echo "== fuzz smoke"
if ! wait "$fuzz_build"; then
  tail -n 60 "$LOGS/fuzz-build.log" >&2
  echo "building the fuzz targets failed" >&2
  status=1
fi
scripts/fuzz-smoke.sh "${FUZZ_SECONDS:-10}" || status=1

if [ "$status" -ne 0 ]; then
  echo "== some tests FAILED (see above)" >&2
  exit 1
fi
echo "== all tests passed"
