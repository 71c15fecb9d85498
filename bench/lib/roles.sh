# Shared by the benchmark scripts. Needs $G (the granary binary) and the array PIDS.
#
# Starts a granary role in the background (its pid recorded in PIDS, in the caller's shell, so its
# cleanup stops it) and waits, bounded, for its "listening" line.
start_role() {
  local log=$1; shift
  "$G" "$@" >"$log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 300); do
    grep -q '^listening' "$log" && return 0
    kill -0 "${PIDS[-1]}" 2>/dev/null || break
    sleep 0.1
  done
  echo "$* did not start:" >&2; cat "$log" >&2; return 1
}
