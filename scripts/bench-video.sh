#!/usr/bin/env bash
# Video benchmarks, each beside the same work done by plain tools in the same run:
#   1. /Media download of a 1 GiB track recording: sealed in s3-cbc (stored bytes + headers) and
#      sealed at rest (decrypted by the server on the way out); anchors: reading the same sealed
#      file with `cat`, and decrypting it with `openssl enc -d -aes-256-cbc`.
#   2. fetch + decrypt of that recording by the customer: `mediaseal download RT…` against seed
#      001's recipe (`wget -S` + `openssl rsautl` + `openssl enc -d -aes-256-cbc`, then `sync`,
#      since mediaseal fsyncs its output).
#   3. composing 2 × 10 min audio tracks into WebM/Opus: POST /v1/Compositions until `completed`,
#      against plain ffmpeg running the same filter graph on the same files.
# Medians of RUNS (default 5) and COMPOSE_RUNS (default 3). Not a test; numbers go to stdout and
# target/bench/video-results.md. Big files live under target/bench/video and are deleted after.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
RUNS=${RUNS:-5}
COMPOSE_RUNS=${COMPOSE_RUNS:-3}
W="$ROOT/target/bench/video"
RESULTS="$ROOT/target/bench/video-results.md"
SERVER_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
  rm -rf "$W"
}
trap cleanup EXIT
rm -rf "$W"
mkdir -p "$W"

for tool in ffmpeg openssl curl wget python3 hexdump base64; do
  command -v "$tool" >/dev/null || { echo "missing $tool; run scripts/setup.sh" >&2; exit 1; }
done
cargo build --release -q -p mediaseal
BIN="$ROOT/target/release/mediaseal"

now() { date +%s.%N; }
median() { python3 -c 'import sys,statistics; print("%.3f" % statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
json() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval("d"+sys.argv[1]))' "$1"; }
ratio() { python3 -c 'import sys; print("%.2f" % (float(sys.argv[1])/float(sys.argv[2])))' "$1" "$2"; }
rate() { python3 -c 'import sys; print("%.0f" % (float(sys.argv[1])/float(sys.argv[2])/1048576))' "$1" "$2"; }

# --- server, account, key ---------------------------------------------------------------------
"$BIN" account create --data "$W/data" > "$W/account.json"
AC=$(json '["sid"]' < "$W/account.json")
TOKEN=$(json '["auth_token"]' < "$W/account.json")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
RUST_LOG=warn TMPDIR="$W" "$BIN" serve --data "$W/data" --listen "127.0.0.1:$PORT" > "$W/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do curl -sf "$BASE/healthz" >/dev/null && break; sleep 0.1; done
api() { curl -sf -u "$AC:$TOKEN" "$@"; }
openssl genrsa -out "$W/private_key.pem" 2048 2>/dev/null
openssl rsa -in "$W/private_key.pem" -pubout -out "$W/public_key.pem" 2>/dev/null
KEY=$(api -X POST "$BASE/v1/Credentials/PublicKeys" --data-urlencode "PublicKey@$W/public_key.pem" -d FriendlyName=bench | json '["sid"]')
ROOM=$(api -X POST "$BASE/v1/Rooms" -d UniqueName=bench | json '["sid"]')
upload() { # file track-name -> RT…
  # -T streams the file (--data-binary would hold all of it in memory).
  api -X POST -H 'Content-Type: video/x-matroska' -T "$1" \
    "$BASE/v1/Rooms/$ROOM/Recordings?ParticipantSid=PA0123456789abcdef0123456789abcdef&TrackName=$2&Type=${3:-video}" | json '["sid"]'
}

# --- 1 GiB recording ----------------------------------------------------------------------------
echo "== making a 1 GiB Matroska track (raw 720p video)" >&2
ffmpeg -hide_banner -loglevel error -nostdin -f lavfi -i testsrc=size=1280x720:rate=30 -frames:v 777 \
  -c:v rawvideo -pix_fmt yuv420p -f matroska "$W/big.mkv"
SIZE=$(stat -c %s "$W/big.mkv")
api -X POST "$BASE/v1/RecordingSettings/Default" -d FriendlyName=bench -d EncryptionEnabled=true -d "EncryptionKeySid=$KEY" >/dev/null
t0=$(now); RT_SEALED=$(upload "$W/big.mkv" big-sealed); t1=$(now)
INGEST_SEALED=$(python3 -c "print($t1-$t0)")
api -X POST "$BASE/v1/RecordingSettings/Default" -d FriendlyName=bench >/dev/null
t0=$(now); RT_CLEAR=$(upload "$W/big.mkv" big-clear); t1=$(now)
INGEST_CLEAR=$(python3 -c "print($t1-$t0)")
media_url() { api "$BASE/v1/Recordings/$1/Media" | json '["redirect_to"]'; }

