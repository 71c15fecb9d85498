#!/usr/bin/env bash
# S3 gateway throughput (JSON lines): GET/PUT of 1 MiB objects (MB/s) and 4 KiB objects (ops/s)
# at 16 concurrent connections (wrk + Lua over presigned URLs), against `granary server` on
# loopback. In the same run, the HTTP limit of a two-hop path like ours: nginx as a reverse
# proxy (keep-alive upstream) in front of a static nginx serving files of the same sizes.
# Targets: GET 1 MiB >= 0.7 x proxy limit; 4 KiB PUT ops/s >= 0.5 x proxy 4 KiB GET rate.
#   bench/s3.sh [GRANARY_BINARY] [SECONDS]
# SERVER_FLAGS adds `granary server` flags, e.g. SERVER_FLAGS="--small-block-kib 0" for an A/B
# run against small blocks stored as files. PROFILE_DIR=DIR adds two more 4 KiB PUT runs after
# the measured ones: one under `perf stat` (fsync/fdatasync syscalls per PUT, a JSON line) and
# one under `perf record -e cpu-clock -g` of the server (DIR/put4k.perf.data); the server's
# /metrics after the runs go to DIR/metrics.txt.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
GRANARY=${1:-$HERE/../build/bin/granary}
DURATION=${2:-8}
CONNS=16
source "$HERE/lib/limits.sh"
DIR=$(mktemp -d /tmp/granary-bench-s3-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$DIR"
}
trap cleanup EXIT

# ---------------------------------------------------------------- the two-hop nginx limit
mkdir -p "$DIR/www" "$DIR/nginx"
chmod 755 "$DIR"  # nginx workers run as nobody
head -c $((1 << 20)) /dev/urandom >"$DIR/www/obj1m"
head -c 4096 /dev/urandom >"$DIR/www/obj4k"
ORIGIN=$(free_port)
PROXY=$(free_port)
cat >"$DIR/nginx/nginx.conf" <<CONF
worker_processes auto;
pid $DIR/nginx/nginx.pid;
error_log $DIR/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  client_body_temp_path $DIR/nginx/body;
  proxy_temp_path $DIR/nginx/proxy;
  fastcgi_temp_path $DIR/nginx/fcgi;
  uwsgi_temp_path $DIR/nginx/uwsgi;
  scgi_temp_path $DIR/nginx/scgi;
  upstream origin { server 127.0.0.1:$ORIGIN; keepalive 32; }
  server { listen 127.0.0.1:$ORIGIN; root $DIR/www; }
  server {
    listen 127.0.0.1:$PROXY;
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering on;
      proxy_max_temp_file_size 0;  # stream through memory buffers, never a temp file
    }
  }
}
CONF
nginx -c "$DIR/nginx/nginx.conf" -p "$DIR/nginx" -g 'daemon off;' 2>"$DIR/nginx/stderr" &
PIDS+=($!)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PROXY/obj4k" -o /dev/null && break; sleep 0.05; done

# wrk's Requests/sec.
wrk_rps() {  # url [lua script]
  local script=()
  [[ -n ${2:-} ]] && script=(-s "$2")
  wrk -t 2 -c "$CONNS" -d "${DURATION}s" --latency "${script[@]}" "$1" >"$DIR/wrk.out" 2>&1 || true
  grep -q "Non-2xx" "$DIR/wrk.out" && { echo "non-2xx answers:" >&2; cat "$DIR/wrk.out" >&2; }
  awk '/Requests\/sec/ {print $2}' "$DIR/wrk.out"
}
P_GET_1M=$(wrk_rps "http://127.0.0.1:$PROXY/obj1m")
P_GET_4K=$(wrk_rps "http://127.0.0.1:$PROXY/obj4k")

# The durability limit of a small PUT: fsyncs per second on the data dir's disk (4 KiB writes,
# fdatasync each, 16 writers). Every acknowledged PUT costs one fsync on each of 3 replicas plus
# its share of the metanode's group commits.
FSYNC_IOPS=$(fio --name=fsync --directory="$DIR" --rw=randwrite --bs=4k --size=16M --fdatasync=1 \
  --numjobs=16 --group_reporting --time_based --runtime=3 --output-format=json 2>/dev/null |
  jq '.jobs[0].write.iops')
rm -f "$DIR"/fsync.*

# ---------------------------------------------------------------- granary
export AWS_ACCESS_KEY_ID=BENCHKEY AWS_SECRET_ACCESS_KEY=bench-secret-0123456789
export AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true
ADMIN_PORT=$(free_port)
"$GRANARY" server --data "$DIR/data" --meta 127.0.0.1:0 --s3 127.0.0.1:0 \
  --access-key "$AWS_ACCESS_KEY_ID" --secret-key "$AWS_SECRET_ACCESS_KEY" --log-level warn \
  ${SERVER_FLAGS:-} ${PROFILE_DIR:+--admin 127.0.0.1:$ADMIN_PORT} \
  >"$DIR/server.log" 2>&1 &
SERVER_PID=$!
PIDS+=($SERVER_PID)
for _ in $(seq 600); do grep -q '^ready$' "$DIR/server.log" && break; sleep 0.1; done
EP=$(grep -oE 's3=http://[0-9.:]+' "$DIR/server.log" | cut -d= -f2)
/usr/bin/aws --endpoint-url "$EP" s3 mb s3://bench >/dev/null
/usr/bin/aws --endpoint-url "$EP" s3 cp --only-show-errors "$DIR/www/obj1m" s3://bench/obj1m
/usr/bin/aws --endpoint-url "$EP" s3 cp --only-show-errors "$DIR/www/obj4k" s3://bench/obj4k

