// `granary operator`: the StorageCluster, StoragePool and Bucket reconcilers on the controller
// runtime (docs/operator.md). Decisions that need no I/O are free functions so they are tested
// without an API server (tests/operator_objects_test.cpp).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "client/meta_client.h"
#include "operator/controllers/builders.h"
#include "operator/controllers/locality.h"
#include "operator/runtime/manager.h"
#include "operator/runtime/objects.h"

namespace granary::operators {

inline constexpr const char* kBucketFinalizer = "granary.io/bucket";
inline constexpr const char* kClusterFinalizer = "granary.io/storagecluster";

struct OperatorOptions {
  std::string ns;  // watch StorageClusters/Buckets in this namespace only ("" = all)
  // Metanode address for every StorageCluster instead of its in-cluster Service (an operator
  // running outside the cluster, and the tests).
  std::string meta_override;
  std::chrono::milliseconds meta_deadline{5000};
  std::chrono::milliseconds pool_poll{30000};  // capacity and health have no watch
  // How often a StorageCluster that is not Ready is looked at again: the metanode's claim and
  // the workloads' pod-creation failures have no watch of their own.
  std::chrono::milliseconds cluster_poll{30000};
  // The ClusterRole bound to each StorageCluster's CSI ServiceAccount (the chart's; the operator
  // is allowed to bind only this one).
  std::string csi_cluster_role = kCsiClusterRole;
  // Locality (docs/locality.md): how often a DatasetWarmup's progress is read while it copies,
  // and how long a pod waits behind the locality gate when the metanode cannot say where its
  // data is (then it is released without a hint: locality never keeps a pod from running).
  std::chrono::milliseconds warmup_poll{2000};
  std::chrono::milliseconds locality_gate_timeout{30000};
};

// ---- decisions (pure)
// Ready/Progressing of a StorageCluster from its live workloads (nullopt: not created yet).
runtime::Condition ClusterReadiness(const std::optional<Json>& metanode,
                                    const std::optional<Json>& s3, const ClusterSpec& spec,
                                    const std::optional<Json>& csi_controller,
                                    const std::optional<Json>& csi_node);
// True when a workload reports every replica ready for its current generation.
bool WorkloadReady(const Json& workload);
// Why a workload cannot create its pods, as the API server said it: a Deployment's ReplicaFailure
// or ProgressDeadlineExceeded condition, or a Warning FailedCreate event about the workload (or,
// for a Deployment, one of its ReplicaSets <name>-<hash>) — what a missing ServiceAccount or an
// admission refusal looks like. nullopt when none.
std::optional<std::string> WorkloadFailure(const Json& workload, const std::vector<Json>& events);
// Why the metanode's claim holds it back: a Pending PersistentVolumeClaim, with what to do.
std::optional<std::string> MetanodeClaimHint(const std::optional<Json>& claim);

struct PoolHealth {
  int64_t desired = 0;
  int64_t ready = 0;
  std::string health;  // Healthy | Progressing | Degraded
  std::string reason;  // for the Ready condition: DatanodesReady, NotPlaced, PgsDegraded,
                       // BadCopies, …
  std::string message;
};
// Copies of the pool reported corrupt and not yet verified or replaced, and the PGs holding them
// (docs/maintenance.md "Repair on report").
struct BadCopies {
  uint64_t copies = 0;
  uint64_t pgs = 0;
};
BadCopies BadCopiesOf(const granary::ClusterStatusReply& status, uint32_t pool_id);
// From the datanode DaemonSet, the metanode's placement of the pool (null: unknown) and its bad
// copies. A pool the PG map does not hold takes no writes: Degraded with the metanode's reason,
// once the datanodes that could place it are all up. A pool with bad copies still serves, one
// fault closer to loss: Degraded with reason BadCopies until they are replaced.
PoolHealth PoolHealthOf(const std::optional<Json>& daemonset, bool in_metanode,
                        const granary::PoolPlacement* placement = nullptr,
                        const BadCopies& bad = {});

// Whether a Bucket of namespace `ns` (whose key, if any, is `access_key`) may use the metanode
// bucket `b`: only a bucket its own namespace owns, or — for buckets recorded before owners
// were — one its own key owns. `message` says why not.
struct BucketClaim {
  bool allowed = false;
  std::string message;
};
BucketClaim ClaimBucket(const granary::Bucket& b, const std::string& ns,
                        const std::string& access_key);
// What deleting a Bucket does in the metanode, by reclaim policy. An export (fromVolume) never
// owned its data: its bucket record and key always go, the PVC's volume always stays, so the
// PVC can be deleted afterwards whatever the policy says.
struct BucketDeletion {
  bool delete_bucket = false;
  bool delete_key = false;
};
BucketDeletion PlanBucketDeletion(const BucketSpec& spec);
// The metanode pool a StoragePool asks for.
granary::PoolSpec MetaPoolSpec(const std::string& name, const PoolSpec& spec);
// Does the metanode pool still say what the CRD says (the metanode has no pool update)?
std::optional<std::string> PoolDrift(const granary::PoolSpec& want, const granary::PoolSpec& have);

// The metadata group (docs/metadata-ha.md). Condition MetadataQuorum from the leader's view of
// the group (null: no leader answered) and how many members answered; `replicas` is the spec.
inline constexpr const char* kMetadataQuorum = "MetadataQuorum";
runtime::Condition MetadataQuorumOf(const granary::MetaGroupStatus* leader_view, int answering,
                                    int replicas);
// Membership changes that bring the group to members 1..replicas (ids = pod ordinal + 1): one
// at a time, adds first (a group never shrinks below its majority while it grows).
struct MembershipStep {
  enum Kind { kNone, kAdd, kRemove } kind = kNone;
  uint64_t id = 0;
};
MembershipStep NextMembershipStep(const granary::MetaGroupStatus& leader_view, int replicas);

// How a generated child is written (runtime::CreateOrUpdate's merge). A real API server fills
// in defaults inside every field the operator sets, so a plain comparison would write on every
// reconcile; comparing only "does live still contain everything desired says" misses fields the
// operator stopped setting. So: the desired object's hash rides in annotation kDesiredHash; the
// child is rewritten when that hash changed (the operator wants something else, removals
// included) or when live no longer contains desired (someone edited it).
inline constexpr const char* kDesiredHash = "granary.io/desired-hash";
std::string DesiredHash(const Json& desired);
bool Covers(const Json& live, const Json& desired);
Json WithDesiredHash(Json desired);
void MergeChild(Json& live, const Json& desired);

class Operator {
 public:
  Operator(runtime::Manager& manager, OperatorOptions options);

