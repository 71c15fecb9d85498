#include "datanode/maintenance.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "common/crc32c.h"
#include "common/erasure.h"
#include "common/log.h"
#include "datanode/maintenance_metrics.h"
#include "placement/placement.h"

namespace granary::datanode {

namespace {

constexpr uint32_t kPageLimit = 1000;
constexpr size_t kCheckBatch = 10000;

}  // namespace

Maintenance::Maintenance(MaintenanceOptions options, BlockStore* store, MetaSession* session)
    : options_(options),
      store_(store),
      session_(session),
      pacer_(options.scrub_period.count(), options.scrub_bytes_per_second) {}

Maintenance::~Maintenance() { Stop(); }

void Maintenance::Start() {
  LoadScrub();
  thread_ = std::thread([this] { Loop(); });
}

void Maintenance::Wake() {
  {
    std::lock_guard lock(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

void Maintenance::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  pool_->CloseAll();
}

bool Maintenance::stopping() {
  std::lock_guard lock(mu_);
  return stopping_;
}

bool Maintenance::Throttle(uint64_t bytes, uint64_t rate) {
  if (rate == 0 || bytes == 0) return !stopping();
  auto pause = std::chrono::microseconds(bytes * 1000000 / rate);
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, pause, [&] { return stopping_; });
}

void Maintenance::Loop() {
  while (!stopping()) {
    auto map = session_->epochs().latest();
    // Known-bad copies first: each one is a copy short right now.
    HandleLocalFindings();
    if (map && session_->node_id() != 0) HandleSuspects(*map);
    if (map && session_->node_id() != 0) HandleWarmTasks(*map);
    if (map && session_->node_id() != 0 &&
        (map->epoch() != repaired_epoch_.load() || repair_wanted_.exchange(false))) {
      if (RepairPass(*map)) {
        repaired_epoch_ = map->epoch();
        reconciled_ = false;
      } else {
        repair_wanted_ = true;  // try again next round
      }
    }
    // Until it has run against a healthy cluster at this map (others may still be repairing).
    if (map && !reconciled_ && repaired_epoch_.load() == map->epoch()) {
      reconciled_ = Reconcile(*map);
      if (reconciled_) M().reconciled_epoch.Set(static_cast<int64_t>(map->epoch()));
    }
    const bool scrub_more = ScrubStep();
    std::unique_lock lock(mu_);
    if (scrub_more && !stopping_) continue;  // behind its schedule: no idle wait
    cv_.wait_for(lock, options_.interval, [&] { return stopping_ || woken_; });
    woken_ = false;
  }
}

std::optional<Maintenance::PgView> Maintenance::ViewOf(
    const placement::PlacementMap& placement, const PoolSpec& pool, uint32_t pg,
    const std::map<uint32_t, const NodeInfo*>& nodes) {
  auto members = placement.Members(pool.id(), pg);
  auto epoch = placement.PgEpoch(pool.id(), pg);
  auto from = placement.MovingFrom(pool.id(), pg);
  if (!members.ok() || !epoch.ok() || !from.ok()) return std::nullopt;
  auto mine = std::find(members->begin(), members->end(), session_->node_id());
  if (mine == members->end()) return std::nullopt;
  return PgView{&pool,
                pg,
                *epoch,
                {members->begin(), members->end()},
                static_cast<uint32_t>(mine - members->begin()),
                {from->begin(), from->end()},
                &nodes};
}

bool Maintenance::RepairPass(const ClusterMap& map) {
  auto placement = placement::PlacementMap::Deserialize(map.placement());
  if (!placement.ok()) {
    GLOG_WARN("event=repair_skipped epoch={} error=\"{}\"", map.epoch(),
              placement.status().ToString());
    return false;
  }
  std::map<uint32_t, const NodeInfo*> nodes;
  for (const NodeInfo& n : map.nodes()) nodes[n.id()] = &n;
  uint64_t missing = 0, repaired = 0, repaired_bytes = 0;
  auto set_pending = [&] {
    pending_ = missing;
    M().pending.Set(static_cast<int64_t>(missing));
  };
  for (const PoolSpec& pool : placement->pools()) {
    for (uint32_t pg = 0; pg < pool.pg_count(); ++pg) {
      // A long pass does not hold back copies reported bad meanwhile.
      if (SuspectsWaiting()) {
        HandleLocalFindings();
        HandleSuspects(map);
      }
      auto found = ViewOf(*placement, pool, pg, nodes);
      if (!found) continue;
      const PgView& view = *found;
      PgBlocksRequest req;
      req.set_pool_id(pool.id());
      req.set_pg(pg);
      req.set_limit(kPageLimit);
      for (;;) {
        if (stopping()) return false;
        auto page = session_->PgBlocks(req);
        if (!page.ok()) {
          GLOG_WARN("event=repair_list_failed pool={} pg={} error=\"{}\"", pool.id(), pg,
                    page.status().ToString());
          return false;
        }
        for (const PgBlock& b : page->blocks()) {
          auto key = KeyFor(view, b);
          if (!key || store_->Stat(*key).ok()) continue;
          ++missing;
          set_pending();
          Status st = RepairBlock(view, b, *key);
          if (!st.ok()) {
            GLOG_WARN("event=repair_block_failed slice={} block={} fragment={} error=\"{}\"",
                      b.slice_id(), b.block_index(), key->fragment(), st.ToString());
            continue;
          }
          --missing;
          ++repaired;
          repaired_bytes += b.length();
          set_pending();
          M().repaired_blocks.Add();
          M().repaired_bytes.Add(b.length());
          if (!Throttle(b.length(), options_.repair_bytes_per_second)) return false;
        }
        if (page->eof() || page->blocks_size() == 0) break;
        const PgBlock& last = page->blocks(page->blocks_size() - 1);
        req.set_has_cursor(true);
        req.set_after_slice(last.slice_id());
        req.set_after_block(last.block_index());
      }
    }
  }
  set_pending();
  // Every pass at debug; what passes repaired at info, at most once a minute (a cluster whose
  // map changes often would otherwise print a line per pass and datanode).
  GLOG_DEBUG("event=repair_pass_done epoch={} repaired={} bytes={} missing={}", map.epoch(),
             repaired, repaired_bytes, missing);
  if (repair_summary_.Add(repaired, repaired_bytes)) {
    GLOG_INFO("event=repair_summary passes={} repaired_blocks={} repaired_bytes={} seconds={:.0f}",
              repair_summary_.rounds(), repair_summary_.work(), repair_summary_.bytes(),
              repair_summary_.seconds());
    repair_summary_.Reset();
  }
  return missing == 0;
}

std::optional<BlockKey> Maintenance::KeyFor(const PgView& pg, const PgBlock& b) {
  auto fragment = StoredFragment(*pg.pool, b.encoding(), b.length(), b.block_size(), pg.position);
  if (!fragment) return std::nullopt;
  BlockKey key;
  key.set_slice_id(b.slice_id());
  key.set_block_index(b.block_index());
  key.set_fragment(*fragment);
  return key;
}

Result<std::pair<AlignedBuffer, std::vector<uint32_t>>> Maintenance::ReadWhole(
    const NodeInfo& node, const PgView& pg, const BlockKey& key) {
  const std::string& from = node.data_address();
  DataRequest req;
  req.set_op(READ_BLOCK);
  req.set_pool_id(pg.pool->id());
  req.set_pg(pg.pg);
  req.set_pg_epoch(pg.epoch);
  *req.mutable_block() = key;
  auto reply = pool_->Call(from, req, {}, DeadlineIn(options_.read_timeout));
  GRANARY_TRY(reply);
  GRANARY_TRY(ReplyStatus(*reply, from));
  const uint64_t length = reply->header.length();
  std::vector<uint32_t> crcs(reply->header.crcs().begin(), reply->header.crcs().end());
  if (reply->header.crc_offset() != 0 ||
      FirstCrcMismatch(reply->payload.data(), length, crcs.data(), crcs.size()) != -1) {
    std::string detail = fmt::format(
        "slice {} block {} fragment {} from node {} at {} fails its CRC (read by "
        "repair on node {})",
        key.slice_id(), key.block_index(), key.fragment(), node.id(), from, session_->node_id());
    // Like a reader, repair reports a bad copy it meets: that one gets replaced too.
    ReportCorruptionRequest report;
    report.set_node_id(node.id());
    report.set_slice_id(key.slice_id());
    report.set_block_index(key.block_index());
    report.set_fragment(key.fragment());
    report.set_detail(detail);
    report.set_source(SOURCE_DATANODE);
    Status st = session_->ReportCorruption(report);
    if (!st.ok()) GLOG_WARN("event=report_corruption_failed error=\"{}\"", st.ToString());
    return Status(Code::CORRUPT, std::move(detail));
  }
  reply->payload.resize(length);
  return std::pair{std::move(reply->payload), std::move(crcs)};
}

Status Maintenance::RepairBlock(const PgView& pg, const PgBlock& b, const BlockKey& key) {
  BlockOrigin origin;
  origin.set_ino(b.ino());
  origin.set_range_index(b.range_index());
  origin.set_encoding(b.encoding());
  origin.set_pool_id(pg.pool->id());
  origin.set_pg(pg.pg);
  const uint32_t me = pg.members[pg.position];
  auto up_node = [&](uint32_t id) -> const NodeInfo* {
    if (id == me) return nullptr;
    auto it = pg.nodes->find(id);
    if (it == pg.nodes->end() || it->second->state() != UP) return nullptr;
    return it->second;
  };
  // Who may hold slot `slot`'s data, best first: during a move the slot's previous member (it
  // has everything), then the slot's member.
  auto sources = [&](uint32_t slot) {
    std::vector<const NodeInfo*> out;
    if (slot < pg.from.size() && pg.from[slot] != pg.members[slot]) {
      if (const NodeInfo* n = up_node(pg.from[slot])) out.push_back(n);
    }
    if (slot != pg.position && slot < pg.members.size()) {
      if (const NodeInfo* n = up_node(pg.members[slot])) out.push_back(n);
    }
    return out;
  };
  const bool fragmented = pg.pool->redundancy() == ERASURE_CODED_POOL &&
                          b.encoding() == ERASURE_CODED && b.length() == b.block_size();
  if (!fragmented) {
    // A copy: take it from any other member holding one, previous members (a move) first.
    Status last = Unavailable("no other up member holds a copy");
    std::vector<const NodeInfo*> copies;
    for (uint32_t slot = 0; slot < pg.from.size(); ++slot) {
      for (const NodeInfo* n : sources(slot)) {
        if (std::find(copies.begin(), copies.end(), n) == copies.end()) copies.push_back(n);
      }
    }
    for (uint32_t slot = 0; slot < pg.members.size(); ++slot) {
      for (const NodeInfo* n : sources(slot)) {
        if (std::find(copies.begin(), copies.end(), n) == copies.end()) copies.push_back(n);
      }
    }
    for (const NodeInfo* node : copies) {
      auto copy = ReadWhole(*node, pg, key);
      if (!copy.ok()) {
        last = copy.status();
        continue;
      }
      return store_->Write(key, origin, copy->first.span(), copy->second);
    }
    return last;
  }
  // A fragment moving off another node: copy it from the slot's previous member.
  if (pg.position < pg.from.size() && pg.from[pg.position] != me) {
    if (const NodeInfo* prev = up_node(pg.from[pg.position])) {
      auto copy = ReadWhole(*prev, pg, key);
      if (copy.ok()) return store_->Write(key, origin, copy->first.span(), copy->second);
    }
  }
  // A fragment: rebuild it from any K others (the shared Reed-Solomon code, as readers do).
  const int k = static_cast<int>(pg.pool->data_chunks());
  const int m = static_cast<int>(pg.pool->coding_chunks());
  auto coder = ReedSolomon::Create(k, m);
  GRANARY_TRY(coder);
  const uint64_t fragment_size = EcFragmentSize(b.length(), k);
  std::vector<AlignedBuffer> pieces;
  pieces.reserve(k + m);
  for (int i = 0; i < k + m; ++i) pieces.emplace_back(fragment_size);
  std::vector<bool> present(k + m, false), want(k + m, false);
  want[key.fragment()] = true;
  int have = 0;
  Status last = Unavailable("fewer than K fragments readable");
  for (uint32_t slot = 0; slot < pg.members.size() && have < k; ++slot) {
    if (slot == pg.position) continue;
    BlockKey other = key;
    other.set_fragment(slot);
    for (const NodeInfo* node : sources(slot)) {
      auto piece = ReadWhole(*node, pg, other);
      if (!piece.ok() || piece->first.size() != fragment_size) {
        last = piece.ok() ? Status(Code::CORRUPT, "fragment of unexpected size") : piece.status();
        continue;
      }
      std::memcpy(pieces[slot].data(), piece->first.data(), fragment_size);
      present[slot] = true;
      ++have;
      break;
    }
  }
  if (have < k) {
    return last.WithContext(fmt::format("rebuild fragment {}: {} of {} needed fragments read",
                                        key.fragment(), have, k));
  }
  std::vector<uint8_t*> ptrs;
  for (auto& p : pieces) ptrs.push_back(p.data());
  GRANARY_TRY(coder->get()->Reconstruct(ptrs.data(), present, want, fragment_size));
  const AlignedBuffer& rebuilt = pieces[key.fragment()];
  std::vector<uint32_t> crcs = BlockCrcs(rebuilt.data(), fragment_size);
  return store_->Write(key, origin, rebuilt.span(), crcs);
}

bool Maintenance::Reconcile(const ClusterMap& map) {
  uint64_t reclaimed = 0;
  bool done = ReconcileCounting(map, reclaimed);
  if (reclaim_summary_.Add(reclaimed)) {
    GLOG_INFO("event=reclaim_summary blocks={} rounds={} seconds={:.0f}", reclaim_summary_.work(),
              reclaim_summary_.rounds(), reclaim_summary_.seconds());
    reclaim_summary_.Reset();
  }
  return done;
}

bool Maintenance::ReconcileCounting(const ClusterMap& map, uint64_t& reclaimed) {
  // Slices collected while this node was away.
  std::vector<uint64_t> ids = store_->SliceIds();
  for (size_t i = 0; i < ids.size() && !stopping(); i += kCheckBatch) {
    CheckSlicesRequest req;
    for (size_t j = i; j < std::min(ids.size(), i + kCheckBatch); ++j) req.add_slice_ids(ids[j]);
    auto dead = session_->CheckSlices(req);
    if (!dead.ok()) return false;
    for (uint64_t id : dead->dead_slice_ids()) {
      GLOG_DEBUG("event=reclaim_dead_slice slice={}", id);
      for (const BlockKey& key : store_->KeysOfSlice(id)) {
        if (store_->Delete(key).ok()) {
          M().reclaimed.Add();
          ++reclaimed;
        }
      }
    }
  }
  // Blocks of PGs this node left: dropped only once every PG has its full redundancy elsewhere
  // (and this node judges membership by the metanode's current map).
  auto status = session_->ClusterStatus();
  if (!status.ok() || !status->healthy() || status->epoch() != map.epoch()) return false;
  auto placement = placement::PlacementMap::Deserialize(map.placement());
  if (!placement.ok()) return false;
  const uint32_t me = session_->node_id();
  for (const BlockInfo& info : store_->List(0, 0, true)) {
    if (info.origin().warm()) continue;  // a warm-up's copy: ReconcileWarm below decides
    auto members = placement->Members(info.origin().pool_id(), info.origin().pg());
    if (!members.ok()) continue;  // unknown pool or PG: keep, fsck decides
    if (std::find(members->begin(), members->end(), me) != members->end()) continue;
    // A PG moving off this node: its new members may still lack what this copy holds.
    auto from = placement->MovingFrom(info.origin().pool_id(), info.origin().pg());
    if (!from.ok() || std::find(from->begin(), from->end(), me) != from->end()) continue;
    GLOG_DEBUG("event=reclaim_left_pg slice={} block={} pool={} pg={}", info.key().slice_id(),
               info.key().block_index(), info.origin().pool_id(), info.origin().pg());
    if (store_->Delete(info.key()).ok()) {
      M().reclaimed.Add();
      ++reclaimed;
    }
  }
  ReconcileWarm(*placement);
  return true;
}

void Maintenance::RequestRepair() {
  repair_wanted_ = true;
  cv_.notify_all();
}

Status Maintenance::VerifyStored(const BlockKey& key) {
  auto plan = store_->PrepareRead(key, 0, 0);
  GRANARY_TRY(plan);
  AlignedBuffer buffer(plan->length);
  GRANARY_TRY(store_->ReadInto(*plan, buffer.span()));
  M().scrubbed_bytes.Add(plan->length);
  long bad = FirstCrcMismatch(buffer.data(), plan->length, plan->crcs.data(), plan->crcs.size());
  if (bad >= 0) {
    return Corrupt(
        fmt::format("stored CRC mismatch in 4 KiB unit {} of slice {} block {} "
                    "fragment {}",
                    bad, key.slice_id(), key.block_index(), key.fragment()));
  }
  return Status::Ok();
}

bool Maintenance::ScrubBlock(const BlockInfo& info) {
  // CORRUPT is a bad data CRC, or a damaged header or small-block record (or RocksDB's own
  // checksum): the copy is useless either way. Anything else: deleted meanwhile, or EIO (the
  // disk is unhealthy and reported so).
  Status st = VerifyStored(info.key());
  if (st.code() != Code::CORRUPT) return false;
  M().scrub_corrupt.Add();
  const BlockKey& key = info.key();
  GLOG_WARN("event=scrub_corrupt slice={} block={} fragment={} error=\"{}\"", key.slice_id(),
            key.block_index(), key.fragment(), st.message());
  ReportLocal(key, "scrub: " + st.message(), SOURCE_SCRUB);
  return true;
}

}  // namespace granary::datanode
