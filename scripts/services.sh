#!/usr/bin/env bash
# Throwaway PostgreSQL and Garage (S3) servers on loopback, for the scale-out tests and benchmarks.
#
#   scripts/services.sh install        install PostgreSQL (Debian) and Garage (cargo) if missing
#   scripts/services.sh start DIR      install if needed, start both under DIR, write DIR/env
#   scripts/services.sh stop DIR       stop what `start DIR` started, remove DIR
#
# DIR/env holds `export` lines: the connection URLs and credentials (fresh random ones each
# start), and MEDIASEAL_SCALE_SERVICES=DIR, which is what the scale tests look for. Idempotent:
# `start` on a DIR whose servers already run only rewrites nothing and prints the env again.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] error: %s\n' "$*" >&2; exit 1; }

PG_USER_OS=postgres   # PostgreSQL refuses to run as root; Debian's package creates this user.

pg_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/initdb" ] && { echo "$d"; return 0; }
  done
  return 1
}

garage_bin() {
  if command -v garage >/dev/null 2>&1; then command -v garage; return 0; fi
  local bin="${CARGO_HOME:-$HOME/.cargo}/bin/garage"
  [ -x "$bin" ] && { echo "$bin"; return 0; }
  return 1
}

install() {
  if ! pg_bindir >/dev/null; then
    log "installing PostgreSQL from Debian"
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  fi
  if ! garage_bin >/dev/null; then
    # Only what the tests use: the S3 API on the SQLite metadata engine, with the C libraries
    # bundled. No K2V, no LMDB, no metrics exporter: about a third less to compile than the
    # defaults. Cached in $CARGO_HOME/bin (~/.cargo/bin) afterwards.
    # Optimisation level 2 instead of 3: the tests and benchmarks push at most a few hundred MiB/s
    # through it, and a fresh machine compiles it sooner. GARAGE_OPT_LEVEL overrides.
    log "installing Garage 2.5.0 (cargo install, S3 + SQLite only)"
    CARGO_PROFILE_RELEASE_OPT_LEVEL="${GARAGE_OPT_LEVEL:-2}" CARGO_PROFILE_RELEASE_DEBUG=false \
      cargo install garage --version 2.5.0 --locked -q --no-default-features --features bundled-libs,sqlite
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

wait_for() { # wait_for SECONDS DESCRIPTION COMMAND...
  local secs=$1 what=$2; shift 2
  local i
  for ((i = 0; i < secs * 10; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  die "$what did not come up within ${secs}s"
}

as_pg() { runuser -u "$PG_USER_OS" -- "$@"; }

start_postgres() {
  local dir=$1 bin port pw
  bin=$(pg_bindir) || die "PostgreSQL is not installed (run: scripts/services.sh install)"
  port=$(free_port)
  pw=$(hex 18)
  mkdir -p "$dir/pg"
  chown "$PG_USER_OS" "$dir/pg"
  chmod 700 "$dir/pg"
  printf '%s\n' "$pw" > "$dir/pg/.pw"
  chown "$PG_USER_OS" "$dir/pg/.pw"
  as_pg "$bin/initdb" -D "$dir/pg/data" -U postgres --auth=scram-sha-256 --pwfile="$dir/pg/.pw" \
    -E UTF8 --locale=C.UTF-8 >"$dir/pg/initdb.log" 2>&1 || { cat "$dir/pg/initdb.log" >&2; die "initdb failed"; }
  # Loopback TCP only; no Unix socket in a shared place. Enough connections for a test suite
  # where every test opens its own pool.
  as_pg "$bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -w -t 60 \
    -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir/pg -c max_connections=400" start >/dev/null
  PGPASSWORD=$pw "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -q \
    -c "CREATE ROLE mediaseal LOGIN CREATEDB PASSWORD '$pw'" -c "CREATE DATABASE mediaseal OWNER mediaseal" >/dev/null
  rm -f "$dir/pg/.pw"
  {
    echo "export MEDIASEAL_SCALE_PG_BIN=$bin"
    echo "export MEDIASEAL_SCALE_PG_PORT=$port"
    echo "export MEDIASEAL_SCALE_DATABASE=postgres://mediaseal:$pw@127.0.0.1:$port/mediaseal"
    echo "export MEDIASEAL_SCALE_DB_PASSWORD=$pw"
  } >>"$dir/env"
  log "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port"
}

# garage_config DIR NAME S3_PORT RPC_PORT ADMIN_PORT RPC_SECRET REPLICATION
garage_config() {
  local dir=$1 name=$2 s3=$3 rpc=$4 admin=$5 secret=$6 repl=$7
  mkdir -p "$dir/$name/meta" "$dir/$name/data"
  cat >"$dir/$name/garage.toml" <<EOF
metadata_dir = "$dir/$name/meta"
data_dir = "$dir/$name/data"
db_engine = "sqlite"
replication_factor = $repl
# Stored blocks stay uncompressed so the tests can grep Garage's data directory for plaintext.
compression_level = "none"
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$secret"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$admin"
admin_token = "$(hex 16)"
EOF
}

start_garage() {
  local dir=$1 bin s3 rpc admin key_id secret node
  bin=$(garage_bin) || die "Garage is not installed (run: scripts/services.sh install)"
  s3=$(free_port); rpc=$(free_port); admin=$(free_port)
  garage_config "$dir" garage "$s3" "$rpc" "$admin" "$(hex 32)" 1
  local g=("$bin" -c "$dir/garage/garage.toml")
  RUST_LOG=warn "${g[@]}" server >"$dir/garage/server.log" 2>&1 &
  echo $! >"$dir/garage/pid"
  wait_for 60 "Garage" "${g[@]}" status
  node=$("${g[@]}" node id -q | cut -d@ -f1)
  "${g[@]}" layout assign -z dc1 -c 10G "$node" >/dev/null
  "${g[@]}" layout apply --version 1 >/dev/null
  key_id="GK$(hex 12)"
  secret=$(hex 32)
  wait_for 30 "Garage layout" "${g[@]}" bucket create mediaseal
  "${g[@]}" key import --yes -n mediaseal "$key_id" "$secret" >/dev/null
  "${g[@]}" bucket allow --read --write --owner mediaseal --key mediaseal >/dev/null
  # Lets tests and benchmarks create their own buckets with the same key.
  "${g[@]}" key allow --create-bucket mediaseal >/dev/null
  {
    echo "export MEDIASEAL_SCALE_GARAGE_BIN=$bin"
    echo "export MEDIASEAL_SCALE_S3_ENDPOINT=http://127.0.0.1:$s3"
    echo "export MEDIASEAL_SCALE_OBJECTS='s3://mediaseal?endpoint=http://127.0.0.1:$s3&region=garage'"
    echo "export MEDIASEAL_SCALE_GARAGE_DATA=$dir/garage/data"
    echo "export AWS_ACCESS_KEY_ID=$key_id"
    echo "export AWS_SECRET_ACCESS_KEY=$secret"
    echo "export AWS_REGION=garage"
  } >>"$dir/env"
  log "Garage $("$bin" --version | awk '{print $2}') on 127.0.0.1:$s3, bucket mediaseal"
}

start() {
  local dir=${1:?usage: services.sh start DIR}
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [ -f "$dir/env" ] && [ -f "$dir/garage/pid" ] && kill -0 "$(cat "$dir/garage/pid")" 2>/dev/null; then
    log "already running under $dir"
    cat "$dir/env"
    return 0
  fi
  # Leftovers of a run whose servers are gone (a reboot, a killed session): start afresh.
  if [ -e "$dir/env" ] || [ -e "$dir/pg" ] || [ -e "$dir/garage" ]; then
    log "clearing stale state under $dir"
    stop "$dir" >/dev/null 2>&1 || true
    mkdir -p "$dir"
  fi
  install
  chmod 755 "$dir"
  : >"$dir/env"
  chmod 600 "$dir/env"
  trap 'stop "$dir" >/dev/null 2>&1 || true' ERR
  start_postgres "$dir"
  start_garage "$dir"
  echo "export MEDIASEAL_SCALE_SERVICES=$dir" >>"$dir/env"
  trap - ERR
  log "ready: source $dir/env"
  cat "$dir/env"
}

stop() {
  local dir=${1:?usage: services.sh stop DIR}
  [ -d "$dir" ] || return 0
  if [ -f "$dir/garage/pid" ]; then
    kill "$(cat "$dir/garage/pid")" 2>/dev/null || true
  fi
  local bin
  if [ -d "$dir/pg/data" ] && bin=$(pg_bindir); then
    as_pg "$bin/pg_ctl" -D "$dir/pg/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
}

case "${1:-}" in
  install) install ;;
  start) start "${2:-}" ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: $0 install | start DIR | stop DIR" >&2; exit 2 ;;
esac
