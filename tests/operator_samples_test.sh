#!/usr/bin/env bash
# The training pod of deploy/samples/40-training.yaml (and its single-node copy) run for real with
# Debian's python: it leaves a complete checkpoint under its final name and exits 0; a write that
# fails (the file size limit here, EIO/EDQUOT at close on Granary) or an unwritable directory
# exits non-zero, says so on stderr, and leaves no checkpoint under the final name.
#   operator_samples_test.sh SOURCE_DIR
set -euo pipefail
src=${1:?source dir}
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

for sample in deploy/samples/40-training.yaml deploy/samples/single-node/40-training.yaml; do
  # The container's command and args, as the kubelet would run them (python -c SCRIPT).
  "$py" - "$src/$sample" "$tmp/script.py" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d.get("kind") == "Pod"]
c = docs[0]["spec"]["containers"][0]
assert c["command"] == ["python", "-c"], c["command"]
open(sys.argv[2], "w").write(c["args"][0])
PY
  ok=$tmp/ok
  mkdir -p "$ok"
  CKPT_DIR=$ok "$py" "$tmp/script.py" >"$tmp/out" 2>&1 || fail "$sample: exit $? on a good dir: $(cat "$tmp/out")"
  [[ $(stat -c %s "$ok/step-0.pt") == 1048576 ]] || fail "$sample: checkpoint is not 1 MiB"
  [[ ! -e $ok/step-0.pt.tmp ]] || fail "$sample: temporary file left behind"

  # A write that fails half way (EFBIG past a 512 KiB file size limit): non-zero, no checkpoint.
  full=$tmp/full
  mkdir -p "$full"
  set +e
  (ulimit -f 512; CKPT_DIR=$full exec "$py" "$tmp/script.py") >"$tmp/out" 2>&1
  rc=$?
  set -e
  [[ $rc != 0 ]] || fail "$sample: exit 0 after a failed write: $(cat "$tmp/out")"
  grep -q "checkpoint .* failed" "$tmp/out" || fail "$sample: no error message: $(cat "$tmp/out")"
  [[ ! -e $full/step-0.pt ]] || fail "$sample: a partial checkpoint under the final name"

  set +e
  CKPT_DIR=$tmp/missing "$py" "$tmp/script.py" >"$tmp/out" 2>&1
  rc=$?
  set -e
  [[ $rc != 0 ]] || fail "$sample: exit 0 without a directory to write to"
  rm -rf "$ok" "$full"
done
echo "PASS: the training samples write checkpoints safely and fail loudly"
