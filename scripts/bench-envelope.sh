#!/usr/bin/env bash
# Envelope benchmark of issue 2: on one random file (1 GiB by default), each format's encrypt and
# decrypt throughput and peak RSS, beside its anchors:
#   (a) aws-lc-rs one-shot AES-256-GCM over the same bytes in memory (the machine's AES limit),
#   (b) `openssl enc -aes-256-cbc` on the same file,
#   (c) the Python `cryptography` path of seed 002 (reads the whole file into memory),
#   (d) `cp` of the same file (and `cp` + fsync, since mediaseal fsyncs what it writes).
# Then peak RSS with a 4 GiB input. Every figure is the median of RUNS runs (default 5); peak RSS
# is the largest seen. It is a benchmark, not a test: it asserts nothing and prints a Markdown table.
#
#   scripts/bench-envelope.sh [RUNS]
#   env: BENCH_DIR (default target/bench), BENCH_MIB (default 1024), BENCH_RSS_GIB (default 4; 0 skips),
#        BENCH_SKIP_BUILD=1 (use the release binaries already built)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${1:-5}
DIR=${BENCH_DIR:-$ROOT/target/bench}
MIB=${BENCH_MIB:-1024}
RSS_GIB=${BENCH_RSS_GIB:-4}
PY=${MEDIASEAL_PYTHON:-$ROOT/.venv/bin/python}
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "GNU time is missing (Debian package 'time'); run scripts/setup.sh" >&2; exit 1; }
[ -x "$PY" ] || { echo "no Python venv at $PY; run scripts/setup.sh" >&2; exit 1; }

if [ "${BENCH_SKIP_BUILD:-0}" != 1 ]; then
  echo "building (release)…" >&2
  (cd "$ROOT" && cargo build --release --locked -q -p mediaseal --bin mediaseal \
    && cargo build --release --locked -q -p mediaseal-crypto --example aes_gcm_limit)
fi
TARGET=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
MS=$TARGET/release/mediaseal
LIMIT=$TARGET/release/examples/aes_gcm_limit

