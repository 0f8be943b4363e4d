#!/usr/bin/env bash
# Ingest throughput and latency of 1 MiB recordings, in one run, on:
#   embedded           SQLite + directory, one node
#   pg+garage x1       PostgreSQL + Garage, one node
#   pg+garage x2       PostgreSQL + Garage, two nodes (one wrk per node, half the connections each)
#   pg+garage x1 signed  the same node with object bodies signed (sign_payload=true): the cost of
#                      SigV4 payload hashing, measured apart
#   raw garage PUT     the ceiling: plain S3 PutObject of 1 MiB (AWS SDK, same concurrency), no
#                      mediaseal; with the SDK's default signed body, and with UNSIGNED-PAYLOAD
# With BASELINE_BIN=/path/to/an/older/mediaseal, that binary is measured in the same rounds
# (embedded and pg+garage x1), for before/after figures with the same anchors.
# Each configuration runs BENCH_ROUNDS times, interleaved, for BENCH_SECONDS each after a warm-up;
# the table shows medians. Load: wrk with interop/scale/ingest.lua, BENCH_CONCURRENCY connections.
# Loopback only. Everything (servers, data) lives in a temporary directory removed at the end.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SECS=${BENCH_SECONDS:-5}
ROUNDS=${BENCH_ROUNDS:-3}
CONC=${BENCH_CONCURRENCY:-8}
SIZE=$((1 << 20))
log() { printf '[bench-scale] %s\n' "$*" >&2; }

command -v wrk >/dev/null || { echo "wrk is missing: scripts/setup.sh installs it" >&2; exit 1; }
log "building (release)"
# One invocation, so the shared dependencies are built once with one feature set.
[ "${BENCH_SKIP_BUILD:-0}" = 1 ] || cargo build --release -q -p mediaseal -p mediaseal-store --bin mediaseal --example s3_put_bench
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN="$TARGET/release/mediaseal"
PUT="$TARGET/release/examples/s3_put_bench"

WORK=$(mktemp -d /tmp/mediaseal-bench.XXXXXX)
chmod 755 "$WORK"   # PostgreSQL runs as its own user and must reach $WORK/svc
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  scripts/services.sh stop "$WORK/svc" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

scripts/services.sh start "$WORK/svc" >/dev/null
# shellcheck disable=SC1091
source "$WORK/svc/env"

python3 - "$WORK/body.wav" "$SIZE" <<'EOF'
import os, struct, sys
path, size = sys.argv[1], int(sys.argv[2])
data = size - 44
header = b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " + struct.pack("<IHHIIHH", 16, 1, 1, 8000, 16000, 2, 16) + b"data" + struct.pack("<I", data)
open(path, "wb").write(header + os.urandom(data))
EOF
export BENCH_BODY="$WORK/body.wav"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
psql_admin() { PGPASSWORD=$MEDIASEAL_SCALE_DB_PASSWORD "$MEDIASEAL_SCALE_PG_BIN/psql" -h 127.0.0.1 -p "$MEDIASEAL_SCALE_PG_PORT" -U mediaseal -d mediaseal -q -c "$1"; }
auth_of() { python3 -c 'import base64,json,sys; a=json.load(sys.stdin); print("Basic "+base64.b64encode((a["sid"]+":"+a["auth_token"]).encode()).decode()+" "+a["sid"])'; }

BASE=${BASELINE_BIN:-}
CONFIGS="embedded raw raw_unsigned pg1 pg1_signed pg2"
[ -n "$BASE" ] && CONFIGS="$CONFIGS embedded_base pg1_base"

# start_node NAME PORT ARGS... → pid in PIDS, waits for /healthz (NODE_BIN picks the binary)
start_node() {
  local name=$1 port=$2; shift 2
  "${NODE_BIN:-$BIN}" serve --listen "127.0.0.1:$port" --data "$WORK/$name" \
    --at-rest-key "$WORK/at-rest-key.pem" --url-signing-key "$WORK/url-signing.key" "$@" \
    >/dev/null 2>"$WORK/$name.log" &
  PIDS+=($!)
  for _ in $(seq 1 200); do
    curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  cat "$WORK/$name.log" >&2
  return 1
}

