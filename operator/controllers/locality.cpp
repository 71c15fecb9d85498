// Locality on Kubernetes (docs/locality.md): DatasetWarmup → a metanode warm-up; pods behind the
// `granary.io/locality` scheduling gate → released with a preferred node affinity toward the
// hosts holding their data.
#include "operator/controllers/locality.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "common/log.h"
#include "operator/controllers/json_fields.h"
#include "operator/controllers/operator.h"

namespace granary::operators {

namespace res = kube::resources;
using runtime::Condition;
using runtime::ReconcileResult;

namespace {
// A reconcile waits this long for a warm-up call (a walk of the volume when listing) before the
// key goes back to the queue: one slow or dead metanode must not hold the worker for minutes.
constexpr std::chrono::milliseconds kWarmupCallBudget{30000};
}  // namespace

// ------------------------------------------------------------------ decisions

Result<DatasetWarmupSpec> ParseDatasetWarmupSpec(const Json& warmup) {
  DatasetWarmupSpec s;
  const Json spec = warmup.value("spec", Json::object());
  s.claim_name = spec.value("claimName", "");
  if (s.claim_name.empty()) {
    return InvalidArgument("spec.claimName: the PersistentVolumeClaim to warm is required");
  }
  s.path = spec.value("path", "");
  const Json selector = spec.value("nodeSelector", Json::object());
  for (const auto& [k, v] : selector.items()) {
    if (v.is_string()) s.node_selector[k] = v.get<std::string>();
  }
  for (const auto& n : spec.value("nodes", Json::array())) {
    if (n.is_string() && !n.get<std::string>().empty()) s.nodes.push_back(n.get<std::string>());
  }
  if (s.node_selector.empty() && s.nodes.empty()) {
    return InvalidArgument("spec.nodeSelector or spec.nodes: say which nodes to warm");
  }
  return s;
}

std::string MetaWarmupName(const Json& warmup) {
  return kube::NamespaceOf(warmup) + "/" + kube::NameOf(warmup);
}

std::vector<std::string> WarmupHosts(const DatasetWarmupSpec& spec,
                                     const std::vector<Json>& nodes) {
  std::vector<std::string> hosts = spec.nodes;
  if (!spec.node_selector.empty()) {
    for (const Json& n : nodes) {
      if (NodeMatches(n, spec.node_selector)) hosts.push_back(kube::NameOf(n));
    }
  }
  std::sort(hosts.begin(), hosts.end());
  hosts.erase(std::unique(hosts.begin(), hosts.end()), hosts.end());
  return hosts;
}

namespace {

std::string Percent(uint64_t done, uint64_t total) {
  return total == 0 ? "100.0%" : fmt::format("{:.1f}%", 100.0 * done / total);
}

}  // namespace

WarmupStatus WarmupStatusOf(const granary::Warmup& w) {
  WarmupStatus s;
  const char* phase = "Copying";
  switch (w.state()) {
    case WARMUP_READY:
      phase = "Ready";
      s.ready = "True";
      s.reason = "Warm";
      s.message = fmt::format("every block of {} has a copy on each of {} nodes",
                              w.path().empty() ? "/" : w.path(), w.hosts_size());
      break;
    case WARMUP_STOPPED:
      phase = "Stopped";
      s.ready = "False";
      s.reason = "Stopped";
      s.message = w.message();
      s.stopped = true;
      break;
    case WARMUP_DELETING:
      phase = "Deleting";
      s.ready = "False";
      s.reason = "Deleting";
      s.message = "the warm copies are being removed";
      break;
    default:
      s.ready = "False";
      s.reason = "Copying";
      s.message = fmt::format("{} of the data is local to the chosen nodes{}",
                              Percent(w.done_bytes(), w.bytes()),
                              w.message().empty() ? "" : "; " + w.message());
      break;
  }
  Json hosts = Json::array();
  for (const auto& h : w.host_progress()) {
    hosts.push_back({{"node", h.host()},
                     {"progress", Percent(h.local_bytes() + h.warm_bytes(), h.bytes())},
                     {"bytes", h.bytes()},
                     {"localBytes", h.local_bytes()},
                     {"warmBytes", h.warm_bytes()}});
  }
  s.fields = {{"phase", phase},        {"progress", Percent(w.done_bytes(), w.bytes())},
              {"bytes", w.bytes()},    {"doneBytes", w.done_bytes()},
              {"copies", w.copies()},  {"warmupName", w.name()},
              {"volume", w.volume()},  {"nodes", hosts},
              {"message", w.message()}};
  return s;
}

namespace {

void SortShares(std::vector<HostShare>& shares) {
  std::stable_sort(shares.begin(), shares.end(), [](const HostShare& a, const HostShare& b) {
    return a.bytes != b.bytes ? a.bytes > b.bytes : a.host < b.host;
  });
  shares.erase(std::remove_if(shares.begin(), shares.end(),
                              [](const HostShare& s) { return s.bytes == 0 || s.host == "-"; }),
               shares.end());
}

int64_t Weight(uint64_t bytes, uint64_t total) {
  if (total == 0) return 1;
  const double w = std::round(100.0 * static_cast<double>(bytes) / static_cast<double>(total));
  return std::clamp<int64_t>(static_cast<int64_t>(w), 1, 100);
}

}  // namespace

Json LocalityPreferredTerms(std::vector<HostShare> shares, uint64_t total) {
  SortShares(shares);
  Json terms = Json::array();
  for (size_t i = 0; i < shares.size() && i < kMaxLocalityTerms; ++i) {
    // matchFields on metadata.name: the Granary host label is the node's name (the operator
    // writes host=<node> into the datanodes' topology), and node labels may differ from it.
    terms.push_back(
        {{"weight", Weight(shares[i].bytes, total)},
         {"preference",
          {{"matchFields", Json::array({{{"key", "metadata.name"},
                                         {"operator", "In"},
                                         {"values", Json::array({shares[i].host})}}})}}}});
  }
  return terms;
}

std::string LocalitySummary(std::vector<HostShare> shares, uint64_t total) {
  SortShares(shares);
  std::string out;
  for (size_t i = 0; i < shares.size() && i < kMaxLocalityTerms; ++i) {
    out += fmt::format("{}{}={}%", out.empty() ? "" : ",", shares[i].host,
                       total == 0 ? 0 : std::llround(100.0 * shares[i].bytes / total));
  }
  return out;
}

bool HasLocalityGate(const Json& pod) {
  for (const auto& g : pod.value("spec", Json::object()).value("schedulingGates", Json::array())) {
    if (g.value("name", "") == kLocalityGate) return true;
  }
  return false;
}

bool ReleaseWithHint(Json& pod, const Json& terms, const std::string& annotation) {
  bool changed = false;
  Json& spec = pod["spec"];
  if (spec.contains("schedulingGates") && spec["schedulingGates"].is_array()) {
    Json kept = Json::array();
    for (const auto& g : spec["schedulingGates"]) {
      if (g.value("name", "") != kLocalityGate) kept.push_back(g);
    }
    if (kept.size() != spec["schedulingGates"].size()) changed = true;
    if (kept.empty()) {
      spec.erase("schedulingGates");
    } else {
      spec["schedulingGates"] = kept;
    }
  }
  if (!terms.empty()) {
    // Preferred terms may be changed on a gated pod (Kubernetes' mutable scheduling directives:
    // "all updates are allowed" for preferredDuringSchedulingIgnoredDuringExecution); required
    // ones are never touched.
    Json& preferred =
        spec["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"];
    if (!preferred.is_array()) preferred = Json::array();
    for (const auto& t : terms) {
      if (std::find(preferred.begin(), preferred.end(), t) == preferred.end()) {
        preferred.push_back(t);
        changed = true;
      }
    }
  }
  Json& annotations = pod["metadata"]["annotations"];
  if (!annotations.is_object()) annotations = Json::object();
  if (annotations.value(kLocalityAnnotation, "") != annotation) {
    annotations[kLocalityAnnotation] = annotation;
    changed = true;
  }
  return changed;
}

// ------------------------------------------------------------------ wiring

void Operator::AddLocalityControllers() {
  kube::ReflectorOptions scoped;
  scoped.ns = options_.ns;
  warmups_ = &m_.AddInformer(resources::kDatasetWarmups, scoped);
  kube::ReflectorOptions gated = scoped;
  gated.label_selector = kLocalityLabel;  // only pods that ask for the hint
  gated_pods_ = &m_.AddInformer(res::kPods, gated);

  runtime::ControllerOptions wo;
  wo.name = "datasetwarmup";
  auto& wc = m_.AddController(wo, [this](const std::string& k) { return ReconcileWarmup(k); });
  wc.For(*warmups_);
  // Nodes joining or relabelled change which hosts a selector names.
  auto all_warmups = [this, &wc](const Json&) {
    for (const auto& k : warmups_->Keys()) wc.Enqueue(k);
  };
  nodes_->AddHandler(
      {all_warmups, [all_warmups](const Json&, const Json& n) { all_warmups(n); }, all_warmups});

  runtime::ControllerOptions po;
  po.name = "locality";
  auto& pc = m_.AddController(po, [this](const std::string& k) { return ReconcileLocalityPod(k); });
  pc.For(*gated_pods_);
}

Result<Operator::ClaimVolume> Operator::VolumeOfClaim(const std::string& ns,
                                                      const std::string& claim) {
  ClaimVolume out;
  auto pvc = client_.Get(res::kPersistentVolumeClaims, ns, claim);
  if (!pvc.ok()) {
    if (pvc.status().code() != Code::NOT_FOUND) return pvc.status();
    out.why = "PersistentVolumeClaim " + claim + " not found";
    return out;
  }
  const std::string pv_name = pvc->value("spec", Json::object()).value("volumeName", "");
  if (pv_name.empty()) {
    out.why = "PersistentVolumeClaim " + claim + " is not bound yet";
    return out;
  }
  auto pv = client_.Get(resources::kPersistentVolumes, "", pv_name);
  if (!pv.ok()) return pv.status().WithContext("PersistentVolume " + pv_name);
  const Json spec = pv->value("spec", Json::object());
  const Json csi = spec.value("csi", Json::object());
  if (csi.value("driver", "") != kCsiDriverName) {
    out.why = "PersistentVolumeClaim " + claim + " is not a Granary volume";
    return out;
  }
  out.volume = csi.value("volumeHandle", "");
  // Which StorageCluster serves it: the StorageClass's pool names its cluster; a static PV
  // (no class) belongs to the cluster running the one CSI driver.
  const std::string sc_name = spec.value("storageClassName", "");
  if (!sc_name.empty()) {
    auto sc = client_.Get(resources::kStorageClasses, "", sc_name);
    if (sc.ok()) {
      const std::string pool = sc->value("parameters", Json::object()).value("pool", "");
      if (auto p = pools_->Get(pool)) {
        auto ps = ParsePoolSpec(*p);
        if (ps.ok()) out.cluster = CachedCluster(ps->cluster_namespace, ps->cluster_name);
      }
    }
  }
  if (!out.cluster) {
    for (const Json& c : clusters_->List()) {
      auto cs = ParseClusterSpec(c);
      if (cs.ok() && cs->csi_enabled) out.cluster = c;
    }
  }
  if (!out.cluster && !options_.meta_override.empty()) out.cluster = Json::object();
  if (!out.cluster) {
    out.why = "no StorageCluster serves PersistentVolume " + pv_name;
    out.volume.clear();
  }
  return out;
}

// ------------------------------------------------------------------ DatasetWarmup

Result<ReconcileResult> Operator::ReconcileWarmup(const std::string& key) {
  auto cached = warmups_->Get(key);
  if (!cached) return ReconcileResult{};
  Json dw = *cached;
  const auto [key_ns, key_name] = kube::SplitKey(key);
  const std::string ns = key_ns, name = key_name;
  const std::string meta_name = MetaWarmupName(dw);
  const kube::Resource& r = resources::kDatasetWarmups;
  auto spec = ParseDatasetWarmupSpec(dw);

  // The cluster it went to is remembered in status, so a deletion finds it after the PVC is gone.
  auto cluster_of = [&]() -> std::optional<Json> {
    const std::string c = StatusOf(dw).value("cluster", "");
    if (!c.empty()) {
      auto [cns, cname] = kube::SplitKey(c);
      if (auto cached_cluster = CachedCluster(cns, cname)) return cached_cluster;
    }
    // An operator told where the metanode is (--meta) needs no cluster to find it.
    if (!options_.meta_override.empty()) return Json::object();
    return std::nullopt;
  };

  if (runtime::IsBeingDeleted(dw)) {
    if (!runtime::HasFinalizer(dw, kWarmupFinalizer)) return ReconcileResult{};
    if (!StatusOf(dw).value("warmupName", "").empty()) {
      auto cluster = cluster_of();
      if (!cluster) {
        return Unavailable(fmt::format(
            "DatasetWarmup {}: its deletion needs the metanode but its StorageCluster is gone; "
            "retrying",
            key));
      }
      auto meta = Meta(*cluster);
      if (!meta.ok()) return meta.status();
      Status s = (*meta)->WarmupDelete(meta_name, kWarmupCallBudget);
      if (!s.ok() && s.code() != Code::NOT_FOUND) return s.WithContext("delete warm-up");
      m_.events()
          .Normal(dw, "WarmupDeleted", "warm-up " + meta_name + " deleted; its copies are removed")
          .PermitUnchecked();
    }
    auto released = client_.Modify(r, ns, name, [](Json& o) {
      runtime::RemoveFinalizer(o, kWarmupFinalizer);
      return Status::Ok();
    });
    if (!released.ok() && released.status().code() != Code::NOT_FOUND) return released.status();
    return ReconcileResult{};
  }
  if (!runtime::HasFinalizer(dw, kWarmupFinalizer)) {
    auto added = client_.Modify(r, ns, name, [](Json& o) {
      runtime::AddFinalizer(o, kWarmupFinalizer);
      return Status::Ok();
    });
    if (!added.ok()) return added.status();
  }
  if (!spec.ok()) {
    GRANARY_TRY(Degrade(r, dw, spec.status()));
    return ReconcileResult{};
  }
  auto pending = [&](const std::string& reason,
                     const std::string& message) -> Result<ReconcileResult> {
    GRANARY_TRY(WriteStatus(r, dw, {{runtime::kReady, "False", reason, message}},
                            {{"phase", "Pending"}, {"message", message}}));
    return ReconcileResult{options_.cluster_poll};  // PVC binding has no watch here
  };
  auto volume = VolumeOfClaim(ns, spec->claim_name);
  GRANARY_TRY(volume);
  if (volume->volume.empty()) return pending("VolumeNotReady", volume->why);
  const std::vector<std::string> hosts = WarmupHosts(*spec, nodes_->List());
  if (hosts.empty()) {
    return pending("NoNodes", "no node matches spec.nodeSelector / spec.nodes");
  }
  auto meta_or = Meta(*volume->cluster);
  if (!meta_or.ok()) return meta_or.status();
  client::MetaClient* meta = *meta_or;
  auto created =
      meta->WarmupCreate(meta_name, volume->volume, spec->path, hosts, kWarmupCallBudget);
  if (!created.ok()) {
    if (created.status().code() == Code::ALREADY_EXISTS &&
        created.status().message().find("being deleted") == std::string::npos) {
      // The claim or path changed: the old warm-up goes first, the new one follows.
      Status s = meta->WarmupDelete(meta_name, kWarmupCallBudget);
      if (!s.ok() && s.code() != Code::NOT_FOUND) return s;
      return Unavailable("warm-up " + meta_name + " is being replaced");
    }
    if (created.status().code() == Code::ALREADY_EXISTS) return created.status();
    if (created.status().code() == Code::INVALID_ARGUMENT ||
        created.status().code() == Code::NOT_FOUND) {
      GRANARY_TRY(Degrade(r, dw, created.status(), "WarmupRefused"));
      return ReconcileResult{options_.cluster_poll};
    }
    return created.status().WithContext("create warm-up " + meta_name);
  }
  if (StatusOf(dw).value("warmupName", "").empty()) {
    m_.events()
        .Normal(dw, "WarmupCreated",
                fmt::format("warm-up {} of volume {} on {} nodes", meta_name, volume->volume,
                            hosts.size()))
        .PermitUnchecked();
  }
  auto listed = meta->WarmupList(meta_name, kWarmupCallBudget);
  GRANARY_TRY(listed);
  if (listed->empty()) return Unavailable("warm-up " + meta_name + " not listed");
  WarmupStatus st = WarmupStatusOf(listed->front());
  Json fields = st.fields;
  fields["cluster"] = kube::KeyOf(*volume->cluster);
  Condition degraded{runtime::kDegraded, "False", "SpecValid", "the spec is valid"};
  if (st.stopped) {
    degraded = {runtime::kDegraded, "True", "Stopped", st.message};
    auto prior = runtime::FindCondition(dw, runtime::kDegraded);
    if (!prior || prior->value("message", "") != st.message) {
      m_.events().Warning(dw, "WarmupStopped", st.message).PermitUnchecked();
    }
  }
  GRANARY_TRY(
      WriteStatus(r, dw, {{runtime::kReady, st.ready, st.reason, st.message}, degraded}, fields));
  // Progress has no watch: read it again soon while copying, now and then once ready (new
  // files get their copies and the status says so).
  const bool copying = fields.value("phase", "") == "Copying";
  return ReconcileResult{copying ? options_.warmup_poll : options_.cluster_poll};
}

// ------------------------------------------------------------------ scheduling hint

Result<ReconcileResult> Operator::ReconcileLocalityPod(const std::string& key) {
  auto cached = gated_pods_->Get(key);
  if (!cached || !HasLocalityGate(*cached)) {
    std::lock_guard lock(gated_mu_);
    gated_since_.erase(key);
    return ReconcileResult{};
  }
  Json pod = *cached;
  const auto [key_ns, key_name] = kube::SplitKey(key);
  const std::string ns = key_ns, name = key_name;
  std::chrono::steady_clock::time_point since;
  {
    std::lock_guard lock(gated_mu_);
    since = gated_since_.try_emplace(key, std::chrono::steady_clock::now()).first->second;
  }
  std::map<std::string, uint64_t> bytes;  // host -> bytes readable there
  uint64_t total = 0;
  std::string notes;
  Status failed = Status::Ok();
  for (const auto& v : pod.value("spec", Json::object()).value("volumes", Json::array())) {
    const std::string claim =
        v.value("persistentVolumeClaim", Json::object()).value("claimName", "");
    if (claim.empty()) continue;
    auto volume = VolumeOfClaim(ns, claim);
    if (!volume.ok()) {
      failed = volume.status();
      break;
    }
    if (volume->volume.empty()) {
      notes += (notes.empty() ? "" : "; ") + volume->why;
      continue;
    }
    auto meta = Meta(*volume->cluster);
    if (!meta.ok()) {
      failed = meta.status();
      break;
    }
    // Within what is left of the gate's time: past it the pod goes without a hint.
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        options_.locality_gate_timeout - (std::chrono::steady_clock::now() - since));
    auto loc = (*meta)->VolumeLocality(volume->volume, "",
                                       std::max(left, std::chrono::milliseconds(1000)));
    if (!loc.ok()) {
      failed = loc.status().WithContext("locality of volume " + volume->volume);
      break;
    }
    total += loc->logical_bytes();
    for (const auto& h : loc->hosts()) bytes[h.name()] += h.local_bytes();
  }
  std::vector<HostShare> shares;
  for (const auto& [host, b] : bytes) shares.push_back({host, b});
  Json terms = Json::array();
  std::string annotation;
  if (!failed.ok()) {
    // The metanode cannot say: wait a little, then let the pod run anywhere.
    if (std::chrono::steady_clock::now() - since < options_.locality_gate_timeout) {
      return failed;  // retried with back-off
    }
    annotation = "unknown: " + failed.message();
    m_.events()
        .Warning(pod, "LocalityUnavailable",
                 "released without a locality hint: " + failed.ToString())
        .PermitUnchecked();
  } else {
    terms = LocalityPreferredTerms(shares, total);
    annotation = LocalitySummary(shares, total);
    if (annotation.empty()) annotation = notes.empty() ? "no data yet" : "none: " + notes;
  }
  auto written = client_.Modify(res::kPods, ns, name, [&](Json& o) {
    ReleaseWithHint(o, terms, annotation);
    return Status::Ok();
  });
  if (!written.ok() && written.status().code() != Code::NOT_FOUND) return written.status();
  if (written.ok()) {
    m_.events()
        .Normal(pod, "LocalityHint",
                terms.empty() ? "released without a preference (" + annotation + ")"
                              : "prefers the nodes holding its data: " + annotation)
        .PermitUnchecked();
  }
  std::lock_guard lock(gated_mu_);
  gated_since_.erase(key);
  return ReconcileResult{};
}

}  // namespace granary::operators
