#!/usr/bin/env bash
# Media relay capacity: concurrent G.711 calls, 50 packets/s each way on each leg, through the
# relay threads of mediaseal-voice, driven by a load generator that keys its own SRTP
# (crates/mediaseal-voice/examples/relay_bench.rs). For each mode the number of calls grows
# until loss passes 0.1 % (a packet later than 50 ms counts as lost); the table reports the largest passing step with relay CPU per
# relayed packet and p50/p99 one-way latency through the relay (generator → relay → generator,
# same host, same clock).
#
# Modes, in one run:
#   forward      anchor: bare UDP forwarder, same threads-own-their-sockets strategy (mio),
#                no parsing, no crypto: the syscall cost of this machine
#   plain        the relay with plain RTP legs (header rewrite, no crypto)
#   srtp         the relay with SRTP on both legs: decrypt on one, re-encrypt on the other
#   srtp-record  srtp plus a recording tap of both parties (decode + two-channel mix by a
#                consumer thread; sealing and storage not included)
#
#   scripts/bench-relay.sh
#   BENCH_CALLS="100 200 400" BENCH_MODES="srtp" BENCH_SECONDS=5 scripts/bench-relay.sh
#   BENCH_RELAY_THREADS=2 scripts/bench-relay.sh
#   BENCH_RELAY_CPU=1 BENCH_GEN_CPU=0 scripts/bench-relay.sh   # relay (or rtpengine) and the
#                generator pinned to their own CPUs, so neither preempts the other
#   BENCH_RELAY_FIFO=10 scripts/bench-relay.sh   # the relay's threads at SCHED_FIFO priority
#                10 (`serve --rtp-priority 10`), the forwarder's the same, and rtpengine with
#                its own --scheduling=fifo --priority=10
#   BENCH_GEN_FIFO=5   the generator too (below the relay): it stands for phones on other
#                hosts, so its own scheduling delays are not the relay's added latency
#   BENCH_GEN_BATCH=1  the generator's threads at SCHED_BATCH: every packet the relay (or the
#                forwarder) sends wakes a generator thread, which otherwise preempts the relay on
#                its CPU, a context switch pair charged to the relay that phones on other hosts
#                would not cause (more than half the packets on 2 vCPUs). Same for every mode;
#                not together with BENCH_GEN_FIFO (it would replace that policy).
#
#   rtpengine    anchor: Debian's rtpengine daemon (`apt-get install rtpengine-daemon`), userspace
#                only (no kernel table), set up per call over its ng protocol with SDES on both
#                legs and the `no-passthrough` flag (10.5 has no `recrypt`): it authenticates,
#                decrypts and re-encrypts every packet, as our srtp mode does. The B leg answers
#                `_32`, because rtpengine reuses A's key for a B leg of the same suite; with
#                different suites every leg has its own key (the output counts calls that did
#                not: anchor_same_key_calls). Skipped with a note when rtpengine is absent.
#                Its CPU is every thread of the daemon; it gets BENCH_RELAY_THREADS workers.
# A benchmark, not a test: it never fails on a missed target, it only reports.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
SECS=${BENCH_SECONDS:-8}
THREADS=${BENCH_RELAY_THREADS:-1}
STEPS=${BENCH_CALLS:-"50 100 200 300 400 600 800 1000 1200 1600"}
MODES=${BENCH_MODES:-"forward plain srtp srtp-record rtpengine"}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=$TARGET/bench-relay
mkdir -p "$OUT"
: >"$OUT/results.jsonl"

if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
  echo "building the relay load generator (release)…" >&2
  cargo build --quiet --release --manifest-path "$ROOT/Cargo.toml" -p mediaseal-voice --example relay_bench
fi
BIN=$TARGET/release/examples/relay_bench
[ -x "$BIN" ] || { echo "missing $BIN" >&2; exit 2; }
need=$(( 4 * 1700 + 64 ))
[ "$(ulimit -n)" -ge "$need" ] || ulimit -n "$need" 2>/dev/null || true

