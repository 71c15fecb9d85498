# Physical limits measured in the same run as a benchmark (sourced by bench/*.sh):
#   iperf3_MBps           one TCP stream on loopback, MB/s
#   fio_write_read MIB    three MB/s figures on BENCH_DIR: sequential 1 MiB writes with a final
#                         fsync, reads of that file (page cache, as datanode reads are), and
#                         writes with an fsync every 4 MiB (like for like with a datanode, which
#                         fsyncs each 4 MiB block). The first write runs twice and the second,
#                         warm run counts (the first pays for page-cache reclaim).
# Needs iperf3, fio and jq (scripts/install-deps.sh installs them).

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

iperf3_MBps() {
  local port line pid out
  port=$(free_port)
  out=$(mktemp)
  coproc IPERF_SERVER { exec iperf3 -s -1 -B 127.0.0.1 -p "$port" --forceflush 2>&1; }
  pid=$IPERF_SERVER_PID
  # Start the client once the server says it listens (bounded wait).
  while IFS= read -r -t 10 line <&"${IPERF_SERVER[0]}"; do
    [[ $line == *"listening"* ]] && break
  done
  iperf3 -c 127.0.0.1 -p "$port" -t 2 -J >"$out"
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  jq '.end.sum_received.bits_per_second / 8 / 1e6' "$out"
  rm -f "$out"
}

fio_write_read() {
  local mib=$1 file="$BENCH_DIR/fio.dat"
  local common=(--filename="$file" --bs=1M --size="${mib}M" --ioengine=io_uring --iodepth=8
                --output-format=json)
  for _ in 1 2; do
    rm -f "$file"
    fio --name=write --rw=write --end_fsync=1 "${common[@]}" >"$BENCH_DIR/fio-w.json"
  done
  fio --name=read --rw=read "${common[@]}" >"$BENCH_DIR/fio-r.json"
  rm -f "$file"
  fio --name=write4 --rw=write --fsync=4 "${common[@]}" >"$BENCH_DIR/fio-w4.json"
  rm -f "$file"
  echo "$(jq '.jobs[0].write.bw_bytes / 1e6' "$BENCH_DIR/fio-w.json")" \
       "$(jq '.jobs[0].read.bw_bytes / 1e6' "$BENCH_DIR/fio-r.json")" \
       "$(jq '.jobs[0].write.bw_bytes / 1e6' "$BENCH_DIR/fio-w4.json")"
}
