#!/usr/bin/env bash
# Mount survival under load: what a streaming reader pays when the process serving its mount is
# replaced. One run, one local cluster (granary server: metanode + 3 datanodes): the same file
# is streamed (page cache dropped first) without handoffs — the limit this mount reaches here —
# then while the server is upgraded HANDOFFS times (`--takeover`), then under `--supervise`
# while it is SIGKILLed KILLS times. JSON lines: throughput of each run and its ratio to the
# baseline, the slowest single 1 MiB read (the pause a reader sees), and per handoff the time
# from starting the successor (or from the kill) to it serving, and for upgrades the time no
# process read the device (old loop stopped → successor serving, from the two logs).
#
#   bench/survival.sh [BUILD_DIR]     MIB=1024 HANDOFFS=5 KILLS=2
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
MIB=${MIB:-1024}
HANDOFFS=${HANDOFFS:-5}
KILLS=${KILLS:-2}
G=$(realpath "$BUILD/bin/granary")
[ -x "$G" ] || { echo "missing $G (cmake --build $BUILD)" >&2; exit 1; }
W=$(realpath -m "${BENCH_DIR:-$BUILD/bench-survival}")
rm -rf "$W"
mkdir -p "$W/mnt"
PIDS=()
cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  sleep 0.5
  grep -q " $W/mnt " /proc/self/mountinfo && umount -l "$W/mnt"
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$W"
}
trap cleanup EXIT

wait_for() {  # wait_for SECONDS COMMAND… — bounded poll of a condition
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.05
  done
}
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
now_ms() { date +%s%3N; }
emit() { printf '{"bench":"survival",%s}\n' "$1"; }

# Streams FILE 1 MiB at a time from the servers (cache dropped first); prints
# "MBps slowest_read_ms errors" when done.
stream() {
  /usr/bin/python3 - "$1" <<'PY'
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
total, slowest, errors, t0 = 0, 0.0, 0, time.monotonic()
while True:
    t = time.monotonic()
    try:
        b = os.read(fd, 1 << 20)
    except OSError:
        errors += 1
        if errors > 20: break
        continue
    slowest = max(slowest, time.monotonic() - t)
    if not b: break
    total += len(b)
print(f"{total / (time.monotonic() - t0) / 1e6:.1f} {slowest * 1000:.0f} {errors}")
PY
}

META=127.0.0.1:$(free_port)
"$G" server --data "$W/data" --meta "$META" --s3 127.0.0.1:0 >"$W/server.log" 2>&1 &
PIDS+=($!)
wait_for 60 grep -q 'event=ready' "$W/server.log" || { cat "$W/server.log" >&2; exit 1; }

mount_cmd=("$G" mount --meta "$META" --volume default --foreground --control "$W/control.sock")
"${mount_cmd[@]}" "$W/mnt" >"$W/m0.log" 2>&1 &
PIDS+=($!)
wait_for 30 grep -q 'event=mounted' "$W/m0.log"
dd if=/dev/urandom of="$W/mnt/big" bs=1M count="$MIB" conv=fsync status=none

read -r base_mbps base_slow base_err < <(stream "$W/mnt/big")
emit "\"run\":\"baseline\",\"mib\":$MIB,\"MBps\":$base_mbps,\"slowest_read_ms\":$base_slow,\"errors\":$base_err"
base_s=$(python3 -c "print($MIB * 1.048576 / $base_mbps)")

# Upgrades spread over one stream.
stream "$W/mnt/big" >"$W/upgrade.out" &
reader=$!
for i in $(seq "$HANDOFFS"); do
  sleep "$(python3 -c "print($base_s / ($HANDOFFS + 1))")"
  t0=$(now_ms)
  "${mount_cmd[@]}" --takeover "$W/control.sock" "$W/mnt" >"$W/m$i.log" 2>&1 &
  PIDS+=($!)
  wait_for 60 grep -q 'event=adopted' "$W/m$i.log"
  serving=$(($(now_ms) - t0))
  unserved=$(python3 - "$W/m$((i - 1)).log" "$W/m$i.log" <<'PY'
import re, sys
from datetime import datetime
def ts(path, event):
    for line in open(path):
        if event in line:
            return datetime.fromisoformat(re.search(r"ts=(\S+)Z", line).group(1))
print(int((ts(sys.argv[2], "event=adopted") - ts(sys.argv[1], "event=takeover_requested")).total_seconds() * 1000))
PY
)
  emit "\"run\":\"upgrade\",\"handoff\":$i,\"successor_serving_ms\":$serving,\"unserved_ms\":$unserved"
done
wait "$reader"
read -r up_mbps up_slow up_err <"$W/upgrade.out"
emit "\"run\":\"upgrades\",\"handoffs\":$HANDOFFS,\"MBps\":$up_mbps,\"ratio_to_baseline\":$(python3 -c "print(round($up_mbps / $base_mbps, 3))"),\"slowest_read_ms\":$up_slow,\"errors\":$up_err"

# The last upgraded server unmounts; the supervised mount comes up on the same directory.
kill "${PIDS[-1]}"
wait_for 30 sh -c "! grep -q ' $W/mnt ' /proc/self/mountinfo"
"${mount_cmd[@]}" --supervise "$W/mnt" >"$W/sup.log" 2>&1 &
PIDS+=($!)
wait_for 30 grep -q 'event=server_ready' "$W/sup.log"
stream "$W/mnt/big" >"$W/kill.out" &
reader=$!
for i in $(seq "$KILLS"); do
  sleep "$(python3 -c "print($base_s / ($KILLS + 1))")"
  pid=$(sed -n 's/.*event=server_started pid=\([0-9]*\).*/\1/p' "$W/sup.log" | tail -1)
  t0=$(now_ms)
  kill -9 "$pid"
  wait_for 60 grep -q "event=server_ready pid=[0-9]* generation=$i" "$W/sup.log"
  emit "\"run\":\"crash\",\"kill\":$i,\"successor_serving_ms\":$(($(now_ms) - t0))"
done
wait "$reader"
read -r k_mbps k_slow k_err <"$W/kill.out"
emit "\"run\":\"crashes\",\"kills\":$KILLS,\"MBps\":$k_mbps,\"ratio_to_baseline\":$(python3 -c "print(round($k_mbps / $base_mbps, 3))"),\"slowest_read_ms\":$k_slow,\"errors\":$k_err"
