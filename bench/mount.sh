#!/usr/bin/env bash
# The POSIX door against its limits, all in one run and on one disk: `granary mount` over a
# local cluster (granary server: metanode + 3 datanodes, replicated:3), (a) the native file
# system, (b) nullfs — a null FUSE file system, the FUSE transport limit — and (c) MooseFS from
# Debian's packages (1 master, 3 chunkservers, goal 3) in a network namespace of its own
# (MooseFS refuses a 127.0.0.0/8 master; the namespace is deleted afterwards).
# Per file system: fio sequential write (1 MiB, 4 jobs, final fsync: durable), one writer
# (sequential 1 MiB writes of a ONE_MIB file, then fsync and close: how torch.save writes a
# checkpoint), sequential read, 4 KiB random read, and a create/stat/unlink rate
# (bench/mount_meta.py), a single-threaded `tar x` of UNTAR_FILES 4 KiB files, and the listing
# of a directory of LIST_ENTRIES entries with `ls -f` (and for Granary through ListObjectsV2 on
# the S3 gateway, bench/s3_list.py). Beside each write: the CPU-seconds per GiB written of the
# file system's own processes (mount/client + servers, from /proc; Granary's and MooseFS's). One
# JSON line per figure, then the ratios against the targets of issues 10, 21 and 24. Granary
# runs three metanode replicas (METANODES=3), as the metadata targets ask.
#
#   bench/mount.sh [BUILD_DIR]     MIB=1024 (total over 4 jobs; the issue asks 2048) ONE_MIB=2048
#                                  RUNTIME=10 (random read seconds)  THREADS=4 FILES=1000
#                                  ONLY=granary,nullfs,… to run a subset
#                                  MOUNT_ARGS="--write-behind 0" extra `granary mount` flags
#                                  SERVER_ARGS="--direct-write-min-kib 0" extra `granary server` flags
#                                  WRITES_ONLY=1 the two write figures only
#                                  META_ONLY=1 the metadata figures only
#                                  UNTAR_FILES=10000 LIST_ENTRIES=1000000 (0 skips either)
#                                  METANODES=3
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
MIB=${MIB:-1024}
ONE_MIB=${ONE_MIB:-2048}
RUNTIME=${RUNTIME:-10}
THREADS=${THREADS:-4}
FILES=${FILES:-1000}
UNTAR_FILES=${UNTAR_FILES:-10000}
LIST_ENTRIES=${LIST_ENTRIES:-1000000}
METANODES=${METANODES:-3}
G=$BUILD/bin/granary
NULLFS=$BUILD/bench/nullfs
for bin in "$G" "$NULLFS"; do
  [ -x "$bin" ] || { echo "missing $bin (cmake --build $BUILD)" >&2; exit 1; }
done
W=$(realpath -m "${BENCH_DIR:-$BUILD/bench-mount}")
NS=granary-bench-$$
MFS_IP=10.213.77.1
rm -rf "$W"
mkdir -p "$W"
PIDS=()
MOUNTS=()
cleanup() {
  set +e
  for m in "${MOUNTS[@]}"; do
    fusermount3 -u "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  if [ -e "/run/netns/$NS" ]; then
    for i in 1 2 3; do
      nsenter --net="/run/netns/$NS" mfschunkserver -c "$W/mfs/cs$i.cfg" -f stop >/dev/null 2>&1
    done
    nsenter --net="/run/netns/$NS" mfsmaster -c "$W/mfs/master.cfg" -f stop >/dev/null 2>&1
    ip netns del "$NS"
  fi
  wait 2>/dev/null
  # The daemons' logs outlive the run (for a failed one).
  for log in server.log mount.log; do
    [ -f "$W/$log" ] && cp "$W/$log" "${TMPDIR:-/tmp}/granary-bench-$log"
  done
  rm -rf "$W"
}
trap cleanup EXIT

