#!/usr/bin/env bash
# Real S3 clients from Debian packages against `granary server` and a standalone `granary s3`:
# aws-cli (s3 + s3api, incl. a multipart-sized file and presign), s3cmd, rclone (sync a tree up
# and back, byte-exact), virtual-host style with --domain, /metrics per operation, HTTPS.
set -euo pipefail
GRANARY=${1:?usage: clients_test.sh GRANARY_BINARY}
HERE=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d /tmp/granary-s3-clients-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$TMP"/*.log; do echo "== $f"; tail -20 "$f"; done >&2; exit 1; }
wait_line() {  # file regex seconds
  local deadline=$((SECONDS + $3))
  until grep -qE "$2" "$1"; do
    ((SECONDS < deadline)) || fail "no '$2' in $1"
    sleep 0.1  # polling a log for a line, bounded by the deadline
  done
}

unset AWS_PROFILE AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE
export AWS_ACCESS_KEY_ID=CLIENTSTESTKEY AWS_SECRET_ACCESS_KEY=clients-test-secret-0123456789
export AWS_DEFAULT_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true AWS_PAGER=""
"$GRANARY" server --data "$TMP/data" --meta 127.0.0.1:0 --s3 127.0.0.1:0 \
  --access-key "$AWS_ACCESS_KEY_ID" --secret-key "$AWS_SECRET_ACCESS_KEY" >"$TMP/server.log" 2>&1 &
PIDS+=($!)
wait_line "$TMP/server.log" '^ready$' 60
EP=$(grep -oE 's3=http://[0-9.:]+' "$TMP/server.log" | cut -d= -f2)
META=$(grep -oE '^meta=[0-9.:]+' "$TMP/server.log" | cut -d= -f2)
AWS="/usr/bin/aws --endpoint-url $EP"

