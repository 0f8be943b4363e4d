#!/usr/bin/env bash
# Ingest benchmark (issue 3): concurrent 1 MiB recordings over loopback with wrk, customer-key
# sealing (rsa-aes) beside at-rest-only sealing (native), alternated in one run; medians.
#   REPS=3 DURATION=10 CONNECTIONS=16 scripts/bench-ingest.sh
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
REPS=${REPS:-3}; DURATION=${DURATION:-10}; CONNECTIONS=${CONNECTIONS:-16}; SIZE=${SIZE:-1048576}
WORK="$ROOT/target/bench/ingest"
command -v wrk >/dev/null || { echo "wrk missing: run scripts/setup.sh" >&2; exit 1; }
cargo build --release -q -p mediaseal
BIN="$ROOT/target/release/mediaseal"
rm -rf "$WORK"; mkdir -p "$WORK"
head -c "$SIZE" /dev/urandom > "$WORK/body.wav"
PORT=18931

run_one() { # mode -> prints "rps p50_ms p99_ms"
  local mode=$1 data="$WORK/data-$1"
  rm -rf "$data"
  local acct sid tok
  acct=$("$BIN" account create --data "$data")
  sid=$(python3 -c 'import json,sys;print(json.load(sys.stdin)["sid"])' <<<"$acct")
  tok=$(python3 -c 'import json,sys;print(json.load(sys.stdin)["auth_token"])' <<<"$acct")
  "$BIN" serve --data "$data" --listen 127.0.0.1:$PORT >"$WORK/server-$mode.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do curl -sf http://127.0.0.1:$PORT/healthz >/dev/null && break; sleep 0.1; done
  if [ "$mode" = customer ]; then
    [ -f "$WORK/k/public_key.pem" ] || "$BIN" keygen --out "$WORK/k" >/dev/null
    local cr
    cr=$(curl -sf -u "$sid:$tok" --data-urlencode "PublicKey@$WORK/k/public_key.pem" http://127.0.0.1:$PORT/v1/Credentials/PublicKeys \
         | python3 -c 'import json,sys;print(json.load(sys.stdin)["sid"])')
    curl -sf -u "$sid:$tok" -d EncryptionEnabled=true -d "EncryptionPublicKeySid=$cr" \
      "http://127.0.0.1:$PORT/2010-04-01/Accounts/$sid/RecordingSettings.json" >/dev/null
  fi
  local auth="Basic $(printf '%s:%s' "$sid" "$tok" | base64 -w0)"
  local out
  out=$(BODY_FILE="$WORK/body.wav" AUTH="$auth" wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 30s \
        -s scripts/bench/ingest.lua "http://127.0.0.1:$PORT/2010-04-01/Accounts/$sid/Recordings.json" | grep '^RESULT')
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$data"
  python3 - "$out" <<'PY'
import sys, re
kv = dict(re.findall(r"(\w+)=(\d+)", sys.argv[1]))
n, dur = int(kv["requests"]), int(kv["duration_us"])
bad = int(kv["errors"]) + int(kv["non2xx"])
print(f"{n/ (dur/1e6):.1f} {int(kv['p50_us'])/1000:.1f} {int(kv['p99_us'])/1000:.1f} {bad}")
PY
}

declare -a AT CU
for i in $(seq "$REPS"); do
  AT+=("$(run_one at_rest)")
  CU+=("$(run_one customer)")
  echo "rep $i: at-rest ${AT[-1]} | customer ${CU[-1]}   (req/s p50ms p99ms errors)" >&2
done
python3 - "${AT[@]}" -- "${CU[@]}" <<'PY'
import sys, statistics as st
args = sys.argv[1:]; cut = args.index("--")
def parse(xs): return [tuple(map(float, x.split())) for x in xs]
at, cu = parse(args[:cut]), parse(args[cut+1:])
def med(rows, i): return st.median(r[i] for r in rows)
print("| sealing | recordings/s (1 MiB) | p50 ms | p99 ms | errors |")
print("|---|---:|---:|---:|---:|")
for name, rows in (("at-rest only (native)", at), ("customer key (rsa-aes)", cu)):
    print(f"| {name} | {med(rows,0):.0f} | {med(rows,1):.1f} | {med(rows,2):.1f} | {int(sum(r[3] for r in rows))} |")
print(f"\ncustomer / at-rest throughput: {med(cu,0)/med(at,0):.2f}x (target >= 0.9x); target >= 500/s")
PY