  Result<runtime::ReconcileResult> ReconcileCluster(const std::string& key);
  Result<runtime::ReconcileResult> ReconcilePool(const std::string& key);
  Result<runtime::ReconcileResult> ReconcileBucket(const std::string& key);
  // Locality (locality.cpp, docs/locality.md).
  Result<runtime::ReconcileResult> ReconcileWarmup(const std::string& key);
  Result<runtime::ReconcileResult> ReconcileLocalityPod(const std::string& key);

 private:
  Result<client::MetaClient*> Meta(const Json& cluster);
  // Queries the group, takes one membership step toward spec.metanode.replicas and says how the
  // quorum stands.
  runtime::Condition ReconcileMetadataGroup(const Json& cluster, const ClusterSpec& spec);
  // The key Secret: created once with 32 random bytes, never rewritten.
  Status EnsureMetanodeKey(const Json& cluster);
  std::string MetaAddressOf(const Json& cluster) const;
  Status Apply(const kube::Resource& r, Json desired, const Json& owner, const Json& event_on);
  // Writes `conditions` (+ extra status fields) through the status subresource when they differ
  // from the cached object; an idle reconcile writes nothing.
  Status WriteStatus(const kube::Resource& r, const Json& cached,
                     const std::vector<runtime::Condition>& conditions, const Json& fields);
  Status Degrade(const kube::Resource& r, const Json& cached, const Status& why,
                 const std::string& reason = "InvalidSpec");
  std::optional<Json> CachedCluster(const std::string& ns, const std::string& name) const;
  // Locality (locality.cpp): wiring, and the Granary volume and StorageCluster behind a PVC.
  void AddLocalityControllers();
  struct ClaimVolume {
    std::string volume;  // "" when the claim is not bound (yet) to a Granary volume
    std::string why;     // why there is no volume
    std::optional<Json> cluster;
  };
  Result<ClaimVolume> VolumeOfClaim(const std::string& ns, const std::string& claim);

  runtime::Manager& m_;
  kube::Client& client_;
  OperatorOptions options_;
  runtime::Informer* clusters_;
  runtime::Informer* pools_;
  runtime::Informer* buckets_;
  runtime::Informer* statefulsets_;
  runtime::Informer* deployments_;
  runtime::Informer* daemonsets_;
  runtime::Informer* nodes_;
  runtime::Informer* warmups_ = nullptr;
  runtime::Informer* gated_pods_ = nullptr;
  std::mutex gated_mu_;
  std::map<std::string, std::chrono::steady_clock::time_point> gated_since_;
  std::mutex meta_mu_;
  std::map<std::string, std::unique_ptr<client::MetaClient>> meta_;
};

}  // namespace granary::operators
