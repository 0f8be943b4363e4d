#!/usr/bin/env bash
# Many room workers at once, and the cost of recording, under the str0m load generator
# (`crates/mediaseal-room-worker/examples/room_load.rs`): real ICE, DTLS and SRTP over UDP
# loopback, one real `mediaseal-room-worker` process per room, each on its own control pipe.
#
# Two kinds of runs, one `;`-separated list of "rooms shape pkt/s video record [pin]" entries:
#   shape `4p`   : N participants per room, each publishing and receiving the other N − 1 (a
#                  four-person call).
#   shape `4x4`  : P publishers × S subscribers in each room (for recording on/off).
#   pin 1 (the default): every worker on WORKER_CPU and the generator on GEN_CPU (taskset), as
#   scripts/bench-rooms.sh does, so "rooms until that core saturates" can be read; pin 0: workers
#   and generator float over every CPU.
#
#   scripts/bench-rooms-many.sh                     # REPS=3, 10 s windows, the default entries
#   CONFIGS='100 4p 50 0 0' REPS=1 scripts/bench-rooms-many.sh
#   BENCH_SKIP_BUILD=1 scripts/bench-rooms-many.sh
#
# A benchmark, not a test: it never fails on a missed target, it only reports. Figures are
# medians over REPS runs; every raw RESULT line (with the load average and the number of
# compiler processes seen around the run) is kept in target/bench-rooms-many/results.txt, the
# generator's complaints (disconnects, worker errors, failed runs) in stderr.txt beside it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPS=${REPS:-3}
SECS=${SECS:-10}
WORKER_CPU=${WORKER_CPU:-1}
GEN_CPU=${GEN_CPU:-0}
PROFILE=${PROFILE:-release}
# Longest a single run may take (setup of 100+ rooms included) before it counts as failed.
RUN_LIMIT=${RUN_LIMIT:-300}
OUT=$ROOT/target/bench-rooms-many
mkdir -p "$OUT"
: >"$OUT/results.txt"
: >"$OUT/stderr.txt"

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
# 100+ workers, each with its reader thread and sockets in the generator.
ulimit -n 65536 2>/dev/null || true

DEFAULT_CONFIGS="25 4p 50 0 0;50 4p 50 0 0;100 4p 50 0 0;150 4p 50 0 0;100 4p 50 0 0 0;\
100 4p 50 1 0;100 4p 50 0 1;1 4x4 50 0 0;1 4x4 50 0 1;1 10x10 50 0 0;1 10x10 50 0 1;1 4x4 50 1 0;\
1 4x4 50 1 1;1 10x10 50 1 0;1 10x10 50 1 1"
IFS=';' read -r -a CONFIGS <<<"${CONFIGS:-$DEFAULT_CONFIGS}"
compilers() { pgrep -c -x 'rustc|cc1|ld|cargo|clippy-driver' || true; }
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for rep in $(seq 1 "$REPS"); do
  for c in "${CONFIGS[@]}"; do
    read -r rooms shape pps video record pin <<<"$c"
    pin=${pin:-1}
    echo "rep $rep/$REPS: $rooms room(s) of $shape at $pps pps video=$video record=$record pin=$pin" >&2
    extra=()
    case $shape in
      *p) extra+=(--participants "${shape%p}") ;;
      *x*) extra+=(--publishers "${shape%x*}" --subscribers "${shape#*x}") ;;
      *) echo "unknown shape '$shape' (use 4p or 4x4)" >&2; exit 2 ;;
    esac
    [ "$pin" = 1 ] && extra+=(--worker-cpu "$WORKER_CPU" --gen-cpu "$GEN_CPU")
    [ "$video" = 1 ] && extra+=(--video)
    [ "$record" = 1 ] && extra+=(--record)
    l0=$(cut -d' ' -f1 /proc/loadavg); k0=$(compilers)
    line=$(timeout --kill-after=10 "$RUN_LIMIT" "$BIN/examples/room_load" \
      --worker "$BIN/mediaseal-room-worker" --rooms "$rooms" --pps "$pps" \
      --seconds "$SECS" "${extra[@]}" 2>>"$OUT/stderr.txt" | grep '^RESULT ' || true)
    l1=$(cut -d' ' -f1 /proc/loadavg); k1=$(compilers)
    [ -n "$line" ] || line="RESULT failed=1"
    echo "$line shape=$shape rooms_cfg=$rooms pps_cfg=$pps video_cfg=$video record_cfg=$record \
pin_cfg=$pin load_start=$l0 load_end=$l1 compilers=$((k0 > k1 ? k0 : k1))" >>"$OUT/results.txt"
  done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$OUT/results.txt" "$REPS" "$SECS" "$PROFILE" "$load_start" "$load_end" <<'PY'
import statistics, sys
path, reps, secs, profile, l0, l1 = sys.argv[1:]
runs = {}
for line in open(path):
    kv = dict(f.split("=", 1) for f in line.split()[1:])
    key = (kv["shape"], int(kv["rooms_cfg"]), int(kv["pps_cfg"]), kv["video_cfg"], kv["record_cfg"],
           kv.get("pin_cfg", "1"))
    runs.setdefault(key, []).append(kv)

