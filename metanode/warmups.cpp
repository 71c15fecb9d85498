#include "metanode/warmups.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <set>

#include "common/log.h"
#include "common/metrics.h"
#include "common/rpc_status.h"
#include "metanode/apply_internal.h"
#include "metanode/locality.h"
#include "metanode/meta_core.h"
#include "metanode/schema.h"
#include "placement/placement.h"

namespace granary::metanode {

namespace {

Gauge& PlannedGauge() {
  static Gauge& g = Metrics().GetGauge("granary_meta_warm_tasks_planned",
                                       "Slices the warm-up plan asks datanodes to copy now");
  return g;
}

bool Matches(const NodeInfo& node, const PoolSpec& pool) {
  for (const auto& [k, v] : pool.node_selector()) {
    auto it = node.labels().find(k);
    if (it == node.labels().end() || it->second != v) return false;
  }
  return true;
}

double UsedRatio(const NodeInfo& n) {
  if (n.capacity_bytes() == 0) return 0;
  return static_cast<double>(n.used_bytes()) / static_cast<double>(n.capacity_bytes());
}

double NearlyFull(const PoolSpec& p) {
  return p.nearly_full_ratio() > 0 ? p.nearly_full_ratio() : 0.85;
}

double Full(const PoolSpec& p) { return p.full_ratio() > 0 ? p.full_ratio() : 0.95; }

}  // namespace

WarmupDriver::WarmupDriver(MetaCore& core, WarmupOptions options)
    : core_(core), options_(options) {}

WarmupDriver::~WarmupDriver() = default;

void WarmupDriver::Reset() {
  std::lock_guard lock(mu_);
  plan_.clear();
  last_plan_ms_ = 0;
  last_ready_check_ms_.clear();
}

std::vector<WarmTask> WarmupDriver::TasksFor(uint32_t node) {
  std::vector<WarmTask> out;
  std::lock_guard lock(mu_);
  auto it = plan_.find(node);
  if (it == plan_.end()) return out;
  for (const auto& [slice, task] : it->second) {
    if (out.size() >= options_.tasks_per_heartbeat) break;
    out.push_back(task);
  }
  return out;
}

bool WarmupDriver::Planned(uint32_t node, uint64_t slice) const {
  std::lock_guard lock(mu_);
  auto it = plan_.find(node);
  return it != plan_.end() && it->second.contains(slice);
}

Status WarmupDriver::Done(const WarmDoneRequest& req) {
  auto view = core_.ReadView();
  GRANARY_TRY(view);
  NodeRecord node;
  auto found = (*view)->GetRecord(Cf::kSystem, NodeKey(req.node_id()), &node);
  GRANARY_TRY(found);
  if (!*found) return NotFound(fmt::format("datanode {} is not registered", req.node_id()));
  Operation op;
  *op.mutable_warm_copies()->mutable_report() = req;
  op.mutable_warm_copies()->set_host(placement::NodeFromProto(node.node()).location.host);
  GRANARY_TRY(core_.Run(std::move(op)));
  std::lock_guard lock(mu_);
  auto it = plan_.find(req.node_id());
  if (it != plan_.end()) {
    for (const WarmedSlice& s : req.slices()) it->second.erase(s.slice_id());
    // Out of space: nothing more for this node until the next plan says otherwise.
    if (req.error() == Code::NO_SPACE) it->second.clear();
  }
  if (req.error() != Code::OK) {
    GLOG_WARN("event=warm_copy_failed node={} code={} error=\"{}\"", req.node_id(),
              static_cast<int>(req.error()), req.message());
  }
  return Status::Ok();
}

void WarmupDriver::Round() {
  ReleaseAndEvict();
  EmptyTrash();
  const int64_t now = core_.NowMs();
  if (now - last_plan_ms_ >= options_.plan_interval_ms) {
    last_plan_ms_ = now;
    Plan(now);
  }
}

void WarmupDriver::ReleaseAndEvict() {
  auto snap = core_.Snapshot();
  auto all = AllWarmups(*snap);
  if (!all.ok() || all->empty()) return;
  for (const WarmupRecord& rec : *all) {
    if (rec.warmup().state() != WARMUP_DELETING && !rec.hosts_removed()) continue;
    Operation op;
    op.mutable_warmup_release()->set_warmup_id(rec.warmup().id());
    op.mutable_warmup_release()->set_max(options_.release_batch);
    OpReply reply = core_.Mutate(std::move(op));
    if (reply.code() != Code::OK) {
      GLOG_WARN("event=warmup_release_failed warmup={} error=\"{}\"", rec.warmup().name(),
                reply.message());
    }
  }
  // A datanode at its pool's full ratio gives its warm copies back (they are the expendable
  // bytes on it); the warm-ups holding them stop and say why.
  auto map = core_.GetClusterMap(0);
  if (!map.ok()) return;
  std::map<uint32_t, double> full;  // node -> the lowest full ratio of a warm-up's pool there
  for (const WarmupRecord& rec : *all) {
    const Warmup& w = rec.warmup();
    auto volume = FindRecord<VolumeRecord>(*snap, Cf::kCatalog, VolumeKey(w.volume_id()));
    if (!volume.ok() || !*volume) continue;
    auto pool = FindRecord<PoolRecord>(*snap, Cf::kCatalog, PoolKey((*volume)->volume().pool_id()));
    if (!pool.ok() || !*pool) continue;
    for (const NodeInfo& n : map->nodes()) {
      // Only a node that is that full is looked at (one seek each): most never are.
      if (n.capacity_bytes() == 0 || UsedRatio(n) < Full((*pool)->spec())) continue;
      bool holds = false;
      Status st = snap->Scan(Cf::kSystem, WarmIndexNodePrefix(w.id(), n.id()), "", false,
                             [&](std::string_view, std::string_view) {
                               holds = true;
                               return false;
                             });
      if (!st.ok() || !holds) continue;
      auto [it, inserted] = full.try_emplace(n.id(), Full((*pool)->spec()));
      if (!inserted) it->second = std::min(it->second, Full((*pool)->spec()));
    }
  }
  for (const NodeInfo& n : map->nodes()) {
    auto it = full.find(n.id());
    if (it == full.end() || n.capacity_bytes() == 0 || UsedRatio(n) < it->second) continue;
    const std::string host = placement::NodeFromProto(n).location.host;
    Operation op;
    op.mutable_warm_evict()->set_node_id(n.id());
    op.mutable_warm_evict()->set_message(
        fmt::format("host {}: datanode {} reached {:.0f}% used (full ratio {:.0f}%): its warm "
                    "copies were removed",
                    host, n.id(), 100 * UsedRatio(n), 100 * it->second));
    GLOG_WARN("event=warm_copies_evicted node={} used_ratio={:.3f}", n.id(), UsedRatio(n));
    core_.Mutate(std::move(op));
  }
}

Status WarmupDriver::DeleteOn(const NodeInfo& node, const DeleteBlocksRequest& req) {
  DataControl::Stub* stub;
  {
    std::lock_guard lock(mu_);
    auto& slot = stubs_[node.address()];
    if (!slot) {
      slot = DataControl::NewStub(
          grpc::CreateChannel(node.address(), grpc::InsecureChannelCredentials()));
    }
    stub = slot.get();
  }
  DeleteBlocksReply reply;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return FromGrpcStatus(stub->DeleteBlocks(&ctx, req, &reply))
      .WithContext(fmt::format("delete {} warm blocks on datanode {} ({})", req.blocks_size(),
                               node.id(), node.address()));
}

void WarmupDriver::EmptyTrash() {
  auto snap = core_.Snapshot();
  // node -> (slice -> blocks)
  std::map<uint32_t, std::map<uint64_t, std::vector<uint32_t>>> trash;
  size_t count = 0;
  Status st = snap->Scan(
      Cf::kSystem, kWarmTrashPrefix, "", false, [&](std::string_view key, std::string_view value) {
        const auto* b = reinterpret_cast<const uint8_t*>(key.data() + 1);
        const uint32_t node =
            (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
        WarmTrashRecord rec;
        rec.ParseFromArray(value.data(), static_cast<int>(value.size()));
        trash[node][ReadU64(key.substr(5))].assign(rec.blocks().begin(), rec.blocks().end());
        return ++count < options_.trash_batch;
      });
  if (!st.ok() || trash.empty()) return;
  auto map = LoadPlacement(*snap);
  auto nodes = LoadNodePlaces(*snap);
  if (!map.ok() || !nodes.ok()) return;
  for (const auto& [node_id, slices] : trash) {
    auto it = nodes->nodes.find(node_id);
    Operation op;
    op.mutable_warm_trash_done()->set_node_id(node_id);
    // A node that is out (or gone) is not asked: what it still holds is reclaimed when it
    // returns (reconcile asks CheckSlices which warm copies are wanted).
    const bool reachable = it != nodes->nodes.end() && it->second.state() == UP;
    if (it != nodes->nodes.end() && it->second.state() == DOWN) continue;  // wait for it
    DeleteBlocksRequest req;
    for (const auto& [slice_id, blocks] : slices) {
      op.mutable_warm_trash_done()->add_slice_ids(slice_id);
      if (!reachable) continue;
      SliceRecord slice;
      auto found = snap->GetRecord(Cf::kSystem, SliceKey(slice_id), &slice);
      if (!found.ok() || !*found) continue;  // collected: GC deleted its blocks everywhere
      auto placed = PlaceSlice(*map, slice);
      for (uint32_t b : blocks) {
        // Never a block the node holds as a counted copy (it became a member since).
        bool counted = false;
        if (placed.ok() && b < placed->size()) {
          const auto& copies = (*placed)[b].copies;
          counted = std::find(copies.begin(), copies.end(), node_id) != copies.end();
        }
        if (counted) continue;
        BlockKey& key = *req.add_blocks();
        key.set_slice_id(slice_id);
        key.set_block_index(b);
        key.set_fragment(0);
      }
    }
    if (reachable && req.blocks_size() > 0) {
      Status del = DeleteOn(it->second, req);
      if (!del.ok()) {
        GLOG_WARN("event=warm_trash_deferred {}", del.ToString());
        continue;
      }
      GLOG_INFO("event=warm_copies_deleted node={} blocks={}", node_id, req.blocks_size());
    }
    OpReply reply = core_.Mutate(std::move(op));
    if (reply.code() != Code::OK) {
      GLOG_WARN("event=warm_trash_done_failed node={} error=\"{}\"", node_id, reply.message());
    }
  }
}

void WarmupDriver::Plan(int64_t now) {
  auto snap = core_.Snapshot();
  auto all = AllWarmups(*snap);
  if (!all.ok()) return;
  std::map<uint32_t, std::map<uint64_t, WarmTask>> plan;
  if (all->empty()) {
    std::lock_guard lock(mu_);
    plan_.clear();
    PlannedGauge().Set(0);
    return;
  }
  auto cluster = core_.GetClusterMap(0);  // node table with used / capacity from heartbeats
  auto map = LoadPlacement(*snap);
  if (!cluster.ok() || !map.ok()) return;
  NodePlaces nodes;
  for (const NodeInfo& n : cluster->nodes()) nodes.nodes.emplace(n.id(), n);
  std::set<uint64_t> seen;
  for (const WarmupRecord& rec : *all) {
    const Warmup& w = rec.warmup();
    seen.insert(w.id());
    if (w.state() == WARMUP_DELETING || w.state() == WARMUP_STOPPED) continue;
    if (w.state() == WARMUP_READY) {
      int64_t& last = last_ready_check_ms_[w.id()];
      if (now - last < options_.ready_recheck_ms) continue;
      last = now;
    }
    auto set_state = [&](WarmupState state, const std::string& message) {
      if (w.state() == state && w.message() == message) return;
      Operation op;
      op.mutable_warmup_state()->set_warmup_id(w.id());
      op.mutable_warmup_state()->set_state(state);
      op.mutable_warmup_state()->set_message(message);
      GLOG_INFO("event=warmup_state warmup={} state={} message=\"{}\"", w.name(),
                WarmupState_Name(state), message);
      core_.Mutate(std::move(op));
    };
    auto volume = FindRecord<VolumeRecord>(*snap, Cf::kCatalog, VolumeKey(w.volume_id()));
    if (!volume.ok()) continue;
    if (!*volume) {
      set_state(WARMUP_STOPPED, fmt::format("volume '{}' was deleted", w.volume()));
      continue;
    }
    auto pool = FindRecord<PoolRecord>(*snap, Cf::kCatalog, PoolKey((*volume)->volume().pool_id()));
    if (!pool.ok() || !*pool) continue;
    const PoolSpec& spec = (*pool)->spec();
    auto places = PlaceSubtree(*snap, *map, w.root_ino());
    if (!places.ok()) {
      if (places.status().code() == Code::NOT_FOUND) {
        set_state(WARMUP_STOPPED, fmt::format("path '{}' of volume '{}' is gone: {}", w.path(),
                                              w.volume(), places.status().message()));
      }
      continue;
    }
    bool missing = false;
    std::string waiting;  // why a host cannot progress (no datanode up there)
    std::string stop;     // why copying must stop (every datanode of a host nearly full)
    std::vector<std::pair<uint32_t, std::pair<uint64_t, const std::vector<const BlockPlace*>*>>>
        wanted;
    std::vector<HostCoverage> coverage;
    coverage.reserve(w.hosts_size());
    for (const std::string& host : w.hosts()) {
      coverage.push_back(CoverHost(*places, nodes, host));
      const HostCoverage& c = coverage.back();
      if (c.missing.empty()) continue;
      missing = true;
      // Datanodes of the host: those of the volume's pool first, any other as a fallback.
      std::vector<const NodeInfo*> in_pool, others;
      const NodeInfo* fullest = nullptr;
      for (const NodeInfo& n : cluster->nodes()) {
        if (n.state() != UP || nodes.HostOf(n.id()) != host) continue;
        if (n.capacity_bytes() != 0 && UsedRatio(n) >= NearlyFull(spec)) {
          if (fullest == nullptr || UsedRatio(n) > UsedRatio(*fullest)) fullest = &n;
          continue;
        }
        (Matches(n, spec) ? in_pool : others).push_back(&n);
      }
      const auto& targets = in_pool.empty() ? others : in_pool;
      if (targets.empty()) {
        if (fullest != nullptr) {
          stop = fmt::format(
              "host {}: datanode {} is nearly full ({:.0f}% used, pool '{}' limit {:.0f}%); "
              "copies made so far are kept",
              host, fullest->id(), 100 * UsedRatio(*fullest), spec.name(), 100 * NearlyFull(spec));
        } else {
          waiting = fmt::format("host {} has no datanode up", host);
        }
        continue;
      }
      for (const auto& [slice, blocks] : c.missing) {
        const uint32_t target = targets[Mix64(slice) % targets.size()]->id();
        wanted.push_back({target, {slice, &blocks}});
      }
    }
    if (!stop.empty()) {
      set_state(WARMUP_STOPPED, stop);
      continue;
    }
    if (!missing) {
      set_state(WARMUP_READY, "");
      last_ready_check_ms_[w.id()] = now;
      continue;
    }
    set_state(WARMUP_COPYING, waiting);
    for (const auto& [target, what] : wanted) {
      const auto& [slice_id, blocks] = what;
      const SliceRecord& slice = places->subtree.slices.at(slice_id);
      WarmTask& task = plan[target][slice_id];
      if (task.slice_id() == 0) {
        task.set_slice_id(slice_id);
        task.set_pool_id(slice.layout().pool_id());
        task.set_ino(slice.ino());
        task.set_range_index(slice.range_index());
        task.set_encoding(slice.encoding());
      }
      for (const BlockPlace* b : *blocks) {
        const bool listed =
            std::any_of(task.blocks().begin(), task.blocks().end(),
                        [&](const WarmBlock& x) { return x.block_index() == b->index; });
        if (listed) continue;
        WarmBlock& wb = *task.add_blocks();
        wb.set_block_index(b->index);
        wb.set_pg(b->pg);
        wb.set_length(b->length);
      }
      if (std::find(task.warmup_ids().begin(), task.warmup_ids().end(), w.id()) ==
          task.warmup_ids().end()) {
        task.add_warmup_ids(w.id());
      }
    }
  }
  for (auto it = last_ready_check_ms_.begin(); it != last_ready_check_ms_.end();) {
    it = seen.contains(it->first) ? std::next(it) : last_ready_check_ms_.erase(it);
  }
  // A ready warm-up skipped this round keeps nothing planned: it has nothing missing.
  size_t planned = 0;
  for (const auto& [node, tasks] : plan) planned += tasks.size();
  PlannedGauge().Set(static_cast<int64_t>(planned));
  std::lock_guard lock(mu_);
  plan_ = std::move(plan);
}

}  // namespace granary::metanode
