#!/usr/bin/env bash
# Locality (issue 28, docs/locality.md): a reader on a warmed host versus a reader on another
# host, in the same run. Hosts are network namespaces gr28-h1..gr28-h5 on a bridge; every host's
# link is shaped to NET_MBIT (tbf, both directions) while traffic inside a host stays on its own
# loopback. The metanode runs in the root namespace on the bridge. Datanodes: h1..h3 in pool
# `main` (replicated:2, failure domain host), h4 a GPU host whose datanode takes no counted data;
# h5 runs clients only. DATA_MIB of files are written from h1, then warmed onto h4
# (`admin warmup create … --hosts h4`). Then, alternating, ROUNDS times: a fresh FUSE mount in
# h4 (warmed) and one in h5 (remote) each read every file once (cat > /dev/null); each mount's
# own metric granary_client_read_local_ratio is scraped from its --admin port.
# Prints one JSON object (figures from the median round).
# CHECK=1 (ctest locality_netns_test, small sizes) also asserts: the warmed mount's local-read
# ratio >= 0.95 and the remote one's 0; deleting the warm-up empties h4's datanode.
# Exit 77 (skipped) without root or network namespaces.
#
#   sudo bench/locality.sh [BUILD_DIR]   (DATA_MIB=256 FILES=8 NET_MBIT=1000 ROUNDS=3 BENCH_DIR=…)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
DATA_MIB=${DATA_MIB:-256}
FILES=${FILES:-8}
NET_MBIT=${NET_MBIT:-1000}
ROUNDS=${ROUNDS:-3}
BENCH_DIR=${BENCH_DIR:-$(pwd)/$BUILD/bench-locality}
G=$(realpath "$BUILD/bin/granary")
[ -x "$G" ] || { echo "missing $G (cmake --build $BUILD)" >&2; exit 1; }
CHECK=${CHECK:-0}
[ "$(id -u)" = 0 ] || { echo "needs root (network namespaces, FUSE)" >&2; exit 77; }
[ -e /dev/fuse ] || { echo "needs /dev/fuse" >&2; exit 77; }
ip netns add gr28-probe 2>/dev/null || { echo "cannot create network namespaces" >&2; exit 77; }
ip netns del gr28-probe

NS=(gr28-h1 gr28-h2 gr28-h3 gr28-h4 gr28-h5)
BR=gr28br
NET=10.28.0
rm -rf "$BENCH_DIR"
mkdir -p "$BENCH_DIR"
PIDS=()
MOUNTS=()
cleanup() {
  for m in "${MOUNTS[@]}"; do fusermount3 -uz "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  ip link del "$BR" 2>/dev/null || true
  rm -rf "$BENCH_DIR"
}
trap cleanup EXIT

# ------------------------------------------------------------------ the simulated hosts
ip link add "$BR" type bridge
ip addr add "$NET.1/24" dev "$BR"
ip link set "$BR" up
shape() {  # device [netns]: egress limited to NET_MBIT
  local dev=$1; shift
  "$@" tc qdisc add dev "$dev" root tbf rate "${NET_MBIT}mbit" burst 512kb latency 20ms
}
for i in 1 2 3 4 5; do
  n=${NS[$((i - 1))]}
  ip netns add "$n"
  ip link add "gr28v$i" type veth peer name eth0 netns "$n"
  ip link set "gr28v$i" master "$BR" up
  ip -n "$n" addr add "$NET.1$i/24" dev eth0
  ip -n "$n" link set eth0 up
  ip -n "$n" link set lo up
  ip -n "$n" route add default via "$NET.1"
  shape "gr28v$i"                       # toward the host
  shape eth0 ip netns exec "$n"         # from the host
done
in_host() {  # host number, command…: runs in that host's network namespace only
  local i=$1; shift
  nsenter --net="/run/netns/${NS[$((i - 1))]}" "$@"
}

