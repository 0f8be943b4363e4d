#!/usr/bin/env bash
# Speech recognition benchmark: word error rate, card/phone digit recall and CPU seconds per
# audio second for each installed engine, through mediaseal-asr (WAV parse, channel split,
# resampling, engine protocol) and with the engine alone on the same PCM, in one run.
# Prints a Markdown table (for BENCHMARKS.md). Not a timed test. Whisper through mediaseal runs
# twice: one recording at a time (each recording's latency) and nproc at a time (throughput).
#
#   scripts/bench-asr.sh [WORK_DIR]      (default: a fresh temp dir, removed afterwards)
#   ENGINES=whisper scripts/bench-asr.sh  (only Whisper; default "whisper pocketsphinx")
#
# The test set is synthesised here by interop/asr/make_testset.py (espeak-ng voices, and flite's
# when installed; clean, telephone and noisy; dual-channel calls). Needs scripts/setup-asr.sh's
# environment for Whisper; pocketsphinx is included when installed.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
log() { printf '[bench-asr] %s\n' "$*" >&2; }

bash scripts/setup-asr.sh
PY="$ROOT/.asr-venv/bin/python"

if [ $# -ge 1 ]; then
  WORK=$1
  mkdir -p "$WORK"
else
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
fi

log "building asr-bench (release)"
cargo build -q --release -p mediaseal-asr --example asr-bench
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BENCH="$TARGET/release/examples/asr-bench"

log "generating the test set in $WORK/set"
"$PY" interop/asr/make_testset.py "$WORK/set"
MANIFEST="$WORK/set/manifest.json"

results=()
log "whisper through mediaseal-asr, one recording at a time (latency)"
"$BENCH" run --manifest "$MANIFEST" --engine whisper --out "$WORK/whisper-mediaseal.jsonl" --dump-pcm "$WORK/pcm"
results+=("$WORK/whisper-mediaseal.jsonl")
log "whisper through mediaseal-asr, $(nproc) recordings at a time as the server's jobs run (throughput)"
"$BENCH" run --manifest "$MANIFEST" --engine whisper --concurrency "$(nproc)" --out "$WORK/whisper-mediaseal-concurrent.jsonl"
results+=("$WORK/whisper-mediaseal-concurrent.jsonl")
log "whisper alone (faster-whisper in Python, same PCM, one sidecar's threads)"
"$PY" interop/asr/bench_alone.py --engine whisper --manifest "$MANIFEST" --pcm "$WORK/pcm" --out "$WORK/whisper-alone.jsonl"
results+=("$WORK/whisper-alone.jsonl")

ENGINES=${ENGINES:-whisper pocketsphinx}
if [[ " $ENGINES " != *" pocketsphinx "* ]]; then
  log "pocketsphinx not in ENGINES: skipped"
elif command -v pocketsphinx_continuous >/dev/null && [ -d /usr/share/pocketsphinx/model/en-us ]; then
  log "pocketsphinx through mediaseal-asr"
  "$BENCH" run --manifest "$MANIFEST" --engine pocketsphinx --out "$WORK/ps-mediaseal.jsonl"
  results+=("$WORK/ps-mediaseal.jsonl")
  log "pocketsphinx alone (pocketsphinx_continuous on the raw files)"
  "$PY" interop/asr/bench_alone.py --engine pocketsphinx --manifest "$MANIFEST" --pcm "$WORK/pcm" --out "$WORK/ps-alone.jsonl"
  results+=("$WORK/ps-alone.jsonl")
else
  log "pocketsphinx not installed: skipped"
fi

log "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
"$BENCH" report --manifest "$MANIFEST" "${results[@]}"
