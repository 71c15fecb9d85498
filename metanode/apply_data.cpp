// Slice maps: allocate / commit (DESIGN §3 "Commit protocol"), truncate, intent reaping.
#include <fmt/format.h>

#include <map>

#include "metanode/apply_internal.h"
#include "metanode/slice_map.h"

namespace granary::metanode {

namespace {

constexpr int64_t kDefaultLeaseMs = 60000;
constexpr uint32_t kMaxSlicesPerIntent = 4096;
// A chunk range with this many slice references is queued for compaction.
constexpr int kCompactAtReferences = 16;

Status QuotaExceeded(const Volume& v, uint64_t more) {
  return Status(Code::QUOTA_EXCEEDED,
                fmt::format("volume {}: {} more bytes exceed quota {} (used {}, reserved {})",
                            v.name(), more, v.quota_bytes(), v.used_bytes(), v.reserved_bytes()));
}

Result<InodeRecord> LoadRegular(Txn& txn, uint64_t ino) {
  auto rec = LoadInode(txn, ino);
  if (rec.ok() && rec->attr().type() != REGULAR) {
    if (rec->attr().type() == DIRECTORY) {
      return Status(Code::IS_DIRECTORY, fmt::format("inode {} is a directory", ino));
    }
    return InvalidArgument(fmt::format("inode {} is not a regular file", ino));
  }
  return rec;
}

}  // namespace

Status ResizeInode(Ctx& ctx, InodeRecord& rec, VolumeRecord& volume, uint64_t size) {
  InodeAttr& a = *rec.mutable_attr();
  Volume& v = *volume.mutable_volume();
  const uint64_t old = a.size();
  if (size > old) {
    uint64_t growth = size - old;
    if (v.quota_bytes() != 0 && v.used_bytes() + v.reserved_bytes() + growth > v.quota_bytes()) {
      return QuotaExceeded(v, growth);
    }
    v.set_used_bytes(v.used_bytes() + growth);
  } else if (size < old) {
    // Shrinking invalidates in-flight writers: they committed against the old generation.
    a.set_generation(a.generation() + 1);
    std::vector<std::pair<std::string, ChunkRecord>> changed;
    std::vector<std::string> dropped;
    std::vector<uint64_t> dropped_refs;
    GRANARY_TRY(ctx.txn.Scan(Cf::kSlices, ChunkPrefix(a.ino()),
                             ChunkKey(a.ino(), size / kChunkRangeSize), false,
                             [&](std::string_view key, std::string_view value) {
                               ChunkRecord chunk;
                               chunk.ParseFromArray(value.data(), static_cast<int>(value.size()));
                               uint64_t start = ReadU64(key.substr(8)) * kChunkRangeSize;
                               uint64_t limit = size > start ? size - start : 0;
                               for (uint64_t id : ClipChunk(&chunk, limit))
                                 dropped_refs.push_back(id);
                               if (chunk.slices_size() == 0) {
                                 dropped.emplace_back(key);
                               } else {
                                 changed.emplace_back(std::string(key), std::move(chunk));
                               }
                               return true;
                             }));
    for (const auto& key : dropped) ctx.txn.Delete(Cf::kSlices, key);
    for (const auto& [key, chunk] : changed) ctx.txn.PutRecord(Cf::kSlices, key, chunk);
    for (uint64_t id : dropped_refs) GRANARY_TRY(DropSliceRef(ctx, a.ino(), id));
    uint64_t shrink = old - size;
    v.set_used_bytes(v.used_bytes() >= shrink ? v.used_bytes() - shrink : 0);
  }
  a.set_size(size);
  return Status::Ok();
}

Status ApplyAllocate(Ctx& ctx, OpReply* reply) {
  const AllocateRequest& req = ctx.op.allocate();
  if (req.slice_count() == 0 || req.slice_count() > kMaxSlicesPerIntent) {
    return InvalidArgument(
        fmt::format("allocate {} slices (1..{})", req.slice_count(), kMaxSlicesPerIntent));
  }
  auto rec = LoadRegular(ctx.txn, req.ino());
  GRANARY_TRY(rec);
  auto volume = LoadVolume(ctx.txn, rec->attr().volume_id());
  GRANARY_TRY(volume);
  Volume& v = *volume->mutable_volume();
  if (v.quota_bytes() != 0 && v.used_bytes() + v.reserved_bytes() + req.bytes() > v.quota_bytes()) {
    return QuotaExceeded(v, req.bytes());
  }
  v.set_reserved_bytes(v.reserved_bytes() + req.bytes());
  auto intent_id = NextId(ctx.txn, "intent");
  GRANARY_TRY(intent_id);
  auto first_slice = NextId(ctx.txn, "slice", req.slice_count());
  GRANARY_TRY(first_slice);
  IntentRecord intent;
  intent.set_format(kFormat);
  intent.set_id(*intent_id);
  intent.set_ino(req.ino());
  intent.set_volume_id(v.id());
  intent.set_first_slice_id(*first_slice);
  intent.set_slice_count(req.slice_count());
  intent.set_bytes(req.bytes());
  intent.set_lease_expires_ms(ctx.op.now_ms() +
                              (ctx.op.lease_ms() > 0 ? ctx.op.lease_ms() : kDefaultLeaseMs));
  intent.set_generation(rec->attr().generation());
  ctx.txn.PutRecord(Cf::kSystem, IntentKey(*intent_id), intent);
  SaveVolume(ctx.txn, *volume);
  AllocateReply& r = *reply->mutable_allocate();
  r.set_intent_id(*intent_id);
  r.set_first_slice_id(*first_slice);
  r.set_slice_count(req.slice_count());
  r.set_lease_expires_ms(intent.lease_expires_ms());
  r.set_generation(rec->attr().generation());
  *r.mutable_layout() = rec->attr().layout();
  return Status::Ok();
}

Status ApplyCommit(Ctx& ctx, OpReply* reply) {
  const CommitRequest& req = ctx.op.commit();
  auto rec = LoadRegular(ctx.txn, req.ino());
  GRANARY_TRY(rec);
  InodeAttr& a = *rec->mutable_attr();
  IntentRecord intent;
  if (req.intent_id() != 0) {
    auto found = ctx.txn.GetRecord(Cf::kSystem, IntentKey(req.intent_id()), &intent);
    GRANARY_TRY(found);
    // A reaped intent's slices may already be collected: the writer must write them again.
    if (!*found) {
      return Status(Code::STALE_GENERATION,
                    fmt::format("commit inode {}: intent {} expired and was reaped; allocate again",
                                req.ino(), req.intent_id()));
    }
    if (intent.ino() != req.ino()) {
      return InvalidArgument(fmt::format("intent {} belongs to inode {}, not {}", intent.id(),
                                         intent.ino(), req.ino()));
    }
  }
  if (req.generation() != a.generation()) {
    return Status(Code::STALE_GENERATION,
                  fmt::format("commit inode {}: generation {} is now {} (truncated meanwhile)",
                              req.ino(), req.generation(), a.generation()));
  }
  std::map<uint64_t, ChunkRecord> chunks;
  std::vector<uint64_t> replaced_refs;
  if (req.replace_ranges()) {
    // Compaction: each range must still resolve to what the compactor read.
    for (const RangeSlices& range : req.ranges()) {
      ChunkRecord current;
      auto found =
          ctx.txn.GetRecord(Cf::kSlices, ChunkKey(req.ino(), range.range_index()), &current);
      GRANARY_TRY(found);
      const uint64_t start = range.range_index() * kChunkRangeSize;
      std::vector<Extent> now = ResolveRange(current, range.range_index(), 0, kChunkRangeSize);
      std::vector<const Extent*> expected;
      for (const Extent& e : req.expect()) {
        if (e.file_offset() >= start && e.file_offset() < start + kChunkRangeSize) {
          expected.push_back(&e);
        }
      }
      bool same = now.size() == expected.size();
      for (size_t i = 0; same && i < now.size(); ++i) {
        const Extent& x = *expected[i];
        same = now[i].file_offset() == x.file_offset() && now[i].length() == x.length() &&
               now[i].slice_id() == x.slice_id() && now[i].offset_in_slice() == x.offset_in_slice();
      }
      if (!same) {
        return Status(Code::PRECONDITION_FAILED,
                      fmt::format("compact inode {} range {}: changed since it was read", req.ino(),
                                  range.range_index()));
      }
      for (const SliceRef& s : current.slices()) replaced_refs.push_back(s.slice_id());
      ChunkRecord& fresh = chunks[range.range_index()];
      fresh.set_format(kFormat);  // starts empty: the new slices replace every reference
    }
  }
  // New references per slice (with the first range naming each), counted after validation.
  std::map<uint64_t, std::pair<const SliceRef*, std::pair<uint64_t, uint32_t>>> added;
  for (const RangeSlices& range : req.ranges()) {
    ChunkRecord& chunk = chunks[range.range_index()];
    if (chunk.format() == 0) {
      auto found = ctx.txn.GetRecord(Cf::kSlices, ChunkKey(req.ino(), range.range_index()), &chunk);
      GRANARY_TRY(found);
      chunk.set_format(kFormat);
    }
    for (const SliceRef& s : range.slices()) {
      if (s.length() == 0 || s.pos() + s.length() > kChunkRangeSize ||
          s.offset_in_slice() + s.length() > s.slice_length()) {
        return InvalidArgument(fmt::format(
            "commit inode {}: slice {} ref pos {} len {} off {} of {} does not fit range {}",
            req.ino(), s.slice_id(), s.pos(), s.length(), s.offset_in_slice(), s.slice_length(),
            range.range_index()));
      }
      *chunk.add_slices() = s;
      auto [it, inserted] = added.try_emplace(s.slice_id(), &s, std::pair{range.range_index(), 0u});
      ++it->second.second.second;
    }
  }
  auto volume = LoadVolume(ctx.txn, a.volume_id());
  GRANARY_TRY(volume);
  Volume& v = *volume->mutable_volume();
  uint64_t growth = !req.replace_ranges() && req.end() > a.size() ? req.end() - a.size() : 0;
  uint64_t reserved =
      v.reserved_bytes() >= intent.bytes() ? v.reserved_bytes() - intent.bytes() : 0;
  if (v.quota_bytes() != 0 && growth > intent.bytes() &&
      v.used_bytes() + growth + reserved > v.quota_bytes()) {
    return QuotaExceeded(v, growth);
  }
  v.set_used_bytes(v.used_bytes() + growth);
  v.set_reserved_bytes(reserved);
  for (const auto& [id, entry] : added) {
    const auto& [ref, where] = entry;
    GRANARY_TRY(AddSliceRefs(ctx, a, where.first, *ref, where.second));
  }
  // Overwritten references are dropped now, so that an overwritten slice is collected without
  // waiting for compaction.
  for (uint64_t id : replaced_refs) GRANARY_TRY(DropSliceRef(ctx, a.ino(), id));
  for (auto& [index, chunk] : chunks) {
    for (uint64_t id : PruneShadowed(&chunk)) GRANARY_TRY(DropSliceRef(ctx, a.ino(), id));
    ctx.txn.PutRecord(Cf::kSlices, ChunkKey(req.ino(), index), chunk);
    // Many references make reads slow and metadata large: queue the range for compaction.
    if (req.replace_ranges()) {
      ctx.txn.Delete(Cf::kSystem, CompactKey(req.ino(), index));
    } else if (chunk.slices_size() >= kCompactAtReferences) {
      ctx.txn.Put(Cf::kSystem, CompactKey(req.ino(), index), "");
    }
  }
  if (req.replace_ranges()) {
    if (req.intent_id() != 0) ctx.txn.Delete(Cf::kSystem, IntentKey(req.intent_id()));
    SaveVolume(ctx.txn, *volume);
    *reply->mutable_attr()->mutable_attr() = a;
    return Status::Ok();
  }
  if (req.intent_id() != 0) ctx.txn.Delete(Cf::kSystem, IntentKey(req.intent_id()));
  a.set_size(std::max(a.size(), req.end()));
  *a.mutable_mtime() = req.has_mtime() ? req.mtime() : ctx.Now();
  *a.mutable_ctime() = ctx.Now();
  a.set_commit_version(a.commit_version() + 1);
  SaveInode(ctx.txn, *rec);
  SaveVolume(ctx.txn, *volume);
  *reply->mutable_attr()->mutable_attr() = a;
  return Status::Ok();
}

namespace {
// Deletes an uncommitted intent: its slices become garbage, its quota reservation is returned.
void DropIntent(Ctx& ctx, const IntentRecord& intent, std::map<uint64_t, VolumeRecord>& volumes) {
  ctx.txn.Delete(Cf::kSystem, IntentKey(intent.id()));
  for (uint32_t i = 0; i < intent.slice_count(); ++i) {
    MarkGarbage(ctx, intent.ino(), intent.first_slice_id() + i);
  }
  auto it = volumes.find(intent.volume_id());
  if (it == volumes.end()) {
    auto volume = LoadVolume(ctx.txn, intent.volume_id());
    if (!volume.ok()) return;  // volume deleted since
    it = volumes.emplace(intent.volume_id(), std::move(*volume)).first;
  }
  Volume& v = *it->second.mutable_volume();
  v.set_reserved_bytes(v.reserved_bytes() >= intent.bytes() ? v.reserved_bytes() - intent.bytes()
                                                            : 0);
}
}  // namespace

Status ApplyAbandon(Ctx& ctx, OpReply* reply) {
  reply->mutable_empty();
  auto intent =
      FindRecord<IntentRecord>(ctx.txn, Cf::kSystem, IntentKey(ctx.op.abandon().intent_id()));
  GRANARY_TRY(intent);
  if (!intent->has_value()) return Status::Ok();
  std::map<uint64_t, VolumeRecord> volumes;
  DropIntent(ctx, **intent, volumes);
  for (const auto& [id, volume] : volumes) SaveVolume(ctx.txn, volume);
  return Status::Ok();
}

Status ApplyReapIntents(Ctx& ctx, OpReply* reply) {
  const int64_t grace = ctx.op.reap_intents().grace_ms();
  std::vector<IntentRecord> expired;
  GRANARY_TRY(ctx.txn.Scan(Cf::kSystem, kIntentPrefix, "", false,
                           [&](std::string_view, std::string_view value) {
                             IntentRecord intent;
                             intent.ParseFromArray(value.data(), static_cast<int>(value.size()));
                             if (intent.lease_expires_ms() + grace < ctx.op.now_ms()) {
                               expired.push_back(std::move(intent));
                             }
                             return true;
                           }));
  std::map<uint64_t, VolumeRecord> volumes;
  for (const IntentRecord& intent : expired) DropIntent(ctx, intent, volumes);
  for (const auto& [id, volume] : volumes) SaveVolume(ctx.txn, volume);
  return Status::Ok();
}

}  // namespace granary::metanode
