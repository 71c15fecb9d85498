// Warm copies (docs/locality.md): the metanode's plan hands this node, with each heartbeat
// reply, slices to copy from their PG members and keep as non-counted copies (BlockOrigin.warm),
// so readers on this host read locally. Each copied slice is reported (WarmDone) and recorded
// by the metanode; running out of space is reported and stops the warm-ups that asked. Warm
// copies nobody wants any more are deleted by the metanode (DeleteBlocks) or, for a node that
// was away, by reconcile (CheckSlices names them).
#include <fmt/format.h>

#include <algorithm>

#include "common/log.h"
#include "datanode/maintenance.h"
#include "datanode/maintenance_metrics.h"
#include "placement/placement.h"

namespace granary::datanode {

namespace {

using Clock = std::chrono::steady_clock;
// A slice reported done is not copied again for this long when a reply built before the
// metanode recorded it offers it again.
constexpr auto kReportedMemory = std::chrono::seconds(10);
// After running out of space, no warm copy is attempted for this long.
constexpr auto kNoSpacePause = std::chrono::seconds(30);

}  // namespace

void Maintenance::TakeWarmTasks(const HeartbeatReply& reply) {
  bool fresh = false;
  {
    std::lock_guard lock(warm_mu_);
    std::map<uint64_t, WarmTask> offered;
    for (const WarmTask& t : reply.warm_tasks()) {
      fresh = fresh || !warm_offered_.contains(t.slice_id());
      offered.emplace(t.slice_id(), t);
    }
    warm_offered_ = std::move(offered);
  }
  if (fresh) Wake();
}

bool Maintenance::WarmBusy(uint64_t slice_id) {
  std::lock_guard lock(warm_mu_);
  return warm_offered_.contains(slice_id) || warm_reported_.contains(slice_id);
}

void Maintenance::HandleWarmTasks(const ClusterMap& map) {
  std::vector<WarmTask> tasks;
  {
    std::lock_guard lock(warm_mu_);
    const auto now = Clock::now();
    if (now < warm_paused_until_) return;
    std::erase_if(warm_reported_, [&](const auto& e) { return now - e.second > kReportedMemory; });
    for (const auto& [slice, task] : warm_offered_) {
      if (!warm_reported_.contains(slice)) tasks.push_back(task);
    }
  }
  if (tasks.empty()) return;
  auto placement = placement::PlacementMap::Deserialize(map.placement());
  if (!placement.ok()) return;
  std::map<uint32_t, const NodeInfo*> nodes;
  for (const NodeInfo& n : map.nodes()) nodes[n.id()] = &n;
  const uint32_t me = session_->node_id();
  for (const WarmTask& task : tasks) {
    if (stopping()) return;
    // Copies reported bad are a copy short right now; a warm copy is only a convenience.
    if (SuspectsWaiting()) return;
    const PoolSpec* pool = placement->FindPool(task.pool_id());
    if (pool == nullptr) continue;
    WarmDoneRequest report;
    report.set_node_id(me);
    WarmedSlice& done = *report.add_slices();
    done.set_slice_id(task.slice_id());
    *done.mutable_warmup_ids() = task.warmup_ids();
    Status failed = Status::Ok();
    for (const WarmBlock& b : task.blocks()) {
      BlockKey key;
      key.set_slice_id(task.slice_id());
      key.set_block_index(b.block_index());
      key.set_fragment(0);
      if (!store_->Stat(key).ok()) {
        auto members = placement->Members(pool->id(), b.pg());
        auto epoch = placement->PgEpoch(pool->id(), b.pg());
        if (!members.ok() || !epoch.ok()) {
          failed = members.ok() ? epoch.status() : members.status();
          break;
        }
        PgView view{pool, b.pg(), *epoch, {members->begin(), members->end()}, 0, {}, &nodes};
        BlockOrigin origin;
        origin.set_ino(task.ino());
        origin.set_range_index(task.range_index());
        origin.set_encoding(task.encoding());
        origin.set_pool_id(pool->id());
        origin.set_pg(b.pg());
        origin.set_warm(true);
        Status st = Unavailable(
            fmt::format("no up member of pool {} pg {} to copy from", pool->id(), b.pg()));
        for (uint32_t id : view.members) {
          auto it = nodes.find(id);
          if (id == me || it == nodes.end() || it->second->state() != UP) continue;
          auto copy = ReadWhole(*it->second, view, key);
          if (!copy.ok()) {
            st = copy.status();
            continue;
          }
          st = store_->Write(key, origin, copy->first.span(), copy->second);
          break;
        }
        if (!st.ok()) {
          failed = st.WithContext(
              fmt::format("warm copy of slice {} block {}", task.slice_id(), b.block_index()));
          break;
        }
        M().warm_bytes.Add(b.length());
        if (!Throttle(b.length(), options_.repair_bytes_per_second)) return;
      }
      done.add_blocks(b.block_index());
      done.set_bytes(done.bytes() + b.length());
    }
    if (failed.code() == Code::NO_SPACE) {
      report.set_error(Code::NO_SPACE);
      report.set_message(failed.message());
      *report.mutable_failed_warmup_ids() = task.warmup_ids();
    } else if (!failed.ok()) {
      // Tried again when offered again; what was copied stays (and is reported below).
      GLOG_WARN("event=warm_copy_failed slice={} error=\"{}\"", task.slice_id(), failed.ToString());
      if (done.blocks_size() == 0) continue;
    }
    if (done.blocks_size() == 0) report.clear_slices();
    Status sent = session_->WarmDone(report);
    if (!sent.ok()) {
      GLOG_WARN("event=warm_report_failed slice={} error=\"{}\"", task.slice_id(), sent.ToString());
      continue;
    }
    std::lock_guard lock(warm_mu_);
    if (failed.ok()) {
      warm_reported_[task.slice_id()] = Clock::now();
      M().warm_slices.Add();
    }
    if (failed.code() == Code::NO_SPACE) {
      GLOG_WARN("event=warm_copies_paused reason=no_space error=\"{}\"", failed.ToString());
      warm_paused_until_ = Clock::now() + kNoSpacePause;
      warm_offered_.clear();
      return;
    }
  }
}

void Maintenance::ReconcileWarm(const placement::PlacementMap& placement) {
  // Warm copies, with the blocks held, by slice.
  std::map<uint64_t, std::vector<BlockInfo>> warm;
  for (BlockInfo& info : store_->List(0, 0, true)) {
    if (info.origin().warm()) warm[info.key().slice_id()].push_back(std::move(info));
  }
  if (warm.empty()) return;
  CheckSlicesRequest req;
  req.set_node_id(session_->node_id());
  for (const auto& [slice, blocks] : warm) {
    if (!WarmBusy(slice)) req.add_warm_slice_ids(slice);
  }
  if (req.warm_slice_ids_size() == 0) return;
  auto reply = session_->CheckSlices(req);
  if (!reply.ok()) return;
  const uint32_t me = session_->node_id();
  for (uint64_t slice : reply->unwanted_warm_slice_ids()) {
    for (const BlockInfo& info : warm[slice]) {
      // A block this node has since become a member for is a counted copy now: kept.
      auto members = placement.Members(info.origin().pool_id(), info.origin().pg());
      auto from = placement.MovingFrom(info.origin().pool_id(), info.origin().pg());
      if (members.ok() && std::find(members->begin(), members->end(), me) != members->end()) {
        continue;
      }
      if (from.ok() && std::find(from->begin(), from->end(), me) != from->end()) continue;
      GLOG_INFO("event=reclaim_warm_copy slice={} block={}", slice, info.key().block_index());
      if (store_->Delete(info.key()).ok()) M().reclaimed.Add();
    }
  }
}

}  // namespace granary::datanode
