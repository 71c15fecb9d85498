// Warm-ups (docs/locality.md): the replicated state — the warm-up records, the warm copies
// datanodes report ("E" + index "e"), and the trash of copies no warm-up wants ("T"). What to
// copy where, and emptying the trash, is the leader's housekeeping (warmups.cpp).
#include <fmt/format.h>

#include <algorithm>

#include "metanode/apply_internal.h"
#include "metanode/locality.h"
#include "metanode/schema.h"

namespace granary::metanode {

namespace {

constexpr size_t kMaxWarmupName = 253;

Status ValidateWarmupName(std::string_view name) {
  if (name.empty() || name.size() > kMaxWarmupName) {
    return InvalidArgument(
        fmt::format("warm-up name '{}': 1 to {} characters", name, kMaxWarmupName));
  }
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || c == '.' || c == '/';
    if (!ok) {
      return InvalidArgument(
          fmt::format("warm-up name '{}': only letters, digits and - _ . / are allowed", name));
    }
  }
  return Status::Ok();
}

Result<std::optional<WarmupRecord>> FindWarmup(Txn& txn, std::string_view name) {
  return FindRecord<WarmupRecord>(txn, Cf::kCatalog, WarmupKey(name));
}

Result<std::optional<WarmupRecord>> FindWarmupById(Txn& txn, uint64_t id) {
  auto all = AllWarmups(txn);
  GRANARY_TRY(all);
  for (WarmupRecord& rec : *all) {
    if (rec.warmup().id() == id) return std::optional<WarmupRecord>(std::move(rec));
  }
  return std::optional<WarmupRecord>();
}

void SaveWarmup(Txn& txn, const WarmupRecord& rec) {
  txn.PutRecord(Cf::kCatalog, WarmupKey(rec.warmup().name()), rec);
}

std::string HostOfNode(Txn& txn, uint32_t node) {
  NodeRecord rec;
  auto found = txn.GetRecord(Cf::kSystem, NodeKey(node), &rec);
  if (!found.ok() || !*found) return "";
  NodePlaces places;
  places.nodes.emplace(node, rec.node());
  return places.HostOf(node);
}

bool WantsHost(const Warmup& w, std::string_view host) {
  return std::find(w.hosts().begin(), w.hosts().end(), host) != w.hosts().end();
}

// Drops warm-up `id` from the copy (node, slice); a copy nobody wants any more goes to the
// trash (its blocks are deleted on the node by housekeeping).
Status ReleaseCopy(Ctx& ctx, uint64_t id, uint32_t node, uint64_t slice_id) {
  ctx.txn.Delete(Cf::kSystem, WarmIndexKey(id, node, slice_id));
  auto copy = FindRecord<ExtraCopyRecord>(ctx.txn, Cf::kSystem, ExtraCopyKey(slice_id, node));
  GRANARY_TRY(copy);
  if (!*copy) return Status::Ok();
  ExtraCopyRecord& rec = **copy;
  auto* ids = rec.mutable_warmup_ids();
  ids->erase(std::remove(ids->begin(), ids->end(), id), ids->end());
  if (!ids->empty()) {
    ctx.txn.PutRecord(Cf::kSystem, ExtraCopyKey(slice_id, node), rec);
    return Status::Ok();
  }
  ctx.txn.Delete(Cf::kSystem, ExtraCopyKey(slice_id, node));
  WarmTrashRecord trash;
  trash.set_format(kFormat);
  *trash.mutable_blocks() = rec.blocks();
  trash.set_since_ms(ctx.op.now_ms());
  ctx.txn.PutRecord(Cf::kSystem, WarmTrashKey(node, slice_id), trash);
  return Status::Ok();
}

// Index entries "e" id node slice, each as (node, slice).
Result<std::vector<std::pair<uint32_t, uint64_t>>> IndexEntries(Txn& txn, std::string_view prefix,
                                                                size_t max) {
  std::vector<std::pair<uint32_t, uint64_t>> out;
  GRANARY_TRY(txn.Scan(Cf::kSystem, prefix, "", false, [&](std::string_view key, std::string_view) {
    if (max != 0 && out.size() >= max) return false;
    const auto* b = reinterpret_cast<const uint8_t*>(key.data() + 9);  // "e" + warm-up id
    const uint32_t node =
        (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
    out.emplace_back(node, ReadU64(key.substr(13)));
    return true;
  }));
  return out;
}

}  // namespace

Status ApplyWarmupCreate(Ctx& ctx, OpReply* reply) {
  const WarmupCreateRequest& req = ctx.op.warmup_create();
  GRANARY_TRY(ValidateWarmupName(req.name()));
  std::vector<std::string> hosts(req.hosts().begin(), req.hosts().end());
  std::sort(hosts.begin(), hosts.end());
  hosts.erase(std::unique(hosts.begin(), hosts.end()), hosts.end());
  hosts.erase(std::remove(hosts.begin(), hosts.end(), ""), hosts.end());
  if (hosts.empty()) {
    return InvalidArgument(fmt::format("warm-up '{}': no hosts given", req.name()));
  }
  auto volume = FindVolumeByName(ctx.txn, req.volume());
  GRANARY_TRY(volume);
  auto pool = LoadPool(ctx.txn, volume->volume().pool_id());
  GRANARY_TRY(pool);
  if (pool->spec().redundancy() == ERASURE_CODED_POOL) {
    // A warm copy is a whole block; an EC pool stores fragments under the same keys.
    return InvalidArgument(
        fmt::format("warm-up '{}': volume '{}' is in erasure-coded pool '{}'; warm-ups copy "
                    "blocks of replicated pools only",
                    req.name(), req.volume(), pool->spec().name()));
  }
  std::string path;
  auto root = ResolveVolumePath(ctx.txn, volume->volume(), req.path(), &path);
  GRANARY_TRY(root);
  auto existing = FindWarmup(ctx.txn, req.name());
  GRANARY_TRY(existing);
  WarmupRecord rec;
  if (*existing) {
    rec = std::move(**existing);
    Warmup& w = *rec.mutable_warmup();
    if (w.state() == WARMUP_DELETING) {
      return AlreadyExists(fmt::format("warm-up '{}' is being deleted", req.name()));
    }
    if (w.volume_id() != volume->volume().id() || w.root_ino() != *root) {
      return AlreadyExists(fmt::format("warm-up '{}' exists for volume '{}' path '{}'", req.name(),
                                       w.volume(), w.path()));
    }
    const std::vector<std::string> old(w.hosts().begin(), w.hosts().end());
    // Copies on hosts left out are released by housekeeping (WarmupRelease).
    bool removed = false;
    for (const std::string& h : old) {
      removed = removed || !std::binary_search(hosts.begin(), hosts.end(), h);
    }
    if (removed) rec.set_hosts_removed(true);
    w.clear_hosts();
    for (const std::string& h : hosts) w.add_hosts(h);
    // Creating it again resumes a stopped warm-up.
    if (w.state() == WARMUP_STOPPED || old != hosts) {
      w.set_state(WARMUP_COPYING);
      w.clear_message();
    }
  } else {
    auto id = NextId(ctx.txn, "warmup");
    GRANARY_TRY(id);
    rec.set_format(kFormat);
    Warmup& w = *rec.mutable_warmup();
    w.set_name(req.name());
    w.set_volume(req.volume());
    w.set_path(path);
    for (const std::string& h : hosts) w.add_hosts(h);
    w.set_id(*id);
    w.set_volume_id(volume->volume().id());
    w.set_root_ino(*root);
    w.set_created_ms(ctx.op.now_ms());
    w.set_state(WARMUP_COPYING);
  }
  SaveWarmup(ctx.txn, rec);
  *reply->mutable_warmup()->mutable_warmup() = rec.warmup();
  return Status::Ok();
}

Status ApplyWarmupDelete(Ctx& ctx, OpReply* reply) {
  const WarmupDeleteRequest& req = ctx.op.warmup_delete();
  auto existing = FindWarmup(ctx.txn, req.name());
  GRANARY_TRY(existing);
  if (!*existing) return NotFound(fmt::format("warm-up '{}'", req.name()));
  WarmupRecord& rec = **existing;
  rec.mutable_warmup()->set_state(WARMUP_DELETING);
  rec.mutable_warmup()->clear_message();
  SaveWarmup(ctx.txn, rec);
  reply->mutable_empty();
  return Status::Ok();
}

Status ApplyWarmCopies(Ctx& ctx, OpReply* reply) {
  const WarmCopiesOp& op = ctx.op.warm_copies();
  const WarmDoneRequest& report = op.report();
  const uint32_t node = report.node_id();
  const std::string host = HostOfNode(ctx.txn, node);
  auto all = AllWarmups(ctx.txn);
  GRANARY_TRY(all);
  auto live = [&](uint64_t id) -> WarmupRecord* {
    for (WarmupRecord& rec : *all) {
      const Warmup& w = rec.warmup();
      if (w.id() == id && w.state() != WARMUP_DELETING && WantsHost(w, host)) return &rec;
    }
    return nullptr;
  };
  for (const WarmedSlice& s : report.slices()) {
    auto slice = FindRecord<SliceRecord>(ctx.txn, Cf::kSystem, SliceKey(s.slice_id()));
    GRANARY_TRY(slice);
    if (!*slice) continue;  // collected meanwhile: the node drops it (CheckSlices says dead)
    std::string trash;
    auto trashed = ctx.txn.Get(Cf::kSystem, WarmTrashKey(node, s.slice_id()), &trash);
    GRANARY_TRY(trashed);
    // A copy in the trash may be deleted any moment: it is not taken back (the planner asks
    // for it again once the trash is emptied).
    if (*trashed) continue;
    auto found =
        FindRecord<ExtraCopyRecord>(ctx.txn, Cf::kSystem, ExtraCopyKey(s.slice_id(), node));
    GRANARY_TRY(found);
    ExtraCopyRecord rec = found->value_or(ExtraCopyRecord());
    rec.set_format(kFormat);
    if (!*found) rec.set_since_ms(ctx.op.now_ms());
    for (uint64_t id : s.warmup_ids()) {
      if (live(id) == nullptr) continue;
      if (std::find(rec.warmup_ids().begin(), rec.warmup_ids().end(), id) ==
          rec.warmup_ids().end()) {
        rec.add_warmup_ids(id);
      }
      ctx.txn.Put(Cf::kSystem, WarmIndexKey(id, node, s.slice_id()), "");
    }
    std::vector<uint32_t> blocks(rec.blocks().begin(), rec.blocks().end());
    blocks.insert(blocks.end(), s.blocks().begin(), s.blocks().end());
    std::sort(blocks.begin(), blocks.end());
    blocks.erase(std::unique(blocks.begin(), blocks.end()), blocks.end());
    rec.clear_blocks();
    for (uint32_t b : blocks) rec.add_blocks(b);
    rec.set_bytes(std::max(rec.bytes(), s.bytes()));
    if (rec.warmup_ids().empty()) {
      // Nobody wants it (the warm-up was deleted while the node copied): straight to the trash.
      WarmTrashRecord t;
      t.set_format(kFormat);
      *t.mutable_blocks() = rec.blocks();
      t.set_since_ms(ctx.op.now_ms());
      ctx.txn.PutRecord(Cf::kSystem, WarmTrashKey(node, s.slice_id()), t);
      continue;
    }
    ctx.txn.PutRecord(Cf::kSystem, ExtraCopyKey(s.slice_id(), node), rec);
  }
  // Out of space stops the warm-ups that asked: nothing more is copied for them. Other errors
  // (a source unreachable) are retried by the next plan.
  if (report.error() == Code::NO_SPACE) {
    for (uint64_t id : report.failed_warmup_ids()) {
      WarmupRecord* rec = live(id);
      if (rec == nullptr || rec->warmup().state() == WARMUP_STOPPED) continue;
      rec->mutable_warmup()->set_state(WARMUP_STOPPED);
      rec->mutable_warmup()->set_message(
          fmt::format("host {}: datanode {} is out of space ({}); copies made so far are kept, "
                      "counted data is untouched",
                      host.empty() ? "?" : host, node, report.message()));
      SaveWarmup(ctx.txn, *rec);
    }
  }
  reply->mutable_empty();
  return Status::Ok();
}

Status ApplyWarmupRelease(Ctx& ctx, OpReply* reply) {
  const WarmupReleaseOp& op = ctx.op.warmup_release();
  reply->mutable_empty();
  auto found = FindWarmupById(ctx.txn, op.warmup_id());
  GRANARY_TRY(found);
  if (!*found) return Status::Ok();
  WarmupRecord& rec = **found;
  const Warmup& w = rec.warmup();
  const bool deleting = w.state() == WARMUP_DELETING;
  const size_t max = op.max() == 0 ? 10000 : op.max();
  auto entries = IndexEntries(ctx.txn, WarmIndexPrefix(w.id()), deleting ? max : 0);
  GRANARY_TRY(entries);
  size_t released = 0;
  std::map<uint32_t, std::string> hosts;
  for (const auto& [node, slice] : *entries) {
    if (released >= max) break;
    if (!deleting) {
      auto [it, inserted] = hosts.try_emplace(node);
      if (inserted) it->second = HostOfNode(ctx.txn, node);
      if (WantsHost(w, it->second)) continue;
    }
    GRANARY_TRY(ReleaseCopy(ctx, w.id(), node, slice));
    ++released;
  }
  const bool all_done = released < max;
  if (deleting && all_done) {
    ctx.txn.Delete(Cf::kCatalog, WarmupKey(w.name()));
  } else if (!deleting && all_done && rec.hosts_removed()) {
    rec.set_hosts_removed(false);
    SaveWarmup(ctx.txn, rec);
  }
  return Status::Ok();
}

Status ApplyWarmTrashDone(Ctx& ctx, OpReply* reply) {
  const WarmTrashDoneOp& op = ctx.op.warm_trash_done();
  for (uint64_t slice : op.slice_ids()) {
    ctx.txn.Delete(Cf::kSystem, WarmTrashKey(op.node_id(), slice));
  }
  reply->mutable_empty();
  return Status::Ok();
}

Status ApplyWarmupState(Ctx& ctx, OpReply* reply) {
  const WarmupStateOp& op = ctx.op.warmup_state();
  reply->mutable_empty();
  auto found = FindWarmupById(ctx.txn, op.warmup_id());
  GRANARY_TRY(found);
  if (!*found) return Status::Ok();
  Warmup& w = *(*found)->mutable_warmup();
  if (w.state() == WARMUP_DELETING) return Status::Ok();
  // A warm-up stopped for space stays stopped until created again (the planner's "copying
  // again" cannot override it).
  if (w.state() == WARMUP_STOPPED && op.state() == WARMUP_COPYING) return Status::Ok();
  w.set_state(op.state());
  w.set_message(op.message());
  SaveWarmup(ctx.txn, **found);
  return Status::Ok();
}

Status ApplyWarmEvict(Ctx& ctx, OpReply* reply) {
  const WarmEvictOp& op = ctx.op.warm_evict();
  auto all = AllWarmups(ctx.txn);
  GRANARY_TRY(all);
  for (WarmupRecord& rec : *all) {
    auto entries = IndexEntries(ctx.txn, WarmIndexNodePrefix(rec.warmup().id(), op.node_id()), 0);
    GRANARY_TRY(entries);
    if (entries->empty()) continue;
    for (const auto& [node, slice] : *entries) {
      GRANARY_TRY(ReleaseCopy(ctx, rec.warmup().id(), node, slice));
    }
    Warmup& w = *rec.mutable_warmup();
    if (w.state() == WARMUP_DELETING) continue;
    w.set_state(WARMUP_STOPPED);
    w.set_message(op.message());
    SaveWarmup(ctx.txn, rec);
  }
  reply->mutable_empty();
  return Status::Ok();
}

Status DropWarmCopiesOfSlice(Ctx& ctx, uint64_t slice_id) {
  auto copies = WarmCopiesOf(ctx.txn, slice_id);
  GRANARY_TRY(copies);
  for (const auto& [node, rec] : *copies) {
    for (uint64_t id : rec.warmup_ids()) {
      ctx.txn.Delete(Cf::kSystem, WarmIndexKey(id, node, slice_id));
    }
    ctx.txn.Delete(Cf::kSystem, ExtraCopyKey(slice_id, node));
  }
  return Status::Ok();
}

Status ForgetWarmBlock(Ctx& ctx, uint32_t node, uint64_t slice_id, uint32_t block) {
  const std::string key = ExtraCopyKey(slice_id, node);
  auto copy = FindRecord<ExtraCopyRecord>(ctx.txn, Cf::kSystem, key);
  GRANARY_TRY(copy);
  if (!*copy) return Status::Ok();
  ExtraCopyRecord& rec = **copy;
  auto* blocks = rec.mutable_blocks();
  const int before = blocks->size();
  blocks->erase(std::remove(blocks->begin(), blocks->end(), block), blocks->end());
  if (blocks->size() == before) return Status::Ok();
  if (!blocks->empty()) {
    ctx.txn.PutRecord(Cf::kSystem, key, rec);
    return Status::Ok();
  }
  // Nothing of the slice left there: the copy and its index entries go (the holder settles the
  // reported block itself; a block it still holds is reported again when the plan re-copies it).
  for (uint64_t id : rec.warmup_ids())
    ctx.txn.Delete(Cf::kSystem, WarmIndexKey(id, node, slice_id));
  ctx.txn.Delete(Cf::kSystem, key);
  return Status::Ok();
}

}  // namespace granary::metanode
