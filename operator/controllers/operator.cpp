#include "operator/controllers/operator.h"

#include <fmt/format.h>

#include "common/log.h"
#include "operator/runtime/apply.h"

namespace granary::operators {

namespace res = kube::resources;
using runtime::Condition;
using runtime::ReconcileResult;

namespace {

int64_t Int(const Json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

Json StatusOf(const Json& o) {
  auto it = o.find("status");
  return it != o.end() && it->is_object() ? *it : Json::object();
}

runtime::ControllerOptions Named(const char* name) {
  runtime::ControllerOptions o;
  o.name = name;
  return o;
}

bool Ignorable(const Status& s, Code code) { return s.ok() || s.code() == code; }

}  // namespace

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

PoolHealth PoolHealthOf(const std::optional<Json>& ds, bool in_metanode) {
  PoolHealth h;
  if (ds) {
    Json st = StatusOf(*ds);
    h.desired = Int(st, "desiredNumberScheduled");
    h.ready = Int(st, "numberReady");
  }
  if (!in_metanode || !ds || Int(StatusOf(*ds), "observedGeneration") < kube::GenerationOf(*ds))
    h.health = "Progressing";
  else if (h.desired == 0 || h.ready < h.desired)
    h.health = h.ready == 0 ? "Progressing" : "Degraded";
  else
    h.health = "Healthy";
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

BucketDeletion PlanBucketDeletion(const BucketSpec& spec) {
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
  nodes_ = &m.AddInformer(res::kNodes);

  auto& cc = m.AddController(Named("storagecluster"),
                             [this](const std::string& k) { return ReconcileCluster(k); });
  cc.For(*clusters_);
  for (auto* i : {statefulsets_, deployments_, daemonsets_, &services})
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
}

std::string Operator::MetaAddressOf(const Json& cluster) const {
  return options_.meta_override.empty() ? MetanodeAddress(cluster) : options_.meta_override;
}

Result<client::MetaClient*> Operator::Meta(const Json& cluster) {
  std::string address = MetaAddressOf(cluster);
  std::lock_guard lock(meta_mu_);
  auto& c = meta_[address];
  if (!c) {
    client::MetaClientOptions o;
    o.address = address;
    o.deadline = options_.meta_deadline;
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

Status Operator::Degrade(const kube::Resource& r, const Json& cached, const Status& why) {
  auto prior = runtime::FindCondition(cached, runtime::kDegraded);
  if (!prior || prior->value("message", "") != why.message()) {
    m_.events().Warning(cached, "InvalidSpec", why.message()).PermitUnchecked();
  }
  return WriteStatus(
      r, cached,
      {{runtime::kDegraded, "True", "InvalidSpec", why.message()},
       {runtime::kReady, "False", "InvalidSpec", "the spec is invalid (see Degraded)"}},
      Json::object());
}

// ------------------------------------------------------------------ StorageCluster

Result<ReconcileResult> Operator::ReconcileCluster(const std::string& key) {
  auto cached = clusters_->Get(key);
  if (!cached) return ReconcileResult{};
  Json sc = *cached;
  auto [ns, name] = kube::SplitKey(key);
  std::string instance = ns + "." + name;
  if (runtime::IsBeingDeleted(sc)) {
    // The CSIDriver is cluster-scoped, so no owner reference can collect it.
    auto driver = client_.Get(resources::kCSIDrivers, "", kCsiDriverName);
    if (driver.ok() &&
        (*driver)["metadata"].value("labels", Json::object()).value("granary.io/cluster", "") ==
            instance) {
      Status s = client_.Delete(resources::kCSIDrivers, "", kCsiDriverName);
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
  GRANARY_TRY(Apply(res::kServices, MetanodeService(sc, *spec), sc, sc));
  GRANARY_TRY(Apply(res::kStatefulSets, MetanodeStatefulSet(sc, *spec), sc, sc));
  GRANARY_TRY(Apply(res::kServices, S3Service(sc, *spec), sc, sc));
  GRANARY_TRY(Apply(res::kDeployments, S3Deployment(sc, *spec), sc, sc));
  std::optional<Json> csi_controller, csi_node;
  if (spec->csi_enabled) {
    GRANARY_TRY(Apply(res::kDeployments, CsiControllerDeployment(sc, *spec), sc, sc));
    GRANARY_TRY(Apply(res::kDaemonSets, CsiNodeDaemonSet(sc, *spec), sc, sc));
    Json driver = CsiDriver(sc);
    auto live = client_.Get(resources::kCSIDrivers, "", kCsiDriverName);
    if (live.ok() &&
        (*live)["metadata"].value("labels", Json::object()).value("granary.io/cluster", "") !=
            instance) {
      GRANARY_TRY(Degrade(res::kStorageClusters, sc,
                          InvalidArgument("CSIDriver " + std::string(kCsiDriverName) +
                                          " belongs to another StorageCluster: one per Kubernetes "
                                          "cluster may run CSI (set spec.csi.enabled=false)")));
      return ReconcileResult{};
    }
    GRANARY_TRY(Apply(resources::kCSIDrivers, driver, Json(), sc));
    csi_controller = deployments_->Get(kube::MakeKey(ns, name + "-csi-controller"));
    csi_node = daemonsets_->Get(kube::MakeKey(ns, name + "-csi-node"));
  }
  Condition ready = ClusterReadiness(statefulsets_->Get(kube::MakeKey(ns, name + "-metanode")),
                                     deployments_->Get(kube::MakeKey(ns, name + "-s3")), *spec,
                                     csi_controller, csi_node);
  bool is_ready = ready.status == "True";
  GRANARY_TRY(WriteStatus(res::kStorageClusters, sc,
                          {ready,
                           {runtime::kProgressing, is_ready ? "False" : "True",
                            is_ready ? "Deployed" : "Deploying", ready.message},
                           {runtime::kDegraded, "False", "SpecValid", "the spec is valid"}},
                          {{"metanodeAddress", MetaAddressOf(sc)},
                           {"s3Endpoint", S3Endpoint(sc)},
                           {"phase", is_ready ? "Ready" : "Deploying"}}));
  return ReconcileResult{};
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
      bad = BadCopiesOf(*cs, pool_id);
    }
  }
  PoolHealth h =
      PoolHealthOf(daemonsets_->Get(kube::MakeKey(spec->cluster_namespace,
                                                  spec->cluster_name + "-datanode-" + name)),
                   in_metanode);
  bool ready = in_metanode && h.health == "Healthy";
  // Serving, but one fault closer to loss until the bad copies are replaced.
  if (h.health == "Healthy" && bad.copies > 0) h.health = "Degraded";
  std::string message = !meta_status.ok()
                            ? "metanode: " + meta_status.ToString()
                            : fmt::format("{}/{} datanodes ready", h.ready, h.desired);
  std::vector<Condition> conditions = {
      {runtime::kReady, ready ? "True" : "False",
       ready ? "DatanodesReady" : (!meta_status.ok() ? "MetanodeUnavailable" : "DatanodesNotReady"),
       message},
      {runtime::kDegraded, drift ? "True" : "False", drift ? "SpecDrift" : "SpecValid",
       drift ? *drift : "the spec is valid"}};
  GRANARY_TRY(WriteStatus(res::kStoragePools, pool, conditions,
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
              "bucket {}: reclaimPolicy Delete but its pool/cluster is gone; retrying", key));
        auto meta_or = Meta(*cluster);
        if (!meta_or.ok()) return meta_or.status();
        client::MetaClient* meta = *meta_or;
        if (plan.delete_bucket) {
          Status s = meta->BucketDelete(spec->bucket_name);
          if (!Ignorable(s, Code::NOT_FOUND)) {
            m_.events().Warning(b, "DeleteFailed", s.ToString()).PermitUnchecked();
            return s.WithContext("delete bucket " + spec->bucket_name);
          }
        }
        if (plan.delete_key && !access_key.empty()) {
          Status s = meta->KeyDelete(access_key);
          if (!Ignorable(s, Code::NOT_FOUND)) return s.WithContext("delete key");
        }
        m_.events()
            .Normal(b, "Deleted", "bucket " + spec->bucket_name + " deleted from the metanode")
            .PermitUnchecked();
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
  auto existing = meta->BucketGet(spec->bucket_name);
  if (!existing.ok()) {
    if (existing.status().code() != Code::NOT_FOUND) return existing.status().WithContext("bucket");
    auto created = meta->BucketCreate(spec->bucket_name, access_key, volume, spec->pool);
    if (!created.ok() && created.status().code() != Code::ALREADY_EXISTS)
      return created.status().WithContext("create bucket " + spec->bucket_name);
    m_.events()
        .Normal(b, "BucketCreated", "bucket " + spec->bucket_name + " created in the metanode")
        .PermitUnchecked();
  } else if (existing->owner() != access_key) {
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
