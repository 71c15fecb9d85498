#!/usr/bin/env bash
# Repair on report (issue 29): how long from a read that meets corrupt copies to full redundancy.
# A metanode and 3 datanodes on loopback (labels put datanodes 0 and 1 in the client's rack and
# datanode 2 in another, so a reader on host h0 tries 0, then 1, then 2); a FILE_MIB file in the
# default pool (replicated:3). One payload byte is flipped in every block file of datanodes 0
# and 1 — two of the three copies of every block — and the file is read once with `granary get`
# (correct: each block is served by datanode 2). Measured from the end of that read (every
# report is recorded by then): until every damaged block file is byte-identical to datanode 2's
# again, and until `granary admin repair` says `healthy`.
# Then the same for an ec:2+1 pool: data fragment 0 of every block flipped, one read (the client
# rebuilds it), until each fragment is rewritten byte-exact and the cluster is healthy.
# Prints one JSON object per case. HEARTBEAT_MS (default 2000, the datanode default) bounds the
# time a record waits for its holder.
#
#   bench/read_repair.sh [BUILD_DIR]      (FILE_MIB=20 HEARTBEAT_MS=2000 BENCH_DIR=…)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
FILE_MIB=${FILE_MIB:-20}
HEARTBEAT_MS=${HEARTBEAT_MS:-2000}
BENCH_DIR=${BENCH_DIR:-$(pwd)/$BUILD/bench-read-repair}
G=$BUILD/bin/granary
[ -x "$G" ] || { echo "missing $G (cmake --build $BUILD)" >&2; exit 1; }
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

ms() { date +%s%3N; }

start_role "$BENCH_DIR/meta.log" metanode --data "$BENCH_DIR/meta" --listen 127.0.0.1:0 \
  --admin 127.0.0.1:0
META=$(sed -n 's/^listening meta=\([^ ]*\).*/\1/p' "$BENCH_DIR/meta.log")
LABELS=("host=h0,rack=r0" "host=h1,rack=r0" "host=h2,rack=r1")
for i in 0 1 2; do
  start_role "$BENCH_DIR/dn$i.log" datanode --data "$BENCH_DIR/dn$i" --listen 127.0.0.1:0 \
    --data-listen 127.0.0.1:0 --admin 127.0.0.1:0 --meta "$META" \
    --heartbeat-ms "$HEARTBEAT_MS" --labels "${LABELS[$i]}"
done
for _ in $(seq 300); do
  [ "$("$G" admin nodes --meta "$META" 2>/dev/null | grep -c ' up')" -ge 3 ] && break
  sleep 0.1
done
"$G" admin volume create default --pool default --meta "$META" >/dev/null
"$G" admin pool create ec21 --redundancy ec:2+1 --meta "$META" >/dev/null
"$G" admin volume create ec21 --pool ec21 --meta "$META" >/dev/null
head -c $((FILE_MIB << 20)) /dev/urandom >"$BENCH_DIR/file"

healthy() { "$G" admin repair --meta "$META" 2>/dev/null | tail -1 | grep -qx healthy; }
wait_healthy() { for _ in $(seq 1200); do healthy && return 0; sleep 0.05; done; return 1; }

# Flips one byte 1000 bytes before the end (in the payload) of each file given.
flip() {
  for f in "$@"; do
    /usr/bin/python3 - "$f" <<'EOF'
import os, sys
path = sys.argv[1]
with open(path, "r+b") as f:
    f.seek(os.path.getsize(path) - 1000)
    b = f.read(1)
    f.seek(-1, 1)
    f.write(bytes([b[0] ^ 0x5A]))
EOF
  done
}

# Keeps a copy of each file given (outside the datanodes' directories) as ORIG[i].
save() {
  ORIG=()
  mkdir -p "$BENCH_DIR/orig"
  local i=0 f
  for f in "$@"; do
    cp "$f" "$BENCH_DIR/orig/$i"
    ORIG+=("$BENCH_DIR/orig/$i")
    i=$((i + 1))
  done
}

# measure CASE VOLUME DAMAGED... : reads the file once, then times the rewrite of the damaged
# files (each against its saved original, ORIG) and the return to healthy.
measure() {
  local name=$1 volume=$2; shift 2
  local damaged=("$@")
  local before after
  before=$("$G" admin repair --meta "$META" | sed -n 's/.*corruptions-reported=\([0-9]*\).*/\1/p')
  local t0 t_read t_rewritten="" t_healthy=""
  t0=$(ms)
  GRANARY_LABELS=host=h0,rack=r0 "$G" get --meta "$META" "$volume/file" "$BENCH_DIR/back"
  t_read=$(ms)
  cmp -s "$BENCH_DIR/file" "$BENCH_DIR/back" || { echo "$name: read back differs" >&2; exit 1; }
  after=$("$G" admin repair --meta "$META" | sed -n 's/.*corruptions-reported=\([0-9]*\).*/\1/p')
  for _ in $(seq 2400); do
    local all=1 i
    for i in "${!damaged[@]}"; do cmp -s "${damaged[$i]}" "${ORIG[$i]}" || { all=0; break; }; done
    if [ $all = 1 ]; then t_rewritten=$(ms); break; fi
    sleep 0.02
  done
  wait_healthy && t_healthy=$(ms)
  printf '{"case":"%s","file_MiB":%d,"heartbeat_ms":%d,"bad_copies":%d,"reported":%d,' \
    "$name" "$FILE_MIB" "$HEARTBEAT_MS" "${#damaged[@]}" $((after - before))
  printf '"read_ms":%d,"report_to_rewritten_ms":%s,"report_to_healthy_ms":%s}\n' \
    $((t_read - t0)) "${t_rewritten:+$((t_rewritten - t_read))}" \
    "${t_healthy:+$((t_healthy - t_read))}"
}

blocks() { find "$BENCH_DIR"/dn*/blocks -name '*.blk' | sort; }

# Replicated: two bad copies of every block.
"$G" put --meta "$META" "$BENCH_DIR/file" default/file >/dev/null
wait_healthy
mapfile -t BAD < <(find "$BENCH_DIR/dn0/blocks" "$BENCH_DIR/dn1/blocks" -name '*.blk' | sort)
save "${BAD[@]}"
flip "${BAD[@]}"
measure replicated:3 default "${BAD[@]}"

# EC 2+1: data fragment 0 of every block (on whichever datanode is member 0 of its PG).
blocks >"$BENCH_DIR/before-ec"
"$G" put --meta "$META" "$BENCH_DIR/file" ec21/file >/dev/null
wait_healthy
mapfile -t BAD < <(blocks | comm -13 "$BENCH_DIR/before-ec" - | grep -- '-0000\.blk$')
save "${BAD[@]}"
flip "${BAD[@]}"
measure ec:2+1 ec21 "${BAD[@]}"
