#include "metanode/meta_core.h"

#include <fmt/format.h>

#include <chrono>
#include <filesystem>

#include "common/log.h"
#include "metanode/group_committer.h"
#include "metanode/pool_placement.h"
#include "metanode/reader.h"
#include "metanode/schema.h"
#include "placement/placement.h"

namespace granary::metanode {

namespace {
constexpr std::string_view kUpperDigits = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
constexpr std::string_view kSecretChars =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
}  // namespace

Result<std::unique_ptr<MetaCore>> MetaCore::Open(MetaCoreOptions options) {
  std::unique_ptr<MetaCore> core(new MetaCore(std::move(options)));
  const MetaCoreOptions& o = core->options_;
  std::string db_path =
      o.in_memory ? "/granary-mem/" + RandomToken(12, kUpperDigits) : o.data_dir + "/db";
  if (!o.in_memory) {
    std::error_code ec;
    std::filesystem::create_directories(o.data_dir, ec);
    if (ec) return Internal(fmt::format("create data dir {}: {}", o.data_dir, ec.message()));
  }
  auto store = Store::Open({db_path, o.in_memory});
  GRANARY_TRY(store);
  core->store_ = std::move(*store);
  auto box = SecretBox::Open(o.in_memory                    ? ""
                             : o.secret_key_file.empty() ? o.data_dir + "/secret.key"
                                                         : o.secret_key_file);
  GRANARY_TRY(box);
  core->secrets_ = std::move(*box);
  core->mapper_ = MakePlacementPgMapper();
  core->applier_ = std::make_unique<Applier>(*core->mapper_);
  core->warmups_ = std::make_unique<WarmupDriver>(*core, o.warmups);
  if (o.member_id == 0) {
    CommitterOptions co;
    co.sync = o.sync;
    core->committer_ = std::make_unique<LocalCommitter>(*core->store_, *core->applier_, co);
    // Alone, this metanode leads from the start.
    GRANARY_TRY(core->TakeOver());
    core->took_over_ = true;
    if (o.housekeeping_ms > 0)
      core->housekeeper_ = std::thread([c = core.get()] { c->HousekeepingLoop(); });
    return core;
  }
  if (o.in_memory) return InvalidArgument("a metadata group member needs a data dir");
  GroupCommitterOptions go;
  go.raft_dir = o.data_dir + "/raft";
  go.id = o.member_id;
  go.address = o.member_address;
  go.bind_host = o.bind_host;
  go.election_timeout_ms = o.election_timeout_ms;
  go.heartbeat_ms = o.heartbeat_ms;
  go.snapshot_threshold = o.snapshot_threshold;
  if (!o.peers.empty()) {
    auto peers = replication::ParseMembers(o.peers);
    GRANARY_TRY(peers);
    go.peers = std::move(*peers);
  }
  auto group = GroupCommitter::Start(*core->store_, *core->applier_, std::move(go));
  GRANARY_TRY(group);
  core->committer_ = std::move(*group);
  // Taking over as leader (bootstrap, sessions, liveness) happens on the housekeeping thread:
  // the notification comes from the group's loop, which must not wait on its own proposals.
  core->committer_->OnLeadership([c = core.get()](bool) {
    std::lock_guard lock(c->mu_);
    c->leadership_changed_ = true;
    c->stop_cv_.notify_all();
  });
  core->housekeeper_ = std::thread([c = core.get()] { c->HousekeepingLoop(); });
  return core;
}

Status MetaCore::TakeOver() {
  // Idempotent: creates the default pool at the first start and names the cluster; a new leader
  // applies it again, which changes nothing.
  Operation boot;
  boot.mutable_bootstrap()->set_default_pool(options_.default_pool);
  boot.mutable_bootstrap()->set_cluster_id(RandomToken(16, kUpperDigits));
  GRANARY_TRY(Run(std::move(boot)));
  {
    // A new leader knows nothing of the last one's heartbeats and sessions: everyone starts
    // with a full period (nothing is declared down or reaped for lack of history).
    std::lock_guard lock(mu_);
    liveness_.clear();
    sessions_.clear();
  }
  warmups_->Reset();
  return LoadSessions();
}

Result<std::unique_ptr<Txn>> MetaCore::ReadView() {
  GRANARY_TRY(committer_->ReadFence());
  return Snapshot();
}

bool MetaCore::IsLeader() const { return committer_->IsLeader(); }

MetaCore::~MetaCore() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  // The committer stops first so a housekeeping round waiting on a proposal gets its answer.
  if (committer_) committer_->Stop();
  if (housekeeper_.joinable()) housekeeper_.join();
}

