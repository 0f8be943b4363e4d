#!/usr/bin/env bash
# Media forwarding of one room worker process (`mediaseal-room-worker`), pinned to one core,
# under the str0m load generator (`crates/mediaseal-room-worker/examples/room_load.rs`): real
# ICE, DTLS and SRTP over UDP loopback, publishers × subscribers, Opus audio at 50 packets/s
# per publisher (optionally VP8), then a rate ramp on 10×10 to find where loss starts.
#
# Media: pre-encoded clips, made once with ffmpeg into target/bench-rooms/clips (10 s of a sine
# tone as 32 kb/s Opus in 20 ms packets, Ogg; 10 s of testsrc2 640×360 at 30 fps as 800 kb/s VP8
# with a keyframe every 60 frames, IVF), replayed in a loop through str0m, which packetizes the
# VP8 frames (several RTP packets each). Publishers answer PLI with a keyframe and NACK from
# str0m's resend cache; the RESULT lines count both. Every frame ends with a marker (publisher,
# sequence, send time) for loss and latency. Audio goes at the configured rate (RTP time
# follows it), so at 400 packets/s the clip plays 8× fast. MEDIA=synthetic (or no ffmpeg) sends
# the older Opus- and VP8-shaped payloads instead (80 B audio, one 1 kB packet per video frame).
#
#   scripts/bench-rooms.sh                  # REPS=3, 10 s windows, worker on CPU 1, generator on 0
#   REPS=5 SECS=20 scripts/bench-rooms.sh
#   PROFILE=debug scripts/bench-rooms.sh    # the debug build (dependencies at opt-level 2)
#   BENCH_SKIP_BUILD=1 scripts/bench-rooms.sh
#   CONFIGS='10 10 800 0;10 10 1200 0' scripts/bench-rooms.sh   # only these runs
#   TARGETS=worker scripts/bench-rooms.sh   # without the Janus anchor
#   MEDIA=synthetic scripts/bench-rooms.sh  # synthetic payloads instead of the ffmpeg clips
#
# Anchor: every configuration also runs against Janus (Debian's `janus`, its VideoRoom plugin
# over the HTTP API) through the same generator: one fresh Janus process per run, pinned to the
# worker's CPU, its CPU time counted over all its threads. Skipped with a note when `janus` is
# not installed. Janus gathers no ICE candidates on loopback interfaces, so its runs put the
# peers on this host's first non-loopback IPv4 address (PEER_IP): still local delivery.
#
# A benchmark, not a test: it never fails on a missed target, it only reports. Figures are
# medians over REPS runs of each configuration; every raw RESULT line is kept in
# target/bench-rooms/results.txt (Janus's log in target/bench-rooms/janus/janus.log).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPS=${REPS:-3}
SECS=${SECS:-10}
WORKER_CPU=${WORKER_CPU:-1}
GEN_CPU=${GEN_CPU:-0}
PROFILE=${PROFILE:-release}
TARGETS=${TARGETS:-worker janus}
JANUS_PORT=${JANUS_PORT:-8088}
MEDIA=${MEDIA:-clips}
OUT=$ROOT/target/bench-rooms
mkdir -p "$OUT"
: >"$OUT/results.txt"

# The clips, encoded once (delete target/bench-rooms/clips to remake them).
CLIPS=$OUT/clips
clip_args=()
if [ "$MEDIA" = clips ]; then
  if command -v ffmpeg >/dev/null; then
    mkdir -p "$CLIPS"
    if [ ! -s "$CLIPS/tone.ogg" ]; then
      ffmpeg -nostdin -loglevel error -y -f lavfi -i sine=frequency=440:duration=10 \
        -c:a libopus -b:a 32k -frame_duration 20 -f ogg "$CLIPS/tone.ogg.part"
      mv "$CLIPS/tone.ogg.part" "$CLIPS/tone.ogg"
    fi
    if [ ! -s "$CLIPS/testsrc.ivf" ]; then
      ffmpeg -nostdin -loglevel error -y -f lavfi -i testsrc2=size=640x360:rate=30:duration=10 \
        -c:v libvpx -b:v 800k -g 60 -f ivf "$CLIPS/testsrc.ivf.part"
      mv "$CLIPS/testsrc.ivf.part" "$CLIPS/testsrc.ivf"
    fi
    clip_args=(--opus "$CLIPS/tone.ogg")
  else
    echo "note: ffmpeg is not installed (apt-get install ffmpeg): synthetic payloads instead of clips" >&2
  fi
