#!/usr/bin/env bash
# Checks the Dockerfile's runtime stage without a container engine: a Debian 12 root file system
# (mmdebstrap, variant apt ~ debian:12-slim) with exactly the packages that stage installs
# (scripts/runtime-packages.sh of the built binary, plus fuse3, ca-certificates, util-linux,
# systemd) runs `granary --help` and `granary server`, whose S3 gateway answers. Needs root and
# the Debian mirror; not part of `make test`.
#   scripts/verify-runtime-rootfs.sh [BINARY]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BINARY=${1:-$HERE/../build/bin/granary}
ROOT=$(mktemp -d /tmp/granary-rootfs-XXXXXX)
cleanup() {
  pkill -f "granary server --data /var/lib/granary-check" 2>/dev/null || true
  umount "$ROOT/proc" "$ROOT/dev" 2>/dev/null || true
  rm -rf "$ROOT"
}
trap cleanup EXIT
packages=$("$HERE/runtime-packages.sh" "$BINARY" | paste -sd,)
echo "runtime packages: $packages"
mmdebstrap --quiet --variant=apt --include="$packages,fuse3,ca-certificates,util-linux,systemd" \
  bookworm "$ROOT" http://deb.debian.org/debian
install -m 0755 "$BINARY" "$ROOT/usr/local/bin/granary"
strip "$ROOT/usr/local/bin/granary"
if chroot "$ROOT" ldd /usr/local/bin/granary | grep 'not found'; then exit 1; fi
chroot "$ROOT" granary --help >/dev/null
mount -t proc proc "$ROOT/proc"
mount --bind /dev "$ROOT/dev"
chroot "$ROOT" granary server --data /var/lib/granary-check >"$ROOT/server.log" 2>&1 &
deadline=$((SECONDS + 60))
until grep -q '^ready' "$ROOT/server.log"; do
  ((SECONDS < deadline)) || { cat "$ROOT/server.log"; exit 1; }
  sleep 0.2
done
s3=$(grep -oE '^s3=http://[0-9.:]+' "$ROOT/server.log" | cut -d= -f2)
code=$(curl -s -o /dev/null -w '%{http_code}' "$s3/")
[[ $code == 403 ]] || { echo "anonymous ListBuckets gave $code, expected 403"; exit 1; }
echo "runtime rootfs OK: $(du -shx "$ROOT" 2>/dev/null | cut -f1), granary server ready, S3 answers 403 to anonymous"
