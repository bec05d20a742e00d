#!/usr/bin/env bash
# A throwaway single-node Ceph RGW (S3) on 127.0.0.1:7480 (mon on 127.0.0.1:3300) for tests and benchmarks.
#
#   scripts/rgw.sh start  [dir]   install Debian's ceph packages if missing, start mon + OSD (memstore) + radosgw,
#                                 create the test user; a no-op when it is already running
#   scripts/rgw.sh stop   [dir]   stop the three daemons by PID (data is in memory and is lost)
#   scripts/rgw.sh status [dir]   exit 0 and print the env when running, exit 3 when not
#   scripts/rgw.sh env    [dir]   print the env file (endpoint and the fixed test credentials)
#
# All state (config, mon store, logs, sockets, PID files, the env file) lives under one scratch directory,
# default /tmp/berth-rgw (or $BERTH_RGW_DIR). A second instance beside the default one needs its own dir and ports:
#   BERTH_RGW_DIR=/tmp/other BERTH_RGW_PORT=7581 BERTH_RGW_MON_PORT=3401 scripts/rgw.sh start
# Settings follow shared/FACTS.md "S3 for tests and benchmarks".
# Needs root on Debian bookworm (apt-get install radosgw ceph-mon ceph-osd ceph-common).
set -euo pipefail

CMD=${1:-status}
DIR=${2:-${BERTH_RGW_DIR:-/tmp/berth-rgw}}
PORT=${BERTH_RGW_PORT:-7480}
MON_PORT=${BERTH_RGW_MON_PORT:-3300}
# Fixed, public test credentials for a loopback-only throwaway gateway; not secrets.
ACCESS_KEY=BERTHTESTACCESSKEY01
SECRET_KEY=berthTestSecretKey0123456789abcdefghijkl
USER_ID=berth-test
PACKAGES=(radosgw ceph-mon ceph-osd ceph-common)
DAEMONS=(rgw osd mon)

log() { printf '[rgw] %s\n' "$*" >&2; }
die() { printf '[rgw] error: %s\n' "$*" >&2; exit 1; }

ceph_() { CEPH_CONF="$DIR/ceph.conf" timeout 30 ceph --connect-timeout 10 "$@"; }

pid_of() { # prints the PID of a daemon when it is alive, fails otherwise
  local f="$DIR/run/$1.pid" pid
  [[ -s $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  local _p _c state
  read -r _p _c state _ <"/proc/$pid/stat" 2>/dev/null || return 1
  [[ $state != Z ]] || return 1 # exited, waiting to be reaped
  # guard against PID reuse: the process must be the ceph binary we started
  case "$(cat "/proc/$pid/comm" 2>/dev/null)" in
    radosgw|ceph-osd|ceph-mon) echo "$pid" ;;
    *) return 1 ;;
  esac
}

s3_answers() { # any HTTP answer to GET /; bash's /dev/tcp, so curl is not needed
  (
    exec 9<>"/dev/tcp/127.0.0.1/$PORT" || exit 1
    printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&9
    IFS= read -r -t 5 line <&9 || exit 1
    [[ $line == HTTP/1.* ]]
  ) 2>/dev/null
}

running() {
  local d
  for d in "${DAEMONS[@]}"; do pid_of "$d" >/dev/null || return 1; done
  [[ -s $DIR/env ]] && s3_answers
}

ensure_packages() {
  local missing=0 b
  for b in radosgw radosgw-admin ceph-mon ceph-osd ceph monmaptool; do
    command -v "$b" >/dev/null 2>&1 || missing=1
  done
  [[ $missing == 0 ]] && return 0
  [[ $(id -u) == 0 ]] || die "ceph packages are missing and installing them needs root: apt-get install -y ${PACKAGES[*]}"
  log "installing ${PACKAGES[*]} (once; about a minute)"
  export DEBIAN_FRONTEND=noninteractive
  local apt=(apt-get -o DPkg::Lock::Timeout=600 -q)
  "${apt[@]}" update >/dev/null || true
  "${apt[@]}" install -y "${PACKAGES[@]}" >"$DIR/apt.log" 2>&1 \
    || { tail -20 "$DIR/apt.log" >&2; die "apt-get install failed (log: $DIR/apt.log)"; }
}

spawn() { # spawn NAME CMD...: detached from our session and stdio, PID recorded
  local name=$1; shift
  setsid "$@" </dev/null >>"$DIR/log/$name.out" 2>&1 8>&- &
  echo $! >"$DIR/run/$name.pid"
}