wait_for() {  # wait_for SECONDS COMMAND… — bounded poll of a condition
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.2
  done
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

emit() {  # emit FS TEST KEY VALUE
  printf '{"bench":"mount","fs":"%s","test":"%s","%s":%s}\n' "$1" "$2" "$3" "$4"
}

fio_json() {  # fio_json DIR NAME ARGS… -> MB/s (or IOPS for randread) of the job group
  local dir=$1 name=$2; shift 2
  fio --name="$name" --directory="$dir" --numjobs=4 --group_reporting --output-format=json \
      --size=$((MIB / 4))M "$@" >"$W/fio.json"
}

CPU_PIDS=()  # the processes whose CPU time a write is charged (none for native and nullfs)
cpu_ticks() {  # user + system clock ticks of CPU_PIDS, every thread included
  local t=0 p stat f
  for p in "${CPU_PIDS[@]}"; do
    stat=$(<"/proc/$p/stat")
    # Fields 14 and 15 (utime, stime), counted after the ")" that closes the command name.
    read -ra f <<<"${stat##*) }"
    t=$((t + f[11] + f[12]))
  done
  echo "$t"
}
emit_cpu() {  # emit_cpu FS TEST TICKS_BEFORE MIB_WRITTEN
  [ ${#CPU_PIDS[@]} -gt 0 ] || return 0
  local ticks=$(($(cpu_ticks) - $3))
  emit "$1" "$2" cpu_s_per_GiB "$(python3 -c "print(round($ticks / $(getconf CLK_TCK) / ($4 / 1024), 2))")"
  eval "${1//-/_}_$2_cpu=$(python3 -c "print($ticks / $(getconf CLK_TCK) / ($4 / 1024))")"
}

measure() {  # measure FS DIR
  local fs=$1 dir=$2 v t0
  [ -z "${META_ONLY:-}" ] || { measure_meta "$fs" "$dir"; return 0; }
  t0=$(cpu_ticks)
  fio_json "$dir" seq --rw=write --bs=1M --end_fsync=1
  v=$(jq '.jobs[0].write.bw_bytes / 1e6' "$W/fio.json"); emit "$fs" seq_write MBps "$v"
  eval "${fs//-/_}_seq_write=$v"
  emit_cpu "$fs" seq_write "$t0" "$MIB"
  # One writer, then fsync + close (fio's end_fsync), as torch.save does.
  t0=$(cpu_ticks)
  fio --name=one --directory="$dir" --numjobs=1 --output-format=json --size="${ONE_MIB}M" \
      --rw=write --bs=1M --end_fsync=1 >"$W/fio-one.json"
  rm -f "$dir"/one.*
  v=$(jq '.jobs[0].write.bw_bytes / 1e6' "$W/fio-one.json"); emit "$fs" one_writer MBps "$v"
  eval "${fs//-/_}_one_writer=$v"
  emit_cpu "$fs" one_writer "$t0" "$ONE_MIB"
  [ -z "${WRITES_ONLY:-}" ] || { rm -f "$dir"/seq.*; return 0; }
  # fio drops each file's page cache before reading (invalidate=1).
  fio_json "$dir" seq --rw=read --bs=1M
  v=$(jq '.jobs[0].read.bw_bytes / 1e6' "$W/fio.json"); emit "$fs" seq_read MBps "$v"
  eval "${fs//-/_}_seq_read=$v"
  fio_json "$dir" seq --rw=randread --bs=4k --time_based --runtime="$RUNTIME"
  v=$(jq '.jobs[0].read.iops' "$W/fio.json"); emit "$fs" rand_read_4k IOPS "$v"
  rm -f "$dir"/seq.*
  measure_meta "$fs" "$dir"
}

measure_meta() {  # measure_meta FS DIR: create/stat/unlink, untar, listing
  local fs=$1 dir=$2 v t0 meta
  meta=$(python3 bench/mount_meta.py "$dir" "$THREADS" "$FILES")
  echo "$meta" | jq -c --arg fs "$fs" '{bench:"mount", fs:$fs, test:"create_stat_unlink"} + .'
  eval "${fs//-/_}_creates=$(echo "$meta" | jq .creates_per_s)"
  eval "${fs//-/_}_unlinks=$(echo "$meta" | jq .unlinks_per_s)"
  eval "${fs//-/_}_stats=$(echo "$meta" | jq .stats_per_s)"
  [ "$fs" != nullfs ] || return 0  # keeps nothing: no tree to unpack or list
  if [ "$UNTAR_FILES" -gt 0 ]; then
    # How most people unpack a dataset: one tar process, one file after another.
    mkdir -p "$dir/untar"
    t0=$(date +%s.%N)
    tar -xf "$W/untar.tar" -C "$dir/untar"
    v=$(python3 -c "import time; print(round($UNTAR_FILES / (time.time() - $t0), 1))")
    [ "$(find "$dir/untar" -type f | wc -l)" -eq "$UNTAR_FILES" ] || v=0
    emit "$fs" untar files_per_s "$v"
    eval "${fs//-/_}_untar=$v"
    rm -rf "$dir/untar"
  fi
  if [ "$LIST_ENTRIES" -gt 0 ]; then
    local n
    populate_list "$fs" "$dir/list"
    t0=$(date +%s.%N)
    n=$(ls -f "$dir/list" | wc -l)
    v=$(python3 -c "import time; print(round($n / (time.time() - $t0)))")
    [ "$n" -ge "$LIST_ENTRIES" ] || v=0
    emit "$fs" list entries_per_s "$v"
    eval "${fs//-/_}_list=$v"
    if [ "$fs" = granary ]; then
      v=$(/usr/bin/python3 bench/s3_list.py "http://$S3" default list/ "$S3_KEY" "$S3_SECRET" | jq .entries_per_s)
      emit "$fs" list_objects_v2 entries_per_s "$v"
      granary_list_s3=$v
    fi
  fi
}

# A directory of LIST_ENTRIES empty files: Granary's through batched creates (`granary bench
# create`), the others' through the mount with 8 threads.
populate_list() {  # populate_list FS DIR
  if [ "$1" = granary ]; then
    "$G" bench create --meta "$META" --dir default/list --count "$LIST_ENTRIES" >"$W/populate.json"
  else
    mkdir -p "$2"
    python3 - "$2" "$LIST_ENTRIES" <<'PY'
import os, sys, threading
d, n = sys.argv[1], int(sys.argv[2])
def work(t):
    for i in range(t, n, 8):
        os.close(os.open(f"{d}/f{i}", os.O_CREAT | os.O_WRONLY, 0o644))
ts = [threading.Thread(target=work, args=(t,)) for t in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
PY
  fi
}

if [ "$UNTAR_FILES" -gt 0 ]; then
  mkdir -p "$W/untar-src"
  python3 - "$W/untar-src" "$UNTAR_FILES" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    sub = f"{d}/d{i // 1000}"
    os.makedirs(sub, exist_ok=True)
    with open(f"{sub}/f{i}", "wb") as f:
        f.write(os.urandom(4096))
PY
  tar -cf "$W/untar.tar" -C "$W/untar-src" .
  rm -rf "$W/untar-src"
fi

ONLY=${ONLY:-native,nullfs,granary,moosefs}  # a subset, e.g. ONLY=granary
want() { [[ ",$ONLY," == *",$1,"* ]]; }

# ---------------------------------------------------------------- native
if want native; then
mkdir -p "$W/native"
measure native "$W/native"
fi

# ---------------------------------------------------------------- nullfs
if want nullfs; then
mkdir -p "$W/null"
"$NULLFS" "$W/null" >"$W/nullfs.log" 2>&1 &
PIDS+=($!)
MOUNTS+=("$W/null")
wait_for 10 grep -q mounted "$W/nullfs.log"
measure nullfs "$W/null"
fi

# ---------------------------------------------------------------- granary (replicated:3)
if want granary; then
META=127.0.0.1:$(free_port)
mkdir -p "$W/granary-data" "$W/granary"
"$G" server --data "$W/granary-data" --meta "$META" --metanodes "$METANODES" ${SERVER_ARGS:-} \
  >"$W/server.log" 2>&1 &
PIDS+=($!)
wait_for 60 grep -q 'event=ready' "$W/server.log"
META=$(grep -o 'event=ready meta=[^ ]*' "$W/server.log" | cut -d= -f3)
S3=$(grep -o 's3=http://[^ ]*' "$W/server.log" | head -1 | cut -d/ -f3)
S3_KEY=$(grep -o 'access_key=[^ ]*' "$W/server.log" | head -1 | cut -d= -f2)
S3_SECRET=$(grep -o 'secret_key=[^ ]*' "$W/server.log" | head -1 | cut -d= -f2)
"$G" mount --meta "$META" --volume default "$W/granary" --foreground ${MOUNT_ARGS:-} \
  >"$W/mount.log" 2>&1 &
PIDS+=($!)
MOUNTS+=("$W/granary")
wait_for 30 grep -q 'event=mounted' "$W/mount.log"
CPU_PIDS=("${PIDS[@]: -2}")  # the server (metanode + datanodes) and the mount
measure granary "$W/granary"
CPU_PIDS=()
fi

# ---------------------------------------------------------------- MooseFS (goal 3)
if want moosefs; then
  M=$W/mfs
  mkdir -p "$M/master" "$W/moosefs"
  ip netns add "$NS"
  ip -n "$NS" link set lo up
  ip -n "$NS" addr add "$MFS_IP/32" dev lo
  cp /var/lib/mfs/metadata.mfs.empty "$M/master/metadata.mfs"
  echo "* / rw,alldirs,maproot=0" >"$M/exports.cfg"
  cat >"$M/master.cfg" <<CFG
WORKING_USER = root
WORKING_GROUP = root
DATA_PATH = $M/master
EXPORTS_FILENAME = $M/exports.cfg
MATOML_LISTEN_HOST = $MFS_IP
MATOCS_LISTEN_HOST = $MFS_IP
MATOCL_LISTEN_HOST = $MFS_IP
CFG
  nsenter --net="/run/netns/$NS" mfsmaster -c "$M/master.cfg" start >"$M/master.log" 2>&1
  for i in 1 2 3; do
    mkdir -p "$M/cs$i/hdd"
    echo "$M/cs$i/hdd" >"$M/cs$i/hdd.cfg"
    cat >"$M/cs$i.cfg" <<CFG
WORKING_USER = root
WORKING_GROUP = root
DATA_PATH = $M/cs$i
HDD_CONF_FILENAME = $M/cs$i/hdd.cfg
MASTER_HOST = $MFS_IP
BIND_HOST = $MFS_IP
CSSERV_LISTEN_HOST = $MFS_IP
CSSERV_LISTEN_PORT = $((9422 + i * 10))
CFG
    nsenter --net="/run/netns/$NS" mfschunkserver -c "$M/cs$i.cfg" start >"$M/cs$i.log" 2>&1
  done
  nsenter --net="/run/netns/$NS" mfsmount "$W/moosefs" -H "$MFS_IP" >"$M/mount.log" 2>&1
  MOUNTS+=("$W/moosefs")
  # All 3 chunkservers registered: the mount's capacity is 3 x the disk's (used + available).
  mfs_ready() {
    python3 - "$W/moosefs" "$W" <<'PY'
import os, sys
m, d = os.statvfs(sys.argv[1]), os.statvfs(sys.argv[2])
disk = (d.f_blocks - d.f_bfree + d.f_bavail) * d.f_frsize
sys.exit(0 if m.f_blocks * m.f_frsize >= 2.5 * disk else 1)
PY
  }
  wait_for 60 mfs_ready || echo '{"bench":"mount","fs":"moosefs","warning":"chunkservers not all up"}'
  if ! nsenter --net="/run/netns/$NS" mfssetgoal -r 3 "$W/moosefs" >"$M/goal.log" 2>&1; then
    jq -cn --arg e "$(tail -c 300 "$M/goal.log")" '{bench:"mount", fs:"moosefs", warning:("goal 3 not set: " + $e)}'
  fi
  # Master, chunkservers and mount: every MooseFS process of this run.
  mapfile -t CPU_PIDS < <(pgrep -f "$M/(master|cs[123])\.cfg|mfsmount $W/moosefs")
  echo "{\"bench\":\"mount\",\"fs\":\"moosefs\",\"goal\":\"$(nsenter --net="/run/netns/$NS" mfsgetgoal "$W/moosefs" 2>&1 | tr -d '\n"' | tail -c 120)\"}"
  measure moosefs "$W/moosefs"
fi

# ---------------------------------------------------------------- ratios and targets
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(round(a/b,3) if b else 0)" "$1" "$2"; }
meta_summary() {  # the metadata ratios (issue 24), Granary against MooseFS
  printf ',"creates_vs_moosefs":%s,"unlinks_vs_moosefs":%s,"stats_vs_moosefs":%s' \
    "$(ratio "$granary_creates" "$moosefs_creates")" "$(ratio "$granary_unlinks" "$moosefs_unlinks")" \
    "$(ratio "$granary_stats" "$moosefs_stats")"
  printf ',"target_creates_unlinks_stats_vs_moosefs":1'
  if [ "$UNTAR_FILES" -gt 0 ]; then
    printf ',"untar_vs_moosefs":%s,"target_untar_vs_moosefs":0.5' "$(ratio "$granary_untar" "$moosefs_untar")"
  fi
  if [ "$LIST_ENTRIES" -gt 0 ]; then
    printf ',"list_entries_per_s":%s,"list_objects_v2_entries_per_s":%s,"target_list_entries_per_s":100000' \
      "$granary_list" "$granary_list_s3"
  fi
}
if [ -n "${META_ONLY:-}" ]; then
  want granary && want moosefs || exit 0
  printf '{"bench":"mount","summary":true'
  meta_summary
  printf '}\n'
  exit 0
fi
[ "$ONLY" = native,nullfs,granary,moosefs ] || exit 0
fio_write_third=$(python3 -c "print($native_seq_write/3)")
printf '{"bench":"mount","summary":true,"seq_read_vs_nullfs":%s,"target_seq_read_vs_nullfs":0.5,' \
  "$(ratio "$granary_seq_read" "$nullfs_seq_read")"
printf '"seq_write_vs_native_write_over_3":%s,"target_seq_write":0.8' \
  "$(ratio "$granary_seq_write" "$fio_write_third")"
printf ',"one_writer_vs_native_one_writer_over_3":%s,"target_one_writer":0.7' \
  "$(ratio "$granary_one_writer" "$(python3 -c "print($native_one_writer/3)")")"
printf ',"cpu_per_GiB_vs_moosefs":%s,"target_cpu_per_GiB_vs_moosefs":1' \
  "$(ratio "$granary_seq_write_cpu" "$moosefs_seq_write_cpu")"
printf ',"seq_read_vs_moosefs":%s,"target_seq_read_vs_moosefs":2' \
  "$(ratio "$granary_seq_read" "$moosefs_seq_read")"
meta_summary
printf ',"mib":%s}\n' "$MIB"
