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
# `cold` mode: every format's encrypt and decrypt, file to file, beside `cp` + `sync` of the same
# file, each run starting from a cold page cache (512 MiB by default). Before each timed run the
# script syncs and evicts the run's input: with `echo 3 > /proc/sys/vm/drop_caches` when that is
# writable (checked, and the eviction verified with fincore), otherwise with
# posix_fadvise(POSIX_FADV_DONTNEED) on the input alone (`dd iflag=nocache count=0`, which
# drops clean pages only, hence the sync). The binaries and keys are read back in after a global
# drop, so what is timed is the data path, not program start. The runs are interleaved (one of
# each, RUNS times) so that load from other users of the machine falls on all of them alike.
# Peak RSS is then measured file to file with a BENCH_RSS_GIB input.
#
#   scripts/bench-envelope.sh [RUNS]
#   scripts/bench-envelope.sh cold [RUNS]
#   env: BENCH_DIR (default target/bench), BENCH_MIB (default 1024; 512 in cold mode),
#        BENCH_RSS_GIB (default 4; 0 skips), BENCH_EVICT (drop_caches or fadvise; default: drop_caches
#        when writable), BENCH_SKIP_BUILD=1 (use the release binaries already built),
#        BENCH_MEDIASEAL (the mediaseal binary to measure; default: this checkout's release build)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MODE=warm
if [ "${1:-}" = cold ]; then MODE=cold; shift; fi
RUNS=${1:-5}
DIR=${BENCH_DIR:-$ROOT/target/bench}
if [ "$MODE" = cold ]; then MIB=${BENCH_MIB:-512}; else MIB=${BENCH_MIB:-1024}; fi
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
MS=${BENCH_MEDIASEAL:-$TARGET/release/mediaseal}
LIMIT=$TARGET/release/examples/aes_gcm_limit

