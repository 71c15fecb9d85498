// A REST resource of the Kubernetes API (group/version/plural) and the well-known ones the
// operator uses. Objects themselves are nlohmann::json, as they travel.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace granary::kube {

using Json = nlohmann::json;

struct Resource {
  std::string group;  // "" for core
  std::string version;
  std::string plural;
  std::string kind;
  bool namespaced = true;

  std::string ApiVersion() const { return group.empty() ? version : group + "/" + version; }
  // "/api/v1/namespaces/ns/pods/name/status"; empty `ns` on a namespaced resource means every
  // namespace (lists and watches).
  std::string Path(std::string_view ns = "", std::string_view name = "",
                   std::string_view subresource = "") const;
};

namespace resources {
inline const Resource kPods{"", "v1", "pods", "Pod", true};
inline const Resource kServices{"", "v1", "services", "Service", true};
inline const Resource kConfigMaps{"", "v1", "configmaps", "ConfigMap", true};
inline const Resource kSecrets{"", "v1", "secrets", "Secret", true};
inline const Resource kEvents{"", "v1", "events", "Event", true};
inline const Resource kPersistentVolumeClaims{"", "v1", "persistentvolumeclaims",
                                              "PersistentVolumeClaim", true};
inline const Resource kNamespaces{"", "v1", "namespaces", "Namespace", false};
inline const Resource kNodes{"", "v1", "nodes", "Node", false};
inline const Resource kDaemonSets{"apps", "v1", "daemonsets", "DaemonSet", true};
inline const Resource kStatefulSets{"apps", "v1", "statefulsets", "StatefulSet", true};
inline const Resource kDeployments{"apps", "v1", "deployments", "Deployment", true};
inline const Resource kLeases{"coordination.k8s.io", "v1", "leases", "Lease", true};
inline const Resource kStorageClusters{"granary.io", "v1alpha1", "storageclusters",
                                       "StorageCluster", true};
inline const Resource kStoragePools{"granary.io", "v1alpha1", "storagepools", "StoragePool", false};
inline const Resource kBuckets{"granary.io", "v1alpha1", "buckets", "Bucket", true};
}  // namespace resources

// metadata helpers that read absent fields as empty.
std::string NameOf(const Json& object);
std::string NamespaceOf(const Json& object);
std::string ResourceVersionOf(const Json& object);
std::string UidOf(const Json& object);
int64_t GenerationOf(const Json& object);
// "ns/name", or "name" for a cluster-scoped object: the cache and work-queue key.
std::string KeyOf(const Json& object);
std::string MakeKey(std::string_view ns, std::string_view name);
// Inverse of MakeKey: {ns, name}.
std::pair<std::string, std::string> SplitKey(std::string_view key);

}  // namespace granary::kube