# ------------------------------------------------------------------ granary
netns() { echo "--net=/run/netns/${NS[$(($1 - 1))]}"; }
start() {  # log, host (0 = root namespace), args…  (nsenter execs: $! is granary's pid)
  local log=$1 host=$2; shift 2
  if [ "$host" = 0 ]; then
    "$G" "$@" >"$log" 2>&1 &
  else
    nsenter "$(netns "$host")" "$G" "$@" >"$log" 2>&1 &
  fi
  PIDS+=($!)
  for _ in $(seq 300); do
    grep -q '^listening' "$log" && return 0
    kill -0 "${PIDS[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "$* did not start:" >&2; cat "$log" >&2; return 1
}
start "$BENCH_DIR/meta.log" 0 metanode --data "$BENCH_DIR/meta" --listen "$NET.1:0" \
  --admin 127.0.0.1:0
META=$(sed -n 's/^listening meta=\([^ ]*\).*/\1/p' "$BENCH_DIR/meta.log")
export GRANARY_META=$META
for i in 1 2 3 4; do
  labels="host=h$i"
  [ "$i" -le 3 ] && labels="$labels,pool=main"
  [ "$i" = 4 ] && labels="$labels,gpu=true"
  start "$BENCH_DIR/dn$i.log" "$i" datanode --data "$BENCH_DIR/dn$i" --listen "$NET.1$i:0" \
    --data-listen "$NET.1$i:0" --admin "$NET.1$i:0" --meta "$META" --labels "$labels"
done
for _ in $(seq 300); do
  [ "$("$G" admin nodes 2>/dev/null | grep -c ' up')" -ge 4 ] && break
  sleep 0.1
done
# pool=main keeps the counted copies on h1..h3: h4 holds only what the warm-up copies.
"$G" admin pool create main --redundancy replicated:2 --failure-domain host \
  --node-selector pool=main >/dev/null
"$G" admin volume create data --pool main >/dev/null

FILE_BYTES=$(((DATA_MIB << 20) / FILES))
head -c "$FILE_BYTES" /dev/urandom >"$BENCH_DIR/blob"
for f in $(seq "$FILES"); do
  env GRANARY_LABELS=host=h1 nsenter "$(netns 1)" "$G" put "$BENCH_DIR/blob" \
    "data/train/part-$f" >/dev/null
done

ms() { date +%s%3N; }
t0=$(ms)
"$G" admin warmup create bench --volume data --path /train --hosts h4 >/dev/null
for _ in $(seq 6000); do
  "$G" admin warmup list bench | head -1 | grep -q 'state=ready' && break
  sleep 0.1
done
warm_ms=$(($(ms) - t0))
"$G" admin warmup list bench | head -1 | grep -q 'state=ready' || {
  echo "warm-up not ready:" >&2; "$G" admin warmup list bench >&2; exit 1; }
h4_local=$("$G" admin volume locality data --path /train | sed -n 's/^host=h4 .*local-bytes=\([0-9]*\).*/\1/p')
logical=$("$G" admin volume locality data --path /train | sed -n 's/^volume=.* bytes=\([0-9]*\)$/\1/p')

