#!/usr/bin/env bash
# Ingest benchmark (issue 3): concurrent 1 MiB recordings over loopback with wrk, customer-key
# sealing (rsa-aes) beside at-rest-only sealing (native), alternated in one run; medians.
#   REPS=3 DURATION=10 CONNECTIONS=16 scripts/bench-ingest.sh
# With BASELINE_BIN=/path/to/an/older/mediaseal, that binary runs the same two modes in the same
# rounds, for before/after figures under the same load.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
REPS=${REPS:-3}; DURATION=${DURATION:-10}; CONNECTIONS=${CONNECTIONS:-16}; SIZE=${SIZE:-1048576}
WORK="$ROOT/target/bench/ingest"
command -v wrk >/dev/null || { echo "wrk missing: run scripts/setup.sh" >&2; exit 1; }
# BENCH_SKIP_BUILD=1 measures the release binary already built (e.g. while the tree is being edited).
[ "${BENCH_SKIP_BUILD:-0}" = 1 ] || cargo build --release -q -p mediaseal
BIN="$ROOT/target/release/mediaseal"
BASE=${BASELINE_BIN:-}
rm -rf "$WORK"; mkdir -p "$WORK"
head -c "$SIZE" /dev/urandom > "$WORK/body.wav"
PORT=18931

run_one() { # mode [binary] -> prints "rps p50_ms p99_ms errors"
  local mode=$1 BIN=${2:-$BIN} data="$WORK/data-$1"
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

declare -a AT CU ATB CUB
for i in $(seq "$REPS"); do
  AT+=("$(run_one at_rest)")
  CU+=("$(run_one customer)")
  echo "rep $i: at-rest ${AT[-1]} | customer ${CU[-1]}   (req/s p50ms p99ms errors)" >&2
  if [ -n "$BASE" ]; then
    ATB+=("$(run_one at_rest "$BASE")")
    CUB+=("$(run_one customer "$BASE")")
    echo "rep $i, baseline: at-rest ${ATB[-1]} | customer ${CUB[-1]}" >&2
  fi
done
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
python3 - "${AT[@]}" -- "${CU[@]}" -- "${ATB[@]}" -- "${CUB[@]}" <<'PY'
import sys, statistics as st
groups, cur = [], []
for a in sys.argv[1:] + ["--"]:
    if a == "--":
        groups.append(cur); cur = []
    else:
        cur.append(a)
def parse(xs): return [tuple(map(float, x.split())) for x in xs]
at, cu, atb, cub = map(parse, groups)
def med(rows, i): return st.median(r[i] for r in rows)
print("| build | sealing | recordings/s (1 MiB) | p50 ms | p99 ms | errors |")
print("|---|---|---:|---:|---:|---:|")
rows = [("this tree", "at-rest only (native)", at), ("this tree", "customer key (rsa-aes)", cu)]
if atb:
    rows += [("baseline", "at-rest only (native)", atb), ("baseline", "customer key (rsa-aes)", cub)]
for build, name, rs in rows:
    print(f"| {build} | {name} | {med(rs,0):.0f} | {med(rs,1):.1f} | {med(rs,2):.1f} | {int(sum(r[3] for r in rs))} |")
print(f"\ncustomer / at-rest throughput: {med(cu,0)/med(at,0):.2f}x (target >= 0.9x)")
print(f"customer key: {med(cu,0):.0f} recordings/s (target >= 500/s: {'met' if med(cu,0) >= 500 else 'NOT met'})")
if atb:
    print(f"this tree / baseline, same run: at-rest {med(at,0)/med(atb,0):.2f}x, customer {med(cu,0)/med(cub,0):.2f}x")
PY