RTPENGINE_PID=
stop_rtpengine() { [ -n "$RTPENGINE_PID" ] && kill "$RTPENGINE_PID" 2>/dev/null; wait "$RTPENGINE_PID" 2>/dev/null || true; }
trap stop_rtpengine EXIT
if [[ " $MODES " == *" rtpengine "* ]]; then
  if command -v rtpengine >/dev/null; then
    rtpengine --foreground --log-stderr --log-level=3 --table=-1 --interface=127.0.0.1 \
      --listen-ng=127.0.0.1:9922 --port-min=10000 --port-max=19999 --num-threads="$THREADS" \
      --delete-delay=0 ${BENCH_RELAY_FIFO:+--scheduling=fifo --priority=$BENCH_RELAY_FIFO} \
      >"$OUT/rtpengine.log" 2>&1 &
    RTPENGINE_PID=$!
    sleep 1
    kill -0 "$RTPENGINE_PID" || { echo "rtpengine did not start: see $OUT/rtpengine.log" >&2; exit 2; }
  else
    echo "rtpengine is not installed (apt-get install rtpengine-daemon): its anchor is skipped" >&2
    MODES=${MODES//rtpengine/}
  fi
fi

PIN=()
[ -n "${BENCH_RELAY_CPU:-}" ] && PIN+=(--relay-cpu "$BENCH_RELAY_CPU")
[ -n "${BENCH_GEN_CPU:-}" ] && PIN+=(--gen-cpu "$BENCH_GEN_CPU")
[ -n "${BENCH_RELAY_FIFO:-}" ] && PIN+=(--relay-fifo "$BENCH_RELAY_FIFO")
[ -n "${BENCH_GEN_BATCH:-}" ] && PIN+=(--gen-batch 1)

for mode in $MODES; do
  for n in $STEPS; do
    line=$(${BENCH_GEN_FIFO:+chrt -f $BENCH_GEN_FIFO} "$BIN" --mode "$mode" --calls "$n" --seconds "$SECS" --threads "$THREADS" --base-port 20000 \
      --rtpengine-pid "${RTPENGINE_PID:-0}" "${PIN[@]}")
    echo "$line" | tee -a "$OUT/results.jsonl" >&2
    if python3 -c 'import json,sys; sys.exit(0 if json.loads(sys.argv[1])["loss"] < 0.001 else 1)' "$line"; then
      continue
    fi
    break
  done
done

python3 - "$OUT/results.jsonl" "$THREADS" <<'PY'
import json, os, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
threads = sys.argv[2]
env = os.environ.get
print(f"relay threads: {threads}; cores: {os.cpu_count()}; relay CPU {env('BENCH_RELAY_CPU') or 'any'}, "
      f"generator CPU {env('BENCH_GEN_CPU') or 'any'}; SCHED_FIFO relay {env('BENCH_RELAY_FIFO') or 'no'}, "
      f"generator {env('BENCH_GEN_FIFO') or 'no'}; generator SCHED_BATCH {env('BENCH_GEN_BATCH') or 'no'}; load average at the end: {os.getloadavg()[0]:.1f}")
print(f"{'mode':<12} {'calls (loss<0.1%)':>17} {'pkt/s relayed':>13} {'relay µs/pkt':>12} {'relay cores':>11} {'p50 µs':>7} {'p99 µs':>7} {'rec. dropped':>12}")
for mode in ["Forward", "Plain", "Srtp", "SrtpRecord", "Rtpengine"]:
    ok = [r for r in rows if r["mode"] == mode and r["loss"] < 0.001]
    if not ok:
        if any(r["mode"] == mode for r in rows):
            print(f"{mode:<12} {'none':>17}")
        continue
    best = max(ok, key=lambda r: r["calls"])
    pps = best["calls"] * 200
    print(f"{mode:<12} {best['calls']:>17} {pps:>13} {best['relay_cpu_us_per_packet']:>12.2f} {best['relay_cpu_cores']:>11.2f} "
          f"{best['latency_p50_us']:>7} {best['latency_p99_us']:>7} {best['recorder_dropped']:>12}")
    per_core = best["calls"] / max(best["relay_cpu_cores"], 1e-9)
    print(f"{'':<12} → {per_core:,.0f} calls per core of relay CPU at that step")
# Capacity steps move with the machine's load; the cost per packet at the same offered load is
# the steadier comparison between modes.
for step in (200, 400):
    at = {r["mode"]: r for r in rows if r["calls"] == step}
    if not at:
        continue
    print(f"\nat {step} calls ({step * 200} pkt/s offered):")
    print(f"{'mode':<12} {'relay µs/pkt':>12} {'loss':>8} {'p50 µs':>7} {'p99 µs':>7}")
    for mode in ["Forward", "Plain", "Srtp", "SrtpRecord", "Rtpengine"]:
        if mode in at:
            r = at[mode]
            print(f"{mode:<12} {r['relay_cpu_us_per_packet']:>12.2f} {r['loss']:>8.4f} {r['latency_p50_us']:>7} {r['latency_p99_us']:>7}")
PY
