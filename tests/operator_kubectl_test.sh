#!/usr/bin/env bash
# What a user runs, with the real kubectl and helm: `kubectl apply -f crds/`, the chart rendered
# into a namespace other than the samples' (storage-system) and applied, then `kubectl apply -f
# deploy/samples/` against the API test server, with `granary operator` and a metanode and a
# datanode on loopback. Then: the operator's objects show up through kubectl, the CSI pods'
# ServiceAccount and binding exist in the StorageCluster's namespace, no workload names a
# ServiceAccount, Secret, ConfigMap or PVC that does not exist, re-applying is a no-op, editing a
# pool with `kubectl apply` reaches its DaemonSet, and `kubectl delete` of the Bucket runs the
# finalizer (Secret gone, Bucket gone). kubectl and helm come from scripts/install-deps.sh; a
# missing one is a failure, not a skip.
#   operator_kubectl_test.sh GRANARY KUBEAPI SOURCE_DIR
set -euo pipefail
GRANARY=${1:?granary binary}
KUBEAPI=${2:?granary-kubeapi binary}
SRC=${3:?source dir}
KUBECTL=${KUBECTL:-/usr/local/lib/granary-tools/kubectl}
[[ -x $KUBECTL ]] || KUBECTL=$(command -v kubectl || true)
[[ -n $KUBECTL ]] || { echo "FAIL: no kubectl (run scripts/install-deps.sh)"; exit 1; }
HELM=$(command -v helm || true)
[[ -n $HELM ]] || { echo "FAIL: no helm (run scripts/install-deps.sh)"; exit 1; }