# Embedded: one node on SQLite + a directory.
mkdir -p "$WORK/embedded"
read -r EMB_AUTH_B EMB_AUTH_T EMB_SID < <("$BIN" account create --data "$WORK/embedded" | auth_of)
EMB_PORT=$(free_port)
start_node embedded "$EMB_PORT"

# PostgreSQL + Garage: a database and a key prefix of their own, two nodes on them.
psql_admin "CREATE DATABASE bench"
PG_URL="${MEDIASEAL_SCALE_DATABASE%/*}/bench"
OBJ_URL="${MEDIASEAL_SCALE_OBJECTS/s3:\/\/mediaseal?/s3://mediaseal/bench?}"
read -r PG_AUTH_B PG_AUTH_T PG_SID < <("$BIN" account create --data "$WORK/acct" --database "$PG_URL" | auth_of)
N1_PORT=$(free_port); N2_PORT=$(free_port)
start_node node1 "$N1_PORT" --database "$PG_URL" --objects "$OBJ_URL"
start_node node2 "$N2_PORT" --database "$PG_URL" --objects "$OBJ_URL"
N1S_PORT=$(free_port)
start_node node1s "$N1S_PORT" --database "$PG_URL" --objects "$OBJ_URL&sign_payload=true"
if [ -n "$BASE" ]; then
  mkdir -p "$WORK/embedded_base"
  read -r EMBB_AUTH_B EMBB_AUTH_T EMBB_SID < <("$BASE" account create --data "$WORK/embedded_base" | auth_of)
  EMBB_PORT=$(free_port); NODE_BIN=$BASE start_node embedded_base "$EMBB_PORT"
  NB_PORT=$(free_port); NODE_BIN=$BASE start_node node_base "$NB_PORT" --database "$PG_URL" --objects "$OBJ_URL"
fi

ingest_url() { echo "http://127.0.0.1:$1/2010-04-01/Accounts/$2/Recordings.json"; }
run_wrk() { # run_wrk PORT SID AUTH CONNECTIONS SECONDS
  BENCH_AUTH="$3" wrk -t1 -c"$4" -d"$5s" --timeout 30s -s interop/scale/ingest.lua "$(ingest_url "$1" "$2")" | tail -1
}

RESULTS="$WORK/results.jsonl"
: >"$RESULTS"
measure() { # measure CONFIG SECONDS → one JSON line appended (and printed)
  local config=$1 secs=$2 line
  case $config in
    embedded) line=$(run_wrk "$EMB_PORT" "$EMB_SID" "$EMB_AUTH_B $EMB_AUTH_T" "$CONC" "$secs") ;;
    embedded_base) line=$(run_wrk "$EMBB_PORT" "$EMBB_SID" "$EMBB_AUTH_B $EMBB_AUTH_T" "$CONC" "$secs") ;;
    pg1) line=$(run_wrk "$N1_PORT" "$PG_SID" "$PG_AUTH_B $PG_AUTH_T" "$CONC" "$secs") ;;
    pg1_signed) line=$(run_wrk "$N1S_PORT" "$PG_SID" "$PG_AUTH_B $PG_AUTH_T" "$CONC" "$secs") ;;
    pg1_base) line=$(run_wrk "$NB_PORT" "$PG_SID" "$PG_AUTH_B $PG_AUTH_T" "$CONC" "$secs") ;;
    pg2)
      run_wrk "$N1_PORT" "$PG_SID" "$PG_AUTH_B $PG_AUTH_T" "$((CONC / 2))" "$secs" >"$WORK/w1" &
      local w1=$!
      run_wrk "$N2_PORT" "$PG_SID" "$PG_AUTH_B $PG_AUTH_T" "$((CONC / 2))" "$secs" >"$WORK/w2"
      wait "$w1"
      # Throughput adds up; latency is the worse node's.
      line=$(python3 -c 'import json,sys; a,b=(json.load(open(p)) for p in sys.argv[1:]); print(json.dumps({"requests":a["requests"]+b["requests"],"seconds":max(a["seconds"],b["seconds"]),"rps":a["rps"]+b["rps"],"p50_ms":max(a["p50_ms"],b["p50_ms"]),"p99_ms":max(a["p99_ms"],b["p99_ms"]),"not_201":a["not_201"]+b["not_201"],"socket_errors":a["socket_errors"]+b["socket_errors"]}))' "$WORK/w1" "$WORK/w2") ;;
    raw) line=$("$PUT" "$MEDIASEAL_SCALE_S3_ENDPOINT" mediaseal "$SIZE" "$CONC" "$secs" signed) ;;
    raw_unsigned) line=$("$PUT" "$MEDIASEAL_SCALE_S3_ENDPOINT" mediaseal "$SIZE" "$CONC" "$secs" unsigned) ;;
  esac
  echo "{\"config\": \"$config\", \"result\": $line}" | tee -a "$RESULTS" >&2
  # Keep the disk from filling over many rounds (1 MiB × hundreds per second): the embedded
  # node's sealed objects are not read again. Garage's share is bounded by BENCH_SECONDS.
  # (An upload still finishing may move a file away under find: not an error.)
  case $config in embedded*) find "$WORK/$config/objects" -type f -delete 2>/dev/null || true ;; esac
  return 0
}