mkdir -p "$DIR"
cd "$DIR"
export TMPDIR=$DIR   # a pipe's ciphertext spool (rsa-aes/s3-gcm from stdin) lands here, not in /tmp
cleanup() { rm -rf "$DIR"/plain.bin "$DIR"/*.enc "$DIR"/*.dec "$DIR"/*.d "$DIR"/out.bin "$DIR"/keys "$DIR"/key.bin "$DIR"/iv.bin; }
trap cleanup EXIT
BYTES=$((MIB * 1024 * 1024))
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
echo "making a ${MIB} MiB random file in $DIR…" >&2
head -c "$BYTES" /dev/urandom > plain.bin
"$MS" keygen --out keys >/dev/null
PUB=keys/public_key.pem
PRIV=keys/private_key.pem

declare -A SEC RSS
# measure LABEL 'shell command' [prepare command run before each run, untimed]
measure() {
  local label=$1 cmd=$2 prep=${3:-true} times=() peak=0 i out
  for ((i = 0; i < RUNS; i++)); do
    bash -c "$prep"
    sync
    out=$("$TIME" -f '%e %M' bash -c "$cmd" 2>&1 >/dev/null | tail -n 1)
    times+=("${out% *}")
    ((${out#* } > peak)) && peak=${out#* }
  done
  SEC[$label]=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  RSS[$label]=$peak
  printf '  %-44s %7.3f s  %7.0f MiB\n' "$label" "${SEC[$label]}" "$(echo "$peak/1024" | bc -l)" >&2
}

echo "anchors…" >&2
SEC[aes]=$("$LIMIT" plain.bin "$RUNS"); RSS[aes]=0
printf '  %-44s %7.3f s\n' "(a) aws-lc-rs one-shot AES-256-GCM, in memory" "${SEC[aes]}" >&2
measure cp 'cp plain.bin out.bin' 'rm -f out.bin'
measure cpsync 'cp plain.bin out.bin && sync out.bin' 'rm -f out.bin'
K=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n'); IV=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
measure openssl "openssl enc -aes-256-cbc -K $K -iv $IV -in plain.bin -out out.bin" 'rm -f out.bin'

echo "mediaseal, file to file (fsync included)…" >&2
for f in native rsa-aes s3-gcm s3-cbc; do
  d=""; [ "$f" = native ] || d="--details $f.d"
  measure "enc-$f" "'$MS' encrypt -q --format $f --public-key $PUB --in plain.bin --out $f.enc $d" "rm -f $f.enc"
  measure "dec-$f" "'$MS' decrypt -q --private-key $PRIV --in $f.enc --out $f.dec $d" "rm -f $f.dec"
  rm -f "$f.dec"
done
measure enc-native-t1 "'$MS' encrypt -q --threads 1 --format native --public-key $PUB --in plain.bin --out t1.enc" 'rm -f t1.enc'
measure dec-native-t1 "'$MS' decrypt -q --threads 1 --private-key $PRIV --in native.enc --out t1.dec" 'rm -f t1.dec'
rm -f t1.enc t1.dec

echo "Python cryptography (seed 002's shape: whole file in memory)…" >&2
read -r PYKEY PYIV < <("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["encrypted_cek"], d["iv"])' rsa-aes.d)
measure py-dec "'$PY' '$ROOT/interop/crypto/seed002_decrypt.py' $PYKEY $PYIV rsa-aes.enc $PRIV py.dec" 'rm -f py.dec'
measure py-enc "'$PY' '$ROOT/interop/crypto/independent.py' seal rsa-aes $PUB plain.bin py.enc py.d" 'rm -f py.enc'
rm -f py.dec py.enc py.d

echo "mediaseal, stdin to stdout into /dev/null…" >&2
for t in 1 2; do
  measure "pipe-enc-native-t$t" "'$MS' encrypt -q --threads $t --format native --public-key $PUB --in - --out - < plain.bin > /dev/null"
  measure "pipe-dec-native-t$t" "'$MS' decrypt -q --threads $t --private-key $PRIV --in - --out - < native.enc > /dev/null"
done
measure pipe-enc-rsa-aes "'$MS' encrypt -q --format rsa-aes --public-key $PUB --in - --out - --details p.d < plain.bin > /dev/null"
measure pipe-dec-rsa-aes "'$MS' decrypt -q --private-key $PRIV --in - --out - --details rsa-aes.d < rsa-aes.enc > /dev/null"
rm -f p.d

if [ "$RSS_GIB" -gt 0 ]; then
  echo "peak RSS with a ${RSS_GIB} GiB input (zeros through pipes)…" >&2
  SAVE=$RUNS; RUNS=1
  G=$((RSS_GIB * 1024 * 1024 * 1024))
  for f in native rsa-aes s3-gcm s3-cbc; do
    d=""; [ "$f" = native ] || d="--details big-$f.d"
    measure "big-enc-$f" "head -c $G /dev/zero | '$MS' encrypt -q --format $f --public-key $PUB --in - --out big.enc $d"
    measure "big-dec-$f" "'$MS' decrypt -q --private-key $PRIV --in big.enc --out - $d > /dev/null"
    measure "big-pipe-dec-$f" "'$MS' decrypt -q --private-key $PRIV --in - --out - $d < big.enc | cat > /dev/null"
    rm -f big.enc big-$f.d
  done
  RUNS=$SAVE
fi

# ---- report -------------------------------------------------------------------------------------
rate() { echo "$BYTES / ${SEC[$1]} / 1000000000" | bc -l; }
ratio() { echo "${SEC[$2]} / ${SEC[$1]}" | bc -l; }   # how many times faster $1 is than $2
mib() { echo "${RSS[$1]} / 1024" | bc -l; }
declare -A NAME=([aes]='(a)' [openssl]='(b)' [py-dec]='(c)' [py-enc]="(c')" [cp]='(d)' [cpsync]="(d')"
  [pipe-enc-native-t1]='1 thread' [pipe-dec-native-t1]='1 thread')
row() { # label key [anchor-key target-ratio]  (target-ratio 0: no target, ratio shown only)
  local r; r=$(rate "$2")
  if [ -n "${3:-}" ]; then
    local x; x=$(ratio "$2" "$3")
    local verdict=""
    if [ "$4" != 0 ]; then
      verdict=$(echo "$x >= $4" | bc -l); [ "$verdict" = 1 ] && verdict="; target ≥ $4×: met" || verdict="; target ≥ $4×: **not met**"
    fi
    printf '| %s | %.3f | %.2f | %.0f | %.2f× %s%s |\n' "$1" "${SEC[$2]}" "$r" "$(mib "$2")" "$x" "${NAME[$3]}" "$verdict"
  else
    printf '| %s | %.3f | %.2f | %.0f | |\n' "$1" "${SEC[$2]}" "$r" "$(mib "$2")"
  fi
}
echo
echo "Input: ${MIB} MiB of random bytes in $DIR; medians of $RUNS runs; GB/s = 10^9 plaintext bytes per second."
echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)); load average at start $LOAD_START, at end $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo '| what | median s | GB/s | peak RSS MiB | ratio (× faster than) |'
echo '|---|---|---|---|---|'
row '(a) aws-lc-rs one-shot AES-256-GCM, in memory' aes
row '(b) openssl enc -aes-256-cbc, file to file' openssl
row '(c) Python seed 002 decrypt (rsa-aes), file to file' py-dec
row "(c') Python cryptography encrypt (rsa-aes), file to file" py-enc
row '(d) cp, file to file' cp
row "(d') cp + sync, file to file" cpsync
row 'native encrypt, file to file, 2 threads' enc-native cp 0.8
row 'native decrypt, file to file, 2 threads' dec-native cp 0.8
row 'native encrypt, file to file, 2 threads (vs cp + sync)' enc-native cpsync 0.8
row 'native decrypt, file to file, 2 threads (vs cp + sync)' dec-native cpsync 0.8
row 'native encrypt, file to file, 1 thread' enc-native-t1 cp 0.8
row 'native decrypt, file to file, 1 thread' dec-native-t1 cp 0.8
row 'rsa-aes encrypt, file to file' enc-rsa-aes cp 0.8
row 'rsa-aes decrypt, file to file' dec-rsa-aes cp 0.8
row 'rsa-aes encrypt, file to file (vs cp + sync)' enc-rsa-aes cpsync 0.8
row 'rsa-aes decrypt, file to file (vs cp + sync)' dec-rsa-aes cpsync 0.8
row 'rsa-aes encrypt vs Python encrypt' enc-rsa-aes py-enc 5
row 'rsa-aes decrypt vs Python seed 002' dec-rsa-aes py-dec 5
row 'native encrypt vs Python encrypt' enc-native py-enc 5
row 'native decrypt vs Python seed 002' dec-native py-dec 5
row 's3-gcm encrypt, file to file' enc-s3-gcm cp 0
row 's3-gcm decrypt, file to file' dec-s3-gcm cp 0
row 's3-cbc encrypt, file to file' enc-s3-cbc openssl 0.9
row 's3-cbc decrypt, file to file' dec-s3-cbc cp 0
row 'native encrypt, stdin→/dev/null, 1 thread' pipe-enc-native-t1 aes 0.6
row 'native decrypt, stdin→/dev/null, 1 thread' pipe-dec-native-t1 aes 0.6
row 'native encrypt, stdin→/dev/null, 2 threads' pipe-enc-native-t2 pipe-enc-native-t1 1.6
row 'native decrypt, stdin→/dev/null, 2 threads' pipe-dec-native-t2 pipe-dec-native-t1 1.6
row 'rsa-aes encrypt, stdin→/dev/null (cipher + I/O thread)' pipe-enc-rsa-aes aes 0.6
row 'rsa-aes decrypt, stdin→/dev/null (verify pass + decrypt pass)' pipe-dec-rsa-aes aes 0
if [ "$RSS_GIB" -gt 0 ]; then
  echo
  echo "Peak RSS with a ${RSS_GIB} GiB input (target ≤ 64 MiB):"
  echo
  echo '| format | encrypt, stdin → file | decrypt, file → stdout | decrypt, stdin → stdout |'
  echo '|---|---|---|---|'
  for f in native rsa-aes s3-gcm s3-cbc; do
    printf '| %s | %.0f MiB | %.0f MiB | %.0f MiB |\n' "$f" "$(mib big-enc-$f)" "$(mib big-dec-$f)" "$(mib big-pipe-dec-$f)"
  done
fi
