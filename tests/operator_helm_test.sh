#!/usr/bin/env bash
# The chart: `helm lint --strict` and `helm template` render cleanly, with and without the
# optional StorageCluster/StoragePool; the chart's CRDs are crds/ verbatim; RBAC stays least
# privilege. helm comes from scripts/install-deps.sh; a missing helm is a failure, not a skip.
set -euo pipefail
src=${1:?source dir}
chart=$src/charts/granary
helm=$(command -v helm || true)
[[ -n $helm ]] || { echo "FAIL: helm not on PATH (run scripts/install-deps.sh)"; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$helm" lint --strict "$chart"
"$helm" lint --strict "$chart" --set defaultCluster.enabled=true --set defaultPool.enabled=true

for f in storagecluster.yaml storagepool.yaml bucket.yaml; do
  cmp -s "$src/crds/$f" "$chart/crds/$f" || fail "charts/granary/crds/$f differs from crds/$f"
done

"$helm" template rel "$chart" --namespace granary-system --include-crds >"$out/plain.yaml"
"$helm" template rel "$chart" --namespace granary-system --include-crds \
  --set defaultCluster.enabled=true --set defaultPool.enabled=true \
  --set operator.watchNamespace=ml --set image.tag=v9 >"$out/full.yaml"

count() { grep -c "^kind: $1\$" "$2" || true; }
[[ $(count CustomResourceDefinition "$out/plain.yaml") == 3 ]] || fail "expected 3 CRDs"
[[ $(count StorageCluster "$out/plain.yaml") == 0 ]] || fail "no StorageCluster by default"
[[ $(count StorageCluster "$out/full.yaml") == 1 ]] || fail "defaultCluster.enabled renders one"
[[ $(count StoragePool "$out/full.yaml") == 1 ]] || fail "defaultPool.enabled renders one"
for k in ServiceAccount ClusterRole ClusterRoleBinding Role RoleBinding Deployment; do
  [[ $(count $k "$out/plain.yaml") -ge 1 ]] || fail "no $k rendered"
done
grep -q -- "--leader-elect=true" "$out/plain.yaml" || fail "leader election is on by default"
grep -q -- "--namespace=ml" "$out/full.yaml" || fail "watchNamespace reaches the operator"
grep -q "image: ghcr.io/granary/granary:v9" "$out/full.yaml" || fail "image.tag is used"
grep -q "namespace: granary-system" "$out/full.yaml" || fail "release namespace is used"
# Least privilege: no wildcard, no RBAC or pod writes for the operator.
grep -Eq 'verbs: \[.*\*|resources: \[.*\*' "$out/plain.yaml" && fail "wildcard in RBAC"
grep -Eq 'resources: \[.*(roles|rolebindings|clusterroles)' "$out/plain.yaml" && fail "RBAC on RBAC"
echo "PASS: helm lint and template render cleanly ($("$helm" version --short))"
