// The operator's decisions that need no I/O (operator.h): readiness, failures, pool health and
// bad copies, bucket ownership and deletion, the metanode pool, and how a generated child is
// merged. Tested without an API server in tests/operator_objects_test.cpp.
#include <fmt/format.h>

#include <set>

#include "operator/controllers/json_fields.h"
#include "operator/controllers/operator.h"
#include "operator/runtime/apply.h"

namespace granary::operators {

using runtime::Condition;

// ------------------------------------------------------------------ decisions

namespace {
const std::map<std::string, FailureDomain> domains_by_name = {{"datanode", DOMAIN_DATANODE},
                                                              {"host", DOMAIN_HOST},
                                                              {"rack", DOMAIN_RACK},
                                                              {"zone", DOMAIN_ZONE}};
const std::map<std::string, Locality> localities_by_name = {
    {"none", LOCALITY_NONE}, {"writer-local", WRITER_LOCAL}, {"prefer-gpu", PREFER_GPU}};
}  // namespace

bool WorkloadReady(const Json& w) {
  Json st = StatusOf(w);
  if (Int(st, "observedGeneration") < kube::GenerationOf(w)) return false;
  if (w.value("kind", "") == "DaemonSet") {
    int64_t desired = Int(st, "desiredNumberScheduled");
    return Int(st, "numberReady") >= desired && Int(st, "updatedNumberScheduled") >= desired;
  }
  int64_t want = w.value("spec", Json::object()).value("replicas", int64_t{1});
  return Int(st, "readyReplicas") >= want;
}

Condition ClusterReadiness(const std::optional<Json>& metanode, const std::optional<Json>& s3,
                           const ClusterSpec& spec, const std::optional<Json>& csi_controller,
                           const std::optional<Json>& csi_node) {
  std::vector<std::string> waiting;
  auto check = [&](const std::optional<Json>& w, const char* what) {
    if (!w || !WorkloadReady(*w)) waiting.push_back(what);
  };
  check(metanode, "metanode");
  check(s3, "s3");
  if (spec.csi_enabled) {
    check(csi_controller, "csi-controller");
    check(csi_node, "csi-node");
  }
  if (waiting.empty())
    return {runtime::kReady, "True", "AllComponentsReady", "every component is ready"};
  std::string list;
  for (const auto& w : waiting) list += (list.empty() ? "" : ", ") + w;
  return {runtime::kReady, "False", "ComponentsNotReady", "waiting for " + list};
}

std::optional<std::string> WorkloadFailure(const Json& w, const std::vector<Json>& events) {
  const std::string kind = w.value("kind", ""), name = kube::NameOf(w);
  Json conditions = StatusOf(w).value("conditions", Json::array());
  for (const auto& c : conditions) {
    std::string type = c.value("type", ""), status = c.value("status", "");
    std::string reason = c.value("reason", "");
    if ((type == "ReplicaFailure" && status == "True") ||
        (type == "Progressing" && status == "False" && reason == "ProgressDeadlineExceeded"))
      return fmt::format("{} {}: {}", kind, name, c.value("message", reason));
  }
  // DaemonSets and StatefulSets report a refused pod only as an event (so do the ReplicaSets of
  // a Deployment, before the Deployment's condition catches up). The newest one says it.
  const Json* newest = nullptr;
  std::string newest_time;
  for (const auto& e : events) {
    if (e.value("type", "") != "Warning" || e.value("reason", "") != "FailedCreate") continue;
    Json io = e.value("involvedObject", Json::object());
    std::string ik = io.value("kind", ""), in = io.value("name", "");
    bool about = ik == kind && in == name;
    if (kind == "Deployment" && ik == "ReplicaSet" && in.size() > name.size() + 1 &&
        in.compare(0, name.size() + 1, name + "-") == 0)
      about = in.find('-', name.size() + 1) == std::string::npos;  // <deployment>-<hash>
    if (!about) continue;
    std::string t = e.value("lastTimestamp", "");  // RFC 3339 in UTC: compares as text
    if (t.empty()) t = e.value("eventTime", "");
    if (!newest || t >= newest_time) {
      newest = &e;
      newest_time = t;
    }
  }
  if (newest) return fmt::format("{} {}: {}", kind, name, newest->value("message", "FailedCreate"));
  return std::nullopt;
}

std::optional<std::string> MetanodeClaimHint(const std::optional<Json>& claim) {
  if (!claim || StatusOf(*claim).value("phase", "") != "Pending") return std::nullopt;
  std::string name = kube::NameOf(*claim);
  std::string sc = claim->value("spec", Json::object()).value("storageClassName", "");
  // An admission plugin fills in the default StorageClass; still empty means there is none.
  if (sc.empty())
    return fmt::format(
        "PersistentVolumeClaim {} is Pending and names no StorageClass: the Kubernetes cluster has "
        "no default StorageClass; set spec.metanode.storage.storageClassName or mark one default",
        name);
  return fmt::format("PersistentVolumeClaim {} is Pending on StorageClass {}", name, sc);
}

PoolHealth PoolHealthOf(const std::optional<Json>& ds, bool in_metanode,
                        const granary::PoolPlacement* placement, const BadCopies& bad) {
  PoolHealth h;
  if (ds) {
    Json st = StatusOf(*ds);
    h.desired = Int(st, "desiredNumberScheduled");
    h.ready = Int(st, "numberReady");
  }
  std::string datanodes = fmt::format("{}/{} datanodes ready", h.ready, h.desired);
  bool unplaced = placement && !placement->placed();
  std::string not_placed =
      unplaced ? fmt::format("the metanode cannot place the pool: {}; every write to it fails",
                             placement->message())
               : "";
  if (!in_metanode || !ds || Int(StatusOf(*ds), "observedGeneration") < kube::GenerationOf(*ds)) {
    h.health = "Progressing";
    h.reason = "DatanodesNotReady";
    h.message = datanodes;
  } else if (unplaced && h.desired > 0 && h.ready >= h.desired) {
    // Every datanode the pool will get is up and it still cannot be placed: only more
    // nodes (or another failure domain / redundancy) help.
    h.health = "Degraded";
    h.reason = "NotPlaced";
    h.message = not_placed + " (" + datanodes + ")";
  } else if (h.desired == 0 || h.ready < h.desired) {
    h.health = h.ready == 0 ? "Progressing" : "Degraded";
    h.reason = "DatanodesNotReady";
    h.message = unplaced ? datanodes + "; " + not_placed : datanodes;
  } else if (placement && placement->pgs_degraded() > 0) {
    h.health = "Degraded";
    h.reason = "PgsDegraded";
    h.message = fmt::format("{} of {} PGs short of a member or with a member down ({})",
                            placement->pgs_degraded(), placement->pgs(), datanodes);
  } else if (bad.copies > 0) {
    // Serving, but one fault closer to loss until the bad copies are replaced.
    h.health = "Degraded";
    h.reason = "BadCopies";
    h.message = fmt::format("{} copies in {} PGs reported corrupt, being verified or replaced ({})",
                            bad.copies, bad.pgs, datanodes);
  } else {
    h.health = "Healthy";
    h.reason = "DatanodesReady";
    h.message = datanodes;
  }
  return h;
}

BadCopies BadCopiesOf(const granary::ClusterStatusReply& status, uint32_t pool_id) {
  BadCopies bad;
  for (const auto& pg : status.pgs_with_bad_copies()) {
    if (pg.pool_id() != pool_id) continue;
    bad.copies += pg.copies();
    ++bad.pgs;
  }
  return bad;
}

BucketClaim ClaimBucket(const granary::Bucket& b, const std::string& ns,
                        const std::string& access_key) {
  if (!b.owner_namespace().empty()) {
    if (b.owner_namespace() == ns) return {true, ""};
    return {false, fmt::format("bucket {} belongs to namespace {}: a Bucket may only use a bucket "
                               "its own namespace owns; another namespace gets access only "
                               "through a grant by the owner (docs/operator.md)",
                               b.name(), b.owner_namespace())};
  }
  // Recorded before owners were (or made over S3 / with granary admin): only the Bucket whose
  // key created it may go on using it.
  if (!access_key.empty() && b.owner() == access_key) return {true, ""};
  return {false, fmt::format("bucket {} exists and no Bucket of namespace {} created it (made over "
                             "S3, with granary admin, or elsewhere): refusing to take it over",
                             b.name(), ns)};
}

BucketDeletion PlanBucketDeletion(const BucketSpec& spec) {
  // An export never owned the data (the PVC's volume does): leaving its record behind would only
  // block the PVC's deletion ("volume … is exported by bucket …").
  if (!spec.from_volume_claim.empty()) return {true, true};
  if (spec.reclaim_policy == "Delete") return {true, true};
  return {false, false};  // Retain: bucket, data and key stay in the metanode
}

granary::PoolSpec MetaPoolSpec(const std::string& name, const PoolSpec& spec) {
  granary::PoolSpec p;
  p.set_name(name);
  if (spec.replicated) {
    p.set_redundancy(REPLICATED_POOL);
    p.set_replicas(static_cast<uint32_t>(spec.size));
  } else {
    p.set_redundancy(ERASURE_CODED_POOL);
    p.set_data_chunks(static_cast<uint32_t>(spec.data_chunks));
    p.set_coding_chunks(static_cast<uint32_t>(spec.coding_chunks));
  }
  p.set_failure_domain(domains_by_name.at(spec.failure_domain));
  p.set_locality(localities_by_name.at(spec.locality));
  // Placement picks this pool's datanodes by the label each one is started with.
  (*p.mutable_node_selector())["pool"] = name;
  p.set_nearly_full_ratio(spec.nearly_full_ratio);
  p.set_full_ratio(spec.full_ratio);
  return p;
}

std::optional<std::string> PoolDrift(const granary::PoolSpec& want, const granary::PoolSpec& have) {
  if (want.redundancy() != have.redundancy() || want.replicas() != have.replicas() ||
      want.data_chunks() != have.data_chunks() || want.coding_chunks() != have.coding_chunks())
    return "redundancy differs from the metanode pool (it cannot change after creation)";
  if (want.failure_domain() != have.failure_domain())
    return "failureDomain differs from the metanode pool (it cannot change after creation)";
  return std::nullopt;
}

// ------------------------------------------------------------------ writing children

std::string DesiredHash(const Json& desired) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a: stable across builds, unlike std::hash
  for (unsigned char c : desired.dump()) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return fmt::format("{:016x}", h);
}

