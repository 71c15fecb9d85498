// Repair on report, the holder's side (docs/maintenance.md "Repair on report"). The metanode
// keeps a durable record of every copy reported corrupt and sends this node the records of the
// copies it holds with each heartbeat reply. Each is quarantined at once (never served while
// recorded), verified against its stored CRCs, and when bad deleted and fetched from a good copy
// or rebuilt from K fragments — the repair pass's own code and throttle — then resolved. A
// reader's transient fault (the copy verifies good) changes nothing on disk.
#include <fmt/format.h>

#include "common/log.h"
#include "datanode/maintenance.h"
#include "datanode/maintenance_metrics.h"
#include "placement/placement.h"

namespace granary::datanode {

namespace {

using Clock = std::chrono::steady_clock;

// How long a resolved record is remembered: far longer than a heartbeat reply can be stale.
constexpr auto kResolvedMemory = std::chrono::minutes(2);

BlockKey KeyOfCopy(const SuspectCopy& copy) {
  BlockKey key;
  key.set_slice_id(copy.block().slice_id());
  key.set_block_index(copy.block().block_index());
  key.set_fragment(copy.fragment());
  return key;
}

}  // namespace

void Maintenance::ReportLocal(const BlockKey& key, const std::string& detail,
                              CorruptionSource source) {
  store_->Quarantine(key);
  {
    std::lock_guard lock(suspects_mu_);
    // A copy already recorded is being verified, and that verification caught it.
    if (offered_.contains(KeyOf(key))) return;
    local_.try_emplace(KeyOf(key), LocalFinding{detail, source});
  }
  Wake();
}

void Maintenance::OnHeartbeatReply(const HeartbeatReply& reply) {
  const uint32_t me = session_->node_id();
  bool fresh = false;
  std::vector<BlockKey> quarantine;
  {
    std::lock_guard lock(suspects_mu_);
    const auto now = Clock::now();
    std::erase_if(resolved_,
                  [&](const auto& e) { return now - e.second.second > kResolvedMemory; });
    std::map<Key, SuspectCopy> offered;
    for (const SuspectCopy& copy : reply.suspect_copies()) {
      if (copy.node_id() != me) continue;
      const Key key = KeyOf(KeyOfCopy(copy));
      auto done = resolved_.find(key);
      if (done != resolved_.end() && done->second.first == copy.reports()) continue;
      fresh = fresh || !offered_.contains(key);
      offered.emplace(key, copy);
      quarantine.push_back(KeyOfCopy(copy));
    }
    offered_ = std::move(offered);
    M().suspects.Set(static_cast<int64_t>(offered_.size() + local_.size()));
    // Not served from now on (a no-op for copies this node does not hold). Under the lock, so
    // that a resolve (which lifts it) cannot slip in between.
    for (const BlockKey& key : quarantine) {
      if (store_->Stat(key).ok()) store_->Quarantine(key);
    }
  }
  M().quarantined.Set(static_cast<int64_t>(store_->quarantined()));
  if (fresh) Wake();
  TakeWarmTasks(reply);
}

bool Maintenance::SuspectsWaiting() {
  std::lock_guard lock(suspects_mu_);
  return !local_.empty() || !offered_.empty();
}

void Maintenance::HandleLocalFindings() {
  std::map<Key, LocalFinding> found;
  {
    std::lock_guard lock(suspects_mu_);
    found.swap(local_);
  }
  for (auto& [k, finding] : found) {
    if (stopping()) break;
    BlockKey key;
    key.set_slice_id(std::get<0>(k));
    key.set_block_index(std::get<1>(k));
    key.set_fragment(std::get<2>(k));
    // The copy is known bad: gone now, fetched anew once the metanode records it. (A damaged
    // copy that cannot even be deleted stays quarantined.)
    Status del = store_->Delete(key);
    if (del.ok() || del.code() == Code::NOT_FOUND) {
      deleted_bad_.insert(k);
    } else {
      GLOG_WARN("event=corrupt_copy_delete_failed error=\"{}\"", del.ToString());
    }
    ReportCorruptionRequest report;
    report.set_node_id(session_->node_id());
    report.set_slice_id(key.slice_id());
    report.set_block_index(key.block_index());
    report.set_fragment(key.fragment());
    report.set_detail(finding.detail);
    report.set_source(finding.source);
    Status st = report.node_id() == 0 ? Unavailable("not registered yet")
                                      : session_->ReportCorruption(report);
    GLOG_WARN("event=corrupt_copy_found slice={} block={} fragment={} reported={} detail=\"{}\"",
              key.slice_id(), key.block_index(), key.fragment(), st.ok(), finding.detail);
    if (!st.ok()) {
      // Reported later; meanwhile a repair pass fetches the copy as it would any missing one.
      GLOG_WARN("event=report_corruption_failed error=\"{}\"", st.ToString());
      repair_wanted_ = true;
      std::lock_guard lock(suspects_mu_);
      local_.try_emplace(k, std::move(finding));
    }
  }
}

void Maintenance::HandleSuspects(const ClusterMap& map) {
  std::vector<SuspectCopy> todo;
  const auto now = Clock::now();
  {
    std::lock_guard lock(suspects_mu_);
    for (const auto& [key, copy] : offered_) {
      auto retry = retry_at_.find(key);
      if (retry == retry_at_.end() || retry->second <= now) todo.push_back(copy);
    }
  }
  if (todo.empty()) return;
  auto placement = placement::PlacementMap::Deserialize(map.placement());
  if (!placement.ok()) return;
  std::map<uint32_t, const NodeInfo*> nodes;
  for (const NodeInfo& n : map.nodes()) nodes[n.id()] = &n;
  for (const SuspectCopy& copy : todo) {
    if (stopping()) return;
    const Key key = KeyOf(KeyOfCopy(copy));
    if (Settle(copy, *placement, nodes)) {
      retry_at_.erase(key);
    } else {
      retry_at_[key] = Clock::now() + options_.suspect_retry;
    }
  }
  std::lock_guard lock(suspects_mu_);
  M().suspects.Set(static_cast<int64_t>(offered_.size() + local_.size()));
  M().quarantined.Set(static_cast<int64_t>(store_->quarantined()));
}

bool Maintenance::Settle(const SuspectCopy& copy, const placement::PlacementMap& placement,
                         const std::map<uint32_t, const NodeInfo*>& nodes) {
  const BlockKey key = KeyOfCopy(copy);
  const Key k = KeyOf(key);
  if (store_->Stat(key).ok()) {
    Status st = VerifyStored(key);
    if (!Throttle(copy.block().length(), options_.repair_bytes_per_second)) return false;
    if (st.ok()) {
      // A reader's transient fault — or a copy this node replaced earlier and then could not
      // resolve: either way nothing to rewrite. Served again once resolved.
      return Resolve(copy, deleted_bad_.contains(k) ? OUTCOME_REPLACED : OUTCOME_VERIFIED_GOOD);
    }
    if (st.code() != Code::CORRUPT) {
      GLOG_WARN("event=suspect_verify_failed slice={} block={} fragment={} error=\"{}\"",
                key.slice_id(), key.block_index(), key.fragment(), st.ToString());
      return false;  // stays quarantined; tried again
    }
    GLOG_WARN("event=suspect_copy_bad slice={} block={} fragment={} error=\"{}\"", key.slice_id(),
              key.block_index(), key.fragment(), st.message());
    Status del = store_->Delete(key);
    if (!del.ok() && del.code() != Code::NOT_FOUND) {
      GLOG_WARN("event=corrupt_copy_delete_failed error=\"{}\"", del.ToString());
      return false;
    }
    deleted_bad_.insert(k);
  }
  // Absent (deleted as bad, here or by the scrubber): this node rebuilds it if it should hold it.
  const PoolSpec* pool = nullptr;
  for (const PoolSpec& p : placement.pools()) {
    if (p.id() == copy.pool_id()) pool = &p;
  }
  std::optional<PgView> view;
  if (pool != nullptr) view = ViewOf(placement, *pool, copy.pg(), nodes);
  std::optional<BlockKey> want;
  if (view) want = KeyFor(*view, copy.block());
  if (!want || want->fragment() != key.fragment()) {
    // Not this node's to hold any more (the PG moved, or the slot changed): its members fill
    // what they lack through their repair passes.
    deleted_bad_.erase(k);
    return Resolve(copy, OUTCOME_NOT_HELD);
  }
  Status st = RepairBlock(*view, copy.block(), key);
  if (!st.ok()) {
    GLOG_WARN("event=suspect_repair_failed slice={} block={} fragment={} error=\"{}\"",
              key.slice_id(), key.block_index(), key.fragment(), st.ToString());
    return false;
  }
  M().repaired_blocks.Add();
  M().repaired_bytes.Add(copy.block().length());
  GLOG_INFO("event=suspect_copy_replaced slice={} block={} fragment={} reported_ms={}",
            key.slice_id(), key.block_index(), key.fragment(), copy.reported_ms());
  if (!Throttle(copy.block().length(), options_.repair_bytes_per_second)) return false;
  return Resolve(copy, OUTCOME_REPLACED);
}

bool Maintenance::Resolve(const SuspectCopy& copy, SuspectOutcome outcome) {
  ResolveCorruptionRequest req;
  req.set_node_id(copy.node_id());
  req.set_slice_id(copy.block().slice_id());
  req.set_block_index(copy.block().block_index());
  req.set_fragment(copy.fragment());
  req.set_reports(copy.reports());
  req.set_outcome(outcome);
  Status st = session_->ResolveCorruption(req);
  if (!st.ok()) {
    GLOG_WARN("event=suspect_resolve_failed error=\"{}\"", st.ToString());
    return false;  // the copy is settled on disk; the next try finds it good and resolves
  }
  M().Settled(outcome).Add();
  const Key k = KeyOf(KeyOfCopy(copy));
  deleted_bad_.erase(k);
  std::lock_guard lock(suspects_mu_);
  offered_.erase(k);
  resolved_[k] = {copy.reports(), Clock::now()};
  store_->Unquarantine(KeyOfCopy(copy));
  return true;
}

}  // namespace granary::datanode