# The sealed object as the customer receives it, plus its key and IV (seed 001, step 5.2).
wget -q -S "$(media_url "$RT_SEALED")" -O "$W/sealed.bin" 2> "$W/headers.txt"
K=$(sed -n 's/^ *x-amz-meta-x-amz-key: //p' "$W/headers.txt" | tr -d '\r')
IV=$(sed -n 's/^ *x-amz-meta-x-amz-iv: //p' "$W/headers.txt" | tr -d '\r')
base64 -d <<< "$K" > "$W/key.bin.enc"
openssl rsautl -decrypt -inkey "$W/private_key.pem" -in "$W/key.bin.enc" -out "$W/key.bin" 2>/dev/null
base64 -d <<< "$IV" > "$W/iv.bin"
HEXKEY=$(hexdump -v -e '/1 "%02X"' < "$W/key.bin"); HEXIV=$(hexdump -v -e '/1 "%02X"' < "$W/iv.bin")
SEALED_SIZE=$(stat -c %s "$W/sealed.bin")

declare -a T_SEALED T_CLEAR T_CAT T_OSSL T_DL T_RECIPE
for i in $(seq "$RUNS"); do
  echo "== download run $i/$RUNS" >&2
  url=$(media_url "$RT_SEALED")
  T_SEALED+=("$(curl -s -o /dev/null -w '%{time_total}' "$url")")
  url=$(media_url "$RT_CLEAR")
  T_CLEAR+=("$(curl -s -o /dev/null -w '%{time_total}' "$url")")
  t0=$(now); cat "$W/sealed.bin" > /dev/null; t1=$(now); T_CAT+=("$(python3 -c "print($t1-$t0)")")
  t0=$(now); openssl enc -d -aes-256-cbc -in "$W/sealed.bin" -out /dev/null -K "$HEXKEY" -iv "$HEXIV"; t1=$(now)
  T_OSSL+=("$(python3 -c "print($t1-$t0)")")
  rm -f "$W/dl.mkv"
  t0=$(now); "$BIN" download "$RT_SEALED" --credentials "$AC:$TOKEN" --private-key "$W/private_key.pem" --out "$W/dl.mkv" --base-url "$BASE" -q; t1=$(now)
  T_DL+=("$(python3 -c "print($t1-$t0)")")
  cmp -s "$W/dl.mkv" "$W/big.mkv" || { echo "mediaseal download gave other bytes" >&2; exit 1; }
  rm -f "$W/dl.mkv" "$W/r"/* 2>/dev/null || true; mkdir -p "$W/r"
  t0=$(now)
  (
    cd "$W/r"
    wget -q -S "$(media_url "$RT_SEALED")" -O encrypted-filename 2> headers.txt
    k=$(sed -n 's/^ *x-amz-meta-x-amz-key: //p' headers.txt | tr -d '\r'); v=$(sed -n 's/^ *x-amz-meta-x-amz-iv: //p' headers.txt | tr -d '\r')
    base64 -d <<< "$k" >> key.bin.enc
    openssl rsautl -decrypt -inkey "$W/private_key.pem" -in key.bin.enc -out key.bin 2>/dev/null
    base64 -d <<< "$v" >> iv.bin
    openssl enc -d -aes-256-cbc -in encrypted-filename -out decrypted-filename -K "$(hexdump -v -e '/1 "%02X"' < key.bin)" -iv "$(hexdump -v -e '/1 "%02X"' < iv.bin)"
    sync decrypted-filename
  )
  t1=$(now); T_RECIPE+=("$(python3 -c "print($t1-$t0)")")
  cmp -s "$W/r/decrypted-filename" "$W/big.mkv" || { echo "the recipe gave other bytes" >&2; exit 1; }
  rm -rf "$W/r"
done
rm -f "$W/big.mkv" "$W/dl.mkv"

# --- composing 2 × 10 min -----------------------------------------------------------------------
echo "== making two 10-minute Opus tracks" >&2
ffmpeg -hide_banner -loglevel error -nostdin -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=600" -c:a libopus -b:a 48k -f matroska "$W/a.mka"
ffmpeg -hide_banner -loglevel error -nostdin -f lavfi -i "sine=frequency=660:sample_rate=48000:duration=600" -c:a libopus -b:a 48k -f matroska "$W/b.mka"
ROOM2=$(api -X POST "$BASE/v1/Rooms" -d UniqueName=compose | json '["sid"]')
ROOM=$ROOM2
upload "$W/a.mka" a-mic audio >/dev/null
upload "$W/b.mka" b-mic audio >/dev/null
api -X POST "$BASE/v1/Rooms/$ROOM2" -d Status=completed >/dev/null
GRAPH="[0:a]aresample=48000,adelay=delays=0:all=1[a0];[1:a]aresample=48000,adelay=delays=0:all=1[a1];[a0][a1]amix=inputs=2:duration=longest:dropout_transition=0:normalize=0[aout]"
declare -a T_COMPOSE T_FFMPEG
for i in $(seq "$COMPOSE_RUNS"); do
  echo "== compose run $i/$COMPOSE_RUNS" >&2
  t0=$(now)
  CJ=$(api -X POST "$BASE/v1/Compositions" -d "RoomSid=$ROOM2" -d AudioSources=a-mic -d AudioSources=b-mic -d Format=webm | json '["sid"]')
  while :; do
    st=$(api "$BASE/v1/Compositions/$CJ" | json '["status"]')
    [ "$st" = completed ] && break
    [ "$st" = failed ] && { echo "composition failed" >&2; exit 1; }
    sleep 0.1
  done
  t1=$(now); T_COMPOSE+=("$(python3 -c "print($t1-$t0)")")
  api -X DELETE "$BASE/v1/Compositions/$CJ" >/dev/null
  t0=$(now)
  ffmpeg -hide_banner -loglevel error -nostdin -i "$W/a.mka" -i "$W/b.mka" -filter_complex "$GRAPH" -map '[aout]' \
    -t 600.000 -c:a libopus -b:a 64k -f webm -y /dev/null
  t1=$(now); T_FFMPEG+=("$(python3 -c "print($t1-$t0)")")
done

# --- report -------------------------------------------------------------------------------------
M_SEALED=$(median "${T_SEALED[@]}"); M_CLEAR=$(median "${T_CLEAR[@]}"); M_CAT=$(median "${T_CAT[@]}")
M_OSSL=$(median "${T_OSSL[@]}"); M_DL=$(median "${T_DL[@]}"); M_RECIPE=$(median "${T_RECIPE[@]}")
M_COMPOSE=$(median "${T_COMPOSE[@]}"); M_FFMPEG=$(median "${T_FFMPEG[@]}")
CPU=$(lscpu | sed -n 's/^Model name: *//p' | head -1); NCPU=$(nproc)
{
  echo "### Video: /Media downloads and compositions (\`scripts/bench-video.sh\`)"
  echo
  echo "$CPU, $NCPU vCPU; $(date -u +%Y-%m-%d); medians of $RUNS runs (downloads) and $COMPOSE_RUNS runs (compositions), all in one run of the script."
  echo "Track: $SIZE bytes (1 GiB raw 720p video in Matroska); sealed s3-cbc object $SEALED_SIZE bytes. Ingest (one upload each): s3-cbc $(rate "$SIZE" "$INGEST_SEALED") MiB/s, at rest $(rate "$SIZE" "$INGEST_CLEAR") MiB/s."
  echo
  echo "| work | mediaseal | s | MiB/s | plain-tool anchor (same run) | s | MiB/s | mediaseal ÷ anchor (time) |"
  echo "|---|---|---|---|---|---|---|---|"
  echo "| 1 GiB track, /Media URL → curl → /dev/null | s3-cbc, stored bytes + headers | $M_SEALED | $(rate "$SEALED_SIZE" "$M_SEALED") | \`cat\` of the same sealed file | $M_CAT | $(rate "$SEALED_SIZE" "$M_CAT") | $(ratio "$M_SEALED" "$M_CAT") |"
  echo "| 1 GiB track, /Media URL → curl → /dev/null | at rest, decrypted by the server | $M_CLEAR | $(rate "$SIZE" "$M_CLEAR") | \`openssl enc -d -aes-256-cbc\` of the sealed file | $M_OSSL | $(rate "$SEALED_SIZE" "$M_OSSL") | $(ratio "$M_CLEAR" "$M_OSSL") |"
  echo "| 1 GiB track, fetch + decrypt to a file (customer side) | \`mediaseal download RT…\` | $M_DL | $(rate "$SIZE" "$M_DL") | seed 001 recipe: \`wget -S\` + \`openssl rsautl\` + \`openssl enc -d\` + \`sync\` | $M_RECIPE | $(rate "$SIZE" "$M_RECIPE") | $(ratio "$M_DL" "$M_RECIPE") |"
  echo "| compose 2 × 10 min Opus tracks → WebM/Opus | POST /v1/Compositions → \`completed\` (decrypt, FIFOs, ffmpeg, seal at rest) | $M_COMPOSE | – | plain \`ffmpeg\`, same filter graph and codec, files → /dev/null | $M_FFMPEG | – | $(ratio "$M_COMPOSE" "$M_FFMPEG") |"
  echo
  echo "Raw seconds: sealed /Media ${T_SEALED[*]}; at-rest /Media ${T_CLEAR[*]}; cat ${T_CAT[*]}; openssl ${T_OSSL[*]}; mediaseal download ${T_DL[*]}; recipe ${T_RECIPE[*]}; compose ${T_COMPOSE[*]}; ffmpeg ${T_FFMPEG[*]}."
} | tee "$RESULTS"