fi

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
read -r -a TARGETS <<<"$TARGETS"

# Janus runs from a config of our own: only the VideoRoom plugin and the HTTP transport
# (symlinked from the package's folders) so it starts in about a second; the package's service
# and its config in /etc are not used.
JANUS_DIR=$OUT/janus
JANUS_URL=http://127.0.0.1:$JANUS_PORT/janus
JANUS_VERSION=
janus_pid=
janus_setup() {
  local so lib
  command -v janus >/dev/null ||
    { echo "note: janus is not installed (apt-get install janus): the Janus anchor is skipped" >&2; return 1; }
  PEER_IP=${PEER_IP:-$(ip -4 -o addr show scope global 2>/dev/null | awk '{ sub(/\/.*/, "", $4); print $4; exit }')}
  [ -n "$PEER_IP" ] ||
    { echo "note: no non-loopback IPv4 address, and Janus gathers no loopback candidates: the Janus anchor is skipped" >&2; return 1; }
  so=$(find /usr/lib -name libjanus_videoroom.so -print -quit)
  lib=$(dirname "$(dirname "${so:-/nowhere/x/y}")")
  [ -f "$lib/plugins/libjanus_videoroom.so" ] && [ -f "$lib/transports/libjanus_http.so" ] ||
    { echo "note: Janus's VideoRoom plugin or HTTP transport is not under /usr/lib: the Janus anchor is skipped" >&2; return 1; }
  rm -rf "$JANUS_DIR"
  mkdir -p "$JANUS_DIR"/{plugins,transports,events,loggers}
  ln -s "$lib/plugins/libjanus_videoroom.so" "$JANUS_DIR/plugins/"
  ln -s "$lib/transports/libjanus_http.so" "$JANUS_DIR/transports/"
  cat >"$JANUS_DIR/janus.jcfg" <<JCFG
general: {
  configs_folder = "$JANUS_DIR"
  plugins_folder = "$JANUS_DIR/plugins"
  transports_folder = "$JANUS_DIR/transports"
  events_folder = "$JANUS_DIR/events"
  loggers_folder = "$JANUS_DIR/loggers"
  debug_level = 4
}
nat: {
  ice_enforce_list = "$PEER_IP"
  ignore_mdns = true
}
JCFG
  cat >"$JANUS_DIR/janus.transport.http.jcfg" <<JCFG
general: {
  json = "plain"
  base_path = "/janus"
  http = true
  ip = "127.0.0.1"
  port = $JANUS_PORT
  https = false
}
admin: {
  admin_http = false
  admin_https = false
}
JCFG
  echo 'general: {}' >"$JANUS_DIR/janus.plugin.videoroom.jcfg"
  JANUS_VERSION="Janus $(dpkg-query -W -f='${Version}' janus 2>/dev/null || echo '(version unknown)')"
  echo "Janus anchor: ${JANUS_VERSION:-janus}, peers on $PEER_IP, config in $JANUS_DIR" >&2
}
start_janus() {
  taskset -c "$WORKER_CPU" janus -F "$JANUS_DIR" -C "$JANUS_DIR/janus.jcfg" --disable-colors \
    >>"$JANUS_DIR/janus.log" 2>&1 &
  janus_pid=$!
  for _ in $(seq 1 100); do
    curl -sf "$JANUS_URL/info" >/dev/null 2>&1 && return 0
    kill -0 "$janus_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "janus (pid $janus_pid) did not answer on $JANUS_URL: see $JANUS_DIR/janus.log" >&2
  stop_janus
  return 1
}
stop_janus() {
  [ -n "$janus_pid" ] || return 0
  kill "$janus_pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$janus_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -9 "$janus_pid" 2>/dev/null || true
  wait "$janus_pid" 2>/dev/null || true
  janus_pid=
}
trap stop_janus EXIT
with_janus=
for t in "${TARGETS[@]}"; do
  if [ "$t" = janus ] && janus_setup; then
    with_janus=1
  fi
