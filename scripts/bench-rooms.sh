#!/usr/bin/env bash
# Media forwarding of one room worker process (`mediaseal-room-worker`), pinned to one core,
# under the str0m load generator (`crates/mediaseal-room-worker/examples/room_load.rs`): real
# ICE, DTLS and SRTP over UDP loopback, publishers × subscribers, Opus-shaped audio at 50
# packets/s per publisher (optionally VP8), then a rate ramp on 10×10 to find where loss starts.
#
#   scripts/bench-rooms.sh                  # REPS=3, 10 s windows, worker on CPU 1, generator on 0
#   REPS=5 SECS=20 scripts/bench-rooms.sh
#   PROFILE=debug scripts/bench-rooms.sh    # the debug build (dependencies at opt-level 2)
#   BENCH_SKIP_BUILD=1 scripts/bench-rooms.sh
#   CONFIGS='10 10 800 0;10 10 1200 0' scripts/bench-rooms.sh   # only these runs
#
# A benchmark, not a test: it never fails on a missed target, it only reports. Figures are
# medians over REPS runs of each configuration; every raw RESULT line is kept in
# target/bench-rooms/results.txt.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPS=${REPS:-3}
SECS=${SECS:-10}
WORKER_CPU=${WORKER_CPU:-1}
GEN_CPU=${GEN_CPU:-0}
PROFILE=${PROFILE:-release}
OUT=$ROOT/target/bench-rooms
mkdir -p "$OUT"
: >"$OUT/results.txt"

flag=--release
[ "$PROFILE" = release ] || flag=
if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
  echo "building the worker and the load generator ($PROFILE)…" >&2
  # shellcheck disable=SC2086
  cargo build --quiet --locked $flag --manifest-path "$ROOT/Cargo.toml" \
    -p mediaseal-room-worker --bin mediaseal-room-worker --example room_load
fi
BIN=$ROOT/target/$PROFILE
[ -x "$BIN/mediaseal-room-worker" ] || { echo "no worker at $BIN (build it first)" >&2; exit 2; }

# "publishers subscribers pps video" entries, `;`-separated; CONFIGS='10 10 800 0' runs one.
DEFAULT_CONFIGS="1 4 50 0;4 4 50 0;1 20 50 0;10 10 50 0;4 4 50 1;10 10 100 0;10 10 200 0;\
10 10 400 0;10 10 600 0;10 10 800 0;10 10 1200 0"
IFS=';' read -r -a CONFIGS <<<"${CONFIGS:-$DEFAULT_CONFIGS}"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for rep in $(seq 1 "$REPS"); do
  for c in "${CONFIGS[@]}"; do
    read -r p s pps video <<<"$c"
    echo "rep $rep/$REPS: ${p}×${s} at ${pps} pps video=$video" >&2
    extra=()
    [ "$video" = 1 ] && extra+=(--video)
    if ! "$BIN/examples/room_load" --worker "$BIN/mediaseal-room-worker" \
      --publishers "$p" --subscribers "$s" --pps "$pps" --seconds "$SECS" \
      --worker-cpu "$WORKER_CPU" --gen-cpu "$GEN_CPU" "${extra[@]}" >>"$OUT/results.txt"; then
      echo "RESULT publishers=$p subscribers=$s pps=$pps video=$([ "$video" = 1 ] && echo true || echo false) failed=1" >>"$OUT/results.txt"
    fi
  done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$OUT/results.txt" "$REPS" "$SECS" "$PROFILE" "$load_start" "$load_end" <<'PY'
import statistics, sys
path, reps, secs, profile, l0, l1 = sys.argv[1:]
runs = {}
for line in open(path):
    if not line.startswith("RESULT "):
        continue
    kv = dict(f.split("=", 1) for f in line.split()[1:])
    key = (int(kv["publishers"]), int(kv["subscribers"]), int(kv["pps"]), kv["video"])
    runs.setdefault(key, []).append(kv)
print(f"One room worker on one core (taskset), {profile} build; medians of {reps} runs, {secs} s windows.")
print(f"Load average at start {l0}, at end {l1}. Anchors (published, not measured here): "
      "LiveKit ≈ 30 k forwarded pkt/s per vCPU, mediasoup ≈ 25–50 k per core.")
print()
print("| pub × sub | pkt/s per pub | media | forwarded pkt/s | loss % | p50 ms | p99 ms | worker CPU % | µs CPU / fwd pkt | fwd pkt/s per core | vs LiveKit 30 k | RSS / HWM MiB | generator CPU % | runs |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
for key in sorted(runs, key=lambda k: (k[2], k[3], k[0] * k[1])):
    ok = [r for r in runs[key] if "failed" not in r]
    p, s, pps, video = key
    media = "Opus + VP8" if video == "true" else "Opus"
    if not ok:
        print(f"| {p}×{s} | {pps} | {media} | failed | | | | | | | | | | 0/{len(runs[key])} |")
        continue
    med = lambda f: statistics.median(float(r[f]) for r in ok)
    per_core = med("fwd_per_core")
    gen = [float(r["gen_cpu_pct"]) for r in ok if "gen_cpu_pct" in r]
    gen = f"{statistics.median(gen):.0f}" if gen else "–"
    print(f"| {p}×{s} | {pps} | {media} | {med('fwd_pps'):.0f} | {med('loss_pct'):.2f} | "
          f"{med('p50_ms'):.2f} | {med('p99_ms'):.2f} | {med('cpu_pct'):.1f} | "
          f"{med('cpu_us_per_pkt'):.1f} | {per_core / 1000:.1f} k | {per_core / 30000:.2f}× | "
          f"{med('rss_kb') / 1024:.0f} / {med('hwm_kb') / 1024:.0f} | {gen} | {len(ok)}/{len(runs[key])} |")
PY