# ---- aws-cli
$AWS s3 mb s3://cli-bucket
head -c $((20 << 20)) /dev/urandom >"$TMP/big.bin"   # above the 8 MiB multipart threshold
echo "small object" >"$TMP/small.txt"
$AWS s3 cp --only-show-errors "$TMP/big.bin" s3://cli-bucket/dir/big.bin
$AWS s3 cp --only-show-errors "$TMP/small.txt" s3://cli-bucket/small.txt
$AWS s3 ls s3://cli-bucket --recursive >"$TMP/ls.txt"
grep -q "20971520 dir/big.bin" "$TMP/ls.txt" || fail "aws s3 ls: $(cat "$TMP/ls.txt")"
$AWS s3 cp --only-show-errors s3://cli-bucket/dir/big.bin "$TMP/big.back"
cmp "$TMP/big.bin" "$TMP/big.back" || fail "multipart round trip differs"
etag=$($AWS s3api head-object --bucket cli-bucket --key dir/big.bin --query ETag --output text)
[[ $etag == *-3\" ]] || fail "multipart ETag $etag"
url=$($AWS s3 presign s3://cli-bucket/small.txt --expires-in 120)
curl -sf "$url" | cmp - "$TMP/small.txt" || fail "presigned GET"
$AWS s3api put-object --bucket cli-bucket --key meta.txt --body "$TMP/small.txt" \
  --content-type text/plain --metadata k=v >/dev/null
[[ $($AWS s3api head-object --bucket cli-bucket --key meta.txt --query Metadata.k --output text) == v ]] \
  || fail "metadata"
$AWS s3 rm --only-show-errors s3://cli-bucket/dir/big.bin
$AWS s3 rm --only-show-errors s3://cli-bucket --recursive
[[ -z $($AWS s3 ls s3://cli-bucket) ]] || fail "bucket not empty after rm"
$AWS s3 rb s3://cli-bucket
echo "aws-cli ok"

# ---- s3cmd
hostport=${EP#http://}
cat >"$TMP/s3cfg" <<CFG
[default]
access_key = $AWS_ACCESS_KEY_ID
secret_key = $AWS_SECRET_ACCESS_KEY
host_base = $hostport
host_bucket = $hostport
use_https = False
signature_v2 = False
CFG
S3CMD="s3cmd -c $TMP/s3cfg --no-progress"
$S3CMD mb s3://cmd-bucket >/dev/null
$S3CMD put "$TMP/small.txt" s3://cmd-bucket/a/b/small.txt >/dev/null
$S3CMD ls -r s3://cmd-bucket | grep -q "s3://cmd-bucket/a/b/small.txt" || fail "s3cmd ls"
$S3CMD get s3://cmd-bucket/a/b/small.txt "$TMP/s3cmd.back" >/dev/null
cmp "$TMP/small.txt" "$TMP/s3cmd.back" || fail "s3cmd get"
$S3CMD put --multipart-chunk-size-mb=5 "$TMP/big.bin" s3://cmd-bucket/big.bin >/dev/null
$S3CMD get s3://cmd-bucket/big.bin "$TMP/s3cmd.big" >/dev/null
cmp "$TMP/big.bin" "$TMP/s3cmd.big" || fail "s3cmd multipart"
$S3CMD del -r --force s3://cmd-bucket >/dev/null
$S3CMD rb s3://cmd-bucket >/dev/null
echo "s3cmd ok"

# ---- s3cmd with signature_v2 = True (issue 22): every request SigV2-signed, sub-resources
# (acl, uploads, uploadId, delete, cors) included; --acl-public makes an object anonymous-readable
sed 's/^signature_v2 = False/signature_v2 = True/' "$TMP/s3cfg" >"$TMP/s3cfg-v2"
S3V2="s3cmd -c $TMP/s3cfg-v2 --no-progress"
$S3V2 mb s3://cmd-v2 >/dev/null
$S3V2 put --acl-public "$TMP/small.txt" s3://cmd-v2/pub/small.txt >/dev/null
curl -sf "$EP/cmd-v2/pub/small.txt" | cmp - "$TMP/small.txt" || fail "anonymous GET after s3cmd --acl-public"
$S3V2 setacl --acl-private s3://cmd-v2/pub/small.txt >/dev/null
[[ $(curl -s -o /dev/null -w '%{http_code}' "$EP/cmd-v2/pub/small.txt") == 403 ]] \
  || fail "private object still public"
$S3V2 put --multipart-chunk-size-mb=5 "$TMP/big.bin" s3://cmd-v2/big.bin >/dev/null
$S3V2 get s3://cmd-v2/big.bin "$TMP/s3cmd-v2.big" >/dev/null
cmp "$TMP/big.bin" "$TMP/s3cmd-v2.big" || fail "s3cmd v2 multipart"
$S3V2 info s3://cmd-v2/big.bin >"$TMP/s3cmd-info.txt" || fail "s3cmd v2 info"
grep -q "ACL: *$AWS_ACCESS_KEY_ID: FULL_CONTROL" "$TMP/s3cmd-info.txt" || fail "$(cat "$TMP/s3cmd-info.txt")"
curl -sf "$($S3V2 signurl s3://cmd-v2/big.bin +120)" | cmp - "$TMP/big.bin" || fail "s3cmd v2 signurl"
$S3V2 del -r --force s3://cmd-v2 >/dev/null
$S3V2 rb s3://cmd-v2 >/dev/null
echo "s3cmd signature_v2 ok"

# ---- rclone: sync a tree up and back
mkdir -p "$TMP/tree/x/y" "$TMP/tree/z"
for i in 1 2 3; do head -c $((i * 100000)) /dev/urandom >"$TMP/tree/x/y/f$i"; done
echo hello >"$TMP/tree/top.txt"; : >"$TMP/tree/z/empty"
head -c $((12 << 20)) /dev/urandom >"$TMP/tree/x/large"
cat >"$TMP/rclone.conf" <<CFG
[g]
type = s3
provider = Other
access_key_id = $AWS_ACCESS_KEY_ID
secret_access_key = $AWS_SECRET_ACCESS_KEY
endpoint = $EP
region = us-east-1
force_path_style = true
CFG
RC="env -u AWS_CA_BUNDLE rclone --config $TMP/rclone.conf --s3-upload-cutoff 5M --s3-chunk-size 5M"
$RC mkdir g:rc-bucket
$RC sync "$TMP/tree" g:rc-bucket/tree
$RC sync g:rc-bucket/tree "$TMP/tree.back"
diff -r "$TMP/tree" "$TMP/tree.back" || fail "rclone round trip differs"
$RC check "$TMP/tree" g:rc-bucket/tree 2>"$TMP/rclone-check.log" || fail "rclone check"
# The same with v2_auth (SigV2, multipart included) and a public-read upload.
sed -e 's/^\[g\]/[g2]/' "$TMP/rclone.conf" >>"$TMP/rclone.conf.v2"
echo "v2_auth = true" >>"$TMP/rclone.conf.v2"
cat "$TMP/rclone.conf.v2" >>"$TMP/rclone.conf"
$RC sync "$TMP/tree" g2:rc-bucket/tree-v2
$RC sync g2:rc-bucket/tree-v2 "$TMP/tree-v2.back"
diff -r "$TMP/tree" "$TMP/tree-v2.back" || fail "rclone v2_auth round trip differs"
$RC --s3-acl public-read copyto "$TMP/small.txt" g:rc-bucket/public.txt
curl -sf "$EP/rc-bucket/public.txt" | cmp - "$TMP/small.txt" || fail "rclone --s3-acl public-read"
echo "rclone ok"

# ---- aws-cli on what issue 22 added: ACLs and anonymous access, tagging, CORS and its
# preflight, Object Ownership, GetObjectAttributes; the server's volume `default` as a bucket.
$AWS s3api create-bucket --bucket cli-acl --acl public-read >/dev/null
$AWS s3api put-object --bucket cli-acl --key pub.txt --body "$TMP/small.txt" --acl public-read \
  --tagging "team=ml&stage=dev" >/dev/null
curl -sf "$EP/cli-acl/pub.txt" | cmp - "$TMP/small.txt" || fail "anonymous GET of public-read"
curl -sf "$EP/cli-acl" | grep -q "<Key>pub.txt</Key>" || fail "anonymous list of public-read bucket"
[[ $(curl -s -o /dev/null -w '%{http_code}' "$EP/cli-acl/missing") == 404 ]] || fail "public 404"
[[ $($AWS s3api get-object-tagging --bucket cli-acl --key pub.txt --query 'length(TagSet)' \
  --output text) == 2 ]] || fail "tagging"
[[ $($AWS s3api get-object --bucket cli-acl --key pub.txt --query TagCount --output text \
  "$TMP/pub.back") == 2 ]] || fail "x-amz-tagging-count"
$AWS s3api put-object-acl --bucket cli-acl --key pub.txt --acl private
[[ $(curl -s -o /dev/null -w '%{http_code}' "$EP/cli-acl/pub.txt") == 403 ]] || fail "private 403"
$AWS s3api put-bucket-cors --bucket cli-acl --cors-configuration \
  '{"CORSRules":[{"AllowedOrigins":["https://nb.example"],"AllowedMethods":["GET","PUT"],"MaxAgeSeconds":600}]}'
curl -s -X OPTIONS -H 'Origin: https://nb.example' -H 'Access-Control-Request-Method: PUT' \
  -D "$TMP/preflight.txt" -o /dev/null "$EP/cli-acl/pub.txt"
grep -qi '^access-control-allow-origin: https://nb.example' "$TMP/preflight.txt" \
  || fail "CORS preflight: $(cat "$TMP/preflight.txt")"
[[ $(curl -s -o /dev/null -w '%{http_code}' -X OPTIONS "$EP/cli-acl/pub.txt") == 400 ]] \
  || fail "preflight without Origin"
$AWS s3api put-bucket-ownership-controls --bucket cli-acl \
  --ownership-controls 'Rules=[{ObjectOwnership=BucketOwnerEnforced}]'
if $AWS s3api put-object-acl --bucket cli-acl --key pub.txt --acl public-read 2>"$TMP/acl-err.txt"; then
  fail "ACL accepted by a BucketOwnerEnforced bucket"
fi
grep -q AccessControlListNotSupported "$TMP/acl-err.txt" || fail "$(cat "$TMP/acl-err.txt")"
size=$(stat -c %s "$TMP/small.txt")
[[ $($AWS s3api get-object-attributes --bucket cli-acl --key pub.txt \
  --object-attributes ETag ObjectSize --query ObjectSize --output text) == "$size" ]] \
  || fail "get-object-attributes"
$AWS s3 rm --only-show-errors s3://cli-acl --recursive
$AWS s3 rb s3://cli-acl >/dev/null
"$GRANARY" put "$TMP/small.txt" default/from-cli.txt --meta "$META"
$AWS s3 cp --only-show-errors s3://default/from-cli.txt - | cmp - "$TMP/small.txt" \
  || fail "a file of volume default is an object of bucket default"
$AWS s3 rm --only-show-errors s3://default/from-cli.txt
echo "aws-cli issue 22 ok"

# ---- a current boto3, when the machine has one (Debian's is 1.26): SigV2 on every kind of
# operation, the default presigner, ListBuckets pages.
PY=$(command -v python3)
if "$PY" -c 'import boto3, sys; sys.exit(tuple(map(int, boto3.__version__.split(".")[:2])) < (1, 35))' \
    2>/dev/null; then
  timeout 120 "$PY" "$HERE/current_boto3.py" "$EP" || fail "current boto3"
else
  echo "current boto3: skipped (no boto3 >= 1.35 on PATH)"
fi

# ---- standalone gateway: virtual-host style under --domain, and /metrics
"$GRANARY" s3 --meta "$META" --listen 127.0.0.1:0 --admin 127.0.0.1:0 --domain s3.test \
  >"$TMP/gw.log" 2>&1 &
PIDS+=($!)
wait_line "$TMP/gw.log" '^ready$' 30
GW=$(grep -oE '^s3=http://[0-9.:]+' "$TMP/gw.log" | cut -d= -f2)
ADMIN=$(grep -oE '^admin=[0-9.:]+' "$TMP/gw.log" | cut -d= -f2)
PYTHONPATH="$HERE" /usr/bin/python3 - "$GW" <<'PY'
import sys, s3raw, os
gw = sys.argv[1]
port = gw.rsplit(":", 1)[1]
a, s = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
def req(method, path, host, body=b""):
    return s3raw.request(gw, method, path, body=body, access=a, secret=s, host=host)
st, _, b = req("PUT", "/", f"vh-bucket.s3.test:{port}")
assert st == 200, b
st, _, b = req("PUT", "/dir/obj", f"vh-bucket.s3.test:{port}", b"virtual host")
assert st == 200, b
st, _, b = req("GET", "/vh-bucket/dir/obj", f"127.0.0.1:{port}")  # path style still works
assert st == 200 and b == b"virtual host", b
st, _, b = req("GET", "/dir/obj", f"vh-bucket.s3.test:{port}")
assert st == 200 and b == b"virtual host", b
st, _, b = req("DELETE", "/dir/obj", f"vh-bucket.s3.test:{port}")
assert st == 204, b
st, _, b = req("DELETE", "/", f"vh-bucket.s3.test:{port}")
assert st == 204, b
PY
curl -sf "http://$ADMIN/metrics" >"$TMP/metrics.txt"
grep -q 'granary_s3_requests_total{op="PutObject"} 1' "$TMP/metrics.txt" || fail "metrics: $(grep s3 "$TMP/metrics.txt")"
grep -q 'granary_s3_request_seconds_bucket{op="GetObject"' "$TMP/metrics.txt" || fail "latency histogram"
grep -q 'granary_s3_received_bytes_total{op="PutObject"} 12' "$TMP/metrics.txt" || fail "bytes metric"
echo "virtual host + metrics ok"

# ---- TLS: the same cluster behind a standalone gateway over HTTPS (self-signed certificate).
# Every new connection sends its request right behind the handshake, and multipart uses many
# connections at once: this once hung (docs/s3.md "HTTPS").
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$TMP/tls.key" -out "$TMP/tls.crt" >/dev/null 2>&1
"$GRANARY" s3 --meta "$META" --listen 127.0.0.1:0 --tls-cert "$TMP/tls.crt" \
  --tls-key "$TMP/tls.key" >"$TMP/tls.log" 2>&1 &
PIDS+=($!)
wait_line "$TMP/tls.log" '^ready$' 30
TLS=$(grep -oE '^s3=https://[0-9.:]+' "$TMP/tls.log" | cut -d= -f2)
# A hang is a failure, not a CI timeout: every client call is bounded.
AWS_TLS="timeout 60 /usr/bin/aws --endpoint-url $TLS --ca-bundle $TMP/tls.crt"
$AWS_TLS s3 mb s3://tls-bucket >/dev/null || fail "TLS mb"
$AWS_TLS s3 cp --only-show-errors "$TMP/big.bin" s3://tls-bucket/big.bin || fail "TLS multipart upload"
etag=$($AWS_TLS s3api head-object --bucket tls-bucket --key big.bin --query ETag --output text)
[[ $etag == *-3\" ]] || fail "TLS multipart ETag $etag"
$AWS_TLS s3 cp --only-show-errors s3://tls-bucket/big.bin "$TMP/tls.back" || fail "TLS download"
cmp "$TMP/big.bin" "$TMP/tls.back" || fail "TLS multipart round trip differs"
# Answered before 100-continue (no such bucket): the error arrives at once, and the gateway
# stays usable.
if $AWS_TLS s3 cp --only-show-errors "$TMP/small.txt" s3://no-such-tls-bucket/x 2>"$TMP/tls-err.txt"; then
  fail "TLS PUT into a missing bucket succeeded"
fi
grep -q NoSuchBucket "$TMP/tls-err.txt" || fail "TLS missing bucket: $(cat "$TMP/tls-err.txt")"
timeout 120 /usr/bin/python3 - "$TLS" "$TMP/tls.crt" "$TMP/big.bin" <<'PY' || fail "boto3 over HTTPS"
import sys, hashlib, boto3
from botocore.config import Config
ep, ca, path = sys.argv[1:]
data = open(path, "rb").read()
s3 = boto3.client("s3", endpoint_url=ep, verify=ca,
                  config=Config(retries={"max_attempts": 1}, connect_timeout=10, read_timeout=30))
# Large GETs, fresh and reused connections, whole and ranged.
for _ in range(3):
    got = s3.get_object(Bucket="tls-bucket", Key="big.bin")["Body"].read()
    assert hashlib.sha256(got).digest() == hashlib.sha256(data).digest(), len(got)
got = s3.get_object(Bucket="tls-bucket", Key="big.bin", Range="bytes=1000-3146727")["Body"].read()
assert got == data[1000:3146728], len(got)
s3.put_object(Bucket="tls-bucket", Key="three", Body=data[: 3 << 20])
assert s3.get_object(Bucket="tls-bucket", Key="three")["Body"].read() == data[: 3 << 20]
s3.delete_object(Bucket="tls-bucket", Key="three")
# Over HTTPS boto3 sends ChecksumAlgorithm= as an aws-chunked trailer
# (STREAMING-UNSIGNED-PAYLOAD-TRAILER): verified, stored, returned with checksum mode.
import base64, zlib
modes = []
s3.meta.events.register("before-send.s3.PutObject",
                        lambda request, **_: modes.append(request.headers.get("x-amz-content-sha256")))
small = data[:300_000]
want = {"CRC32": zlib.crc32(small).to_bytes(4, "big"), "SHA256": hashlib.sha256(small).digest()}
for alg, digest in want.items():
    r = s3.put_object(Bucket="tls-bucket", Key="cksum", Body=small, ChecksumAlgorithm=alg)
    assert r[f"Checksum{alg}"] == base64.b64encode(digest).decode(), r
    h = s3.head_object(Bucket="tls-bucket", Key="cksum", ChecksumMode="ENABLED")
    assert h[f"Checksum{alg}"] == base64.b64encode(digest).decode(), h
assert modes and all(m == b"STREAMING-UNSIGNED-PAYLOAD-TRAILER" or
                     m == "STREAMING-UNSIGNED-PAYLOAD-TRAILER" for m in modes), modes
s3.delete_object(Bucket="tls-bucket", Key="cksum")
PY
# aws-cli's --checksum-algorithm over HTTPS, read back with --checksum-mode.
$AWS_TLS s3api put-object --bucket tls-bucket --key cksum --body "$TMP/small.txt" \
  --checksum-algorithm SHA256 >/dev/null || fail "aws-cli put-object --checksum-algorithm"
want=$(openssl dgst -sha256 -binary "$TMP/small.txt" | base64)
got=$($AWS_TLS s3api head-object --bucket tls-bucket --key cksum --checksum-mode ENABLED \
  --query ChecksumSHA256 --output text)
[ "$got" = "$want" ] || fail "aws-cli checksum: got $got, want $want"
$AWS_TLS s3 rm --only-show-errors s3://tls-bucket/cksum
$AWS_TLS s3 rm --only-show-errors s3://tls-bucket/big.bin
$AWS_TLS s3 rb s3://tls-bucket >/dev/null
echo "tls ok"
