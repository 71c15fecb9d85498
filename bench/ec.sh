#!/usr/bin/env bash
# Erasure coding, measured two ways in one run (JSON lines):
#  1. the coder: libgranary's own encode / rebuild path vs raw ISA-L ec_encode_data on the same
#     buffers (bench/ec_codec_bench.cpp), for 4+2 and 8+3 — target >= 0.9 x raw;
#  2. the whole data path: a metanode and 6 datanodes (separate processes) on loopback, a MIB
#     (default 1024) MiB file written then read through libgranary in an ec:4+2 pool and in a
#     replicated:3 pool on the same 6 datanodes, beside iperf3 (one loopback stream) and fio
#     (sequential 1 MiB writes with an fsync every 4 MiB, page-cache reads) on the same disk.
#
#   bench/ec.sh [BUILD_DIR]      (MIB=1024 file size; BENCH_DIR picks the disk)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
MIB=${MIB:-1024}
BENCH_DIR=${BENCH_DIR:-$(pwd)/$BUILD/bench-ec}
G=$BUILD/bin/granary
CODEC=$BUILD/bench/ec_codec_bench
for bin in "$G" "$CODEC"; do
  [ -x "$bin" ] || { echo "missing $bin (cmake --build $BUILD)" >&2; exit 1; }
done
source bench/lib/limits.sh
source bench/lib/roles.sh

"$CODEC" --shapes 4+2,8+3

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
for i in 0 1 2 3 4 5; do
  start_role "$BENCH_DIR/dn$i.log" datanode --data "$BENCH_DIR/dn$i" --listen 127.0.0.1:0 \
    --data-listen 127.0.0.1:0 --admin 127.0.0.1:0 --meta "$META"
done
for _ in $(seq 300); do
  [ "$("$G" admin nodes --meta "$META" 2>/dev/null | grep -c ' up')" -ge 6 ] && break
  sleep 0.1
done
"$G" admin pool create ec42 --redundancy ec:4+2 --failure-domain datanode --meta "$META" >/dev/null
"$G" admin pool create rep3 --redundancy replicated:3 --failure-domain datanode --meta "$META" >/dev/null
"$G" admin volume create ec42 --pool ec42 --meta "$META" >/dev/null
"$G" admin volume create rep3 --pool rep3 --meta "$META" >/dev/null

# A short warm-up per pool (connections, page-cache reclaim), then the measured runs.
run() { "$G" bench datapath --meta "$META" --size-mib "$2" --path "$1/bench.dat"; }
run ec42 256 >/dev/null
run rep3 256 >/dev/null
EC=$(run ec42 "$MIB")
REP=$(run rep3 "$MIB")
for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
wait 2>/dev/null || true
PIDS=()

IPERF=$(iperf3_MBps)
read -r _ FIO_R FIO_W4 <<<"$(fio_write_read "$MIB")"

jq -nc --argjson ec "$EC" --argjson rep "$REP" --argjson ip "$IPERF" --argjson fr "$FIO_R" \
  --argjson fw4 "$FIO_W4" '{
    bench: "ec_datapath", file_MiB: ($ec.bytes / 1048576), datanodes: 6,
    ec42_write_MBps: ($ec.write_MBps|round), ec42_read_MBps: ($ec.read_MBps|round),
    rep3_write_MBps: ($rep.write_MBps|round), rep3_read_MBps: ($rep.read_MBps|round),
    iperf3_MBps: ($ip|round), fio_read_MBps: ($fr|round), fio_write_fsync_every_4MiB_MBps: ($fw4|round),
    ec42_vs_rep3_write: (($ec.write_MBps / $rep.write_MBps)*100|round/100),
    ec42_vs_rep3_read: (($ec.read_MBps / $rep.read_MBps)*100|round/100),
    ec42_disk_bytes_vs_fio: (($ec.write_MBps * 1.5 / $fw4)*100|round/100),
    rep3_disk_bytes_vs_fio: (($rep.write_MBps * 3 / $fw4)*100|round/100),
    ec42_read_vs_min_iperf3_fio: (($ec.read_MBps / ([$ip,$fr]|min))*100|round/100),
    intact: ($ec.intact and $rep.intact)
  }'
