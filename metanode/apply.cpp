// Dispatch and the record helpers every operation uses.
#include "metanode/apply.h"

#include <fmt/format.h>

#include "metanode/apply_internal.h"
#include "metanode/apply_object.h"

namespace granary::metanode {

Timespec Ctx::Now() const {
  Timespec t;
  t.set_sec(op.now_ms() / 1000);
  t.set_nsec(static_cast<uint32_t>(op.now_ms() % 1000) * 1000000u);
  return t;
}

uint64_t Mix64(uint64_t x) {  // splitmix64 finaliser: a cheap, stable hash for seeds
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

Result<InodeRecord> LoadInode(Txn& txn, uint64_t ino) {
  return LoadRecord<InodeRecord>(txn, Cf::kInodes, InodeKey(ino), fmt::format("inode {}", ino));
}

void SaveInode(Txn& txn, const InodeRecord& rec) {
  txn.PutRecord(Cf::kInodes, InodeKey(rec.attr().ino()), rec);
}

Result<InodeRecord> LoadDir(Txn& txn, uint64_t ino) {
  auto rec = LoadInode(txn, ino);
  if (rec.ok() && rec->attr().type() != DIRECTORY) {
    return Status(Code::NOT_DIRECTORY, fmt::format("inode {} is not a directory", ino));
  }
  return rec;
}

Result<std::optional<DentryRecord>> LoadDentry(Txn& txn, uint64_t parent, std::string_view name) {
  return FindRecord<DentryRecord>(txn, Cf::kDentries, DentryKey(parent, name));
}

void SaveDentry(Txn& txn, uint64_t parent, std::string_view name, uint64_t ino, FileType type) {
  DentryRecord rec;
  rec.set_format(kFormat);
  rec.set_ino(ino);
  rec.set_type(type);
  txn.PutRecord(Cf::kDentries, DentryKey(parent, name), rec);
}

Result<VolumeRecord> LoadVolume(Txn& txn, uint64_t id) {
  return LoadRecord<VolumeRecord>(txn, Cf::kCatalog, VolumeKey(id), fmt::format("volume {}", id));
}

void SaveVolume(Txn& txn, const VolumeRecord& rec) {
  txn.PutRecord(Cf::kCatalog, VolumeKey(rec.volume().id()), rec);
}

Result<PoolRecord> LoadPool(Txn& txn, uint32_t id) {
  return LoadRecord<PoolRecord>(txn, Cf::kCatalog, PoolKey(id), fmt::format("pool {}", id));
}

Result<std::optional<uint64_t>> LookupName(Txn& txn, Cf cf, const std::string& key) {
  CounterRecord rec;
  auto found = txn.GetRecord(cf, key, &rec);
  GRANARY_TRY(found);
  if (!*found) return std::optional<uint64_t>();
  return std::optional<uint64_t>(rec.value());
}

Result<bool> DirIsEmpty(Txn& txn, uint64_t dir) {
  bool empty = true;
  GRANARY_TRY(txn.Scan(Cf::kDentries, DentryPrefix(dir), "", false,
                       [&](std::string_view, std::string_view) {
                         empty = false;
                         return false;
                       }));
  return empty;
}

Result<std::vector<std::pair<std::string, DentryRecord>>> ListDentries(Txn& txn, uint64_t dir) {
  std::vector<std::pair<std::string, DentryRecord>> entries;
  const std::string prefix = DentryPrefix(dir);
  GRANARY_TRY(
      txn.Scan(Cf::kDentries, prefix, "", false, [&](std::string_view key, std::string_view value) {
        auto& [name, e] = entries.emplace_back(key.substr(prefix.size()), DentryRecord());
        e.ParseFromArray(value.data(), static_cast<int>(value.size()));
        return true;
      }));
  return entries;
}

Result<std::vector<std::pair<uint64_t, ChunkRecord>>> ListChunks(Txn& txn, uint64_t ino) {
  std::vector<std::pair<uint64_t, ChunkRecord>> chunks;
  GRANARY_TRY(txn.Scan(
      Cf::kSlices, ChunkPrefix(ino), "", false, [&](std::string_view key, std::string_view value) {
        auto& [range, c] = chunks.emplace_back(ReadU64(key.substr(8)), ChunkRecord());
        c.ParseFromArray(value.data(), static_cast<int>(value.size()));
        return true;
      }));
  return chunks;
}

Result<uint64_t> NextId(Txn& txn, std::string_view counter, uint64_t count) {
  CounterRecord rec;
  std::string key = CounterKey(counter);
  auto found = txn.GetRecord(Cf::kSystem, key, &rec);
  GRANARY_TRY(found);
  uint64_t next = *found ? rec.value() : (counter == "ino" ? 2 : 1);
  rec.set_format(kFormat);
  rec.set_value(next + count);
  txn.PutRecord(Cf::kSystem, key, rec);
  return next;
}

Status ValidateName(std::string_view name) {
  if (name.empty() || name == "." || name == "..") {
    return InvalidArgument(fmt::format("invalid name '{}'", name));
  }
  if (name.find('/') != std::string_view::npos || name.find('\0') != std::string_view::npos) {
    return InvalidArgument(fmt::format("name '{}' contains '/' or NUL", name));
  }
  if (name.size() > kMaxNameBytes) {
    return Status(Code::NAME_TOO_LONG,
                  fmt::format("name of {} bytes (limit {})", name.size(), kMaxNameBytes));
  }
  return Status::Ok();
}

Result<InodeRecord> NewInode(Ctx& ctx, VolumeRecord& volume, FileType type, uint32_t mode,
                             uint32_t uid, uint32_t gid, std::string_view writer_host) {
  Volume& v = *volume.mutable_volume();
  if (v.quota_inodes() != 0 && v.used_inodes() + 1 > v.quota_inodes()) {
    return Status(Code::QUOTA_EXCEEDED,
                  fmt::format("volume {}: inode quota {} reached", v.name(), v.quota_inodes()));
  }
  auto ino = NextId(ctx.txn, "ino");
  GRANARY_TRY(ino);
  v.set_used_inodes(v.used_inodes() + 1);
  InodeRecord rec;
  rec.set_format(kFormat);
  InodeAttr& a = *rec.mutable_attr();
  a.set_ino(*ino);
  a.set_volume_id(v.id());
  a.set_type(type);
  a.set_mode(mode & 07777);
  a.set_uid(uid);
  a.set_gid(gid);
  a.set_nlink(type == DIRECTORY ? 2 : 1);
  *a.mutable_atime() = ctx.Now();
  *a.mutable_mtime() = ctx.Now();
  *a.mutable_ctime() = ctx.Now();
  a.set_generation(1);
  if (type == REGULAR) {
    auto pool = LoadPool(ctx.txn, v.pool_id());
    GRANARY_TRY(pool);
    Layout& layout = *a.mutable_layout();
    layout.set_pool_id(v.pool_id());
    layout.set_block_size(pool->spec().block_size());
    layout.set_stripe_width(std::min<uint32_t>(4, std::max<uint32_t>(1, pool->spec().pg_count())));
    layout.set_seed(Mix64(*ino));
    if (pool->spec().locality() == WRITER_LOCAL && !writer_host.empty()) {
      ClusterRecord cluster;
      auto found = ctx.txn.GetRecord(Cf::kSystem, kClusterKey, &cluster);
      GRANARY_TRY(found);
      auto local =
          ctx.mapper.WriterLocalLayout(cluster.placement(), v.pool_id(), writer_host,
                                       layout.block_size(), layout.stripe_width(), layout.seed());
      // A writer on a host without a datanode in the pool gets the ordinary spread.
      if (local.ok()) {
        layout = std::move(*local);
      } else if (local.status().code() != Code::NOT_FOUND) {
        return local.status().WithContext(fmt::format("writer-local layout for '{}'", writer_host));
      }
    }
  }
  return rec;
}

Status FreeInode(Ctx& ctx, InodeRecord& rec, VolumeRecord& volume) {
  const InodeAttr& a = rec.attr();
  Volume& v = *volume.mutable_volume();
  v.set_used_inodes(v.used_inodes() > 0 ? v.used_inodes() - 1 : 0);
  if (a.type() == REGULAR) {
    v.set_used_bytes(v.used_bytes() >= a.size() ? v.used_bytes() - a.size() : 0);
    // Each reference is dropped; slices left unreferenced become garbage, collected after a grace.
    std::vector<std::string> keys;
    std::vector<uint64_t> refs;
    GRANARY_TRY(ctx.txn.Scan(Cf::kSlices, ChunkPrefix(a.ino()), "", false,
                             [&](std::string_view key, std::string_view value) {
                               keys.emplace_back(key);
                               ChunkRecord chunk;
                               if (chunk.ParseFromArray(value.data(), value.size())) {
                                 for (const auto& s : chunk.slices()) refs.push_back(s.slice_id());
                               }
                               return true;
                             }));
    for (const auto& key : keys) ctx.txn.Delete(Cf::kSlices, key);
    for (uint64_t id : refs) GRANARY_TRY(DropSliceRef(ctx, a.ino(), id));
  }
  UnindexPins(ctx, rec);
  ctx.txn.Delete(Cf::kInodes, InodeKey(a.ino()));
  ctx.txn.Delete(Cf::kSystem, OrphanKey(a.ino()));
  return Status::Ok();
}

Status DropLink(Ctx& ctx, InodeRecord& rec, VolumeRecord& volume) {
  InodeAttr& a = *rec.mutable_attr();
  if (a.type() == DIRECTORY) {
    a.set_nlink(0);
  } else {
    a.set_nlink(a.nlink() > 0 ? a.nlink() - 1 : 0);
  }
  *a.mutable_ctime() = ctx.Now();
  if (a.nlink() > 0) {
    SaveInode(ctx.txn, rec);
    return Status::Ok();
  }
  if (!rec.open_handles().empty()) {
    SaveInode(ctx.txn, rec);
    OrphanRecord orphan;
    orphan.set_format(kFormat);
    orphan.set_since_ms(ctx.op.now_ms());
    ctx.txn.PutRecord(Cf::kSystem, OrphanKey(a.ino()), orphan);
    return Status::Ok();
  }
  return FreeInode(ctx, rec, volume);
}

Result<std::vector<std::string>> ExpiredTimeKeys(Txn& txn, std::string_view prefix,
                                                 uint64_t cutoff_ms) {
  std::vector<std::string> keys;
  constexpr size_t kMaxPerOp = 100000;  // bounds one operation; the next round continues
  // The scan starts where the last pruning stopped: the keys deleted before it stay tombstones
  // until a compaction, and a scan from the prefix stepped over every one of them (after a
  // million creates, 360 ms per round on every member, holding up the apply loop).
  const std::string mark_key = PruneMarkKey(prefix);
  std::string mark;
  auto marked = txn.Get(Cf::kSystem, mark_key, &mark);
  GRANARY_TRY(marked);
  const std::string start = std::string(prefix) + (*marked && mark.size() == 8 ? mark : "");
  GRANARY_TRY(
      txn.Scan(Cf::kSystem, prefix, start, false, [&](std::string_view key, std::string_view) {
        if (ReadU64(key.substr(1)) >= cutoff_ms || keys.size() >= kMaxPerOp) return false;
        keys.emplace_back(key);
        return true;
      }));
  if (!keys.empty()) {
    std::string last;
    AppendU64(&last, ReadU64(std::string_view(keys.back()).substr(1)));
    txn.Put(Cf::kSystem, mark_key, last);
  }
  return keys;
}

Status ApplyPruneDedup(Ctx& ctx, OpReply* reply) {
  auto keys = ExpiredTimeKeys(ctx.txn, kDedupTimePrefix,
                              static_cast<uint64_t>(ctx.op.prune_dedup().before_ms()));
  GRANARY_TRY(keys);
  for (const std::string& key : *keys) {
    ctx.txn.Delete(Cf::kSystem, key);
    ctx.txn.Delete(Cf::kSystem, DedupKey(ReadU64(key.substr(9)), ReadU64(key.substr(17))));
  }
  return Status::Ok();
}

namespace {
OpReply ErrorReply(const Status& status) {
  OpReply reply;
  reply.set_format(kFormat);
  reply.set_code(status.code());
  reply.set_message(status.message());
  return reply;
}
}  // namespace

OpReply Applier::Apply(Txn& txn, const Operation& op) const {
  Ctx ctx{txn, op, mapper_};
  OpReply reply;
  reply.set_format(kFormat);
  // A snapshot's namespace never changes (apply_snapshot.cpp).
  Status status = CheckWritable(ctx);
  if (!status.ok()) return ErrorReply(status);
  switch (op.body_case()) {
    case Operation::kMkdir:
      status = ApplyMkdir(ctx, &reply);
      break;
    case Operation::kCreate:
      status = ApplyCreate(ctx, &reply);
      break;
    case Operation::kUnlink:
      status = ApplyUnlink(ctx, &reply);
      break;
    case Operation::kRmdir:
      status = ApplyRmdir(ctx, &reply);
      break;
    case Operation::kRename:
      status = ApplyRename(ctx, &reply);
      break;
    case Operation::kSymlink:
      status = ApplySymlink(ctx, &reply);
      break;
    case Operation::kLink:
      status = ApplyLink(ctx, &reply);
      break;
    case Operation::kSetattr:
      status = ApplySetAttr(ctx, &reply);
      break;
    case Operation::kSetxattr:
      status = ApplySetXattr(ctx, &reply);
      break;
    case Operation::kRemovexattr:
      status = ApplyRemoveXattr(ctx, &reply);
      break;
    case Operation::kFallocate:
      status = ApplyFallocate(ctx, &reply);
      break;
    case Operation::kOpen:
      status = ApplyOpen(ctx, &reply);
      break;
    case Operation::kRelease:
      status = ApplyRelease(ctx, &reply);
      break;
    case Operation::kLock:
      status = ApplyLock(ctx, &reply);
      break;
    case Operation::kAllocate:
      status = ApplyAllocate(ctx, &reply);
      break;
    case Operation::kCommit:
      status = ApplyCommit(ctx, &reply);
      break;
    case Operation::kPoolCreate:
      status = ApplyPoolCreate(ctx, &reply);
      break;
    case Operation::kVolumeCreate:
      status = ApplyVolumeCreate(ctx, &reply);
      break;
    case Operation::kVolumeDelete:
      status = ApplyVolumeDelete(ctx, &reply);
      break;
    case Operation::kVolumeSetQuota:
      status = ApplyVolumeSetQuota(ctx, &reply);
      break;
    case Operation::kKeyCreate:
      status = ApplyKeyCreate(ctx, &reply);
      break;
    case Operation::kKeyDelete:
      status = ApplyKeyDelete(ctx, &reply);
      break;
    case Operation::kBucketCreate:
      status = ApplyBucketCreate(ctx, &reply);
      break;
    case Operation::kBucketDelete:
      status = ApplyBucketDelete(ctx, &reply);
      break;
    case Operation::kBucketGrant:
      status = ApplyBucketGrant(ctx, &reply);
      break;
    case Operation::kNodeRegister:
      status = ApplyRegister(ctx, &reply);
      break;
    case Operation::kSetNodeState:
      status = ApplySetNodeState(ctx, &reply);
      break;
    case Operation::kCompleteMoves:
      status = ApplyCompleteMoves(ctx, &reply);
      break;
    case Operation::kReapSessions:
      status = ApplyReapSessions(ctx, &reply);
      break;
    case Operation::kReapIntents:
      status = ApplyReapIntents(ctx, &reply);
      break;
    case Operation::kBootstrap:
      status = ApplyBootstrap(ctx, &reply);
      break;
    case Operation::kAbandon:
      status = ApplyAbandon(ctx, &reply);
      break;
    case Operation::kCompactionDone:
      status = ApplyCompactionDone(ctx, &reply);
      break;
    case Operation::kGcSlices:
      status = ApplyGcSlices(ctx, &reply);
      break;
    case Operation::kPruneDedup:
      status = ApplyPruneDedup(ctx, &reply);
      break;
    case Operation::kObjectStage:
      status = ApplyObjectStage(ctx, &reply);
      break;
    case Operation::kObjectPublish:
      status = ApplyObjectPublish(ctx, &reply);
      break;
    case Operation::kObjectDelete:
      status = ApplyObjectDelete(ctx, &reply);
      break;
    case Operation::kUploadCreate:
      status = ApplyUploadCreate(ctx, &reply);
      break;
    case Operation::kUploadPart:
      status = ApplyUploadPart(ctx, &reply);
      break;
    case Operation::kUploadComplete:
      status = ApplyUploadComplete(ctx, &reply);
      break;
    case Operation::kUploadAbort:
      status = ApplyUploadAbort(ctx, &reply);
      break;
    case Operation::kObjectUpdate:
      status = ApplyObjectUpdate(ctx, &reply);
      break;
    case Operation::kBucketConfigure:
      status = ApplyBucketConfigure(ctx, &reply);
      break;
    case Operation::kPruneCompletions:
      status = ApplyPruneCompletions(ctx, &reply);
      break;
    case Operation::kReportCorruption:
      status = ApplyReportCorruption(ctx, &reply);
      break;
    case Operation::kResolveCorruption:
      status = ApplyResolveCorruption(ctx, &reply);
      break;
    case Operation::kSnapshotCreate:
      status = ApplySnapshotCreate(ctx, &reply);
      break;
    case Operation::kSnapshotDelete:
      status = ApplySnapshotDelete(ctx, &reply);
      break;
    case Operation::kWarmupCreate:
      status = ApplyWarmupCreate(ctx, &reply);
      break;
    case Operation::kWarmupDelete:
      status = ApplyWarmupDelete(ctx, &reply);
      break;
    case Operation::kWarmCopies:
      status = ApplyWarmCopies(ctx, &reply);
      break;
    case Operation::kWarmupRelease:
      status = ApplyWarmupRelease(ctx, &reply);
      break;
    case Operation::kWarmTrashDone:
      status = ApplyWarmTrashDone(ctx, &reply);
      break;
    case Operation::kWarmupState:
      status = ApplyWarmupState(ctx, &reply);
      break;
    case Operation::kWarmEvict:
      status = ApplyWarmEvict(ctx, &reply);
      break;
    case Operation::BODY_NOT_SET:
      status = InvalidArgument("operation without a body");
      break;
  }
  if (!status.ok()) {
    return ErrorReply(status);
  } else if (reply.body_case() == OpReply::BODY_NOT_SET) {
    reply.mutable_empty();
  }
  return reply;
}

}  // namespace granary::metanode
