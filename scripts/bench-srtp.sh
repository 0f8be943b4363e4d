#!/usr/bin/env bash
# SRTP throughput: mediaseal-srtp vs libsrtp 2.7 + OpenSSL 3.5 (the pylibsrtp wheel's bundled
# library, driven by shared/tools/srtp-anchor's C harness), in one run, on one pinned core.
#
# Both sides do the same work: 172-byte RTP packets (160-byte G.711 payload), one SSRC, protect
# timed over 2M packets, then unprotect (with a copy from the stored packet) over 100k. The runs
# alternate (libsrtp, ours, libsrtp, ours, …) REPS times and the table reports medians.
#
#   scripts/bench-srtp.sh            # REPS=5, core 0
#   REPS=9 CORE=1 scripts/bench-srtp.sh
#
# A benchmark, not a test: it never fails on a missed target, it only reports.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
REPS=${REPS:-5}
CORE=${CORE:-0}
ANCHOR=${SRTP_ANCHOR:-$ROOT/../shared/tools/srtp-anchor/run.sh}
export SRTP_ANCHOR_DIR=${SRTP_ANCHOR_DIR:-$ROOT/target/srtp-anchor}
OUT=$ROOT/target/bench-srtp
mkdir -p "$OUT"
rm -f "$OUT"/anchor.txt "$OUT"/ours.txt

[ -f "$ANCHOR" ] || { echo "anchor not found at $ANCHOR (set SRTP_ANCHOR)" >&2; exit 2; }
echo "building mediaseal-srtp bench binary (release)…" >&2
cargo build --quiet --release --manifest-path "$ROOT/Cargo.toml" -p mediaseal-srtp --example srtp-bench
OURS=$ROOT/target/release/examples/srtp-bench

echo "building libsrtp anchor in $SRTP_ANCHOR_DIR…" >&2
# run.sh builds the harness (and its venv on first use) and runs it once; keep that run too.
taskset -c "$CORE" bash "$ANCHOR" >>"$OUT/anchor.txt"
for i in $(seq 1 "$REPS"); do
  echo "rep $i/$REPS" >&2
  taskset -c "$CORE" "$OURS" >>"$OUT/ours.txt"
  taskset -c "$CORE" "$SRTP_ANCHOR_DIR/bench" >>"$OUT/anchor.txt"
done

python3 - "$OUT/anchor.txt" "$OUT/ours.txt" "$REPS" "$CORE" <<'PY'
import re, statistics, sys
anchor, ours, reps, core = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
lib = {}
for line in open(anchor):
    m = re.match(r"(\S+)\s+protect: (\d+) pkt/s .*unprotect\(incl memcpy\): (\d+) pkt/s", line)
    if m:
        lib.setdefault((m[1], "protect"), []).append(int(m[2]))
        lib.setdefault((m[1], "unprotect"), []).append(int(m[3]))
us = {}
for line in open(ours):
    m = re.match(r"(\S+) protect (\d+) unprotect (\d+)", line)
    if m:
        us.setdefault((m[1], "protect"), []).append(int(m[2]))
        us.setdefault((m[1], "unprotect"), []).append(int(m[3]))
targets = {"AES_CM_128_HMAC_SHA1_80": 1.5, "AES_CM_128_HMAC_SHA1_32": 1.5, "AEAD_AES_128_GCM": 1.0}
print(f"SRTP 172-byte packets, one core (taskset -c {core}), medians of {reps} mediaseal runs "
      f"and {len(lib.get(('AES_CM_128_HMAC_SHA1_80', 'protect'), []))} libsrtp runs")
print()
print("| suite | op | mediaseal-srtp pkt/s | libsrtp 2.7 pkt/s | ratio | target |")
print("|---|---|---:|---:|---:|---|")
for suite in ["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32", "AEAD_AES_128_GCM",
              "AEAD_AES_256_GCM", "AES_256_CM_HMAC_SHA1_80"]:
    for op in ["protect", "unprotect"]:
        o = statistics.median(us[(suite, op)]) if (suite, op) in us else None
        l = statistics.median(lib[(suite, op)]) if (suite, op) in lib else None
        ratio = f"{o / l:.2f}×" if o and l else "–"
        t = targets.get(suite)
        target = "–" if t is None or not l else (f"≥ {t}× " + ("met" if o / l >= t else "MISSED"))
        fmt = lambda v: f"{v / 1e6:.2f} M" if v else "– (not in libsrtp harness)"
        print(f"| {suite} | {op} | {fmt(o)} | {fmt(l)} | {ratio} | {target} |")
PY