done

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
for rep in $(seq 1 "$REPS"); do
  for c in "${CONFIGS[@]}"; do
    read -r p s pps video <<<"$c"
    extra=("${clip_args[@]}")
    if [ "$video" = 1 ]; then
      extra+=(--video)
      [ ${#clip_args[@]} = 0 ] || extra+=(--vp8 "$CLIPS/testsrc.ivf")
    fi
    for t in "${TARGETS[@]}"; do
      status=0
      case $t in
        worker)
          echo "rep $rep/$REPS: ${p}×${s} at ${pps} pps video=$video, worker" >&2
          "$BIN/examples/room_load" --worker "$BIN/mediaseal-room-worker" \
            --publishers "$p" --subscribers "$s" --pps "$pps" --seconds "$SECS" \
            --worker-cpu "$WORKER_CPU" --gen-cpu "$GEN_CPU" "${extra[@]}" \
            >>"$OUT/results.txt" || status=$?
          ;;
        janus)
          [ -n "$with_janus" ] || continue
          echo "rep $rep/$REPS: ${p}×${s} at ${pps} pps video=$video, Janus" >&2
          if start_janus; then
            "$BIN/examples/room_load" --janus-url "$JANUS_URL" --janus-pid "$janus_pid" \
              --peer-ip "$PEER_IP" --publishers "$p" --subscribers "$s" --pps "$pps" \
              --seconds "$SECS" --gen-cpu "$GEN_CPU" "${extra[@]}" \
              >>"$OUT/results.txt" || status=$?
          else
            status=1
          fi
          stop_janus
          ;;
        *) echo "unknown target '$t' in TARGETS (use worker and/or janus)" >&2; exit 2 ;;
      esac
      if [ "$status" != 0 ]; then
        echo "RESULT target=$t publishers=$p subscribers=$s pps=$pps video=$([ "$video" = 1 ] && echo true || echo false) failed=1" >>"$OUT/results.txt"
      fi
    done
  done
done
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$OUT/results.txt" "$REPS" "$SECS" "$PROFILE" "$load_start" "$load_end" "$JANUS_VERSION" <<'PY'
import statistics, sys
path, reps, secs, profile, l0, l1, janus = sys.argv[1:]
runs = {}
for line in open(path):
    if not line.startswith("RESULT "):
        continue
    kv = dict(f.split("=", 1) for f in line.split()[1:])
    key = (int(kv["publishers"]), int(kv["subscribers"]), int(kv["pps"]), kv["video"],
           kv.get("target", "worker"))
    runs.setdefault(key, []).append(kv)
print(f"One room worker on one core (taskset), {profile} build; medians of {reps} runs, {secs} s windows.")
if any(k[4] == "janus" for k in runs):
    print(f"Janus rows: {janus or 'Janus'}, VideoRoom plugin, a fresh process per run pinned to "
          "the worker's core, CPU of all its threads.")
print(f"Load average at start {l0}, at end {l1}. Anchors (published, not measured here): "
      "LiveKit ≈ 30 k forwarded pkt/s per vCPU, mediasoup ≈ 25–50 k per core.")
print()
print("| server | pub × sub | pkt/s per pub | media | forwarded pkt/s | loss % | p50 ms | p99 ms | server CPU % | µs CPU / fwd pkt | fwd pkt/s per core | vs LiveKit 30 k | RSS / HWM MiB | generator CPU % | runs |")
print("|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|")
for key in sorted(runs, key=lambda k: (k[2], k[3], k[0] * k[1], k[4] != "worker")):
    ok = [r for r in runs[key] if "failed" not in r]
    p, s, pps, video, target = key
    media = "Opus + VP8" if video == "true" else "Opus"
    if ok and ok[0].get("audio_src") == "opus-clip":
        media += " (clips)"
    server = "Janus" if target == "janus" else "mediaseal worker"
    if not ok:
        print(f"| {server} | {p}×{s} | {pps} | {media} | failed | | | | | | | | | | 0/{len(runs[key])} |")
        continue
    med = lambda f: statistics.median(float(r[f]) for r in ok)
    per_core = med("fwd_per_core")
    gen = [float(r["gen_cpu_pct"]) for r in ok if "gen_cpu_pct" in r]
    gen = f"{statistics.median(gen):.0f}" if gen else "–"
    print(f"| {server} | {p}×{s} | {pps} | {media} | {med('fwd_pps'):.0f} | {med('loss_pct'):.2f} | "
          f"{med('p50_ms'):.2f} | {med('p99_ms'):.2f} | {med('cpu_pct'):.1f} | "
          f"{med('cpu_us_per_pkt'):.1f} | {per_core / 1000:.1f} k | {per_core / 30000:.2f}× | "
          f"{med('rss_kb') / 1024:.0f} / {med('hwm_kb') / 1024:.0f} | {gen} | {len(ok)}/{len(runs[key])} |")
PY