int64_t MetaCore::NowMs() const {
  if (options_.clock) return options_.clock();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

OpReply MetaCore::Mutate(Operation op) {
  TouchSession(op);
  op.set_format(kFormat);
  op.set_now_ms(NowMs());
  if (op.lease_ms() == 0) op.set_lease_ms(options_.lease_ms);
  return committer_->Submit(std::move(op));
}

void MetaCore::MutateAsync(Operation op, std::function<void(OpReply)> done) {
  TouchSession(op);
  op.set_format(kFormat);
  op.set_now_ms(NowMs());
  if (op.lease_ms() == 0) op.set_lease_ms(options_.lease_ms);
  committer_->SubmitAsync(std::move(op), std::move(done));
}

Result<OpReply> MetaCore::Run(Operation op) {
  OpReply reply = Mutate(std::move(op));
  if (reply.code() != Code::OK) return Status(reply.code(), reply.message());
  return reply;
}

Result<AccessKey> MetaCore::KeyCreate(const KeyCreateRequest& req) {
  std::string access_key =
      req.access_key().empty() ? "GK" + RandomToken(18, kUpperDigits) : req.access_key();
  std::string secret = req.secret_key().empty() ? RandomToken(40, kSecretChars) : req.secret_key();
  auto sealed = secrets_->Seal(secret, access_key);
  GRANARY_TRY(sealed);
  Operation op;
  *op.mutable_id() = req.op();
  KeyRecord& key = *op.mutable_key_create()->mutable_key();
  key.set_access_key(access_key);
  key.set_name(req.name());
  key.set_sealed_secret(std::move(*sealed));
  auto reply = Run(std::move(op));
  GRANARY_TRY(reply);
  // A retried request answers with the first attempt's key: read its secret back from the store
  // rather than from this attempt (the stored reply never holds a plaintext secret).
  return KeyGetSecret(reply->key().key().access_key());
}

Result<AccessKey> MetaCore::KeyGetSecret(const std::string& access_key) {
  auto view = ReadView();
  GRANARY_TRY(view);
  auto rec = QueryKey(**view, access_key);
  GRANARY_TRY(rec);
  auto secret = secrets_->Unseal(rec->sealed_secret(), rec->access_key());
  GRANARY_TRY(secret);
  AccessKey out;
  out.set_access_key(rec->access_key());
  out.set_name(rec->name());
  out.set_secret_key(std::move(*secret));
  out.set_created_ms(rec->created_ms());
  return out;
}

Result<HeartbeatReply> MetaCore::Heartbeat(const HeartbeatRequest& req) {
  auto view = ReadView();
  GRANARY_TRY(view);
  auto snapshot = std::move(*view);
  NodeRecord rec;
  auto found = snapshot->GetRecord(Cf::kSystem, NodeKey(req.node_id()), &rec);
  GRANARY_TRY(found);
  if (!*found) return NotFound(fmt::format("datanode {} is not registered", req.node_id()));
  {
    std::lock_guard lock(mu_);
    Liveness& l = liveness_[req.node_id()];
    l.last_ms = NowMs();
    l.capacity = req.capacity_bytes();
    l.used = req.used_bytes();
    l.healthy = req.healthy();
    l.repair_pending = req.repair_pending();
    l.repair_epoch = req.repair_epoch();
    if (req.has_scrub()) l.scrub = req.scrub();
  }
  if (req.has_io()) io_history_.Record(req.node_id(), req.io(), NowMs());
  if (rec.node().state() != UP) {
    Operation op;
    op.mutable_set_node_state()->set_node_id(req.node_id());
    op.mutable_set_node_state()->set_state(UP);
    GRANARY_TRY(Run(std::move(op)));
  }
  auto cluster = QueryCluster(*Snapshot());
  GRANARY_TRY(cluster);
  HeartbeatReply reply;
  reply.set_map_epoch(cluster->epoch());
  for (SuspectCopy& copy : SuspectCopiesOf(req.node_id())) {
    *reply.add_suspect_copies() = std::move(copy);
  }
  for (WarmTask& task : warmups_->TasksFor(req.node_id())) {
    *reply.add_warm_tasks() = std::move(task);
  }
  return reply;
}

Result<IoHistoryReply> MetaCore::GetIoHistory(const IoHistoryRequest& req) {
  // Only the leader hears heartbeats: a follower's history would be empty or stale.
  GRANARY_TRY(committer_->ReadFence());
  return io_history_.Snapshot(req.since_ms(), NowMs());
}

void MetaCore::SetAdminAddress(std::string address) {
  std::lock_guard lock(mu_);
  admin_address_ = std::move(address);
}

Result<ClusterMap> MetaCore::GetClusterMap(uint64_t known_epoch) {
  auto view = ReadView();
  GRANARY_TRY(view);
  auto snapshot = std::move(*view);
  auto cluster = QueryCluster(*snapshot);
  GRANARY_TRY(cluster);
  ClusterMap map;
  map.set_epoch(cluster->epoch());
  if (known_epoch != 0 && known_epoch == cluster->epoch()) {
    map.set_unchanged(true);
    return map;
  }
  auto nodes = QueryNodes(*snapshot);
  GRANARY_TRY(nodes);
  {
    std::lock_guard lock(mu_);
    for (NodeInfo& n : *nodes) {
      auto it = liveness_.find(n.id());
      if (it == liveness_.end()) continue;
      n.set_last_heartbeat_ms(it->second.last_ms);
      n.set_capacity_bytes(it->second.capacity);
      n.set_used_bytes(it->second.used);
      n.set_healthy(it->second.healthy);
    }
  }
  for (auto& n : *nodes) *map.add_nodes() = std::move(n);
  auto pools = QueryPools(*snapshot);
  GRANARY_TRY(pools);
  for (auto& p : *pools->mutable_pools()) *map.add_pools() = std::move(p);
  map.set_placement(cluster->placement());
  return map;
}

Result<ClusterStatusReply> MetaCore::ClusterStatus() {
  auto map = GetClusterMap(0);
  GRANARY_TRY(map);
  ClusterStatusReply reply;
  reply.set_epoch(map->epoch());
  std::map<uint32_t, NodeState> states;
  for (const auto& n : map->nodes()) states[n.id()] = n.state();
  // A PG is degraded while it is short of members or one of them is not up.
  auto placement = placement::PlacementMap::Deserialize(map->placement());
  for (const auto& p : map->pools()) {
    reply.set_pgs_total(reply.pgs_total() + p.pg_count());
    auto width = placement::PoolWidth(p);
    for (uint32_t pg = 0; pg < p.pg_count(); ++pg) {
      auto members = placement.ok() ? placement->Members(p.id(), pg)
                                    : Result<std::span<const uint32_t>>(placement.status());
      bool degraded = !members.ok() || !width.ok() || members->size() < *width;
      if (members.ok()) {
        for (uint32_t id : *members) degraded = degraded || states[id] != UP;
      }
      if (degraded) reply.set_pgs_degraded(reply.pgs_degraded() + 1);
    }
  }
  if (placement.ok()) reply.set_pgs_moving(placement->MovingPgs());
  for (auto& p : PoolPlacements(*map)) *reply.add_pools() = std::move(p);
  for (auto& n : *map->mutable_nodes()) *reply.add_nodes() = std::move(n);
  uint64_t garbage = 0;
  GRANARY_TRY(Snapshot()->Scan(Cf::kSystem, kGarbagePrefix, "", false,
                               [&](std::string_view, std::string_view) {
                                 ++garbage;
                                 return true;
                               }));
  reply.set_garbage_pending(garbage);
  GRANARY_TRY(AddCorruptionStatus(*Snapshot(), &reply));
  std::lock_guard lock(mu_);
  reply.set_sessions(sessions_.size());
  reply.set_sessions_reaped(sessions_reaped_);
  reply.set_multipart_expired(multipart_expired_);
  for (const auto& n : reply.nodes()) {
    if (n.state() != UP) continue;
    auto it = liveness_.find(n.id());
    const Liveness none;
    const Liveness& l = it == liveness_.end() ? none : it->second;
    reply.set_repair_pending(reply.repair_pending() + l.repair_pending);
    if (l.repair_epoch < reply.epoch()) reply.set_nodes_repairing(reply.nodes_repairing() + 1);
    if (l.scrub) {
      NodeScrub& scrub = *reply.add_scrub();
      scrub.set_node_id(n.id());
      *scrub.mutable_scrub() = *l.scrub;
    }
  }
  // A copy known bad (or not yet verified) is missing redundancy even when every PG is whole.
  reply.set_healthy(reply.pgs_degraded() == 0 && reply.pgs_moving() == 0 &&
                    reply.repair_pending() == 0 && reply.nodes_repairing() == 0 &&
                    reply.copies_bad() == 0);
  return reply;
}

Result<PgBlocksReply> MetaCore::PgBlocks(const PgBlocksRequest& req) {
  const uint32_t limit = req.limit() == 0 ? 1000 : std::min(req.limit(), 10000u);
  auto view = ReadView();
  GRANARY_TRY(view);
  auto snap = std::move(*view);
  const std::string prefix = PgBlockPrefix(req.pool_id(), req.pg());
  const std::string start =
      req.has_cursor() ? PgBlockKey(req.pool_id(), req.pg(), req.after_slice(), req.after_block())
                       : "";
  PgBlocksReply reply;
  reply.set_eof(true);
  std::map<uint64_t, SliceRecord> slices;
  Status failed = Status::Ok();
  GRANARY_TRY(snap->Scan(
      Cf::kSystem, prefix, start, req.has_cursor(), [&](std::string_view key, std::string_view) {
        if (static_cast<uint32_t>(reply.blocks_size()) >= limit) {
          reply.set_eof(false);
          return false;
        }
        const uint64_t slice_id = ReadU64(key.substr(prefix.size()));
        const auto b = reinterpret_cast<const uint8_t*>(key.data() + prefix.size() + 8);
        const uint32_t block =
            (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
        auto it = slices.find(slice_id);
        if (it == slices.end()) {
          SliceRecord rec;
          auto found = snap->GetRecord(Cf::kSystem, SliceKey(slice_id), &rec);
          if (!found.ok()) {
            failed = found.status();
            return false;
          }
          it = slices.emplace(slice_id, std::move(rec)).first;
        }
        const SliceRecord& s = it->second;
        const uint64_t bs =
            s.layout().block_size() == 0 ? s.slice_length() : s.layout().block_size();
        const uint64_t offset = uint64_t{block} * bs;
        PgBlock& out = *reply.add_blocks();
        out.set_slice_id(slice_id);
        out.set_block_index(block);
        out.set_length(s.slice_length() > offset ? std::min(bs, s.slice_length() - offset) : 0);
        out.set_encoding(s.encoding());
        out.set_ino(s.ino());
        out.set_range_index(s.range_index());
        out.set_block_size(static_cast<uint32_t>(bs));
        return true;
      }));
  GRANARY_TRY(failed);
  return reply;
}

Result<BackupReply> MetaCore::Backup(const std::string& dir) {
  std::string target = dir;
  if (target.empty()) {
    if (options_.in_memory) return InvalidArgument("backup of an in-memory store needs a dir");
    target = fmt::format("{}/backups/{}", options_.data_dir, NowMs());
    std::error_code ec;
    std::filesystem::create_directories(options_.data_dir + "/backups", ec);
  }
  auto sequence = store_->Checkpoint(target);
  GRANARY_TRY(sequence);
  GLOG_INFO("event=backup dir={} sequence={}", target, *sequence);
  BackupReply reply;
  reply.set_dir(target);
  reply.set_sequence(*sequence);
  return reply;
}

void MetaCore::Housekeep() {
  Operation reap;
  reap.mutable_reap_intents()->set_grace_ms(options_.reap_grace_ms);
  Mutate(std::move(reap));
  ReapSessions();
  ExpireUploads();
  Operation prune;
  prune.mutable_prune_dedup()->set_before_ms(NowMs() - options_.dedup_retention_ms);
  Mutate(std::move(prune));
  auto nodes = QueryNodes(*Snapshot());
  if (!nodes.ok()) return;
  const int64_t now = NowMs();
  std::vector<std::pair<uint32_t, NodeState>> changes;
  {
    std::lock_guard lock(mu_);
    for (const NodeInfo& n : *nodes) {
      if (n.state() == OUT) continue;
      auto [it, inserted] = liveness_.try_emplace(n.id());
      // A node seen for the first time since this metanode started gets a full period.
      if (inserted) it->second.last_ms = now;
      const int64_t silent_ms = now - it->second.last_ms;
      if (n.state() == UP && silent_ms > options_.down_after_ms) {
        changes.emplace_back(n.id(), DOWN);
      } else if (n.state() == DOWN && silent_ms > options_.out_after_ms) {
        changes.emplace_back(n.id(), OUT);
      }
    }
  }
  for (auto [id, state] : changes) {
    // Down keeps the node's PGs (short outages need no data movement); out remaps them, and
    // the new members rebuild what they lack.
    GLOG_WARN("event=datanode_{} node={} silent_ms>{}", state == DOWN ? "down" : "out", id,
              state == DOWN ? options_.down_after_ms : options_.out_after_ms);
    Operation op;
    op.mutable_set_node_state()->set_node_id(id);
    op.mutable_set_node_state()->set_state(state);
    Mutate(std::move(op));
  }
  CompleteReadyMoves();
  SettleSuspects();
  CollectGarbage();
  warmups_->Round();
}

void MetaCore::CompleteReadyMoves() {
  auto snapshot = Snapshot();
  auto cluster = QueryCluster(*snapshot);
  if (!cluster.ok() || cluster->placement().empty()) return;
  auto map = placement::PlacementMap::Deserialize(cluster->placement());
  if (!map.ok() || map->MovingPgs() == 0) return;
  auto nodes = QueryNodes(*snapshot);
  if (!nodes.ok()) return;
  // A filling member holds every block of the PG once it is up and has finished a repair pass
  // at a map no older than the move: that pass walked the PG's index with it as a member, and
  // everything committed since was written to it directly (writers use the dual set).
  std::map<uint32_t, uint64_t> repaired;
  {
    std::lock_guard lock(mu_);
    for (const NodeInfo& n : *nodes) {
      auto it = liveness_.find(n.id());
      if (n.state() == UP && it != liveness_.end()) repaired[n.id()] = it->second.repair_epoch;
    }
  }
  Operation op;
  CompleteMovesOp& done = *op.mutable_complete_moves();
  for (const PoolSpec& pool : map->pools()) {
    for (uint32_t pg = 0; pg < pool.pg_count(); ++pg) {
      auto move_epoch = map->MoveEpoch(pool.id(), pg);
      if (!move_epoch.ok() || *move_epoch == 0) continue;
      bool ready = true;
      for (uint32_t id : map->FillingMembers(pool.id(), pg)) {
        auto it = repaired.find(id);
        ready = ready && it != repaired.end() && it->second >= *move_epoch;
      }
      if (!ready) continue;
      PgMoveRef& ref = *done.add_moves();
      ref.set_pool_id(pool.id());
      ref.set_pg(pg);
      ref.set_move_epoch(*move_epoch);
    }
  }
  if (done.moves_size() == 0) return;
  GLOG_INFO("event=pg_moves_completed count={} of={} epoch={}", done.moves_size(), map->MovingPgs(),
            cluster->epoch());
  OpReply reply = Mutate(std::move(op));
  if (reply.code() != Code::OK) {
    GLOG_WARN("event=pg_moves_complete_failed error=\"{}\"", reply.message());
  }
}

void MetaCore::HousekeepingLoop() {
  const auto period =
      std::chrono::milliseconds(options_.housekeeping_ms > 0 ? options_.housekeeping_ms : 1000);
  std::unique_lock lock(mu_);
  while (!stopping_) {
    stop_cv_.wait_for(lock, period, [&] { return stopping_ || leadership_changed_; });
    if (stopping_) break;
    leadership_changed_ = false;
    lock.unlock();
    // Time-driven work runs on the leader only (the time it used travels in its operations).
    if (!IsLeader()) {
      took_over_ = false;
    } else if (!took_over_) {
      Status s = TakeOver();
      took_over_ = s.ok();
      if (!s.ok()) GLOG_WARN("event=meta_takeover_failed error=\"{}\"", s.ToString());
    } else if (options_.housekeeping_ms > 0) {
      Housekeep();
    }
    if (options_.member_id != 0) committer_->State().status().PermitUnchecked();  // metrics
    lock.lock();
  }
}

}  // namespace granary::metanode
