// Garbage collection and slice liveness (DESIGN §3, docs/durability.md "Garbage collection"):
// once a slice has been unreferenced for the grace period (longer than any read in flight), every
// up datanode is told to delete its blocks, and only then are its records dropped. A datanode
// that was down at the time asks CheckSlices when it returns and drops what is dead.
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/rpc_status.h"
#include "granary/data.grpc.pb.h"
#include "metanode/meta_core.h"
#include "metanode/reader.h"
#include "metanode/schema.h"

namespace granary::metanode {

namespace {

constexpr size_t kGcBatch = 1000;

struct GcMetrics {
  Counter& collected = Metrics().GetCounter("granary_meta_gc_slices_total",
                                            "Unreferenced slices whose blocks were deleted");
  Gauge& pending =
      Metrics().GetGauge("granary_meta_gc_pending_slices", "Unreferenced slices not yet collected");
};

GcMetrics& Gc() {
  static GcMetrics m;
  return m;
}

}  // namespace

Status MetaCore::DeleteSlicesOn(const NodeInfo& node, const std::vector<uint64_t>& ids) {
  DataControl::Stub* stub;
  {
    std::lock_guard lock(mu_);
    auto& slot = control_stubs_[node.address()];
    if (!slot) {
      slot = DataControl::NewStub(
          grpc::CreateChannel(node.address(), grpc::InsecureChannelCredentials()));
    }
    stub = slot.get();
  }
  DeleteBlocksRequest req;
  for (uint64_t id : ids) req.add_slice_ids(id);
  DeleteBlocksReply reply;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return FromGrpcStatus(stub->DeleteBlocks(&ctx, req, &reply))
      .WithContext(fmt::format("delete {} slices on datanode {} ({})", ids.size(), node.id(),
                               node.address()));
}

void MetaCore::CollectGarbage() {
  auto snap = Snapshot();
  const int64_t cutoff = NowMs() - options_.gc_grace_ms;
  std::vector<uint64_t> due;
  uint64_t pending = 0;
  Status st = snap->Scan(Cf::kSystem, kGarbagePrefix, "", false,
                         [&](std::string_view key, std::string_view value) {
                           GarbageRecord g;
                           g.ParseFromArray(value.data(), static_cast<int>(value.size()));
                           ++pending;
                           if (g.since_ms() <= cutoff && due.size() < kGcBatch) {
                             due.push_back(ReadU64(key.substr(1)));
                           }
                           return true;
                         });
  Gc().pending.Set(static_cast<int64_t>(pending));
  if (!st.ok() || due.empty()) return;
  auto nodes = QueryNodes(*snap);
  if (!nodes.ok()) return;
  for (const NodeInfo& n : *nodes) {
    if (n.state() != UP) continue;  // reconciles through CheckSlices when it returns
    Status del = DeleteSlicesOn(n, due);
    if (!del.ok()) {
      GLOG_WARN("event=gc_deferred {}", del.ToString());
      return;  // records stay; the next round tries again
    }
  }
  Operation op;
  for (uint64_t id : due) op.mutable_gc_slices()->add_slice_ids(id);
  OpReply reply = Mutate(std::move(op));
  if (reply.code() == Code::OK) {
    Gc().collected.Add(due.size());
    GLOG_DEBUG("event=gc_slices count={}", due.size());
    if (gc_summary_.Add(due.size())) {
      GLOG_INFO("event=gc_summary slices={} rounds={} seconds={:.0f}", gc_summary_.work(),
                gc_summary_.rounds(), gc_summary_.seconds());
      gc_summary_.Reset();
    }
  }
}

Result<CompactionCandidatesReply> MetaCore::CompactionCandidates(uint32_t limit) {
  if (limit == 0) limit = 100;
  CompactionCandidatesReply reply;
  auto view = ReadView();
  GRANARY_TRY(view);
  GRANARY_TRY((*view)->Scan(Cf::kSystem, kCompactPrefix, "", false,
                               [&](std::string_view key, std::string_view) {
                                 CompactionCandidate& c = *reply.add_candidates();
                                 c.set_ino(ReadU64(key.substr(1)));
                                 c.set_range_index(ReadU64(key.substr(9)));
                                 return static_cast<uint32_t>(reply.candidates_size()) < limit;
                               }));
  return reply;
}

Result<CheckSlicesReply> MetaCore::CheckSlices(const CheckSlicesRequest& req) {
  auto view = ReadView();
  GRANARY_TRY(view);
  auto snap = std::move(*view);
  // Slices of live intents are being written: alive though not committed yet.
  std::vector<std::pair<uint64_t, uint64_t>> writing;
  GRANARY_TRY(snap->Scan(Cf::kSystem, kIntentPrefix, "", false,
                         [&](std::string_view, std::string_view value) {
                           IntentRecord intent;
                           intent.ParseFromArray(value.data(), static_cast<int>(value.size()));
                           writing.emplace_back(intent.first_slice_id(),
                                                intent.first_slice_id() + intent.slice_count());
                           return true;
                         }));
  CheckSlicesReply reply;
  for (uint64_t id : req.slice_ids()) {
    bool alive = false;
    for (const auto& [lo, hi] : writing) alive = alive || (id >= lo && id < hi);
    if (!alive) {
      SliceRecord slice;
      auto found = snap->GetRecord(Cf::kSystem, SliceKey(id), &slice);
      GRANARY_TRY(found);
      if (*found) {
        alive = true;
      } else {
        // Committed before slices were counted, or garbage not yet collected.
        GarbageRecord g;
        auto garbage = snap->GetRecord(Cf::kSystem, GarbageKey(id), &g);
        GRANARY_TRY(garbage);
        alive = *garbage;
      }
    }
    if (!alive) reply.add_dead_slice_ids(id);
  }
  // Warm copies (docs/locality.md): wanted while a record says so, or while the plan asks the
  // node to make (and report) it.
  for (uint64_t id : req.warm_slice_ids()) {
    std::string value;
    auto found = snap->Get(Cf::kSystem, ExtraCopyKey(id, req.node_id()), &value);
    GRANARY_TRY(found);
    if (!*found && !warmups_->Planned(req.node_id(), id)) reply.add_unwanted_warm_slice_ids(id);
  }
  return reply;
}

}  // namespace granary::metanode