wait_for() { # wait_for SECONDS WHAT CMD...
  local limit=$1 what=$2 i; shift 2
  for ((i = 0; i < limit * 5; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  die "$what did not come up within ${limit}s (logs: $DIR/log)"
}

write_conf() {
  local fsid=$1
  cat >"$DIR/ceph.conf" <<EOF
[global]
fsid = $fsid
mon host = [v2:127.0.0.1:$MON_PORT]
public addr = 127.0.0.1
ms bind ipv6 = false
auth cluster required = none
auth service required = none
auth client required = none
ms mon client mode = crc
ms client mode = crc
keyring = /dev/null
run dir = $DIR/run
admin socket = $DIR/run/\$name.asok
log file = $DIR/log/\$name.log
pid file = $DIR/run/\$name.ceph.pid
mon data = $DIR/mon/\$cluster-\$id
osd data = $DIR/osd/\$cluster-\$id
osd objectstore = memstore
memstore device bytes = 8589934592
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon max pg per osd = 1000
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon data avail crit = 0
mon data avail warn = 0
osd max object name len = 460
osd max object namespace len = 64

[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:$PORT tcp_nodelay=1
rgw data = $DIR/rgw
rgw enable usage log = false
# reclaim deleted objects' space in minutes, not hours (memstore keeps everything in RAM)
rgw gc obj min wait = 60
rgw gc processor period = 60
EOF
}

do_stop() {
  local d pid i
  for d in "${DAEMONS[@]}"; do # radosgw first, the mon last
    pid=$(pid_of "$d") || { rm -f "$DIR/run/$d.pid"; continue; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do pid_of "$d" >/dev/null || break; sleep 0.1; done
    if pid_of "$d" >/dev/null; then
      log "$d ($pid) ignored SIGTERM for 15 s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      for ((i = 0; i < 50; i++)); do pid_of "$d" >/dev/null || break; sleep 0.1; done
    fi
    rm -f "$DIR/run/$d.pid"
  done
  rm -f "$DIR/env"
}

do_start() {
  if running; then log "already running (dir $DIR)"; cat "$DIR/env"; return 0; fi
  ensure_packages
  do_stop # whatever half of a previous cluster is left; memstore state cannot be reused anyway
  if (exec 9<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    die "port $PORT is already in use by something that is not this RGW (dir $DIR)"
  fi
  if (exec 9<>"/dev/tcp/127.0.0.1/$MON_PORT") 2>/dev/null; then
    die "mon port $MON_PORT is already in use by something that is not this cluster's mon (dir $DIR)"
  fi
  local t0=$SECONDS fsid uuid id
  rm -rf "$DIR/mon" "$DIR/osd" "$DIR/rgw" "$DIR/run" "$DIR/log" "$DIR/monmap"
  mkdir -p "$DIR/mon/ceph-a" "$DIR/osd/ceph-0" "$DIR/rgw" "$DIR/run" "$DIR/log"
  fsid=$(</proc/sys/kernel/random/uuid)
  write_conf "$fsid"
  export CEPH_CONF="$DIR/ceph.conf"

  monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$MON_PORT]" "$DIR/monmap" >/dev/null
  ceph-mon -c "$DIR/ceph.conf" -i a --mkfs --monmap "$DIR/monmap" >>"$DIR/log/mkfs.out" 2>&1 \
    || die "ceph-mon --mkfs failed: $(tail -5 "$DIR/log/mkfs.out")"
  spawn mon ceph-mon -c "$DIR/ceph.conf" -i a -f
  wait_for 60 "ceph-mon" ceph_ mon stat

  uuid=$(</proc/sys/kernel/random/uuid)
  id=$(ceph_ osd new "$uuid") || die "ceph osd new failed"
  [[ $id == 0 ]] || die "expected osd id 0, got '$id'"
  ceph-osd -c "$DIR/ceph.conf" -i 0 --mkfs --osd-uuid "$uuid" >>"$DIR/log/mkfs.out" 2>&1 \
    || die "ceph-osd --mkfs failed: $(tail -5 "$DIR/log/mkfs.out")"
  spawn osd ceph-osd -c "$DIR/ceph.conf" -i 0 -f
  osd_up() { ceph_ osd stat | grep -q ' 1 up'; }
  wait_for 60 "ceph-osd" osd_up

  spawn rgw radosgw -c "$DIR/ceph.conf" -n client.rgw.a -f
  wait_for 90 "radosgw on 127.0.0.1:$PORT" s3_answers

  if ! radosgw-admin -c "$DIR/ceph.conf" user info --uid="$USER_ID" >/dev/null 2>&1; then
    radosgw-admin -c "$DIR/ceph.conf" user create --uid="$USER_ID" --display-name="berth tests" \
      --access-key="$ACCESS_KEY" --secret-key="$SECRET_KEY" >/dev/null 2>>"$DIR/log/user.out" \
      || die "radosgw-admin user create failed: $(tail -5 "$DIR/log/user.out")"
  fi
  cat >"$DIR/env.tmp" <<EOF
BERTH_S3_ENDPOINT=http://127.0.0.1:$PORT
BERTH_S3_REGION=us-east-1
BERTH_S3_ACCESS_KEY=$ACCESS_KEY
BERTH_S3_SECRET_KEY=$SECRET_KEY
EOF
  mv "$DIR/env.tmp" "$DIR/env"
  log "started in $((SECONDS - t0)) s (dir $DIR)"
  cat "$DIR/env"
}

mkdir -p "$DIR"
case "$CMD" in
  start|stop)
    exec 8>"$DIR/lock"
    flock -w 600 8 || die "could not lock $DIR/lock"
    if [[ $CMD == start ]]; then do_start; else do_stop; log "stopped (dir $DIR)"; fi
    ;;
  status)
    if running; then echo "running (dir $DIR)"; cat "$DIR/env"; else echo "stopped (dir $DIR)"; exit 3; fi
    ;;
  env)
    [[ -s $DIR/env ]] || die "not running (dir $DIR)"
    cat "$DIR/env"
    ;;
  *)
    echo "usage: $0 start|stop|status|env [dir]" >&2; exit 2 ;;
esac
