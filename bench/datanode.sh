#!/usr/bin/env bash
# Raw data-protocol throughput, one client -> one datanode on loopback, beside iperf3 (single
# stream, loopback) and fio (sequential 1 MiB writes with a final fsync, then reads) on the same
# file system in the same run. Prints one JSON object with medians and ratios.
#
#   bench/datanode.sh [BUILD_DIR] [MIB]   (default build, 256 MiB; BENCH_DIR picks the disk,
#                                          RUNS the repetitions, default 3)
set -euo pipefail
BUILD=${1:-build}
MIB=${2:-256}
BENCH_DIR=${BENCH_DIR:-$(pwd)/$BUILD/bench-datanode}
BIN=$BUILD/bin/datanode_bench
[ -x "$BIN" ] || { echo "missing $BIN (cmake --build $BUILD --target datanode_bench)" >&2; exit 1; }
command -v iperf3 >/dev/null && command -v fio >/dev/null && command -v jq >/dev/null ||
  { echo "needs iperf3, fio and jq" >&2; exit 1; }
mkdir -p "$BENCH_DIR"
source "$(dirname "$0")/lib/limits.sh"
cleanup() { rm -rf "$BENCH_DIR"; }
trap cleanup EXIT

RUNS=${RUNS:-3}
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# Each figure is the median of RUNS runs: this is usually a shared machine.
DEPTH=${DEPTH:-16}
IP=() FW=() FR=() F4=() DW=() DR=()
for _ in $(seq "$RUNS"); do
  IP+=("$(iperf3_MBps)")
  read -r w r w4 <<<"$(fio_write_read "$MIB")"; FW+=("$w"); FR+=("$r"); F4+=("$w4")
  "$BIN" --dir "$BENCH_DIR/dn" --mib "$MIB" --depth "$DEPTH" >/dev/null
  DN=$("$BIN" --dir "$BENCH_DIR/dn" --mib "$MIB" --depth "$DEPTH")
  DW+=("$(jq '.write_MBps' <<<"$DN")"); DR+=("$(jq '.read_MBps' <<<"$DN")")
done
echo "runs: iperf3=${IP[*]} fio_w=${FW[*]} fio_r=${FR[*]} fio_w4=${F4[*]} dn_w=${DW[*]} dn_r=${DR[*]}" >&2
IPERF_MBPS=$(printf '%s\n' "${IP[@]}" | median)
FIO_W=$(printf '%s\n' "${FW[@]}" | median)
FIO_R=$(printf '%s\n' "${FR[@]}" | median)
FIO_W4=$(printf '%s\n' "${F4[@]}" | median)
DN_W=$(printf '%s\n' "${DW[@]}" | median)
DN_R=$(printf '%s\n' "${DR[@]}" | median)

jq -nc --argjson dw "$DN_W" --argjson dr "$DN_R" --argjson fw "$FIO_W" --argjson fr "$FIO_R" \
  --argjson ip "$IPERF_MBPS" --argjson mib "$MIB" --argjson runs "$RUNS" \
  --argjson f4 "$FIO_W4" --argjson depth "$DEPTH" '{
    mib: $mib, runs: $runs, block_KiB: 4096, depth: $depth,
    datanode_write_MBps: ($dw|round), datanode_read_MBps: ($dr|round),
    fio_write_fsync_MBps: ($fw|round), fio_read_MBps: ($fr|round), iperf3_MBps: ($ip|round),
    fio_write_fsync_every_4MiB_MBps: ($f4|round),
    write_vs_fio: (($dw/$fw)*100|round/100),
    write_vs_fio_fsync_every_4MiB: (($dw/$f4)*100|round/100), read_vs_fio: (($dr/$fr)*100|round/100),
    read_vs_iperf3: (($dr/$ip)*100|round/100),
    write_vs_min_fio_iperf3: (($dw/([$fw,$ip]|min))*100|round/100)
  }'
