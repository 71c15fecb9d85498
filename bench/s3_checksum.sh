#!/usr/bin/env bash
# Cost of S3 checksums (JSON lines), two ways in one run:
#  1. each digest over one buffer as the gateway runs it, beside memcpy (the memory limit) and
#     MD5 (paid by every PUT for its ETag): build/bench/s3_checksum_bench;
#  2. end to end: 64 MiB PUTs (UNSIGNED-PAYLOAD, so the client hashes nothing) to `granary
#     server` on loopback without a checksum and with x-amz-sdk-checksum-algorithm (the gateway
#     computes and stores it), interleaved, best of ROUNDS; ratio = with / without.
#   bench/s3_checksum.sh [BUILD_DIR]      (ROUNDS=3)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
ROUNDS=${ROUNDS:-3}
for bin in "$BUILD/bin/granary" "$BUILD/bench/s3_checksum_bench"; do
  [ -x "$bin" ] || { echo "missing $bin (cmake --build $BUILD)" >&2; exit 1; }
done
"$BUILD/bench/s3_checksum_bench" 256
DIR=$(mktemp -d /tmp/granary-bench-cksum-XXXXXX)
SERVER=
cleanup() {
  if [ -n "$SERVER" ]; then kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; fi
  rm -rf "$DIR"
}
trap cleanup EXIT
"$BUILD/bin/granary" server --data "$DIR/data" --meta 127.0.0.1:0 --s3 127.0.0.1:0 \
  --access-key BENCHKEY --secret-key bench-secret-0123456789 >"$DIR/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 600); do grep -q '^ready$' "$DIR/server.log" && break; sleep 0.1; done
grep -q '^ready$' "$DIR/server.log" || { cat "$DIR/server.log" >&2; exit 1; }
ENDPOINT=$(sed -n 's/.*s3=\([^ ]*\).*/\1/p' "$DIR/server.log" | head -1)
PYTHONPATH=tests/s3 ENDPOINT=$ENDPOINT ROUNDS=$ROUNDS /usr/bin/python3 - <<'PY'
import json, os, time
import s3raw
ep, rounds = os.environ["ENDPOINT"], int(os.environ["ROUNDS"])
auth = dict(access="BENCHKEY", secret="bench-secret-0123456789")
s3raw.request(ep, "PUT", "/bench", **auth)
data = os.urandom(64 << 20)
algs = [None, "CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"]
best = {a: 0.0 for a in algs}
for _ in range(rounds):
    for a in algs:
        h = {"x-amz-sdk-checksum-algorithm": a} if a else {}
        t0 = time.monotonic()
        status, _, resp = s3raw.request(ep, "PUT", "/bench/obj", body=data, headers=h,
                                        payload_hash="UNSIGNED-PAYLOAD", **auth)
        assert status == 200, resp
        best[a] = max(best[a], len(data) / (time.monotonic() - t0) / 1e6)
for a in algs:
    line = {"figure": "put_64mib", "algorithm": a or "none", "mbps": round(best[a], 1)}
    if a:
        line["vs_none"] = round(best[a] / best[None], 3)
    print(json.dumps(line))
PY
