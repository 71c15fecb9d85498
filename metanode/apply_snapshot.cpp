// Snapshots and clones (docs/snapshots.md). A snapshot of volume V is a read-only volume named
// V@NAME whose namespace is a copy of V's taken by one operation (so at one log position): new
// inode numbers, the same xattrs and slice maps, and one more reference on every slice. Slices
// are immutable, so no data byte is copied or touched, and GC and compaction, which go by slice
// reference counts, keep whatever a snapshot still references. A clone is the same copy into a
// new read-write volume. Deleting a snapshot frees its namespace and drops its references.
#include <fmt/format.h>

#include <deque>
#include <unordered_map>

#include "metanode/apply_internal.h"

namespace granary::metanode {

namespace {

constexpr char kSnapshotSeparator = '@';

std::string SnapshotVolumeName(std::string_view volume, std::string_view name) {
  return fmt::format("{}{}{}", volume, kSnapshotSeparator, name);
}

// Copies every inode reachable from `src`'s root into `dst` (whose root inode exists), returning
// the number of inodes and bytes copied.
struct CopyTotals {
  uint64_t inodes = 0;
  uint64_t bytes = 0;
};

Result<CopyTotals> CopyNamespace(Ctx& ctx, const Volume& src, VolumeRecord& dst) {
  const Volume& d = dst.volume();
  CopyTotals totals;
  std::unordered_map<uint64_t, uint64_t> mapped;  // source ino -> copy ino (hard links)
  mapped[src.root_ino()] = d.root_ino();
  // The root keeps its own number but takes the source root's attributes and xattrs.
  auto src_root = LoadInode(ctx.txn, src.root_ino());
  GRANARY_TRY(src_root);
  auto dst_root = LoadInode(ctx.txn, d.root_ino());
  GRANARY_TRY(dst_root);
  {
    InodeRecord root = *src_root;
    InodeAttr& a = *root.mutable_attr();
    a.set_ino(d.root_ino());
    a.set_volume_id(d.id());
    a.set_parent(0);
    root.clear_open_handles();
    root.clear_pin_clients();
    SaveInode(ctx.txn, root);
  }
  std::deque<uint64_t> dirs = {src.root_ino()};
  while (!dirs.empty()) {
    const uint64_t dir = dirs.front();
    dirs.pop_front();
    const uint64_t copy_dir = mapped.at(dir);
    auto entries = ListDentries(ctx.txn, dir);
    GRANARY_TRY(entries);
    for (const auto& [name, entry] : *entries) {
      auto known = mapped.find(entry.ino());
      if (known == mapped.end()) {
        auto rec = LoadInode(ctx.txn, entry.ino());
        GRANARY_TRY(rec);
        auto ino = NextId(ctx.txn, "ino");
        GRANARY_TRY(ino);
        InodeRecord copy = std::move(*rec);
        InodeAttr& a = *copy.mutable_attr();
        a.set_ino(*ino);
        a.set_volume_id(d.id());
        if (a.type() == DIRECTORY) a.set_parent(copy_dir);
        copy.clear_open_handles();
        copy.clear_pin_clients();
        SaveInode(ctx.txn, copy);
        ++totals.inodes;
        if (a.type() == REGULAR) {
          totals.bytes += a.size();
          auto chunks = ListChunks(ctx.txn, entry.ino());
          GRANARY_TRY(chunks);
          for (const auto& [range, chunk] : *chunks) {
            ctx.txn.PutRecord(Cf::kSlices, ChunkKey(*ino, range), chunk);
            for (const SliceRef& ref : chunk.slices()) {
              GRANARY_TRY(AddSliceRefs(ctx, a, range, ref, 1));
            }
          }
        }
        known = mapped.emplace(entry.ino(), *ino).first;
        if (a.type() == DIRECTORY) dirs.push_back(entry.ino());
      }
      SaveDentry(ctx.txn, copy_dir, name, known->second, entry.type());
    }
  }
  return totals;
}

// A new volume `name` in `src`'s pool holding a copy of `src`'s namespace.
Result<VolumeRecord> CopyVolume(Ctx& ctx, const Volume& src, const std::string& name,
                                bool read_only, std::string_view snapshot_name,
                                uint64_t quota_bytes, uint64_t quota_inodes) {
  auto pool = LoadPool(ctx.txn, src.pool_id());
  GRANARY_TRY(pool);
  auto dst = CreateVolume(ctx, name, pool->spec().name(), quota_bytes, quota_inodes);
  GRANARY_TRY(dst);
  auto totals = CopyNamespace(ctx, src, *dst);
  GRANARY_TRY(totals);
  Volume& v = *dst->mutable_volume();
  v.set_read_only(read_only);
  v.set_source_volume_id(src.id());
  v.set_snapshot_name(std::string(snapshot_name));
  v.set_created_ms(ctx.op.now_ms());
  v.set_used_inodes(totals->inodes + 1);  // and its root
  v.set_used_bytes(totals->bytes);
  SaveVolume(ctx.txn, *dst);
  return dst;
}

// Frees every inode of `volume`'s namespace (dropping their slice references) and the volume.
Status DeleteNamespace(Ctx& ctx, VolumeRecord& volume) {
  std::deque<uint64_t> dirs = {volume.volume().root_ino()};
  std::vector<uint64_t> order;  // directories, parents first
  while (!dirs.empty()) {
    const uint64_t dir = dirs.front();
    dirs.pop_front();
    order.push_back(dir);
    auto entries = ListDentries(ctx.txn, dir);
    GRANARY_TRY(entries);
    for (const auto& [name, entry] : *entries) {
      ctx.txn.Delete(Cf::kDentries, DentryKey(dir, name));
      if (entry.type() == DIRECTORY) {
        dirs.push_back(entry.ino());
        continue;
      }
      auto rec = LoadInode(ctx.txn, entry.ino());
      if (!rec.ok() && rec.status().code() == Code::NOT_FOUND) continue;  // freed by another link
      GRANARY_TRY(rec);
      // A snapshot is read-only: nothing holds its inodes open, so the last link frees one.
      GRANARY_TRY(DropLink(ctx, *rec, volume));
    }
  }
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    ctx.txn.Delete(Cf::kInodes, InodeKey(*it));
  }
  const Volume& v = volume.volume();
  ctx.txn.Delete(Cf::kCatalog, VolumeKey(v.id()));
  ctx.txn.Delete(Cf::kCatalog, VolumeNameKey(v.name()));
  return Status::Ok();
}

}  // namespace

