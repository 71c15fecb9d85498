#!/usr/bin/env bash
# Raw data-protocol throughput, one client -> one datanode on loopback, beside iperf3 (single
# stream, loopback) and fio (sequential 1 MiB writes with a final fsync, then reads) on the same
# file system in the same run. Prints one JSON object with the ratios.
#
#   bench/datanode.sh [BUILD_DIR] [MIB]      (default build, 256 MiB; BENCH_DIR picks the disk)
set -euo pipefail
BUILD=${1:-build}
MIB=${2:-256}
BENCH_DIR=${BENCH_DIR:-$(pwd)/$BUILD/bench-datanode}
BIN=$BUILD/bin/datanode_bench
[ -x "$BIN" ] || { echo "missing $BIN (cmake --build $BUILD --target datanode_bench)" >&2; exit 1; }
command -v iperf3 >/dev/null && command -v fio >/dev/null && command -v jq >/dev/null ||
  { echo "needs iperf3, fio and jq" >&2; exit 1; }
mkdir -p "$BENCH_DIR"
IPERF_PID=
cleanup() {
  [ -n "$IPERF_PID" ] && kill "$IPERF_PID" 2>/dev/null || true
  rm -rf "$BENCH_DIR"
}
trap cleanup EXIT

# iperf3: a one-shot server on a free port, a 3 s single-stream client.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
iperf3 -s -1 -B 127.0.0.1 -p "$PORT" >/dev/null 2>&1 &
IPERF_PID=$!
for _ in $(seq 50); do iperf3 -c 127.0.0.1 -p "$PORT" -t 3 -J >"$BENCH_DIR/iperf.json" 2>/dev/null && break; done
IPERF_MBPS=$(jq '.end.sum_received.bits_per_second / 8 / 1e6' "$BENCH_DIR/iperf.json")
IPERF_PID=

# fio: sequential 1 MiB writes through io_uring, fsync at the end; then the same file read back
# (from the page cache, as the datanode read is).
FIO_COMMON=(--filename="$BENCH_DIR/fio.dat" --bs=1M --size="${MIB}M" --ioengine=io_uring
            --iodepth=8 --output-format=json)
fio --name=write --rw=write --end_fsync=1 "${FIO_COMMON[@]}" >"$BENCH_DIR/fio-w.json"
fio --name=read --rw=read "${FIO_COMMON[@]}" >"$BENCH_DIR/fio-r.json"
FIO_W=$(jq '.jobs[0].write.bw_bytes / 1e6' "$BENCH_DIR/fio-w.json")
FIO_R=$(jq '.jobs[0].read.bw_bytes / 1e6' "$BENCH_DIR/fio-r.json")
rm -f "$BENCH_DIR/fio.dat"

DN=$("$BIN" --dir "$BENCH_DIR/dn" --mib "$MIB")
DN_W=$(jq '.write_MBps' <<<"$DN")
DN_R=$(jq '.read_MBps' <<<"$DN")

jq -nc --argjson dw "$DN_W" --argjson dr "$DN_R" --argjson fw "$FIO_W" --argjson fr "$FIO_R" \
  --argjson ip "$IPERF_MBPS" --argjson mib "$MIB" '{
    mib: $mib,
    datanode_write_MBps: ($dw|round), datanode_read_MBps: ($dr|round),
    fio_write_fsync_MBps: ($fw|round), fio_read_MBps: ($fr|round), iperf3_MBps: ($ip|round),
    write_vs_fio: (($dw/$fw)*100|round/100), read_vs_fio: (($dr/$fr)*100|round/100),
    read_vs_iperf3: (($dr/$ip)*100|round/100),
    write_vs_min_fio_iperf3: (($dw/([$fw,$ip]|min))*100|round/100)
  }'
