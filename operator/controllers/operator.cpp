#include "operator/controllers/operator.h"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <fstream>

#include "common/log.h"
#include "operator/controllers/json_fields.h"
#include "operator/runtime/apply.h"

namespace granary::operators {

namespace res = kube::resources;
using runtime::Condition;
using runtime::ReconcileResult;

namespace {

runtime::ControllerOptions Named(const char* name) {
  runtime::ControllerOptions o;
  o.name = name;
  return o;
}

bool Ignorable(const Status& s, Code code) { return s.ok() || s.code() == code; }

}  // namespace

// ------------------------------------------------------------------ wiring

Operator::Operator(runtime::Manager& m, OperatorOptions options)
    : m_(m), client_(m.client()), options_(std::move(options)) {
  kube::ReflectorOptions scoped;
  scoped.ns = options_.ns;
  kube::ReflectorOptions managed;  // only what the operator made: a small cache
  managed.label_selector = "app.kubernetes.io/managed-by=granary-operator";
  clusters_ = &m.AddInformer(res::kStorageClusters, scoped);
  pools_ = &m.AddInformer(res::kStoragePools);
  buckets_ = &m.AddInformer(res::kBuckets, scoped);
  statefulsets_ = &m.AddInformer(res::kStatefulSets, managed);
  deployments_ = &m.AddInformer(res::kDeployments, managed);
  daemonsets_ = &m.AddInformer(res::kDaemonSets, managed);
  auto& services = m.AddInformer(res::kServices, managed);
  auto& secrets = m.AddInformer(res::kSecrets, managed);
  auto& config_maps = m.AddInformer(res::kConfigMaps, managed);
  auto& storage_classes = m.AddInformer(resources::kStorageClasses, managed);
  auto& service_accounts = m.AddInformer(resources::kServiceAccounts, managed);
  nodes_ = &m.AddInformer(res::kNodes);

  auto& cc = m.AddController(Named("storagecluster"),
                             [this](const std::string& k) { return ReconcileCluster(k); });
  cc.For(*clusters_);
  for (auto* i : {statefulsets_, deployments_, daemonsets_, &services, &service_accounts})
    cc.Owns(*i, "StorageCluster");

  auto& pc = m.AddController(Named("storagepool"),
                             [this](const std::string& k) { return ReconcilePool(k); });
  pc.For(*pools_);
  for (auto* i : {daemonsets_, &config_maps, &storage_classes}) pc.Owns(*i, "StoragePool", false);
  // A pool depends on its cluster and on the nodes' topology labels, which own nothing of it.
  auto all_pools = [this, &pc](const Json&) {
    for (const auto& k : pools_->Keys()) pc.Enqueue(k);
  };
  runtime::EventHandler to_pools{
      all_pools, [all_pools](const Json&, const Json& n) { all_pools(n); }, all_pools};
  clusters_->AddHandler(to_pools);
  nodes_->AddHandler(to_pools);

  auto& bc =
      m.AddController(Named("bucket"), [this](const std::string& k) { return ReconcileBucket(k); });
  bc.For(*buckets_);
  bc.Owns(secrets, "Bucket");
  auto pool_buckets = [this, &bc](const Json& pool) {
    for (const auto& b : buckets_->List())
      if (b.value("spec", Json::object()).value("pool", "") == kube::NameOf(pool))
        bc.Enqueue(kube::KeyOf(b));
  };
  pools_->AddHandler({pool_buckets, [pool_buckets](const Json&, const Json& n) { pool_buckets(n); },
                      pool_buckets});
  AddLocalityControllers();
}

std::string Operator::MetaAddressOf(const Json& cluster) const {
  if (!options_.meta_override.empty()) return options_.meta_override;
  auto spec = ParseClusterSpec(cluster);
  return MetanodeAddress(cluster, spec.ok() ? spec->metanode_replicas : 1);
}

Result<client::MetaClient*> Operator::Meta(const Json& cluster) {
  std::string address = MetaAddressOf(cluster);
  std::lock_guard lock(meta_mu_);
  auto& c = meta_[address];
  if (!c) {
    client::MetaClientOptions o;
    o.address = address;
    o.deadline = options_.meta_deadline;
    o.attempt_timeout = std::chrono::seconds(1);  // a reconcile must not wait on a dead member
    auto connected = client::MetaClient::Connect(o);
    if (!connected.ok()) return connected.status();
    c = std::move(*connected);
  }
  return c.get();
}

std::optional<Json> Operator::CachedCluster(const std::string& ns, const std::string& name) const {
  return clusters_->Get(kube::MakeKey(ns, name));
}

Status Operator::Apply(const kube::Resource& r, Json desired, const Json& owner,
                       const Json& event_on) {
  if (!owner.is_null()) GRANARY_TRY(runtime::SetControllerReference(desired, owner));
  std::string key = kube::KeyOf(desired);
  auto applied =
      runtime::CreateOrUpdate(client_, r, WithDesiredHash(std::move(desired)), MergeChild);
  if (!applied.ok()) return applied.status().WithContext(fmt::format("apply {} {}", r.kind, key));
  if (applied->changed) {
    m_.events()
        .Normal(event_on, "Applied", fmt::format("{} {} created or updated", r.kind, key))
        .PermitUnchecked();
  }
  return Status::Ok();
}

Status Operator::WriteStatus(const kube::Resource& r, const Json& cached,
                             const std::vector<Condition>& conditions, const Json& fields) {
  auto mutate = [&](Json& o) {
    bool changed = false;
    for (const auto& c : conditions) changed |= runtime::SetCondition(o, c);
    changed |= runtime::SetObservedGeneration(o);
    if (!o["status"].is_object()) o["status"] = Json::object();
    for (auto& [k, v] : fields.items()) {
      if (o["status"].value(k, Json()) != v) {
        o["status"][k] = v;
        changed = true;
      }
    }
    return changed;
  };
  Json probe = cached;
  if (!mutate(probe)) return Status::Ok();
  auto written = client_.Modify(
      r, kube::NamespaceOf(cached), kube::NameOf(cached),
      [&](Json& o) {
        mutate(o);
        return Status::Ok();
      },
      /*status=*/true);
  if (!written.ok() && written.status().code() != Code::NOT_FOUND) return written.status();
  return Status::Ok();
}

Status Operator::Degrade(const kube::Resource& r, const Json& cached, const Status& why,
                         const std::string& reason) {
  auto prior = runtime::FindCondition(cached, runtime::kDegraded);
  if (!prior || prior->value("message", "") != why.message()) {
    m_.events().Warning(cached, reason, why.message()).PermitUnchecked();
  }
  Json fields = Json::object();
  if (r.kind == "StorageCluster") fields["phase"] = "Degraded";
  return WriteStatus(r, cached,
                     {{runtime::kDegraded, "True", reason, why.message()},
                      {runtime::kReady, "False", reason,
                       reason == "InvalidSpec" ? "the spec is invalid (see Degraded)"
                                               : "see the Degraded condition"}},
                     fields);
}

// ------------------------------------------------------------------ StorageCluster

Result<ReconcileResult> Operator::ReconcileCluster(const std::string& key) {
  auto cached = clusters_->Get(key);
  if (!cached) return ReconcileResult{};
  Json sc = *cached;
  auto [ns, name] = kube::SplitKey(key);
  std::string instance = ns + "." + name;
  // Cluster-scoped children cannot be owned by a namespaced object: this finalizer removes them.
  auto owned_here = [&](const Json& o) {
    return o["metadata"].value("labels", Json::object()).value("granary.io/cluster", "") ==
           instance;
  };
  if (runtime::IsBeingDeleted(sc)) {
    auto driver = client_.Get(resources::kCSIDrivers, "", kCsiDriverName);
    if (driver.ok() && owned_here(*driver)) {
      Status s = client_.Delete(resources::kCSIDrivers, "", kCsiDriverName);
      if (!Ignorable(s, Code::NOT_FOUND)) return s;
    }
    std::string binding = CsiClusterRoleBindingName(sc);
    auto crb = client_.Get(resources::kClusterRoleBindings, "", binding);
    if (crb.ok() && owned_here(*crb)) {
      Status s = client_.Delete(resources::kClusterRoleBindings, "", binding);
      if (!Ignorable(s, Code::NOT_FOUND)) return s;
    }
    auto released = client_.Modify(res::kStorageClusters, ns, name, [](Json& o) {
      runtime::RemoveFinalizer(o, kClusterFinalizer);
      return Status::Ok();
    });
    if (!released.ok() && released.status().code() != Code::NOT_FOUND) return released.status();
    return ReconcileResult{};
  }
  if (!runtime::HasFinalizer(sc, kClusterFinalizer)) {
    auto added = client_.Modify(res::kStorageClusters, ns, name, [](Json& o) {
      runtime::AddFinalizer(o, kClusterFinalizer);
      return Status::Ok();
    });
    if (!added.ok()) return added.status();
  }
  auto spec = ParseClusterSpec(sc);
  if (!spec.ok()) {
    GRANARY_TRY(Degrade(res::kStorageClusters, sc, spec.status()));
    return ReconcileResult{};  // a spec edit brings it back; retrying would not help
  }
  // A child the API server refuses (RBAC, admission, validation) is reported with the server's
  // own words, then retried with back-off: fixing RBAC or a policy needs no spec change.
  auto apply = [&](const kube::Resource& r, Json desired, const Json& owner) -> Status {
    Status s = Apply(r, std::move(desired), owner, sc);
    if (s.code() == Code::PERMISSION_DENIED || s.code() == Code::INVALID_ARGUMENT) {
      Degrade(res::kStorageClusters, sc, s, "ApplyRefused").PermitUnchecked();
    }
    return s;
  };
  GRANARY_TRY(EnsureMetanodeKey(sc));
  GRANARY_TRY(apply(res::kServices, MetanodeService(sc, *spec), sc));
  GRANARY_TRY(apply(res::kStatefulSets, MetanodeStatefulSet(sc, *spec), sc));
  GRANARY_TRY(apply(resources::kPodDisruptionBudgets, MetanodePodDisruptionBudget(sc), sc));
  GRANARY_TRY(apply(res::kServices, S3Service(sc, *spec), sc));
  GRANARY_TRY(apply(res::kServices, DashboardService(sc), sc));
  GRANARY_TRY(apply(res::kDeployments, S3Deployment(sc, *spec), sc));
  std::vector<Json> workloads;  // what Ready waits for, in the order it names them
  auto live = [&](runtime::Informer* i, const std::string& child) {
    return i->Get(kube::MakeKey(ns, name + child));
  };
  std::optional<Json> metanode = live(statefulsets_, "-metanode"), s3 = live(deployments_, "-s3");
  std::optional<Json> csi_controller, csi_node;
  if (spec->csi_enabled) {
    auto driver = client_.Get(resources::kCSIDrivers, "", kCsiDriverName);
    if (driver.ok() && !owned_here(*driver)) {
      GRANARY_TRY(Degrade(res::kStorageClusters, sc,
                          InvalidArgument("CSIDriver " + std::string(kCsiDriverName) +
                                          " belongs to another StorageCluster: one per Kubernetes "
                                          "cluster may run CSI (set spec.csi.enabled=false)")));
      return ReconcileResult{};
    }
    // The CSI pods' ServiceAccount and its binding live with the cluster, wherever the chart is.
    GRANARY_TRY(apply(resources::kServiceAccounts, CsiServiceAccount(sc), sc));
    GRANARY_TRY(apply(resources::kClusterRoleBindings,
                      CsiClusterRoleBinding(sc, options_.csi_cluster_role), Json()));
    GRANARY_TRY(apply(res::kDeployments, CsiControllerDeployment(sc, *spec), sc));
    GRANARY_TRY(apply(res::kDaemonSets, CsiNodeDaemonSet(sc, *spec), sc));
    GRANARY_TRY(apply(resources::kCSIDrivers, CsiDriver(sc), Json()));
    csi_controller = live(deployments_, "-csi-controller");
    csi_node = live(daemonsets_, "-csi-node");
  }
  Condition ready = ClusterReadiness(metanode, s3, *spec, csi_controller, csi_node);
  bool is_ready = ready.status == "True";
  Condition degraded{runtime::kDegraded, "False", "SpecValid", "the spec is valid"};
  if (!is_ready) {
    // Why it is not ready, when Kubernetes knows: pods the API server refused, a Pending claim.
    auto claim = client_.Get(res::kPersistentVolumeClaims, ns, MetanodeClaimName(sc));
    if (auto hint = MetanodeClaimHint(claim.ok() ? std::optional<Json>(*claim) : std::nullopt))
      ready.message += "; " + *hint;
    std::vector<Json> events;
    auto listed = client_.List(res::kEvents, ns);
    if (listed.ok()) events = std::move(listed->items);
    std::string failures;
    for (const auto* w : {&metanode, &s3, &csi_controller, &csi_node}) {
      if (!*w || WorkloadReady(**w)) continue;
      if (auto f = WorkloadFailure(**w, events)) failures += (failures.empty() ? "" : "; ") + *f;
    }
    if (!failures.empty()) {
      degraded = {runtime::kDegraded, "True", "WorkloadFailed", failures};
      auto prior = runtime::FindCondition(sc, runtime::kDegraded);
      if (!prior || prior->value("message", "") != failures)
        m_.events().Warning(sc, "WorkloadFailed", failures).PermitUnchecked();
    }
  }
  std::string phase = is_ready ? "Ready" : degraded.status == "True" ? "Degraded" : "Deploying";
  Condition quorum = metanode ? ReconcileMetadataGroup(sc, *spec)
                              : Condition{kMetadataQuorum, "False", "Deploying",
                                          "the metanode StatefulSet does not exist yet"};
  GRANARY_TRY(WriteStatus(res::kStorageClusters, sc,
                          {ready,
                           {runtime::kProgressing, is_ready ? "False" : "True",
                            is_ready ? "Deployed" : "Deploying", ready.message},
                           degraded,
                           quorum},
                          {{"metanodeAddress", MetaAddressOf(sc)},
                           {"s3Endpoint", S3Endpoint(sc)},
                           {"dashboardURL", DashboardUrl(sc)},
                           {"phase", phase}}));
  // Pod-creation failures, claims and the metadata group have no watch here: look again while
  // not ready or while the group is not whole.
  const bool whole = quorum.reason == "AllMembersUp" || quorum.reason == "Standalone";
  return ReconcileResult{is_ready && whole ? std::chrono::milliseconds(0) : options_.cluster_poll};
}

Status Operator::EnsureMetanodeKey(const Json& cluster) {
  const std::string name = MetanodeKeySecretName(cluster);
  auto existing = client_.Get(res::kSecrets, kube::NamespaceOf(cluster), name);
  if (existing.ok()) return Status::Ok();
  if (existing.status().code() != Code::NOT_FOUND) return existing.status();
  std::vector<unsigned char> key(32);
  std::ifstream random("/dev/urandom", std::ios::binary);
  if (!random.read(reinterpret_cast<char*>(key.data()), static_cast<std::streamsize>(key.size())))
    return Internal("read /dev/urandom");
  std::string encoded(4 * ((key.size() + 2) / 3), '\0');
  EVP_EncodeBlock(reinterpret_cast<unsigned char*>(encoded.data()), key.data(),
                  static_cast<int>(key.size()));
  Json secret = MetanodeKeySecret(cluster, encoded);
  GRANARY_TRY(runtime::SetControllerReference(secret, cluster));
  auto created = client_.Create(res::kSecrets, secret);
  if (!created.ok() && created.status().code() != Code::ALREADY_EXISTS) {
    return created.status().WithContext("create Secret " + name);
  }
  return Status::Ok();
}

Condition Operator::ReconcileMetadataGroup(const Json& cluster, const ClusterSpec& spec) {
  auto meta = Meta(cluster);
  if (!meta.ok()) return {kMetadataQuorum, "False", "NoLeader", meta.status().message()};
  client::MetaClient& mc = **meta;
  auto leader = mc.GroupStatus();
  int answering = 0;
  if (leader.ok() && leader->replicated()) {
    for (const auto& m : leader->members()) answering += mc.GroupStatus(m.address()).ok() ? 1 : 0;
  } else if (leader.ok()) {
    answering = 1;
  }
  if (leader.ok() && options_.meta_override.empty()) {
    // One step per reconcile; the next reconcile (cluster_poll) takes the next one.
    MembershipStep step = NextMembershipStep(*leader, spec.metanode_replicas);
    Status changed;
    if (step.kind == MembershipStep::kAdd) {
      changed = mc.AddMember(step.id, MemberAddress(cluster, static_cast<int>(step.id) - 1));
    } else if (step.kind == MembershipStep::kRemove) {
      changed = mc.RemoveMember(step.id);
    }
    if (step.kind != MembershipStep::kNone) {
      const char* verb = step.kind == MembershipStep::kAdd ? "added" : "removed";
      if (changed.ok()) {
        m_.events()
            .Normal(cluster, "MetadataMembership", fmt::format("metadata member {} {}", step.id, verb))
            .PermitUnchecked();
      } else {
        m_.events()
            .Warning(cluster, "MetadataMembership",
                     fmt::format("metadata member {} not {}: {}", step.id, verb, changed.message()))
            .PermitUnchecked();
      }
    }
  }
  return MetadataQuorumOf(leader.ok() ? &*leader : nullptr, answering, spec.metanode_replicas);
}

// ------------------------------------------------------------------ StoragePool

Result<ReconcileResult> Operator::ReconcilePool(const std::string& key) {
  auto cached = pools_->Get(key);
  if (!cached) return ReconcileResult{};
  Json pool = *cached;
  if (runtime::IsBeingDeleted(pool)) return ReconcileResult{};  // children go by owner reference
  std::string name = kube::NameOf(pool);
  auto spec = ParsePoolSpec(pool);
  if (!spec.ok()) {
    GRANARY_TRY(Degrade(res::kStoragePools, pool, spec.status()));
    return ReconcileResult{};
  }
  auto cluster = CachedCluster(spec->cluster_namespace, spec->cluster_name);
  if (!cluster || runtime::IsBeingDeleted(*cluster)) {
    GRANARY_TRY(WriteStatus(res::kStoragePools, pool,
                            {{runtime::kReady, "False", "ClusterNotFound",
                              fmt::format("StorageCluster {}/{} does not exist",
                                          spec->cluster_namespace, spec->cluster_name)}},
                            {{"health", "Progressing"}}));
    return ReconcileResult{};  // the cluster's informer enqueues every pool when it appears
  }
  auto cluster_spec = ParseClusterSpec(*cluster);
  if (!cluster_spec.ok()) {
    GRANARY_TRY(
        WriteStatus(res::kStoragePools, pool,
                    {{runtime::kReady, "False", "ClusterInvalid", cluster_spec.status().message()}},
                    {{"health", "Progressing"}}));
    return ReconcileResult{};
  }

  std::map<std::string, std::string> topology;
  for (const auto& node : nodes_->List())
    if (NodeMatches(node, spec->node_selector))
      topology[kube::NameOf(node)] = TopologyLabels(node, *spec, name);
  GRANARY_TRY(
      Apply(res::kConfigMaps, DatanodeTopologyConfigMap(pool, *spec, topology), pool, pool));
  GRANARY_TRY(
      Apply(res::kDaemonSets, DatanodeDaemonSet(pool, *spec, *cluster_spec, *cluster), pool, pool));
  GRANARY_TRY(Apply(resources::kStorageClasses, PoolStorageClass(pool, *spec), pool, pool));

  // The pool in the metanode: created once; the metanode has no pool update, so drift is reported.
  auto meta_or = Meta(*cluster);
  if (!meta_or.ok()) return meta_or.status();
  client::MetaClient* meta = *meta_or;
  granary::PoolSpec want = MetaPoolSpec(name, *spec);
  bool in_metanode = false;
  uint32_t pool_id = 0;
  std::optional<std::string> drift;
  Status meta_status;
  auto pools = meta->PoolList();
  if (pools.ok()) {
    for (const auto& p : *pools) {
      if (p.name() == name) {
        in_metanode = true;
        pool_id = p.id();
        drift = PoolDrift(want, p);
      }
    }
    if (!in_metanode) {
      auto created = meta->PoolCreate(want);
      if (created.ok() || created.status().code() == Code::ALREADY_EXISTS) {
        in_metanode = true;
        if (created.ok()) pool_id = created->id();
        m_.events()
            .Normal(pool, "PoolCreated", "pool " + name + " created in the metanode")
            .PermitUnchecked();
      } else {
        meta_status = created.status();
      }
    }
  } else {
    meta_status = pools.status();
  }

  uint64_t capacity = 0, used = 0;
  std::optional<granary::PoolPlacement> placement;  // the metanode's: is the pool in its PG map?
  BadCopies bad;
  if (in_metanode) {
    auto cs = meta->ClusterStatus();
    if (cs.ok()) {
      for (const auto& n : cs->nodes()) {
        auto it = n.labels().find("pool");
        if (it != n.labels().end() && it->second == name) {
          capacity += n.capacity_bytes();
          used += n.used_bytes();
        }
      }
      for (const auto& p : cs->pools())
        if (p.name() == name) placement = p;
      bad = BadCopiesOf(*cs, pool_id);
    }
  }
  PoolHealth h =
      PoolHealthOf(daemonsets_->Get(kube::MakeKey(spec->cluster_namespace,
                                                  spec->cluster_name + "-datanode-" + name)),
                   in_metanode, placement ? &*placement : nullptr, bad);
  // Bad copies leave the pool serving (Ready) while its health says Degraded.
  bool ready = in_metanode && (h.health == "Healthy" || h.reason == "BadCopies");
  Condition ready_condition{runtime::kReady, ready ? "True" : "False", h.reason, h.message};
  if (!meta_status.ok())
    ready_condition = {runtime::kReady, "False", "MetanodeUnavailable",
                       "metanode: " + meta_status.ToString()};
  Condition degraded{runtime::kDegraded, "False", "SpecValid", "the spec is valid"};
  if (drift) {
    degraded = {runtime::kDegraded, "True", "SpecDrift", *drift};
  } else if (h.reason == "NotPlaced") {
    degraded = {runtime::kDegraded, "True", "NotPlaced", h.message};
  }
  if (degraded.status == "True") {
    auto prior = runtime::FindCondition(pool, runtime::kDegraded);
    if (!prior || prior->value("message", "") != degraded.message)
      m_.events().Warning(pool, degraded.reason, degraded.message).PermitUnchecked();
  }
  GRANARY_TRY(WriteStatus(res::kStoragePools, pool, {ready_condition, degraded},
                          {{"datanodesDesired", h.desired},
                           {"datanodesReady", h.ready},
                           {"capacityBytes", capacity},
                           {"usedBytes", used},
                           {"badCopies", bad.copies},
                           {"pgsWithBadCopies", bad.pgs},
                           {"health", h.health},
                           {"storageClass", "granary-" + name}}));
  if (!meta_status.ok()) return meta_status.WithContext("pool " + name);
  return ReconcileResult{options_.pool_poll};
}

// ------------------------------------------------------------------ Bucket

Result<ReconcileResult> Operator::ReconcileBucket(const std::string& key) {
  auto cached = buckets_->Get(key);
  if (!cached) return ReconcileResult{};
  Json b = *cached;
  // Named copies, not structured bindings: lambdas below capture them (clang 14 refuses bindings).
  const auto [key_ns, key_name] = kube::SplitKey(key);
  const std::string ns = key_ns, name = key_name;
  auto spec = ParseBucketSpec(b);
  std::string access_key = StatusOf(b).value("accessKeyId", "");

  auto release = [&]() -> Result<ReconcileResult> {
    auto released = client_.Modify(res::kBuckets, ns, name, [](Json& o) {
      runtime::RemoveFinalizer(o, kBucketFinalizer);
      return Status::Ok();
    });
    if (!released.ok() && released.status().code() != Code::NOT_FOUND) return released.status();
    return ReconcileResult{};
  };

  // Resolve pool → cluster → metanode.
  std::optional<Json> pool, cluster;
  std::optional<PoolSpec> pool_spec;
  if (spec.ok()) pool = pools_->Get(spec->pool);
  if (pool) {
    auto ps = ParsePoolSpec(*pool);
    if (ps.ok()) {
      pool_spec = *ps;
      cluster = CachedCluster(ps->cluster_namespace, ps->cluster_name);
    }
  }

  if (runtime::IsBeingDeleted(b)) {
    if (!runtime::HasFinalizer(b, kBucketFinalizer)) return ReconcileResult{};
    if (spec.ok()) {
      BucketDeletion plan = PlanBucketDeletion(*spec);
      if ((plan.delete_bucket || plan.delete_key) && StatusOf(b).value("bucketCreated", false)) {
        if (!cluster)
          return Unavailable(fmt::format(
              "bucket {}: its deletion needs the metanode but its pool/cluster is gone; retrying",
              key));
        auto meta_or = Meta(*cluster);
        if (!meta_or.ok()) return meta_or.status();
        client::MetaClient* meta = *meta_or;
        if (plan.delete_bucket) {
          // Only a bucket this namespace owns: a Bucket never deletes someone else's. And Retain
          // never deletes data: past an export's record, only Delete removes an owned volume.
          auto existing = meta->BucketGet(spec->bucket_name);
          if (!existing.ok() && existing.status().code() != Code::NOT_FOUND)
            return existing.status().WithContext("bucket " + spec->bucket_name);
          if (existing.ok() && ClaimBucket(*existing, ns, access_key).allowed &&
              (spec->reclaim_policy == "Delete" || !existing->owns_volume())) {
            Status s = meta->BucketDelete(spec->bucket_name);
            if (!Ignorable(s, Code::NOT_FOUND)) {
              m_.events().Warning(b, "DeleteFailed", s.ToString()).PermitUnchecked();
              return s.WithContext("delete bucket " + spec->bucket_name);
            }
            m_.events()
                .Normal(
                    b, "Deleted",
                    "bucket " + spec->bucket_name + " deleted from the metanode" +
                        (spec->from_volume_claim.empty() ? ""
                                                         : " (the exported volume of PVC " +
                                                               spec->from_volume_claim + " stays)"))
                .PermitUnchecked();
          }
        }
        if (plan.delete_key && !access_key.empty()) {
          Status s = meta->KeyDelete(access_key);
          // PreconditionFailed: the key still owns a bucket (this namespace's, adopted by
          // another Bucket): it stays with the bucket.
          if (!Ignorable(s, Code::NOT_FOUND) && s.code() != Code::PRECONDITION_FAILED)
            return s.WithContext("delete key");
        }
      }
      Status s = client_.Delete(res::kSecrets, ns, spec->secret_name);
      if (!Ignorable(s, Code::NOT_FOUND)) return s;
    }
    return release();
  }

  if (!runtime::HasFinalizer(b, kBucketFinalizer)) {
    auto added = client_.Modify(res::kBuckets, ns, name, [](Json& o) {
      runtime::AddFinalizer(o, kBucketFinalizer);
      return Status::Ok();
    });
    if (!added.ok()) return added.status();
  }
  if (!spec.ok()) {
    GRANARY_TRY(Degrade(res::kBuckets, b, spec.status()));
    return ReconcileResult{};
  }
  auto waiting = [&](const std::string& reason, const std::string& msg) -> Result<ReconcileResult> {
    GRANARY_TRY(
        WriteStatus(res::kBuckets, b, {{runtime::kReady, "False", reason, msg}}, Json::object()));
    return ReconcileResult{};
  };
  if (!pool) return waiting("PoolNotFound", "StoragePool " + spec->pool + " does not exist");
  if (!pool_spec || !cluster)
    return waiting("ClusterNotFound", "the pool's StorageCluster is not available");

  // A volume exported from a PVC of this namespace (never deleted with the bucket).
  std::string volume;
  if (!spec->from_volume_claim.empty()) {
    auto pvc = client_.Get(res::kPersistentVolumeClaims, ns, spec->from_volume_claim);
    if (!pvc.ok()) {
      if (pvc.status().code() != Code::NOT_FOUND) return pvc.status();
      return waiting("VolumeNotFound",
                     "PersistentVolumeClaim " + spec->from_volume_claim + " not found");
    }
    std::string pv_name = (*pvc).value("spec", Json::object()).value("volumeName", "");
    if (pv_name.empty())
      return waiting("VolumeNotBound",
                     "PersistentVolumeClaim " + spec->from_volume_claim + " is not bound yet");
    auto pv = client_.Get(resources::kPersistentVolumes, "", pv_name);
    if (!pv.ok()) return pv.status().WithContext("PersistentVolume " + pv_name);
    Json csi = (*pv).value("spec", Json::object()).value("csi", Json::object());
    if (csi.value("driver", "") != kCsiDriverName) {
      GRANARY_TRY(Degrade(res::kBuckets, b,
                          InvalidArgument("spec.fromVolume: " + spec->from_volume_claim +
                                          " is not a Granary volume")));
      return ReconcileResult{};
    }
    volume = csi.value("volumeHandle", "");
  }

  auto meta_or = Meta(*cluster);
  if (!meta_or.ok()) return meta_or.status();
  client::MetaClient* meta = *meta_or;
  // A bucket that already exists must be this namespace's before anything is handed out: a
  // Bucket naming another namespace's bucket gets no key, no grant and no Secret.
  auto existing = meta->BucketGet(spec->bucket_name);
  if (!existing.ok() && existing.status().code() != Code::NOT_FOUND)
    return existing.status().WithContext("bucket");
  if (existing.ok()) {
    BucketClaim claim = ClaimBucket(*existing, ns, access_key);
    if (!claim.allowed) {
      // Left over from an operator that did not check: take back what it handed out.
      if (!access_key.empty()) {
        for (const auto& g : existing->grants()) {
          if (g.access_key() != access_key) continue;
          auto revoked = meta->BucketGrant(spec->bucket_name, access_key, ACCESS_NONE);
          if (!revoked.ok()) return revoked.status().WithContext("revoke grant");
        }
      }
      Status s = client_.Delete(res::kSecrets, ns, spec->secret_name);
      if (!Ignorable(s, Code::NOT_FOUND)) return s;
      GRANARY_TRY(Degrade(res::kBuckets, b, Status(Code::PERMISSION_DENIED, claim.message),
                          "BucketOwnedElsewhere"));
      return ReconcileResult{};  // a spec edit (another bucketName) brings it back
    }
  }
  // The key first, recorded in status before anything uses it, so a crash never leaks keys.
  std::string secret_key;
  if (!access_key.empty()) {
    auto k = meta->KeyGetSecret(access_key);
    if (k.ok()) {
      secret_key = k->secret_key();
    } else if (k.status().code() != Code::NOT_FOUND) {
      return k.status().WithContext("access key");
    } else {
      access_key.clear();
    }
  }
  if (access_key.empty()) {
    auto k = meta->KeyCreate("bucket:" + ns + "/" + name);
    if (!k.ok()) return k.status().WithContext("create access key");
    access_key = k->access_key();
    secret_key = k->secret_key();
    GRANARY_TRY(WriteStatus(res::kBuckets, b,
                            {{runtime::kReady, "False", "Creating", "access key created"}},
                            {{"accessKeyId", access_key}}));
  }
  if (!existing.ok()) {
    BucketCreateRequest req;
    req.set_name(spec->bucket_name);
    req.set_owner(access_key);
    req.set_volume(volume);
    req.set_pool(spec->pool);
    req.set_owner_namespace(ns);
    req.set_owner_uid(kube::UidOf(b));
    auto created = meta->BucketCreate(std::move(req));
    if (!created.ok()) {
      // AlreadyExists: someone created it since the check above; look at whose it is again.
      return created.status().WithContext("create bucket " + spec->bucket_name);
    }
    m_.events()
        .Normal(b, "BucketCreated", "bucket " + spec->bucket_name + " created in the metanode")
        .PermitUnchecked();
  } else if (existing->owner() != access_key) {
    // This namespace's bucket made by an earlier Bucket (kept by Retain): share it.
    bool granted = false;
    for (const auto& g : existing->grants())
      granted |= g.access_key() == access_key && g.access() == READ_WRITE;
    if (!granted) {
      auto g = meta->BucketGrant(spec->bucket_name, access_key, READ_WRITE);
      if (!g.ok()) return g.status().WithContext("grant");
    }
  }
  if (spec->quota_bytes > 0 && volume.empty()) {
    auto v = meta->VolumeGet(spec->bucket_name);
    if (v.ok() && v->quota_bytes() != static_cast<uint64_t>(spec->quota_bytes)) {
      auto q = meta->VolumeSetQuota(spec->bucket_name, static_cast<uint64_t>(spec->quota_bytes),
                                    v->quota_inodes());
      if (!q.ok()) return q.status().WithContext("quota");
    }
  }
  GRANARY_TRY(Apply(res::kSecrets,
                    BucketSecret(b, *spec, access_key, secret_key, S3Endpoint(*cluster)), b, b));
  GRANARY_TRY(
      WriteStatus(res::kBuckets, b,
                  {{runtime::kReady, "True", "BucketReady",
                    "bucket " + spec->bucket_name + " and Secret " + spec->secret_name + " ready"},
                   {runtime::kDegraded, "False", "SpecValid", "the spec is valid"}},
                  {{"accessKeyId", access_key},
                   {"bucketName", spec->bucket_name},
                   {"bucketCreated", true},
                   {"secretName", spec->secret_name},
                   {"endpoint", S3Endpoint(*cluster)}}));
  return ReconcileResult{};
}

}  // namespace granary::operators
