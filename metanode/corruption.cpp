// Repair on report, the metanode's side (docs/maintenance.md "Repair on report"): reports become
// durable suspect records (apply_corruption.cpp); each heartbeat reply hands a datanode the
// records of the copies it holds; the datanode resolves them once verified or replaced. Nothing
// here keeps state of its own, so a restart (or, later, a new leader) carries on from the records.
#include <fmt/format.h>

#include <map>

#include "common/log.h"
#include "common/metrics.h"
#include "metanode/meta_core.h"
#include "metanode/reader.h"
#include "metanode/schema.h"

namespace granary::metanode {

namespace {

constexpr int kMaxSuspectsPerHeartbeat = 256;

struct CorruptionMetrics {
  Counter& reports = Metrics().GetCounter("granary_meta_corruption_reports_total",
                                          "Reports of a corrupt block copy received");
  Gauge& suspects = Metrics().GetGauge(
      "granary_meta_suspect_copies",
      "Copies reported corrupt and not yet verified or replaced by their datanode");
  Counter& Resolved(SuspectOutcome outcome) {
    const char* name = outcome == OUTCOME_REPLACED        ? "replaced"
                       : outcome == OUTCOME_VERIFIED_GOOD ? "verified_good"
                                                          : "not_held";
    return Metrics().GetCounter("granary_meta_suspect_copies_resolved_total",
                                "Suspect copies settled, by outcome",
                                fmt::format("outcome=\"{}\"", name));
  }
};

CorruptionMetrics& Cm() {
  static CorruptionMetrics m;
  return m;
}

const char* SourceName(CorruptionSource s) {
  switch (s) {
    case SOURCE_CLIENT_READ:
      return "client_read";
    case SOURCE_SCRUB:
      return "scrub";
    case SOURCE_DATANODE:
      return "datanode";
    default:
      return "unspecified";
  }
}

// Calls fn(record) for every suspect record in `snap` until it returns false.
template <typename Fn>
Status ForEachSuspect(Txn& snap, Fn&& fn) {
  return snap.Scan(Cf::kSystem, kSuspectPrefix, "", false,
                   [&](std::string_view, std::string_view value) {
                     SuspectRecord rec;
                     rec.ParseFromArray(value.data(), static_cast<int>(value.size()));
                     return fn(rec.copy());
                   });
}

uint64_t CounterValue(Txn& snap, std::string_view name) {
  CounterRecord rec;
  auto found = snap.GetRecord(Cf::kSystem, CounterKey(name), &rec);
  return found.ok() && *found ? rec.value() : 0;
}

}  // namespace

Status MetaCore::ReportCorruption(const ReportCorruptionRequest& req) {
  GLOG_WARN(
      "event=corruption_reported node={} slice={} block={} fragment={} source={} detail=\"{}\"",
      req.node_id(), req.slice_id(), req.block_index(), req.fragment(), SourceName(req.source()),
      req.detail());
  Cm().reports.Add();
  Operation op;
  *op.mutable_report_corruption() = req;
  OpReply reply = Mutate(std::move(op));
  if (reply.code() != Code::OK) {
    return Status(reply.code(), reply.message()).WithContext("record corruption report");
  }
  return Status::Ok();
}

Status MetaCore::ResolveCorruption(const ResolveCorruptionRequest& req) {
  Operation op;
  *op.mutable_resolve_corruption() = req;
  OpReply reply = Mutate(std::move(op));
  if (reply.code() != Code::OK) {
    return Status(reply.code(), reply.message()).WithContext("resolve suspect copy");
  }
  GLOG_INFO("event=suspect_copy_resolved node={} slice={} block={} fragment={} outcome={}",
            req.node_id(), req.slice_id(), req.block_index(), req.fragment(),
            SuspectOutcome_Name(req.outcome()));
  Cm().Resolved(req.outcome()).Add();
  return Status::Ok();
}

std::vector<SuspectCopy> MetaCore::SuspectCopiesOf(uint32_t node_id) {
  std::vector<SuspectCopy> out;
  Status st = ForEachSuspect(*Snapshot(), [&](const SuspectCopy& copy) {
    if (copy.node_id() == node_id) out.push_back(copy);
    return out.size() < kMaxSuspectsPerHeartbeat;
  });
  if (!st.ok()) GLOG_WARN("event=suspect_scan_failed error=\"{}\"", st.ToString());
  return out;
}

Status MetaCore::AddCorruptionStatus(Txn& snap, ClusterStatusReply* reply) {
  std::map<std::pair<uint32_t, uint32_t>, uint64_t> by_pg;
  uint64_t bad = 0;
  GRANARY_TRY(ForEachSuspect(snap, [&](const SuspectCopy& copy) {
    ++bad;
    ++by_pg[{copy.pool_id(), copy.pg()}];
    return true;
  }));
  reply->set_copies_bad(bad);
  for (const auto& [pg, copies] : by_pg) {
    PgBadCopies& p = *reply->add_pgs_with_bad_copies();
    p.set_pool_id(pg.first);
    p.set_pg(pg.second);
    p.set_copies(copies);
  }
  reply->set_corruptions_reported(CounterValue(snap, kCorruptionReportsCounter));
  Cm().suspects.Set(static_cast<int64_t>(bad));
  return Status::Ok();
}

void MetaCore::SettleSuspects() {
  auto snap = Snapshot();
  auto nodes = QueryNodes(*snap);
  if (!nodes.ok()) return;
  std::map<uint32_t, NodeState> states;
  for (const NodeInfo& n : *nodes) states[n.id()] = n.state();
  std::vector<ResolveCorruptionRequest> moot;
  uint64_t pending = 0;
  Status st = ForEachSuspect(*snap, [&](const SuspectCopy& copy) {
    ++pending;
    // An out node's PGs were remapped: its copies are no longer counted on, and the members
    // that replaced it fill what they lack by repair.
    auto it = states.find(copy.node_id());
    if (it == states.end() || it->second == OUT) {
      ResolveCorruptionRequest& r = moot.emplace_back();
      r.set_node_id(copy.node_id());
      r.set_slice_id(copy.block().slice_id());
      r.set_block_index(copy.block().block_index());
      r.set_fragment(copy.fragment());
      r.set_reports(copy.reports());
      r.set_outcome(OUTCOME_NOT_HELD);
    }
    return true;
  });
  if (!st.ok()) return;
  Cm().suspects.Set(static_cast<int64_t>(pending));
  for (const auto& r : moot) {
    Status s = ResolveCorruption(r);
    if (!s.ok()) GLOG_WARN("event=suspect_settle_failed error=\"{}\"", s.ToString());
  }
}

}  // namespace granary::metanode