Result<VolumeRecord> CloneVolume(Ctx& ctx, const VolumeCreateRequest& req) {
  if (!req.from_volume().empty() && !req.from_snapshot().empty()) {
    return InvalidArgument("a clone has one source: --from-volume or --from-snapshot");
  }
  const std::string& source = req.from_volume().empty() ? req.from_snapshot() : req.from_volume();
  if (!req.from_snapshot().empty() && source.find(kSnapshotSeparator) == std::string::npos) {
    return InvalidArgument(fmt::format("snapshot '{}': expected VOLUME@NAME", source));
  }
  auto src = FindVolumeByName(ctx.txn, source);
  GRANARY_TRY(src);
  if (!req.from_snapshot().empty() && !src->volume().read_only()) {
    return NotFound(fmt::format("snapshot '{}'", source));
  }
  if (!req.pool().empty()) {
    auto pool = LoadPool(ctx.txn, src->volume().pool_id());
    GRANARY_TRY(pool);
    if (pool->spec().name() != req.pool()) {
      return InvalidArgument(
          fmt::format("'{}' is in pool '{}'; a clone stays in its source's pool, "
                      "not '{}'",
                      source, pool->spec().name(), req.pool()));
    }
  }
  // Quotas are the request's, else the source's (a snapshot has none: its live volume's).
  uint64_t quota_bytes = req.quota_bytes(), quota_inodes = req.quota_inodes();
  if (quota_bytes == 0 && quota_inodes == 0 && !src->volume().read_only()) {
    quota_bytes = src->volume().quota_bytes();
    quota_inodes = src->volume().quota_inodes();
  }
  if ((quota_bytes && src->volume().used_bytes() > quota_bytes) ||
      (quota_inodes && src->volume().used_inodes() > quota_inodes)) {
    return Status(Code::QUOTA_EXCEEDED,
                  fmt::format("'{}' holds {} bytes in {} inodes, over the clone's quota", source,
                              src->volume().used_bytes(), src->volume().used_inodes()));
  }
  return CopyVolume(ctx, src->volume(), req.name(), false, "", quota_bytes, quota_inodes);
}

Status ApplySnapshotCreate(Ctx& ctx, OpReply* reply) {
  const SnapshotCreateRequest& req = ctx.op.snapshot_create();
  GRANARY_TRY(ValidateName(req.name()));
  if (req.name().find(kSnapshotSeparator) != std::string::npos) {
    return InvalidArgument(fmt::format("snapshot name '{}' contains '@'", req.name()));
  }
  auto src = FindVolumeByName(ctx.txn, req.volume());
  GRANARY_TRY(src);
  if (src->volume().read_only()) {
    return InvalidArgument(
        fmt::format("'{}' is a snapshot: snapshot its volume instead", req.volume()));
  }
  const std::string name = SnapshotVolumeName(req.volume(), req.name());
  auto existing = LookupName(ctx.txn, Cf::kCatalog, VolumeNameKey(name));
  GRANARY_TRY(existing);
  if (*existing) return AlreadyExists(fmt::format("snapshot '{}'", name));
  auto snap = CopyVolume(ctx, src->volume(), name, true, req.name(), 0, 0);
  GRANARY_TRY(snap);
  *reply->mutable_volume()->mutable_volume() = snap->volume();
  return Status::Ok();
}