log "warm-up"
for c in $CONFIGS; do measure "$c" 3 >/dev/null 2>&1; done
: >"$RESULTS"
for r in $(seq 1 "$ROUNDS"); do
  log "round $r of $ROUNDS ($SECS s per configuration, $CONC connections)"
  for c in $CONFIGS; do measure "$c" "$SECS"; done
done

python3 - "$RESULTS" "$ROUNDS" "$SECS" "$CONC" $CONFIGS <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
rounds, secs, conc = sys.argv[2:5]
configs = sys.argv[5:]
names = {"embedded": "embedded (SQLite + directory), 1 node",
         "embedded_base": "embedded, 1 node, BEFORE (baseline binary)",
         "pg1": "PostgreSQL + Garage, 1 node",
         "pg1_signed": "PostgreSQL + Garage, 1 node, bodies signed (sign_payload=true)",
         "pg1_base": "PostgreSQL + Garage, 1 node, BEFORE (baseline binary)",
         "pg2": "PostgreSQL + Garage, 2 nodes",
         "raw": "raw Garage PUT (AWS SDK default, signed body): ceiling",
         "raw_unsigned": "raw Garage PUT (AWS SDK, UNSIGNED-PAYLOAD)"}
order = [c for c in ["embedded", "embedded_base", "pg1", "pg1_signed", "pg1_base", "pg2", "raw", "raw_unsigned"] if c in configs]
med = {}
for c in order:
    rs = [r["result"] for r in rows if r["config"] == c]
    med[c] = {k: statistics.median(x[k] for x in rs) for k in ("rps", "p50_ms", "p99_ms")}
    med[c]["failed"] = sum(x.get("not_201", 0) + x.get("socket_errors", 0) + x.get("errors", 0) for x in rs)
    med[c]["all"] = ", ".join(f'{x["rps"]:.1f}' for x in rs)
print(f"1 MiB recordings, {conc} connections, {rounds} rounds x {secs} s, medians (per-round req/s in brackets)\n")
print("| configuration | req/s (= MiB/s) | p50 ms | p99 ms | vs raw PUT (signed) | vs raw PUT (unsigned) | failed |")
print("|---|---:|---:|---:|---:|---:|---:|")
for c in order:
    m = med[c]
    print(f'| {names[c]} | {m["rps"]:.1f} ({m["all"]}) | {m["p50_ms"]:.1f} | {m["p99_ms"]:.1f} | {m["rps"] / med["raw"]["rps"]:.2f}x | {m["rps"] / med["raw_unsigned"]["rps"]:.2f}x | {m["failed"]} |')
for anchor in ("raw", "raw_unsigned"):
    ratio = med["pg1"]["rps"] / med[anchor]["rps"]
    print(f'\nTarget: PostgreSQL + Garage, 1 node >= 0.8x {names[anchor]}: {ratio:.2f}x -> {"met" if ratio >= 0.8 else "NOT met"}')
EOF
