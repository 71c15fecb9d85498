// The Kubernetes objects the operator generates from its three CRDs (docs/operator.md). Pure
// functions of the custom resources, so every generated object has a golden test
// (tests/operator_objects_test.cpp) and the reconcilers only decide *whether* to write.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/version.h"
#include "operator/kube/resource.h"

namespace granary::operators {

using kube::Json;

namespace resources {
inline const kube::Resource kStorageClasses{"storage.k8s.io", "v1", "storageclasses",
                                            "StorageClass", false};
inline const kube::Resource kCSIDrivers{"storage.k8s.io", "v1", "csidrivers", "CSIDriver", false};
inline const kube::Resource kPersistentVolumes{"", "v1", "persistentvolumes", "PersistentVolume",
                                               false};
inline const kube::Resource kServiceAccounts{"", "v1", "serviceaccounts", "ServiceAccount", true};
inline const kube::Resource kClusterRoleBindings{
    "rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", false};
inline const kube::Resource kPodDisruptionBudgets{"policy", "v1", "poddisruptionbudgets",
                                                  "PodDisruptionBudget", true};
}  // namespace resources

inline constexpr const char* kCsiDriverName = "csi.granary.io";
// The ClusterRole the chart ships for the CSI sidecars (charts/granary/templates/rbac.yaml); the
// operator binds it to each StorageCluster's CSI ServiceAccount and may bind nothing else.
inline constexpr const char* kCsiClusterRole = "granary-csi";
inline constexpr int kMetanodePort = 7410;  // Raft on the next port (docs/metadata-ha.md)
inline constexpr int kDatanodePort = 7420;
inline constexpr int kDatanodeDataPort = 7421;
inline constexpr int kS3Port = 9000;
// The image of this build's own version (common/version.h): the operator and what it deploys
// move together; never :latest.
using granary::kDefaultImage;

// StorageCluster.spec with its defaults applied (the CRD's defaults, repeated here so an object
// written before a default existed is read the same way).
struct ClusterSpec {
  std::string image = kDefaultImage;
  std::string image_pull_policy = "IfNotPresent";
  int metanode_replicas = 1;  // members of the metadata Raft group: 1, 3 or 5
  Json metanode_resources = Json::object();
  std::string metanode_storage_size = "10Gi";
  std::string metanode_storage_class;  // "" = the cluster's default
  int s3_replicas = 2;
  std::string s3_service_type = "ClusterIP";
  std::string s3_domain;
  bool csi_enabled = true;
  std::string csi_provisioner_image = "registry.k8s.io/sig-storage/csi-provisioner:v5.1.0";
  std::string csi_resizer_image = "registry.k8s.io/sig-storage/csi-resizer:v1.12.0";
  std::string csi_snapshotter_image = "registry.k8s.io/sig-storage/csi-snapshotter:v8.2.0";
  std::string csi_registrar_image = "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.12.0";
  std::string kubelet_dir = "/var/lib/kubelet";
};

// What cannot be said in the schema (or was written past it) is an error here: the reconciler
// reports it in a Degraded condition instead of crash-looping.
Result<ClusterSpec> ParseClusterSpec(const Json& cluster);

struct PoolSpec {
  std::string cluster_name;
  std::string cluster_namespace;
  std::map<std::string, std::string> node_selector;
  Json tolerations = Json::array();
  std::string host_path;
  bool replicated = true;
  int size = 3;
  int data_chunks = 0;
  int coding_chunks = 0;
  std::string failure_domain = "host";               // datanode|host|rack|zone
  std::map<std::string, std::string> topology_keys;  // granary label → node label key
  std::string locality = "none";                     // none|writer-local|prefer-gpu
  std::map<std::string, std::string> gpu_node_selector;
  double nearly_full_ratio = 0.85;
  double full_ratio = 0.95;
  Json resources = Json::object();
};

Result<PoolSpec> ParsePoolSpec(const Json& pool);

struct BucketSpec {
  std::string pool;
  std::string bucket_name;  // in the metanode (S3 bucket names are global)
  int64_t quota_bytes = 0;
  std::string from_volume_claim;
  std::string reclaim_policy = "Retain";
  std::string secret_name;
};

Result<BucketSpec> ParseBucketSpec(const Json& bucket);

// Addresses inside the cluster. MetanodeAddress lists every member (the --meta list);
// MetanodePeers names them with their ids (the --peers list).
std::string MetanodeAddress(const Json& cluster, int replicas);
std::string MetanodePeers(const Json& cluster, int replicas);
// Member `ordinal` (0-based; its id is ordinal + 1) at its stable StatefulSet DNS name.
std::string MemberAddress(const Json& cluster, int ordinal);
std::string S3Endpoint(const Json& cluster);
// The dashboard (docs/dashboard.md) through Service <cluster>-dashboard, port 80.
std::string DashboardUrl(const Json& cluster);
Json CommonLabels(const std::string& component, const std::string& instance);

// StorageCluster → its children.
Json MetanodeService(const Json& cluster, const ClusterSpec& spec);
Json MetanodeStatefulSet(const Json& cluster, const ClusterSpec& spec);
// At most one member down by choice (drain, rollout): a group of 3 keeps its majority.
Json MetanodePodDisruptionBudget(const Json& cluster);
// The key sealing S3 secrets, shared by every member (created once, never rewritten).
std::string MetanodeKeySecretName(const Json& cluster);
Json MetanodeKeySecret(const Json& cluster, const std::string& key_base64);
Json S3Service(const Json& cluster, const ClusterSpec& spec);
// Every metanode member serves the dashboard on its admin port (a follower's shows the
// leader's figures), so the Service selects them all.
Json DashboardService(const Json& cluster);
Json S3Deployment(const Json& cluster, const ClusterSpec& spec);
Json CsiControllerDeployment(const Json& cluster, const ClusterSpec& spec);
Json CsiNodeDaemonSet(const Json& cluster, const ClusterSpec& spec);
Json CsiDriver(const Json& cluster);
// The CSI pods' identity in the StorageCluster's namespace, whatever namespace the chart went to:
// ServiceAccount <cluster>-csi, bound cluster-wide to `cluster_role` by ClusterRoleBinding
// granary-csi:<namespace>:<cluster> (cluster-scoped: the cluster's finalizer deletes it).
std::string CsiServiceAccountName(const Json& cluster);
std::string CsiClusterRoleBindingName(const Json& cluster);
Json CsiServiceAccount(const Json& cluster);
Json CsiClusterRoleBinding(const Json& cluster, const std::string& cluster_role);
// The metanode's PersistentVolumeClaim (volumeClaimTemplate `data`, ordinal 0).
std::string MetanodeClaimName(const Json& cluster);

// StoragePool → its children (the datanodes live in the StorageCluster's namespace).
// `topology` maps a node name to its datanode --labels value (TopologyLabels).
Json DatanodeTopologyConfigMap(const Json& pool, const PoolSpec& spec,
                               const std::map<std::string, std::string>& topology);
Json DatanodeDaemonSet(const Json& pool, const PoolSpec& spec, const ClusterSpec& cluster_spec,
                       const Json& cluster);
Json PoolStorageClass(const Json& pool, const PoolSpec& spec);
// `--labels` for a datanode on `node`: host, the topology keys the pool names, gpu, and pool.
std::string TopologyLabels(const Json& node, const PoolSpec& spec, const std::string& pool_name);
bool NodeMatches(const Json& node, const std::map<std::string, std::string>& selector);

// Bucket → its Secret (for a notebook's envFrom).
Json BucketSecret(const Json& bucket, const BucketSpec& spec, const std::string& access_key,
                  const std::string& secret_key, const std::string& endpoint);

std::string Base64(const std::string& in);

}  // namespace granary::operators