Status ApplySnapshotDelete(Ctx& ctx, OpReply* reply) {
  const SnapshotDeleteRequest& req = ctx.op.snapshot_delete();
  const std::string name = SnapshotVolumeName(req.volume(), req.name());
  auto snap = FindVolumeByName(ctx.txn, name);
  if (!snap.ok() && snap.status().code() == Code::NOT_FOUND) {
    return NotFound(fmt::format("snapshot '{}'", name));
  }
  GRANARY_TRY(snap);
  if (!snap->volume().read_only()) return NotFound(fmt::format("snapshot '{}'", name));
  auto buckets = AllBuckets(ctx.txn);
  GRANARY_TRY(buckets);
  for (const BucketRecord& b : *buckets) {
    if (b.bucket().volume_id() == snap->volume().id()) {
      return Status(
          Code::PRECONDITION_FAILED,
          fmt::format("snapshot '{}' is exported by bucket '{}'", name, b.bucket().name()));
    }
  }
  GRANARY_TRY(DeleteNamespace(ctx, *snap));
  reply->mutable_empty();
  return Status::Ok();
}

Status CheckSnapshotsGone(Txn& txn, std::string_view volume) {
  bool any = false;
  std::string first;
  const std::string prefix = VolumeNameKey(std::string(volume) + kSnapshotSeparator);
  GRANARY_TRY(
      txn.Scan(Cf::kCatalog, prefix, "", false, [&](std::string_view key, std::string_view) {
        any = true;
        first = std::string(key.substr(VolumeNameKey("").size()));
        return false;
      }));
  if (!any) return Status::Ok();
  return AlreadyExists(fmt::format(
      "snapshots of an earlier volume '{}' remain ({}): delete them or choose another name", volume,
      first));
}

Result<uint64_t> VolumeOfOperation(Txn& txn, const Operation& op) {
  uint64_t ino = 0;
  switch (op.body_case()) {
    case Operation::kMkdir:
      ino = op.mkdir().parent();
      break;
    case Operation::kCreate:
      ino = op.create().parent();
      break;
    case Operation::kUnlink:
      ino = op.unlink().parent();
      break;
    case Operation::kRmdir:
      ino = op.rmdir().parent();
      break;
    case Operation::kRename:
      ino = op.rename().parent();
      break;
    case Operation::kSymlink:
      ino = op.symlink().parent();
      break;
    case Operation::kLink:
      ino = op.link().new_parent();
      break;
    case Operation::kSetattr:
      ino = op.setattr().ino();
      break;
    case Operation::kSetxattr:
      ino = op.setxattr().ino();
      break;
    case Operation::kRemovexattr:
      ino = op.removexattr().ino();
      break;
    case Operation::kFallocate:
      ino = op.fallocate().ino();
      break;
    case Operation::kAllocate:
      ino = op.allocate().ino();
      break;
    case Operation::kCommit:
      ino = op.commit().ino();
      break;
    case Operation::kObjectStage:
      return op.object_stage().volume_id();
    case Operation::kObjectPublish:
      return op.object_publish().volume_id();
    case Operation::kObjectDelete:
      return op.object_delete().volume_id();
    case Operation::kObjectUpdate:
      return op.object_update().volume_id();
    case Operation::kUploadCreate:
      return op.upload_create().request().volume_id();
    default:
      return uint64_t{0};
  }
  auto rec = FindRecord<InodeRecord>(txn, Cf::kInodes, InodeKey(ino));
  GRANARY_TRY(rec);
  return *rec ? (*rec)->attr().volume_id() : uint64_t{0};
}

Status CheckWritable(Ctx& ctx) {
  auto volume_id = VolumeOfOperation(ctx.txn, ctx.op);
  GRANARY_TRY(volume_id);
  if (*volume_id == 0) return Status::Ok();  // not a namespace change, or NotFound follows
  auto volume = FindRecord<VolumeRecord>(ctx.txn, Cf::kCatalog, VolumeKey(*volume_id));
  GRANARY_TRY(volume);
  if (*volume && (*volume)->volume().read_only()) {
    return Status(Code::PERMISSION_DENIED,
                  fmt::format("'{}' is a read-only snapshot", (*volume)->volume().name()));
  }
  return Status::Ok();
}

}  // namespace granary::metanode
