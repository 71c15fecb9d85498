#!/usr/bin/env bash
# Repair (issue 8): a metanode and 6 datanodes on loopback, replicated:3, filled with FILL_MIB of
# data. One datanode is killed; once it is marked out, the new PG members rebuild what it held.
# Measured in the same run: repair throughput (MB restored per second, from the datanodes'
# granary_datanode_repaired_bytes_total), a foreground write/read of FG_MIB through libgranary
# while repair runs, the same foreground run before the failure, and fio's disk limit.
# Prints one JSON object. Then (JOIN=1, the default) a join phase on the 5 survivors: a new
# datanode joins, the balancer moves its share of PGs onto it while writes go to old and new
# members (docs/maintenance.md "PG moves"), and a second JSON line reports the bytes moved per
# second (granary_datanode_repaired_bytes_total again) and the foreground ratio during the move
# against the 5-node cluster before it.
#
#   bench/repair.sh [BUILD_DIR]      (FILL_MIB=1024 FG_MIB=256 BENCH_DIR picks the disk)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
FILL_MIB=${FILL_MIB:-1024}
FG_MIB=${FG_MIB:-256}
BENCH_DIR=${BENCH_DIR:-$(pwd)/$BUILD/bench-repair}
G=$BUILD/bin/granary
[ -x "$G" ] || { echo "missing $G (cmake --build $BUILD)" >&2; exit 1; }
source bench/lib/limits.sh
source bench/lib/roles.sh

rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR"
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$BENCH_DIR"
}
trap cleanup EXIT


now() { date +%s.%N; }

start_role "$BENCH_DIR/meta.log" metanode --data "$BENCH_DIR/meta" --listen 127.0.0.1:0 \
  --admin 127.0.0.1:0 --down-after-ms 1000 --out-after-ms 2000
META=$(sed -n 's/^listening meta=\([^ ]*\).*/\1/p' "$BENCH_DIR/meta.log")
ADMINS=()
DN_PIDS=()
for i in 0 1 2 3 4 5; do
  start_role "$BENCH_DIR/dn$i.log" datanode --data "$BENCH_DIR/dn$i" --listen 127.0.0.1:0 \
    --data-listen 127.0.0.1:0 --admin 127.0.0.1:0 --meta "$META" --heartbeat-ms 300 \
    --maintenance-ms 200
  DN_PIDS+=("${PIDS[-1]}")
  ADMINS+=("$(sed -n 's/^listening .* admin=\([^ ]*\).*/\1/p' "$BENCH_DIR/dn$i.log")")
done
for _ in $(seq 300); do
  [ "$("$G" admin nodes --meta "$META" 2>/dev/null | grep -c ' up')" -ge 6 ] && break
  sleep 0.1
done
"$G" admin volume create default --pool default --meta "$META" >/dev/null

# Fill: FILL_MIB in 64 MiB files.
head -c $((64 << 20)) /dev/urandom >"$BENCH_DIR/chunk"
for i in $(seq 1 $((FILL_MIB / 64))); do
  "$G" put --meta "$META" "$BENCH_DIR/chunk" "default/fill/$i" >/dev/null
done
healthy() { "$G" admin repair --meta "$META" 2>/dev/null | tail -1 | grep -qx healthy; }
for _ in $(seq 600); do healthy && break; sleep 0.1; done

"$G" bench datapath --meta "$META" --size-mib "$FG_MIB" --path default/warm >/dev/null
BASE=$("$G" bench datapath --meta "$META" --size-mib "$FG_MIB" --path default/fg0)

repaired_bytes() {
  local sum=0 v
  for a in "${ADMINS[@]}"; do
    v=$(curl -sf "http://$a/metrics" | awk '/^granary_datanode_repaired_bytes_total/ {print $2}')
    sum=$((sum + ${v:-0}))
  done
  echo "$sum"
}

# Kill datanode 0; repair starts when the metanode marks it out (2 s of silence).
kill -9 "${DN_PIDS[0]}"
for _ in $(seq 300); do
  "$G" admin repair --meta "$META" 2>/dev/null | grep -q ' out$' && break
  sleep 0.05
