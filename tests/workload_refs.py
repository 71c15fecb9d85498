#!/usr/bin/python3
"""Every workload's pod template must name only ServiceAccounts, Secrets, ConfigMaps and PVCs that
exist in its namespace (what the kubelet and the API server would refuse or wait on forever).

  workload_refs.py FILE...   # YAML or JSON documents (kubectl `List`s are flattened)

Prints each dangling reference and exits 1 when there is one. What Kubernetes makes by itself in
every namespace (ServiceAccount "default", ConfigMap "kube-root-ca.crt") always exists.
"""
import sys

import yaml


def documents(paths):
    for path in paths:
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if not doc:
                    continue
                if doc.get("kind", "").endswith("List") and "items" in doc:
                    yield from doc["items"]
                else:
                    yield doc


def pod_spec(obj):
    kind = obj.get("kind")
    spec = obj.get("spec") or {}
    if kind == "Pod":
        return spec
    if kind == "CronJob":
        return spec.get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec")
    if kind in ("Deployment", "DaemonSet", "StatefulSet", "ReplicaSet", "Job"):
        return spec.get("template", {}).get("spec")
    return None


def references(spec):
    """(kind, name) pairs the pod needs, optional ones left out."""
    yield "ServiceAccount", spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
    for s in spec.get("imagePullSecrets") or []:
        yield "Secret", s["name"]
    for v in spec.get("volumes") or []:
        if "secret" in v and not v["secret"].get("optional"):
            yield "Secret", v["secret"]["secretName"]
        if "configMap" in v and not v["configMap"].get("optional"):
            yield "ConfigMap", v["configMap"]["name"]
        if "persistentVolumeClaim" in v:
            yield "PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"]
        for src in (v.get("projected") or {}).get("sources") or []:
            for kind, key in (("Secret", "secret"), ("ConfigMap", "configMap")):
                if key in src and not src[key].get("optional"):
                    yield kind, src[key]["name"]
    for c in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        for e in c.get("envFrom") or []:
            for kind, key in (("Secret", "secretRef"), ("ConfigMap", "configMapRef")):
                if key in e and not e[key].get("optional"):
                    yield kind, e[key]["name"]
        for e in c.get("env") or []:
            ref = (e.get("valueFrom") or {})
            for kind, key in (("Secret", "secretKeyRef"), ("ConfigMap", "configMapKeyRef")):
                if key in ref and not ref[key].get("optional"):
                    yield kind, ref[key]["name"]


def main(paths):
    docs = list(documents(paths))
    have = {(d.get("kind"), d.get("metadata", {}).get("namespace", ""), d["metadata"]["name"])
            for d in docs if d.get("metadata", {}).get("name")}
    missing, workloads = [], 0
    for d in docs:
        spec = pod_spec(d)
        if spec is None:
            continue
        workloads += 1
        ns = d["metadata"].get("namespace", "")
        for kind, name in references(spec):
            if (kind, name) in (("ServiceAccount", "default"), ("ConfigMap", "kube-root-ca.crt")):
                continue
            if (kind, ns, name) not in have:
                missing.append(f"{d['kind']} {ns}/{d['metadata']['name']}: {kind} {name} "
                               f"does not exist in namespace {ns}")
    for m in missing:
        print(m)
    print(f"{workloads} workloads, {len(missing)} dangling references")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