# One read pass through a fresh mount on host $1: prints "MBps ratio".
read_pass() {
  local host=$1 mnt="$BENCH_DIR/mnt-h$1-$2" log="$BENCH_DIR/mount-h$1-$2.log"
  mkdir -p "$mnt"
  nsenter "$(netns "$host")" "$G" mount --meta "$META" --volume data --labels "host=h$host" \
    --admin "$NET.1$host:0" --foreground "$mnt" >"$log" 2>&1 &
  local pid=$!
  PIDS+=($pid)
  MOUNTS+=("$mnt")
  for _ in $(seq 300); do grep -q 'event=mounted' "$log" && break; sleep 0.1; done
  local admin
  admin=$(sed -n 's/.*event=admin_listening address=\([^ ]*\).*/\1/p' "$log" | head -1)
  local start end
  start=$(ms)
  for f in $(seq "$FILES"); do cat "$mnt/train/part-$f" >/dev/null; done
  end=$(ms)
  local ratio
  ratio=$(in_host "$host" curl -s "http://$admin/metrics" |
    sed -n 's/^granary_client_read_local_ratio \([0-9.]*\)$/\1/p')
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  fusermount3 -uz "$mnt" 2>/dev/null || true
  awk -v b=$((FILE_BYTES * FILES)) -v t=$((end - start)) -v r="${ratio:-0}" \
    'BEGIN { printf "%.1f %s\n", b / 1e6 / (t / 1000.0), r }'
}
WARM=() REMOTE=() WARM_RATIO=() REMOTE_RATIO=()
for r in $(seq "$ROUNDS"); do
  read -r mbps ratio < <(read_pass 4 "$r")
  WARM+=("$mbps"); WARM_RATIO+=("$ratio")
  read -r mbps ratio < <(read_pass 5 "$r")
  REMOTE+=("$mbps"); REMOTE_RATIO+=("$ratio")
done
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
w=$(median "${WARM[@]}")
rm_=$(median "${REMOTE[@]}")
printf '{"bench":"locality","data_MiB":%d,"files":%d,"net_mbit":%d,"rounds":%d,' \
  "$DATA_MIB" "$FILES" "$NET_MBIT" "$ROUNDS"
printf '"warm_seconds":%.2f,"warm_MBps":%.1f,"h4_local_fraction":%.4f,' \
  "$(awk -v t="$warm_ms" 'BEGIN { print t / 1000 }')" \
  "$(awk -v b=$((FILE_BYTES * FILES)) -v t="$warm_ms" 'BEGIN { print b / 1e6 / (t / 1000) }')" \
  "$(awk -v a="${h4_local:-0}" -v b="${logical:-1}" 'BEGIN { print a / b }')"
printf '"read_warmed_host_MBps":%s,"read_remote_host_MBps":%s,"warmed_vs_remote":%.2f,' \
  "$w" "$rm_" "$(awk -v a="$w" -v b="$rm_" 'BEGIN { print a / b }')"
printf '"warmed_mount_local_ratio":%s,"remote_mount_local_ratio":%s,' \
  "$(median "${WARM_RATIO[@]}")" "$(median "${REMOTE_RATIO[@]}")"
printf '"warmed_rounds_MBps":[%s],"remote_rounds_MBps":[%s]}\n' \
  "$(IFS=,; echo "${WARM[*]}")" "$(IFS=,; echo "${REMOTE[*]}")"

if [ "$CHECK" = 1 ]; then
  fail() { echo "FAIL: $*" >&2; exit 1; }
  awk -v r="$(median "${WARM_RATIO[@]}")" 'BEGIN { exit !(r >= 0.95) }' ||
    fail "warmed mount read locally only ${WARM_RATIO[*]}"
  awk -v r="$(median "${REMOTE_RATIO[@]}")" 'BEGIN { exit !(r == 0) }' ||
    fail "remote mount read locally ${REMOTE_RATIO[*]} (it has no datanode)"
  [ "$(find "$BENCH_DIR/dn4" -name '*.blk' | wc -l)" -gt 0 ] || fail "no warm copy on h4"
  "$G" admin warmup delete bench >/dev/null
  for _ in $(seq 300); do
    [ "$(find "$BENCH_DIR/dn4" -name '*.blk' | wc -l)" = 0 ] && break
    sleep 0.1
  done
  left=$(find "$BENCH_DIR/dn4" -name '*.blk' | wc -l)
  [ "$left" = 0 ] || fail "$left block files left on h4 after the warm-up was deleted"
  "$G" admin volume locality data | grep -q '^host=h4 ' && fail "h4 still listed by locality"
  echo "PASS: warmed mount local ratio $(median "${WARM_RATIO[@]}"), remote 0; delete freed h4"
fi