bool Covers(const Json& live, const Json& desired) {
  if (desired.is_object()) {
    if (!live.is_object()) return false;
    for (auto it = desired.begin(); it != desired.end(); ++it) {
      auto l = live.find(it.key());
      if (l == live.end() || !Covers(*l, it.value())) return false;
    }
    return true;
  }
  if (desired.is_array()) {
    if (!live.is_array() || live.size() != desired.size()) return false;
    for (size_t i = 0; i < desired.size(); ++i)
      if (!Covers(live[i], desired[i])) return false;
    return true;
  }
  return live == desired;
}

Json WithDesiredHash(Json desired) {
  std::string hash = DesiredHash(desired);
  desired["metadata"]["annotations"][kDesiredHash] = hash;
  return desired;
}

void MergeChild(Json& live, const Json& desired) {
  const Json& meta = live.value("metadata", Json::object());
  bool same_hash = meta.value("annotations", Json::object()).value(kDesiredHash, "") ==
                   desired["metadata"]["annotations"].value(kDesiredHash, "");
  bool covered = true;
  for (auto it = desired.begin(); it != desired.end() && covered; ++it) {
    if (it.key() == "status") continue;
    auto l = live.find(it.key());
    covered = l != live.end() && Covers(*l, it.value());
  }
  if (same_hash && covered) return;
  runtime::MergeDesired(live, desired);
}

