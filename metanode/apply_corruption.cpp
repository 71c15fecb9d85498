// Repair on report (docs/maintenance.md "Repair on report"): a copy reported corrupt is recorded
// durably until the datanode holding it has verified it and, when bad, replaced it. The record is
// state like any other, so it survives a restart and travels with the operation log.
#include <fmt/format.h>

#include "metanode/apply_internal.h"
#include "placement/stripe.h"

namespace granary::metanode {

namespace {

constexpr size_t kMaxDetail = 512;

void BumpCounter(Txn& txn, std::string_view name) {
  CounterRecord rec;
  const std::string key = CounterKey(name);
  auto found = txn.GetRecord(Cf::kSystem, key, &rec);
  rec.set_format(kFormat);
  rec.set_value((found.ok() && *found ? rec.value() : 0) + 1);
  txn.PutRecord(Cf::kSystem, key, rec);
}

// Block `block` of `slice` as repair sees it, or nullopt past the slice's end.
std::optional<PgBlock> BlockOf(const SliceRecord& slice, uint32_t block) {
  const uint64_t bs =
      slice.layout().block_size() == 0 ? slice.slice_length() : slice.layout().block_size();
  const uint64_t offset = uint64_t{block} * bs;
  const uint64_t blocks =
      bs == 0 || slice.slice_length() == 0 ? 1 : (slice.slice_length() + bs - 1) / bs;
  if (block >= blocks) return std::nullopt;
  PgBlock out;
  out.set_slice_id(slice.slice_id());
  out.set_block_index(block);
  out.set_length(slice.slice_length() > offset ? std::min(bs, slice.slice_length() - offset) : 0);
  out.set_encoding(slice.encoding());
  out.set_ino(slice.ino());
  out.set_range_index(slice.range_index());
  out.set_block_size(static_cast<uint32_t>(bs));
  return out;
}

}  // namespace

Status ApplyReportCorruption(Ctx& ctx, OpReply* reply) {
  const ReportCorruptionRequest& req = ctx.op.report_corruption();
  reply->mutable_empty();
  BumpCounter(ctx.txn, kCorruptionReportsCounter);
  // A copy on an unknown node, or of a slice already collected (or never committed), has nothing
  // left to repair: counted, not recorded.
  auto node = FindRecord<NodeRecord>(ctx.txn, Cf::kSystem, NodeKey(req.node_id()));
  GRANARY_TRY(node);
  auto slice = FindRecord<SliceRecord>(ctx.txn, Cf::kSystem, SliceKey(req.slice_id()));
  GRANARY_TRY(slice);
  if (!*node || !*slice) return Status::Ok();
  // A warm-up copy is no longer offered to readers; the plan copies it again (locality.md).
  GRANARY_TRY(ForgetWarmBlock(ctx, req.node_id(), req.slice_id(), req.block_index()));
  std::optional<PgBlock> block = BlockOf(**slice, req.block_index());
  if (!block) {
    return InvalidArgument(fmt::format("report corruption: slice {} has no block {}",
                                       req.slice_id(), req.block_index()));
  }
  const std::string key =
      SuspectKey(req.slice_id(), req.block_index(), req.fragment(), req.node_id());
  auto existing = FindRecord<SuspectRecord>(ctx.txn, Cf::kSystem, key);
  GRANARY_TRY(existing);
  if (*existing) {
    // Already recorded: the holder acts on it once; the count tells it a report came after.
    SuspectRecord& rec = **existing;
    rec.mutable_copy()->set_reports(rec.copy().reports() + 1);
    ctx.txn.PutRecord(Cf::kSystem, key, rec);
    return Status::Ok();
  }
  const Layout& layout = (*slice)->layout();
  auto pool = LoadPool(ctx.txn, layout.pool_id());
  GRANARY_TRY(pool);
  auto pg = placement::BlockPg(layout, req.slice_id(), req.block_index(), pool->spec().pg_count());
  GRANARY_TRY(pg);
  SuspectRecord rec;
  rec.set_format(kFormat);
  SuspectCopy& copy = *rec.mutable_copy();
  copy.set_node_id(req.node_id());
  copy.set_pool_id(layout.pool_id());
  copy.set_pg(*pg);
  *copy.mutable_block() = std::move(*block);
  copy.set_fragment(req.fragment());
  copy.set_reported_ms(ctx.op.now_ms());
  copy.set_reports(1);
  copy.set_detail(req.detail().substr(0, kMaxDetail));
  copy.set_source(req.source());
  ctx.txn.PutRecord(Cf::kSystem, key, rec);
  return Status::Ok();
}

Status ApplyResolveCorruption(Ctx& ctx, OpReply* reply) {
  const ResolveCorruptionRequest& req = ctx.op.resolve_corruption();
  reply->mutable_empty();
  const std::string key =
      SuspectKey(req.slice_id(), req.block_index(), req.fragment(), req.node_id());
  auto existing = FindRecord<SuspectRecord>(ctx.txn, Cf::kSystem, key);
  GRANARY_TRY(existing);
  if (!*existing) return Status::Ok();  // resolved already (a retry), or collected with its slice
  // Reported again after the holder started: that report is news (the copy may have gone bad
  // since it was verified), so the record stays and the holder acts on it again.
  if (req.reports() != 0 && (*existing)->copy().reports() != req.reports()) return Status::Ok();
  ctx.txn.Delete(Cf::kSystem, key);
  BumpCounter(ctx.txn, kCorruptionResolvedCounter);
  return Status::Ok();
}

Status DropSuspectsOfSlice(Ctx& ctx, uint64_t slice_id) {
  std::vector<std::string> keys;
  GRANARY_TRY(ctx.txn.Scan(Cf::kSystem, SuspectSlicePrefix(slice_id), "", false,
                           [&](std::string_view key, std::string_view) {
                             keys.emplace_back(key);
                             return true;
                           }));
  for (const std::string& key : keys) ctx.txn.Delete(Cf::kSystem, key);
  return Status::Ok();
}

}  // namespace granary::metanode
