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

"$helm" template rel "$chart" --namespace granary-system --set dashboard.ingress.enabled=true \
  --set dashboard.ingress.cluster=demo --set dashboard.ingress.namespace=storage \
  --set dashboard.ingress.host=granary.example.com >"$out/ingress.yaml"

count() { grep -c "^kind: $1\$" "$2" || true; }
[[ $(count Ingress "$out/plain.yaml") == 0 ]] || fail "no dashboard Ingress by default"
[[ $(count Ingress "$out/ingress.yaml") == 1 ]] || fail "dashboard.ingress.enabled renders one"
grep -q "name: demo-dashboard" "$out/ingress.yaml" || fail "the Ingress reaches <cluster>-dashboard"
grep -q "namespace: storage" "$out/ingress.yaml" || fail "the Ingress is in the cluster's namespace"
[[ $(count CustomResourceDefinition "$out/plain.yaml") == 4 ]] || fail "expected 4 CRDs"
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
# Least privilege: no wildcard; pods only updated (the locality gate, docs/locality.md), never
# created or deleted; the only RBAC the operator may write is a
# ClusterRoleBinding, and the only role it may bind is the chart's CSI ClusterRole.
grep -Eq 'verbs: \[.*\*|resources: \[.*\*' "$out/plain.yaml" && fail "wildcard in RBAC"
/usr/bin/python3 - "$out/plain.yaml" <<'PY' || fail "operator RBAC is wider than it should be"
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
role = next(d for d in docs if d["kind"] == "ClusterRole" and d["metadata"]["name"] == "granary-operator")
ok = True
for rule in role["rules"]:
    groups, resources, verbs = rule["apiGroups"], rule["resources"], set(rule["verbs"])
    if verbs & {"escalate", "impersonate"}:
        print("escalate/impersonate:", rule); ok = False
    if "pods" in resources and verbs - {"get", "list", "watch", "update", "patch"}:
        print("creates or deletes pods:", rule); ok = False
    if "rbac.authorization.k8s.io" in groups:
        for r in resources:
            if r == "clusterrolebindings":
                continue
            if r == "clusterroles" and verbs == {"bind"} and rule.get("resourceNames") == ["granary-csi"]:
                continue
            print("RBAC beyond binding the CSI ClusterRole:", rule); ok = False
names = {(d["kind"], d["metadata"]["name"]) for d in docs}
if ("ClusterRole", "granary-csi") not in names:
    print("no ClusterRole granary-csi for the operator to bind"); ok = False
if ("ServiceAccount", "granary-csi") in names or ("ClusterRoleBinding", "granary-csi") in names:
    print("the chart binds CSI in its own namespace only: the operator does it per cluster"); ok = False
sys.exit(0 if ok else 1)
PY
grep -q -- "--csi-cluster-role=granary-csi" "$out/plain.yaml" || fail "operator not told the CSI role"

# Rendered into any namespace, no workload names a ServiceAccount, Secret or ConfigMap the
# release does not create there (the kubectl test checks the same with the samples applied).
for ns in granary-system granary storage; do
  "$helm" template rel "$chart" --namespace "$ns" >"$out/$ns.yaml"
  /usr/bin/python3 "$src/tests/workload_refs.py" "$out/$ns.yaml" >"$out/refs" ||
    fail "namespace $ns: $(cat "$out/refs")"
done

# The install the docs show, the samples and the chart's NOTES agree on one namespace.
sample_ns=$(sed -nE 's/^  namespace: *(\S+)$/\1/p' "$src/deploy/samples/10-storagecluster.yaml")
[[ -n $sample_ns ]] || fail "no namespace in deploy/samples/10-storagecluster.yaml"
for doc in docs/operator.md README.md; do
  installs=$(grep -oE 'helm install granary charts/granary -n \S+' "$src/$doc" | sort -u)
  [[ $installs == "helm install granary charts/granary -n $sample_ns" ]] ||
    fail "$doc installs the chart with '$installs', the samples use namespace $sample_ns"
done
grep -q "in namespace $sample_ns" "$chart/templates/NOTES.txt" ||
  fail "NOTES.txt does not name the samples' namespace $sample_ns"
grep -q "deploy/samples/single-node/" "$chart/templates/NOTES.txt" ||
  fail "NOTES.txt does not mention the single-node samples"
echo "PASS: helm lint and template render cleanly ($("$helm" version --short))"
