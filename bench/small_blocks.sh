#!/usr/bin/env bash
# Small-block writes on one datanode (docs/data-path.md "Small blocks"): 4 KiB WRITE_BLOCKs at
# depth 16 over the data protocol, stored as files (--small-block-kib 0) and in the datanode's
# RocksDB (default), interleaved RUNS times. In the same run, the disk's limits: 4 KiB writes
# with an fdatasync each from 1 writer (what one serial WAL can do without group commit) and
# from 16 writers. One JSON line per figure (medians).
#   bench/small_blocks.sh [BUILD_DIR] [MIB]   (default build, 16 MiB = 4096 blocks; RUNS=3)
set -euo pipefail
BUILD=${1:-build}
MIB=${2:-16}
RUNS=${RUNS:-3}
BIN=$BUILD/bin/datanode_bench
[ -x "$BIN" ] || { echo "missing $BIN" >&2; exit 1; }
DIR=$(mktemp -d "$(pwd)/$BUILD/bench-small-XXXXXX")
trap 'rm -rf "$DIR"' EXIT
median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
fsyncs() {  # jobs -> fdatasync'd 4 KiB writes per second
  fio --name=fsync --directory="$DIR" --rw=write --bs=4k --size=16M --fdatasync=1 \
    --numjobs="$1" --group_reporting --time_based --runtime=3 --output-format=json 2>/dev/null |
    jq '.jobs[0].write.iops'
  rm -f "$DIR"/fsync.*
}
F1=() F16=() FW=() FR=() SW=() SR=()
for _ in $(seq "$RUNS"); do
  F1+=("$(fsyncs 1)"); F16+=("$(fsyncs 16)")
  OUT=$("$BIN" --dir "$DIR/dn" --mib "$MIB" --block-kib 4 --depth 16 --small-block-kib 0)
  FW+=("$(jq .write_ops <<<"$OUT")"); FR+=("$(jq .read_ops <<<"$OUT")")
  OUT=$("$BIN" --dir "$DIR/dn" --mib "$MIB" --block-kib 4 --depth 16)
  SW+=("$(jq .write_ops <<<"$OUT")"); SR+=("$(jq .read_ops <<<"$OUT")")
done
echo "runs: fsync1=${F1[*]} fsync16=${F16[*]} files_w=${FW[*]} small_w=${SW[*]}" >&2
m() { printf '%s\n' "$@" | median; }
jq -nc --argjson f1 "$(m "${F1[@]}")" --argjson f16 "$(m "${F16[@]}")" \
  --argjson fw "$(m "${FW[@]}")" --argjson fr "$(m "${FR[@]}")" \
  --argjson sw "$(m "${SW[@]}")" --argjson sr "$(m "${SR[@]}")" --argjson runs "$RUNS" '
  {bench:"small_blocks", block_KiB:4, depth:16, runs:$runs,
   fio_fdatasync_1_writer:($f1|round), fio_fdatasync_16_writers:($f16|round),
   files_write_ops:($fw|round), small_write_ops:($sw|round),
   files_read_ops:($fr|round), small_read_ops:($sr|round),
   small_vs_files_write:(($sw/$fw)*100|round/100),
   small_write_vs_fio_16:(($sw/$f16)*100|round/100),
   small_write_vs_fio_1:(($sw/$f1)*100|round/100)}'
