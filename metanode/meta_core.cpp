#include "metanode/meta_core.h"

#include <fmt/format.h>

#include <chrono>
#include <filesystem>

#include "common/log.h"
#include "metanode/reader.h"

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
  auto box = SecretBox::Open(o.in_memory ? "" : o.data_dir + "/secret.key");
  GRANARY_TRY(box);
  core->secrets_ = std::move(*box);
  core->mapper_ = MakePlacementPgMapper();
  core->applier_ = std::make_unique<Applier>(*core->mapper_);
  CommitterOptions co;
  co.sync = o.sync;
  core->committer_ = std::make_unique<Committer>(*core->store_, *core->applier_, co);
  // Idempotent: creates the default pool at first start and records which pool is the default.
  Operation boot;
  boot.mutable_bootstrap()->set_default_pool(o.default_pool);
  GRANARY_TRY(core->Run(std::move(boot)));
  if (o.housekeeping_ms > 0)
    core->housekeeper_ = std::thread([c = core.get()] { c->HousekeepingLoop(); });
  return core;
}

MetaCore::~MetaCore() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (housekeeper_.joinable()) housekeeper_.join();
  if (committer_) committer_->Stop();
}

int64_t MetaCore::NowMs() const {
  if (options_.clock) return options_.clock();
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

OpReply MetaCore::Mutate(Operation op) {
  op.set_format(kFormat);
  op.set_now_ms(NowMs());
  if (op.lease_ms() == 0) op.set_lease_ms(options_.lease_ms);
  return committer_->Submit(std::move(op));
}

void MetaCore::MutateAsync(Operation op, std::function<void(OpReply)> done) {
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
  auto rec = QueryKey(*Snapshot(), access_key);
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
  auto snapshot = Snapshot();
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
  }
  if (rec.node().state() == DOWN) {
    Operation op;
    op.mutable_set_node_state()->set_node_id(req.node_id());
    op.mutable_set_node_state()->set_state(UP);
    GRANARY_TRY(Run(std::move(op)));
  }
  auto cluster = QueryCluster(*Snapshot());
  GRANARY_TRY(cluster);
  HeartbeatReply reply;
  reply.set_map_epoch(cluster->epoch());
  return reply;
}

Result<ClusterMap> MetaCore::GetClusterMap(uint64_t known_epoch) {
  auto snapshot = Snapshot();
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
  for (auto& n : *map->mutable_nodes()) *reply.add_nodes() = std::move(n);
  for (const auto& p : map->pools()) reply.set_pgs_total(reply.pgs_total() + p.pg_count());
  std::lock_guard lock(mu_);
  reply.set_corruptions_reported(corruptions_);
  return reply;
}

void MetaCore::ReportCorruption(const ReportCorruptionRequest& req) {
  GLOG_WARN("event=corruption_reported node={} slice={} block={} fragment={} detail=\"{}\"",
            req.node_id(), req.slice_id(), req.block_index(), req.fragment(), req.detail());
  std::lock_guard lock(mu_);
  ++corruptions_;
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
  Operation prune;
  prune.mutable_prune_dedup()->set_before_ms(NowMs() - options_.dedup_retention_ms);
  Mutate(std::move(prune));
  auto nodes = QueryNodes(*Snapshot());
  if (!nodes.ok()) return;
  const int64_t now = NowMs();
  std::vector<uint32_t> silent;
  {
    std::lock_guard lock(mu_);
    for (const NodeInfo& n : *nodes) {
      if (n.state() != UP) continue;
      auto [it, inserted] = liveness_.try_emplace(n.id());
      // A node seen for the first time since this metanode started gets a full period.
      if (inserted) it->second.last_ms = now;
      if (now - it->second.last_ms > options_.down_after_ms) silent.push_back(n.id());
    }
  }
  for (uint32_t id : silent) {
    GLOG_WARN("event=datanode_down node={} silent_ms>{}", id, options_.down_after_ms);
    Operation op;
    op.mutable_set_node_state()->set_node_id(id);
    op.mutable_set_node_state()->set_state(DOWN);
    Mutate(std::move(op));
  }
}

void MetaCore::HousekeepingLoop() {
  std::unique_lock lock(mu_);
  while (!stop_cv_.wait_for(lock, std::chrono::milliseconds(options_.housekeeping_ms),
                            [&] { return stopping_; })) {
    lock.unlock();
    Housekeep();
    lock.lock();
  }
}

}  // namespace granary::metanode
