#!/usr/bin/env bash
# Metadata HA (docs/metadata-ha.md), in one run: durable creates/s over gRPC (16 clients) against
# one metanode running alone and against a Raft group of three member processes, beside RocksDB
# fillrandom (sync=0 and sync=1) on the same disk; then failover time (leader kill -9 to the
# first successful write) over --kills kills. Prints one JSON object.
#   bench/meta_ha.sh [BUILD_DIR]        env: SECONDS_EACH=5 KILLS=20
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
SECONDS_EACH=${SECONDS_EACH:-5}
KILLS=${KILLS:-20}
G=$BUILD/bin/granary
for bin in "$G" "$BUILD/bench/metanode_bench" "$BUILD/bench/meta_failover_bench"; do
  [ -x "$bin" ] || { echo "missing $bin (cmake --build $BUILD)" >&2; exit 1; }
done
source bench/lib/roles.sh

BENCH_DIR=$(mktemp -d "${TMPDIR:-/tmp}/granary-meta-ha.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$BENCH_DIR"
}
trap cleanup EXIT

free_pair() {  # a port P with P and P+1 free (a member serves on P, Raft on P+1)
  python3 - <<'EOF'
import socket
while True:
    a = socket.socket(); a.bind(("127.0.0.1", 0)); p = a.getsockname()[1]
    b = socket.socket()
    try:
        b.bind(("127.0.0.1", p + 1)); print(p); break
    except OSError:
        pass
    finally:
        a.close(); b.close()
EOF
}

# One metanode alone (no Raft).
P=$(free_pair)
start_role "$BENCH_DIR/alone.log" metanode --data "$BENCH_DIR/alone" --listen "127.0.0.1:$P" \
  --compact-interval-ms 0
ONE=$("$BUILD/bench/metanode_bench" --seconds "$SECONDS_EACH" --meta "127.0.0.1:$P" \
  --dir "$BENCH_DIR" 2>/dev/null | tail -1)
kill "${PIDS[-1]}"

# Three members of one group.
PEERS=""; LIST=""
for i in 1 2 3; do
  p=$(free_pair)
  PEERS+="${PEERS:+,}$i=127.0.0.1:$p"; LIST+="${LIST:+,}127.0.0.1:$p"
done
i=0
for member in ${PEERS//,/ }; do
  i=$((i + 1))
  start_role "$BENCH_DIR/m$i.log" metanode --data "$BENCH_DIR/m$i" --listen "${member#*=}" \
    --id "$i" --peers "$PEERS" --secret-key-file "$BENCH_DIR/secret.key" --compact-interval-ms 0
done
for _ in $(seq 100); do
  "$G" admin meta status --meta "$LIST" >/dev/null 2>&1 && break
  sleep 0.1
done
THREE=$("$BUILD/bench/metanode_bench" --seconds "$SECONDS_EACH" --meta "$LIST" --no-fillrandom \
  --dir "$BENCH_DIR" 2>/dev/null | tail -1)

FAIL=$("$BUILD/bench/meta_failover_bench" --kills "$KILLS" --dir "$BENCH_DIR" 2>/dev/null | tail -1)

jq -nc --argjson one "$ONE" --argjson three "$THREE" --argjson fail "$FAIL" '{
  bench: "meta_ha",
  clients: $one.clients,
  creates_per_s_alone: ($one.creates_per_s|round),
  creates_per_s_three_replicas: ($three.creates_per_s|round),
  rocksdb_fillrandom_sync0_per_s: ($one.fillrandom_sync0_ops_per_s|round),
  rocksdb_fillrandom_sync1_per_s: ($one.fillrandom_sync1_ops_per_s|round),
  three_vs_alone: (($three.creates_per_s / $one.creates_per_s)*100|round/100),
  three_vs_fillrandom_sync0: (($three.creates_per_s / $one.fillrandom_sync0_ops_per_s)*1000|round/1000),
  create_errors: ($one.create_errors + $three.create_errors),
  failover_kills: $fail.kills,
  failover_ms_p50: ($fail.failover_ms_p50|round),
  failover_ms_p99: ($fail.failover_ms_p99|round),
  failover_ms_max: ($fail.failover_ms_max|round),
  targets: {three_vs_alone: 0.7, failover_ms_p99: 3000}
}'