mkdir -p "$DIR"
cd "$DIR"
export TMPDIR=$DIR   # a pipe's ciphertext spool (rsa-aes/s3-gcm from stdin) lands here, not in /tmp
cleanup() { rm -rf "$DIR"/big.bin "$DIR"/big.enc "$DIR"/big.dec "$DIR"/plain.bin "$DIR"/*.enc "$DIR"/*.dec "$DIR"/*.d "$DIR"/out.bin "$DIR"/keys "$DIR"/key.bin "$DIR"/iv.bin; }
trap cleanup EXIT
BYTES=$((MIB * 1024 * 1024))
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
echo "making a ${MIB} MiB random file in $DIR…" >&2
head -c "$BYTES" /dev/urandom > plain.bin
"$MS" keygen --out keys >/dev/null
PUB=keys/public_key.pem
PRIV=keys/private_key.pem
declare -A SEC RSS

if [ "$MODE" = cold ]; then
  # ---- cold page cache, file to file ------------------------------------------------------------
  # Decide how to evict, and prove it works before trusting any figure.
  EVICT=${BENCH_EVICT:-}
  if [ -z "$EVICT" ]; then
    if sync && (echo 3 > /proc/sys/vm/drop_caches) 2>/dev/null; then EVICT=drop_caches; else EVICT=fadvise; fi
  fi
  # Programs, their libraries and the keys: read back in after a global drop, for every run alike.
  TOOLS="$MS $PUB $PRIV $TIME $(command -v cp bash sync | tr '\n' ' ')"
  TOOLS+=$(for b in "$MS" "$(command -v cp)" "$(command -v bash)"; do ldd "$b" 2>/dev/null || true; done \
    | awk '$2 == "=>" && $3 ~ /^\// {print $3} NF == 2 && $1 ~ /^\// {print $1}' | sort -u | tr '\n' ' ')
  warm_tools() { cat $TOOLS > /dev/null; }
  evict() { # FILE: make FILE's pages leave the page cache
    sync
    if [ "$EVICT" = drop_caches ]; then
      echo 3 > /proc/sys/vm/drop_caches
      warm_tools
    else
      dd if="$1" iflag=nocache count=0 status=none
    fi
  }
  cached_pages() { fincore --noheadings --output PAGES "$1" 2>/dev/null | tr -d ' ' || echo '?'; }
  cat plain.bin > /dev/null
  before=$(cached_pages plain.bin)
  evict plain.bin
  after=$(cached_pages plain.bin)
  echo "eviction by $EVICT: plain.bin had $before pages cached, $after after evicting" >&2
  if [ "$after" != 0 ] && [ "$after" != '?' ]; then
    echo "eviction does not work here ($after pages still cached); refusing to report cold figures" >&2
    exit 1
  fi
  export -f evict warm_tools
  export EVICT MS PUB PRIV TOOLS

  # The encrypted inputs for the decrypt runs (made once, warm; evicted before each run).
  for f in native rsa-aes s3-gcm s3-cbc; do
    d=""; [ "$f" = native ] || d="--details $f.d"
    "$MS" encrypt -q --format "$f" --public-key "$PUB" --in plain.bin --out "$f.enc" $d
  done

  LABELS=(cpsync)
  declare -A CMD PREP
  CMD[cpsync]='cp plain.bin out.bin && sync out.bin'; PREP[cpsync]='rm -f out.bin; evict plain.bin'
  for f in native rsa-aes s3-gcm s3-cbc; do
    d=""; [ "$f" = native ] || d="--details $f.d"
    CMD[enc-$f]="'$MS' encrypt -q --format $f --public-key $PUB --in plain.bin --out out.bin ${d/$f.d/out.d}"
    PREP[enc-$f]='rm -f out.bin out.d; evict plain.bin'
    CMD[dec-$f]="'$MS' decrypt -q --private-key $PRIV --in $f.enc --out out.bin $d"
    PREP[dec-$f]="rm -f out.bin; evict $f.enc"
    LABELS+=("enc-$f" "dec-$f")
  done
  declare -A TIMES
  echo "cold page cache, file to file, ${MIB} MiB, $RUNS interleaved rounds…" >&2
  for ((i = 0; i < RUNS; i++)); do
    for label in "${LABELS[@]}"; do
      bash -c "${PREP[$label]}"
      out=$("$TIME" -f '%e %M' bash -c "${CMD[$label]}" 2>&1 >/dev/null | tail -n 1)
      TIMES[$label]+="${out% *} "
      peak=${RSS[$label]:-0}; ((${out#* } > peak)) && peak=${out#* }
      RSS[$label]=$peak
    done
    last=${TIMES[cpsync]% }; echo "  round $((i + 1)): cp + sync ${last##* } s" >&2
  done
  rm -f out.bin out.d
  for label in "${LABELS[@]}"; do
    SEC[$label]=$(printf '%s\n' ${TIMES[$label]} | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    printf '  %-20s %7.3f s  (runs: %s)\n' "$label" "${SEC[$label]}" "${TIMES[$label]}" >&2
  done

  if [ "$RSS_GIB" -gt 0 ]; then
    echo "peak RSS, file to file, with a ${RSS_GIB} GiB input…" >&2
    truncate -s "${RSS_GIB}G" big.bin
    for f in native rsa-aes s3-gcm s3-cbc; do
      d=""; [ "$f" = native ] || d="--details big-$f.d"
      out=$("$TIME" -f '%e %M' "$MS" encrypt -q --format "$f" --public-key "$PUB" --in big.bin --out big.enc $d 2>&1 >/dev/null | tail -n 1)
      RSS[big-enc-$f]=${out#* }
      out=$("$TIME" -f '%e %M' "$MS" decrypt -q --private-key "$PRIV" --in big.enc --out big.dec $d 2>&1 >/dev/null | tail -n 1)
      RSS[big-dec-$f]=${out#* }
      rm -f big.enc big.dec "big-$f.d"
    done
    rm -f big.bin
  fi

  mib() { echo "${RSS[$1]} / 1024" | bc -l; }
  echo
  echo "Input: ${MIB} MiB of random bytes in $DIR, file to file; cold page cache before every run (eviction: $EVICT); medians of $RUNS interleaved rounds."
  echo "Machine: $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)); load average at start $LOAD_START, at end $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  echo '| what | median s | GB/s | peak RSS MiB | speed vs cp + sync (target ≥ 0.9×) |'
  echo '|---|---|---|---|---|'
  printf '| cp + sync (anchor) | %.3f | %.2f | %.0f | 1.00× |\n' "${SEC[cpsync]}" "$(echo "$BYTES / ${SEC[cpsync]} / 1000000000" | bc -l)" "$(mib cpsync)"
  for f in native rsa-aes s3-gcm s3-cbc; do
    for op in enc dec; do
      k=$op-$f
      x=$(echo "${SEC[cpsync]} / ${SEC[$k]}" | bc -l)
      v=$(echo "$x >= 0.9" | bc -l); [ "$v" = 1 ] && v=met || v='**not met**'
      [ $op = enc ] && name="$f encrypt" || name="$f decrypt"
      printf '| %s | %.3f | %.2f | %.0f | %.2f×: %s |\n' "$name" "${SEC[$k]}" "$(echo "$BYTES / ${SEC[$k]} / 1000000000" | bc -l)" "$(mib "$k")" "$x" "$v"
    done
  done
  if [ "$RSS_GIB" -gt 0 ]; then
    echo
    echo "Peak RSS, file to file, with a ${RSS_GIB} GiB input (target ≤ 64 MiB):"
    echo
    echo '| format | encrypt | decrypt |'
    echo '|---|---|---|'
    for f in native rsa-aes s3-gcm s3-cbc; do
      printf '| %s | %.0f MiB | %.0f MiB |\n' "$f" "$(mib big-enc-$f)" "$(mib big-dec-$f)"
    done
  fi
  exit 0
fi

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