def med(rs, f):
    return statistics.median(float(r[f]) for r in rs)

def mx(rs, f):
    return max(float(r[f]) for r in rs)

def sent_pct(rs):
    v = [100 * float(r["sent"]) / float(r["sent_target"]) for r in rs if "sent_target" in r]
    return f"{statistics.median(v):.0f}" if v else "–"

def loads(rs):
    v = [float(r[k]) for r in rs for k in ("load_start", "load_end")]
    return f"{min(v):.1f}–{max(v):.1f}"

print(f"{profile} build; medians of {reps} runs, {secs} s windows. "
      f"Load average (1, 5, 15 min) at start {l0}, at end {l1}.")
print()
print("Many rooms (each participant publishes Opus [+ VP8] and receives the other three; "
      "pinned: every worker on one CPU, the generator on the other; floating: both CPUs shared):")
print()
print("| rooms × participants | CPUs | media | recording | workers up | fwd pkt/s | loss % | rooms with loss | "
      "worst room loss % | p50 ms | p99 ms | worst room p99 ms | all workers CPU % of a core | "
      "CPU per room % | µs CPU / fwd pkt | RSS per room MiB (median / max) | RssAnon MiB | Pss MiB | "
      "generator CPU % | generator sent % of target | run-queue wait ms/s: all workers / generator | "
      "load 1 min | compilers seen | runs |")
print("|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---|---:|---:|")
mib = lambda kb: kb / 1024
for key in sorted((k for k in runs if k[0].endswith("p")), key=lambda k: (k[5] != "1", k[3], k[4], k[1])):
    shape, rooms, pps, video, record, pin = key
    cpus = "workers CPU 1, generator CPU 0" if pin == "1" else "both shared"
    rs = runs[key]
    ok = [r for r in rs if "failed" not in r]
    media = "Opus + VP8" if video == "1" else "Opus"
    rec = "on" if record == "1" else "off"
    name = f"{rooms} × {shape[:-1]}"
    if not ok:
        print(f"| {name} | {cpus} | {media} | {rec} | failed | | | | | | | | | | | | | | | | {loads(rs)} | | 0/{len(rs)} |")
        continue
    up = min(int(r["rooms"]) - int(r["dead_workers"]) for r in ok)
    print(f"| {name} | {cpus} | {media} | {rec} | {up}/{rooms} | {med(ok,'fwd_pps'):.0f} | {med(ok,'loss_pct'):.2f} | "
          f"{med(ok,'rooms_with_loss'):.0f} | {med(ok,'room_loss_max_pct'):.2f} | {med(ok,'p50_ms'):.2f} | "
          f"{med(ok,'p99_ms'):.1f} | {med(ok,'room_p99_max_ms'):.1f} | {med(ok,'cpu_pct'):.0f} | "
          f"{med(ok,'room_cpu_med_pct'):.2f} | {med(ok,'cpu_us_per_pkt'):.1f} | "
          f"{mib(med(ok,'rss_kb')):.1f} / {mib(mx(ok,'rss_max_kb')):.1f} | {mib(med(ok,'anon_kb')):.1f} | "
          f"{mib(med(ok,'pss_kb')):.1f} | "
          f"{med(ok,'gen_cpu_pct'):.0f} | {sent_pct(ok)} | {med(ok,'runq_wait_ms_s'):.0f} / {med(ok,'gen_runq_wait_ms_s'):.0f} | "
          f"{loads(rs)} | {max(int(r['compilers']) for r in rs)} | {len(ok)}/{len(rs)} |")
print()
print("Recording on and off (one room; worker pinned to one CPU, generator to the other):")
print()
print("| pub × sub | media | recording | fwd pkt/s | loss % | p99 ms | worker CPU % | µs CPU / fwd pkt | "
      "sealed KiB per run | recordings started / finished | HWM MiB | generator CPU % | load 1 min | runs |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|---:|")
for key in sorted((k for k in runs if "x" in k[0]), key=lambda k: (k[3], int(k[0].split("x")[0]), k[4])):
    shape, rooms, pps, video, record, pin = key
    rs = runs[key]
    ok = [r for r in rs if "failed" not in r]
    media = "Opus + VP8" if video == "1" else "Opus"
    rec = "on" if record == "1" else "off"
    name = shape.replace("x", "×")
    if not ok:
        print(f"| {name} | {media} | {rec} | failed | | | | | | | | | {loads(rs)} | 0/{len(rs)} |")
        continue
    # Whole run (the worker sends sealed data in 128 KiB blocks and the tail at the end).
    sealed = med(ok, "rec_bytes") / 1024
    print(f"| {name} | {media} | {rec} | {med(ok,'fwd_pps'):.0f} | {med(ok,'loss_pct'):.2f} | "
          f"{med(ok,'p99_ms'):.2f} | {med(ok,'cpu_pct'):.1f} | {med(ok,'cpu_us_per_pkt'):.1f} | "
          f"{sealed:.0f} | {med(ok,'rec_started'):.0f} / {med(ok,'rec_finished'):.0f} | "
          f"{mib(med(ok,'hwm_kb')):.0f} | {med(ok,'gen_cpu_pct'):.0f} | {loads(rs)} | {len(ok)}/{len(rs)} |")
PY