done
T0=$(now)
DURING=$("$G" bench datapath --meta "$META" --size-mib "$FG_MIB" --path default/fg1)
for _ in $(seq 6000); do healthy && break; sleep 0.05; done
T1=$(now)
REPAIRED=$(repaired_bytes)

if [ "${JOIN:-1}" = 1 ]; then
  BASE5=$("$G" bench datapath --meta "$META" --size-mib "$FG_MIB" --path default/fg2)
  start_role "$BENCH_DIR/dn6.log" datanode --data "$BENCH_DIR/dn6" --listen 127.0.0.1:0 \
    --data-listen 127.0.0.1:0 --admin 127.0.0.1:0 --meta "$META" --heartbeat-ms 300 \
    --maintenance-ms 200
  ADMINS+=("$(sed -n 's/^listening .* admin=\([^ ]*\).*/\1/p' "$BENCH_DIR/dn6.log")")
  for _ in $(seq 300); do
    "$G" admin repair --meta "$META" 2>/dev/null | grep -q 'pgs-moving=[1-9]' && break
    sleep 0.05
  done
  MOVING=$("$G" admin repair --meta "$META" | sed -n 's/.*pgs-moving=\([0-9]*\).*/\1/p')
  T2=$(now)
  JOIN_DURING=$("$G" bench datapath --meta "$META" --size-mib "$FG_MIB" --path default/fg3)
  for _ in $(seq 6000); do healthy && break; sleep 0.05; done
  T3=$(now)
  MOVED=$(($(repaired_bytes) - REPAIRED))
fi
for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true
PIDS=()
read -r FIO_W FIO_R _ <<<"$(fio_write_read 512)"

jq -nc --argjson base "$BASE" --argjson during "$DURING" --argjson bytes "$REPAIRED" \
  --argjson t0 "$T0" --argjson t1 "$T1" --argjson fw "$FIO_W" --argjson fr "$FIO_R" \
  --argjson fill "$FILL_MIB" '{
    fill_MiB: $fill, datanodes: 6, redundancy: "replicated:3",
    repaired_MB: (($bytes / 1e6)|round), repair_seconds: (($t1 - $t0)*100|round/100),
    repair_MBps: (($bytes / 1e6 / ($t1 - $t0))|round),
    fg_write_MBps_no_repair: ($base.write_MBps|round), fg_read_MBps_no_repair: ($base.read_MBps|round),
    fg_write_MBps_during_repair: ($during.write_MBps|round),
    fg_read_MBps_during_repair: ($during.read_MBps|round),
    fg_write_ratio: (($during.write_MBps / $base.write_MBps)*100|round/100),
    fg_read_ratio: (($during.read_MBps / $base.read_MBps)*100|round/100),
    fio_write_MBps: ($fw|round), fio_read_MBps: ($fr|round),
    repair_vs_fio_write: (($bytes / 1e6 / ($t1 - $t0)) / $fw * 100|round/100)
  }'

if [ "${JOIN:-1}" = 1 ]; then
  jq -nc --argjson base "$BASE5" --argjson during "$JOIN_DURING" --argjson bytes "$MOVED" \
    --argjson t0 "$T2" --argjson t1 "$T3" --argjson moving "$MOVING" --argjson fw "$FIO_W" '{
      phase: "join", datanodes: "5+1", redundancy: "replicated:3", pgs_moving: $moving,
      moved_MB: (($bytes / 1e6)|round), move_seconds: (($t1 - $t0)*100|round/100),
      move_MBps: (($bytes / 1e6 / ($t1 - $t0))|round),
      fg_write_MBps_no_move: ($base.write_MBps|round), fg_read_MBps_no_move: ($base.read_MBps|round),
      fg_write_MBps_during_move: ($during.write_MBps|round),
      fg_read_MBps_during_move: ($during.read_MBps|round),
      fg_write_ratio: (($during.write_MBps / $base.write_MBps)*100|round/100),
      fg_read_ratio: (($during.read_MBps / $base.read_MBps)*100|round/100),
      move_vs_fio_write: (($bytes / 1e6 / ($t1 - $t0)) / $fw * 100|round/100)
    }'
fi
