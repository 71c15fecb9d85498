#!/usr/bin/env bash
# The storage core end to end: a metanode and 3 datanodes (separate processes) on loopback,
# a 1 GiB file written then read through libgranary (replicated:3), beside iperf3 (one loopback
# stream), fio (sequential 1 MiB write + final fsync, read) and the metanode's durable creates/s
# next to RocksDB fillrandom — all in the same run. Prints one JSON object.
#
#   bench/datapath.sh [BUILD_DIR]      (MIB=1024 file size; BENCH_DIR picks the disk)
# Targets (issue 6): read >= 0.8 x min(iperf3, fio read); write >= 0.8 x min(iperf3, fio write)/3;
# creates >= 0.25 x fillrandom sync=0.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
MIB=${MIB:-1024}
BENCH_DIR=${BENCH_DIR:-$(pwd)/$BUILD/bench-datapath}
G=$BUILD/bin/granary
for bin in "$G" "$BUILD/bench/metanode_bench"; do
  [ -x "$bin" ] || { echo "missing $bin (cmake --build $BUILD)" >&2; exit 1; }
done
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


start_role "$BENCH_DIR/meta.log" metanode --data "$BENCH_DIR/meta" --listen 127.0.0.1:0 \
  --admin 127.0.0.1:0
META=$(sed -n 's/^listening meta=\([^ ]*\).*/\1/p' "$BENCH_DIR/meta.log")
for i in 0 1 2; do
  start_role "$BENCH_DIR/dn$i.log" datanode --data "$BENCH_DIR/dn$i" --listen 127.0.0.1:0 \
    --data-listen 127.0.0.1:0 --admin 127.0.0.1:0 --meta "$META"
done
for _ in $(seq 300); do
  [ "$("$G" admin nodes --meta "$META" 2>/dev/null | grep -c ' up')" -ge 3 ] && break
  sleep 0.1
done
"$G" admin volume create default --pool default --meta "$META" >/dev/null

# Warm-up run (page-cache reclaim, connections), then the measured one.
"$G" bench datapath --meta "$META" --size-mib "$MIB" >/dev/null
DP=$("$G" bench datapath --meta "$META" --size-mib "$MIB")
for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true
PIDS=()

IPERF=$(iperf3_MBps)
read -r FIO_W FIO_R _ <<<"$(fio_write_read "$MIB")"
MB=$("$BUILD/bench/metanode_bench" --seconds 3 --dir "$BENCH_DIR" 2>/dev/null | tail -1)

jq -nc --argjson dp "$DP" --argjson ip "$IPERF" --argjson fw "$FIO_W" --argjson fr "$FIO_R" \
  --argjson mb "$MB" '{
    file_MiB: ($dp.bytes / 1048576),
    write_MBps: ($dp.write_MBps|round), read_MBps: ($dp.read_MBps|round),
    iperf3_MBps: ($ip|round), fio_write_MBps: ($fw|round), fio_read_MBps: ($fr|round),
    creates_per_s: ($mb.creates_per_s|round),
    rocksdb_fillrandom_per_s: ($mb.fillrandom_sync0_ops_per_s|round),
    rocksdb_fillrandom_sync_per_s: ($mb.fillrandom_sync1_ops_per_s|round),
    read_ratio: (($dp.read_MBps / ([$ip,$fr]|min))*100|round/100),
    write_ratio: (($dp.write_MBps / (([$ip,$fw]|min)/3))*100|round/100),
    creates_ratio: (($mb.creates_per_s / $mb.fillrandom_sync0_ops_per_s)*100|round/100),
    targets: {read_ratio: 0.8, write_ratio: 0.8, creates_ratio: 0.25}
  }'
