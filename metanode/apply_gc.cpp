// Slice lifecycle (DESIGN §3, docs/durability.md "Garbage collection"): reference counts on
// committed slices, the PG -> blocks index that repair and fsck walk, and garbage records that
// the collector (MetaCore::CollectGarbage) turns into block deletions after a grace period.
#include <fmt/format.h>

#include "metanode/apply_internal.h"
#include "placement/stripe.h"

namespace granary::metanode {

namespace {

uint64_t BlockCount(uint64_t slice_length, uint32_t block_size) {
  if (block_size == 0) return 1;
  return slice_length == 0 ? 1 : (slice_length + block_size - 1) / block_size;
}

// Calls `fn(pg, block)` for every block of the slice.
template <typename Fn>
Status ForEachBlock(Txn& txn, const SliceRecord& slice, Fn&& fn) {
  const Layout& layout = slice.layout();
  auto pool = LoadPool(txn, layout.pool_id());
  GRANARY_TRY(pool);
  const uint64_t blocks = BlockCount(slice.slice_length(), layout.block_size());
  for (uint64_t b = 0; b < blocks; ++b) {
    auto pg = placement::BlockPg(layout, slice.slice_id(), b, pool->spec().pg_count());
    GRANARY_TRY(pg);
    fn(*pg, static_cast<uint32_t>(b));
  }
  return Status::Ok();
}

}  // namespace

void MarkGarbage(Ctx& ctx, uint64_t ino, uint64_t slice_id) {
  GarbageRecord g;
  g.set_format(kFormat);
  g.set_since_ms(ctx.op.now_ms());
  g.set_ino(ino);
  ctx.txn.PutRecord(Cf::kSystem, GarbageKey(slice_id), g);
}

Status AddSliceRefs(Ctx& ctx, const InodeAttr& owner, uint64_t range_index, const SliceRef& ref,
                    uint32_t count) {
  auto found = FindRecord<SliceRecord>(ctx.txn, Cf::kSystem, SliceKey(ref.slice_id()));
  GRANARY_TRY(found);
  if (found->has_value()) {
    SliceRecord& slice = **found;
    if (slice.refs() == 0) ctx.txn.Delete(Cf::kSystem, GarbageKey(ref.slice_id()));
    slice.set_refs(slice.refs() + count);
    ctx.txn.PutRecord(Cf::kSystem, SliceKey(ref.slice_id()), slice);
    return Status::Ok();
  }
  SliceRecord slice;
  slice.set_format(kFormat);
  slice.set_slice_id(ref.slice_id());
  slice.set_slice_length(ref.slice_length());
  *slice.mutable_layout() = owner.layout();
  slice.set_encoding(ref.encoding());
  slice.set_refs(count);
  slice.set_ino(owner.ino());
  slice.set_range_index(range_index);
  GRANARY_TRY(ForEachBlock(ctx.txn, slice, [&](uint32_t pg, uint32_t block) {
    ctx.txn.Put(Cf::kSystem, PgBlockKey(owner.layout().pool_id(), pg, ref.slice_id(), block), "");
  }));
  ctx.txn.PutRecord(Cf::kSystem, SliceKey(ref.slice_id()), slice);
  return Status::Ok();
}

Status CountLegacySlices(Ctx& ctx) {
  constexpr std::string_view kCountedKey = "Mslices-counted";
  std::string marker;
  auto done = ctx.txn.Get(Cf::kSystem, kCountedKey, &marker);
  GRANARY_TRY(done);
  if (*done) return Status::Ok();
  std::vector<std::pair<uint64_t, ChunkRecord>> chunks;  // (ino, chunk) of the whole store
  std::vector<uint64_t> ranges;
  GRANARY_TRY(
      ctx.txn.Scan(Cf::kSlices, "", "", false, [&](std::string_view key, std::string_view value) {
        ChunkRecord chunk;
        chunk.ParseFromArray(value.data(), static_cast<int>(value.size()));
        chunks.emplace_back(ReadU64(key), std::move(chunk));
        ranges.push_back(ReadU64(key.substr(8)));
        return true;
      }));
  for (size_t i = 0; i < chunks.size(); ++i) {
    auto owner = LoadInode(ctx.txn, chunks[i].first);
    if (!owner.ok()) continue;  // a chunk without its inode: fsck's business
    for (const SliceRef& ref : chunks[i].second.slices()) {
      GRANARY_TRY(AddSliceRefs(ctx, owner->attr(), ranges[i], ref, 1));
    }
  }
  ctx.txn.Put(Cf::kSystem, kCountedKey, "1");
  return Status::Ok();
}

Status DropSliceRef(Ctx& ctx, uint64_t ino, uint64_t slice_id) {
  auto found = FindRecord<SliceRecord>(ctx.txn, Cf::kSystem, SliceKey(slice_id));
  GRANARY_TRY(found);
  if (!found->has_value()) {
    // Committed before slices were counted: nothing else can share it.
    MarkGarbage(ctx, ino, slice_id);
    return Status::Ok();
  }
  SliceRecord& slice = **found;
  slice.set_refs(slice.refs() > 0 ? slice.refs() - 1 : 0);
  ctx.txn.PutRecord(Cf::kSystem, SliceKey(slice_id), slice);
  if (slice.refs() == 0) MarkGarbage(ctx, ino, slice_id);
  return Status::Ok();
}

Status ApplyCompactionDone(Ctx& ctx, OpReply* reply) {
  const CompactionDoneRequest& req = ctx.op.compaction_done();
  ctx.txn.Delete(Cf::kSystem, CompactKey(req.ino(), req.range_index()));
  reply->mutable_empty();
  return Status::Ok();
}

Status ApplyGcSlices(Ctx& ctx, OpReply* reply) {
  for (uint64_t id : ctx.op.gc_slices().slice_ids()) {
    auto slice = FindRecord<SliceRecord>(ctx.txn, Cf::kSystem, SliceKey(id));
    GRANARY_TRY(slice);
    if (slice->has_value()) {
      // Referenced again since the collector read it (an S3 copy of a deleted object's slice
      // cannot happen, but a replayed log must stay safe): keep it.
      if ((*slice)->refs() > 0) continue;
      const uint32_t pool = (*slice)->layout().pool_id();
      Status st = ForEachBlock(ctx.txn, **slice, [&](uint32_t pg, uint32_t block) {
        ctx.txn.Delete(Cf::kSystem, PgBlockKey(pool, pg, id, block));
      });
      if (!st.ok() && st.code() != Code::NOT_FOUND) return st;  // pool deleted: no index left
      GRANARY_TRY(DropSuspectsOfSlice(ctx, id));
      GRANARY_TRY(DropWarmCopiesOfSlice(ctx, id));
      ctx.txn.Delete(Cf::kSystem, SliceKey(id));
    }
    ctx.txn.Delete(Cf::kSystem, GarbageKey(id));
  }
  reply->mutable_empty();
  return Status::Ok();
}

}  // namespace granary::metanode