runtime::Condition MetadataQuorumOf(const granary::MetaGroupStatus* leader_view, int answering,
                                    int replicas) {
  if (leader_view == nullptr) {
    return {kMetadataQuorum, "False", "NoLeader",
            fmt::format("no metadata leader answers ({} of {} members answer)", answering,
                        replicas)};
  }
  if (!leader_view->replicated()) {
    return {kMetadataQuorum, "True", "Standalone", "one metanode, not a replicated group"};
  }
  int voters = 0;
  for (const auto& m : leader_view->members()) voters += m.voter() ? 1 : 0;
  const int majority = voters / 2 + 1;
  std::string message =
      fmt::format("leader {}, {} of {} members answer, term {}", leader_view->leader_id(),
                  answering, voters, leader_view->term());
  if (answering < majority) return {kMetadataQuorum, "False", "MajorityLost", message};
  if (answering < voters || voters != replicas) {
    return {kMetadataQuorum, "True", "Degraded",
            message + (voters != replicas
                           ? fmt::format("; {} members wanted, changing membership", replicas)
                           : "; a member is down")};
  }
  return {kMetadataQuorum, "True", "AllMembersUp", message};
}

MembershipStep NextMembershipStep(const granary::MetaGroupStatus& leader_view, int replicas) {
  if (!leader_view.replicated()) return {};
  std::set<uint64_t> have;
  for (const auto& m : leader_view.members()) have.insert(m.id());
  for (uint64_t id = 1; id <= static_cast<uint64_t>(replicas); ++id) {
    if (!have.count(id)) return {MembershipStep::kAdd, id};
  }
  for (uint64_t id : have) {
    if (id > static_cast<uint64_t>(replicas)) return {MembershipStep::kRemove, id};
  }
  return {};
}

}  // namespace granary::operators