# Presigned URLs: one GET each, and 64 PUT keys per size (the Lua script cycles through them).
/usr/bin/python3 - "$EP" "$DIR" <<'PY'
import sys, boto3, botocore.config
ep, d = sys.argv[1], sys.argv[2]
s3 = boto3.client("s3", endpoint_url=ep, region_name="us-east-1",
                  config=botocore.config.Config(signature_version="s3v4",
                                                s3={"addressing_style": "path"}))
def url(method, key):
    u = s3.generate_presigned_url(method, Params={"Bucket": "bench", "Key": key}, ExpiresIn=3600)
    return u[len(ep):]
open(f"{d}/get1m", "w").write(url("get_object", "obj1m"))
open(f"{d}/get4k", "w").write(url("get_object", "obj4k"))
for size in ("1m", "4k"):
    paths = [url("put_object", f"put/{size}/{i}") for i in range(64)]
    body_file = f"{d}/www/obj{size}"
    open(f"{d}/put{size}.lua", "w").write(
        'local f = io.open("%s", "rb"); local body = f:read("*a"); f:close()\n'
        'local paths = {%s}\nlocal i = 0\n'
        'request = function()\n  i = i %% #paths + 1\n'
        '  return wrk.format("PUT", paths[i], nil, body)\nend\n'
        % (body_file, ",".join('"%s"' % p for p in paths)))
PY
G_GET_1M=$(wrk_rps "$EP$(cat "$DIR/get1m")")
G_PUT_1M=$(wrk_rps "$EP/" "$DIR/put1m.lua")
G_GET_4K=$(wrk_rps "$EP$(cat "$DIR/get4k")")
G_PUT_4K=$(wrk_rps "$EP/" "$DIR/put4k.lua")

mbps() { awk -v r="$1" 'BEGIN {printf "%.1f", r * 1048576 / 1e6}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}'; }
line() {  # name value unit limit_name limit ratio target
  jq -nc --arg n "$1" --argjson v "$2" --arg u "$3" --arg ln "$4" --argjson l "$5" \
    --argjson r "$6" --argjson t "$7" \
    '{bench:"s3", metric:$n, value:$v, unit:$u, connections:16, limit:$ln, limit_value:$l,
      ratio:$r, target_ratio:$t, meets_target:($t == 0 or $r >= $t)}'
}
line get_1mib "$(mbps "$G_GET_1M")" MB/s nginx_proxy_get_1mib "$(mbps "$P_GET_1M")" \
  "$(ratio "$G_GET_1M" "$P_GET_1M")" 0.7
line put_1mib "$(mbps "$G_PUT_1M")" MB/s nginx_proxy_get_1mib "$(mbps "$P_GET_1M")" \
  "$(ratio "$G_PUT_1M" "$P_GET_1M")" 0
line get_4kib "$G_GET_4K" ops/s nginx_proxy_get_4kib "$P_GET_4K" "$(ratio "$G_GET_4K" "$P_GET_4K")" 0
jq -nc --argjson f "$FSYNC_IOPS" --argjson p "$G_PUT_4K" \
  '{bench:"s3", metric:"disk_fsyncs", value:$f, unit:"fsync/s", connections:16,
    put_4kib_fsync_bound:($f / 3), put_4kib_of_fsync_bound:($p / ($f / 3))}'
line put_4kib "$G_PUT_4K" ops/s nginx_proxy_get_4kib "$P_GET_4K" "$(ratio "$G_PUT_4K" "$P_GET_4K")" 0.5

if [[ -n ${PROFILE_DIR:-} ]]; then
  mkdir -p "$PROFILE_DIR"
  perf stat -x, -e 'syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync' -p "$SERVER_PID" \
    -o "$DIR/perf.stat" &
  STAT_PID=$!
  P_PUT_4K=$(wrk_rps "$EP/" "$DIR/put4k.lua")
  kill -INT "$STAT_PID"
  wait "$STAT_PID" || true
  FSYNCS=$(awk -F, '/sys_enter_fsync/ {print $1}' "$DIR/perf.stat")
  FDATASYNCS=$(awk -F, '/sys_enter_fdatasync/ {print $1}' "$DIR/perf.stat")
  jq -nc --argjson p "$P_PUT_4K" --argjson d "$DURATION" --argjson f "$FSYNCS" \
    --argjson fd "$FDATASYNCS" \
    '{bench:"s3", metric:"put_4kib_syncs", put_ops_per_s:$p, fsync_per_put:($f / ($p * $d)),
      fdatasync_per_put:($fd / ($p * $d))}'
  # Where a PUT's time goes: the server's latency histograms after the measured runs.
  curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" >"$PROFILE_DIR/metrics.txt"
  perf record -e cpu-clock -g -p "$SERVER_PID" -o "$PROFILE_DIR/put4k.perf.data" \
    -- sleep "$DURATION" >/dev/null 2>&1 &
  REC_PID=$!
  wrk_rps "$EP/" "$DIR/put4k.lua" >/dev/null
  wait "$REC_PID" || true
fi