TMP=$(mktemp -d /tmp/granary-test-kubectl-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  for f in "$TMP"/*.log; do echo "--- $f"; tail -20 "$f"; done
  exit 1
}
# Waits (up to $3 s) until the file $1 has a line matching $2; prints the first match.
wait_line() {
  local deadline=$((SECONDS + $3))
  while ((SECONDS < deadline)); do
    if grep -m1 -oE "$2" "$1" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  fail "no line /$2/ in $1 after $3 s"
}
# Polls a command until it succeeds, up to $1 seconds.
eventually() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# HTTPS with a bearer token, as a cluster has it (kubectl sends no token over plain HTTP).
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=kubeapi \
  -addext subjectAltName=IP:127.0.0.1 -keyout "$TMP/tls.key" -out "$TMP/tls.crt" >/dev/null 2>&1
"$KUBEAPI" --host 127.0.0.1 --port 0 --token secret-token --kubeconfig "$TMP/kubeconfig" \
  --tls-cert "$TMP/tls.crt" --tls-key "$TMP/tls.key" --ca "$TMP/tls.crt" \
  >"$TMP/kubeapi.log" 2>&1 &
PIDS+=($!)
wait_line "$TMP/kubeapi.log" 'kubeapi_listening url=\S+' 30 >/dev/null
"$GRANARY" metanode --data "$TMP/meta" --listen 127.0.0.1:0 --admin 127.0.0.1:0 \
  >"$TMP/metanode.log" 2>&1 &
PIDS+=($!)
META=$(wait_line "$TMP/metanode.log" 'listening meta=\S+' 30 | cut -d= -f2)
"$GRANARY" datanode --data "$TMP/dn" --listen 127.0.0.1:0 --data-listen 127.0.0.1:0 \
  --meta "$META" --labels host=node-a,zone=z1 >"$TMP/datanode.log" 2>&1 &
PIDS+=($!)
wait_line "$TMP/datanode.log" 'listening control=' 30 >/dev/null

# The test server has no OpenAPI documents, so kubectl's client-side schema check is off; the
# CRDs' own schemas are checked by operator_e2e_test and the schema validator.
k() { timeout 60 "$KUBECTL" --kubeconfig "$TMP/kubeconfig" "$@"; }
ka() { k apply --validate=false "$@"; }

out=$(ka -f "$SRC/crds/") || fail "kubectl apply -f crds/: $out"
[[ $(grep -c ' created$' <<<"$out") == 4 ]] || fail "4 CRDs created: $out"
# The chart (without its CRDs, applied above) in another namespace than the samples' cluster.
"$HELM" template granary "$SRC/charts/granary" --namespace storage-system >"$TMP/chart.yaml" ||
  fail "helm template"
k create namespace storage-system >/dev/null || fail "create namespace storage-system"
out=$(ka -f "$TMP/chart.yaml") || fail "kubectl apply the chart: $out"
for obj in serviceaccount/granary-operator clusterrole.rbac.authorization.k8s.io/granary-operator \
  clusterrole.rbac.authorization.k8s.io/granary-csi deployment.apps/granary-operator; do
  grep -qx "$obj created" <<<"$out" || fail "$obj not created: $out"
done
"$GRANARY" operator --kubeconfig "$TMP/kubeconfig" --meta "$META" --leader-elect false \
  --admin 127.0.0.1:0 >"$TMP/operator.log" 2>&1 &
PIDS+=($!)
wait_line "$TMP/operator.log" 'operator identity=' 30 >/dev/null

out=$(ka -f "$SRC/deploy/samples/") || fail "kubectl apply -f deploy/samples/: $out"
for obj in namespace/granary storagecluster.granary.io/granary storagepool.granary.io/fast \
  storagepool.granary.io/capacity bucket.granary.io/datasets persistentvolumeclaim/checkpoints \
  pod/train pod/notebook; do
  grep -qx "$obj created" <<<"$out" || fail "$obj not created: $out"
done

# The operator's work, as kubectl shows it.
eventually 30 k get daemonset -n granary granary-datanode-fast || fail "no datanode DaemonSet"
eventually 30 k get daemonset -n granary granary-datanode-capacity || fail "no EC DaemonSet"
eventually 30 k get storageclass granary-fast || fail "no StorageClass granary-fast"
eventually 30 k get statefulset -n granary granary-metanode || fail "no metanode StatefulSet"
eventually 30 k get secret -n ml datasets-s3 || fail "no Secret datasets-s3 for the Bucket"
keys=$(k get secret -n ml datasets-s3 -o go-template='{{range $k, $v := .data}}{{$k}} {{end}}')
[[ $keys == "AWS_ACCESS_KEY_ID AWS_ENDPOINT_URL AWS_SECRET_ACCESS_KEY BUCKET_NAME " ]] ||
  fail "Secret keys: $keys"
fin=$(k get bucket -n ml datasets -o jsonpath='{.metadata.finalizers}')
[[ $fin == *granary.io/bucket* ]] || fail "Bucket finalizer: $fin"

# The CSI pods' identity, made by the operator where the StorageCluster is (not where the chart is).
eventually 30 k get serviceaccount -n granary granary-csi || fail "no ServiceAccount granary/granary-csi"
role=$(k get clusterrolebinding granary-csi:granary:granary -o jsonpath='{.roleRef.name}') ||
  fail "no ClusterRoleBinding granary-csi:granary:granary"
[[ $role == granary-csi ]] || fail "the binding names ClusterRole $role"
sa=$(k get daemonset -n granary granary-csi-node -o jsonpath='{.spec.template.spec.serviceAccountName}')
[[ $sa == granary-csi ]] || fail "CSI node pods run as '$sa'"
# Nothing any workload needs is missing: every ServiceAccount, Secret, ConfigMap and PVC named by
# a pod template exists in its namespace.
k get deployments,daemonsets,statefulsets,pods,serviceaccounts,secrets,configmaps,persistentvolumeclaims \
  -A -o json >"$TMP/all.json" || fail "kubectl get -A"
/usr/bin/python3 "$SRC/tests/workload_refs.py" "$TMP/all.json" >"$TMP/refs.txt" ||
  fail "dangling references: $(cat "$TMP/refs.txt")"
grep -q '^[5-9] workloads\|^[1-9][0-9] workloads' "$TMP/refs.txt" ||
  fail "the check saw too few workloads: $(cat "$TMP/refs.txt")"

# Re-applying what is already there changes nothing.
out=$(ka -f "$SRC/deploy/samples/") || fail "second apply: $out"
[[ $(grep -vc ' unchanged$' <<<"$out" || true) == 0 ]] || fail "second apply changed: $out"

# An edit through kubectl reaches the pool's DaemonSet.
sed 's#hostPath: /var/lib/granary/fast#hostPath: /srv/granary/fast#' \
  "$SRC/deploy/samples/20-storagepool-replicated.yaml" >"$TMP/pool.yaml"
grep -q /srv/granary/fast "$TMP/pool.yaml" || fail "sample pool has no hostPath to edit"
out=$(ka -f "$TMP/pool.yaml") || fail "apply edited pool: $out"
[[ $out == "storagepool.granary.io/fast configured" ]] || fail "edit: $out"
[[ $(k get storagepool fast -o jsonpath='{.metadata.generation}') == 2 ]] || fail "generation"
ds_path() {
  k get daemonset -n granary granary-datanode-fast -o json | grep -q '"/srv/granary/fast"'
}
eventually 30 ds_path || fail "the DaemonSet does not use the edited hostPath"

# Deleting the Bucket runs the operator's finalizer: the Secret goes, then the Bucket.
k delete -f "$SRC/deploy/samples/30-bucket.yaml" --wait=false >/dev/null || fail "delete bucket"
gone() { ! k get "$@" >/dev/null 2>&1; }
eventually 30 gone secret -n ml datasets-s3 || fail "Secret datasets-s3 outlived its Bucket"
eventually 30 gone bucket -n ml datasets || fail "Bucket not released by its finalizer"
echo "PASS: kubectl $("$KUBECTL" version --client -o json | grep -m1 -oE '"gitVersion": *"[^"]+"')"
