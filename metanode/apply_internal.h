// Helpers shared by the apply_*.cpp files (internal to metanode/).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "metanode/pg_mapper.h"
#include "metanode/records.pb.h"
#include "metanode/store.h"

namespace granary::metanode {

struct Ctx {
  Txn& txn;
  const Operation& op;
  const PgMapper& mapper;

  Timespec Now() const;
};

// The record at `key`, or nullopt when there is none.
template <typename Record>
Result<std::optional<Record>> FindRecord(Txn& txn, Cf cf, std::string_view key) {
  Record rec;
  auto found = txn.GetRecord(cf, key, &rec);
  GRANARY_TRY(found);
  if (!*found) return std::optional<Record>();
  return std::optional<Record>(std::move(rec));
}

// The record at `key`, or NotFound naming `what` ("inode 42").
template <typename Record>
Result<Record> LoadRecord(Txn& txn, Cf cf, std::string_view key, std::string what) {
  auto rec = FindRecord<Record>(txn, cf, key);
  GRANARY_TRY(rec);
  if (!*rec) return NotFound(std::move(what));
  return std::move(**rec);
}

// Record access. Load* return NotFound with the object in the message.
Result<InodeRecord> LoadInode(Txn& txn, uint64_t ino);
void SaveInode(Txn& txn, const InodeRecord& rec);
// The inode `ino`, which must be a directory (NotDirectory otherwise).
Result<InodeRecord> LoadDir(Txn& txn, uint64_t ino);
Result<std::optional<DentryRecord>> LoadDentry(Txn& txn, uint64_t parent, std::string_view name);
void SaveDentry(Txn& txn, uint64_t parent, std::string_view name, uint64_t ino, FileType type);
Result<VolumeRecord> LoadVolume(Txn& txn, uint64_t id);
void SaveVolume(Txn& txn, const VolumeRecord& rec);
Result<PoolRecord> LoadPool(Txn& txn, uint32_t id);
Result<std::optional<uint64_t>> LookupName(Txn& txn, Cf cf, const std::string& key);
Result<bool> DirIsEmpty(Txn& txn, uint64_t dir);
// Directory `dir`'s entries by name, and file `ino`'s chunk records by range index.
Result<std::vector<std::pair<std::string, DentryRecord>>> ListDentries(Txn& txn, uint64_t dir);
Result<std::vector<std::pair<uint64_t, ChunkRecord>>> ListChunks(Txn& txn, uint64_t ino);

// Monotonic id counters in the system CF; returns the first of `count` new ids (ids start at 1,
// inode numbers at 2 so that 1 stays FUSE's root).
Result<uint64_t> NextId(Txn& txn, std::string_view counter, uint64_t count = 1);

// Entry names: InvalidArgument for "", ".", "..", '/' or NUL; NameTooLong over 255 bytes.
Status ValidateName(std::string_view name);

// A new inode in `volume` (not yet saved), checking the inode quota and counting it. A regular
// file in a writer-local pool created from `writer_host` gets PGs whose primary is on that host.
Result<InodeRecord> NewInode(Ctx& ctx, VolumeRecord& volume, FileType type, uint32_t mode,
                             uint32_t uid, uint32_t gid, std::string_view writer_host = "");

// Drops one link to `rec` (already removed from its directory). Frees the inode when no link and
// no open handle is left; parks it on the orphan list when handles are open. Updates `volume`.
Status DropLink(Ctx& ctx, InodeRecord& rec, VolumeRecord& volume);
// Deletes an inode with its slice map and releases its quota.
Status FreeInode(Ctx& ctx, InodeRecord& rec, VolumeRecord& volume);
// Shrinks or grows the slice map to `size` (shrink bumps the generation). Settles quota.
Status ResizeInode(Ctx& ctx, InodeRecord& rec, VolumeRecord& volume, uint64_t size);

// Pins (apply_session.cpp). AddPin counts one open handle of `owner` on `rec` and files it under
// the operation's client session; DropPin releases one (or, with `all`, every) handle of
// `owner`. UnindexPins drops the session index of an inode about to be deleted. The caller saves
// `rec`.
void AddPin(Ctx& ctx, InodeRecord& rec, uint64_t owner);
void DropPin(Ctx& ctx, InodeRecord& rec, uint64_t owner, bool all = false);
void UnindexPins(Ctx& ctx, const InodeRecord& rec);

// Recomputes the PG map and bumps the cluster epoch.
Status BumpClusterMap(Ctx& ctx);

uint64_t Mix64(uint64_t x);

// Slice lifecycle (apply_gc.cpp). A committed slice carries a count of the chunk-range
// references to it; at zero it becomes garbage.
void MarkGarbage(Ctx& ctx, uint64_t ino, uint64_t slice_id);
// Counts `count` new references to `ref`'s slice from `owner`; the first creates the slice record
// and its PG -> blocks index entries.
Status AddSliceRefs(Ctx& ctx, const InodeAttr& owner, uint64_t range_index, const SliceRef& ref,
                    uint32_t count);
// Once per store: gives slices committed before reference counting (no `L` record) their
// records, counts and index entries, so that GC and reconcile never take them for dead.
Status CountLegacySlices(Ctx& ctx);
// Drops one reference (the chunk record holding it has already been changed).
Status DropSliceRef(Ctx& ctx, uint64_t ino, uint64_t slice_id);

// Volumes (apply_catalog.cpp).
Result<VolumeRecord> FindVolumeByName(Txn& txn, std::string_view name);
// A new empty volume (name checked, root inode created) in `pool_name` ("" = default pool).
Result<VolumeRecord> CreateVolume(Ctx& ctx, const std::string& name, const std::string& pool_name,
                                  uint64_t quota_bytes, uint64_t quota_inodes);
Result<std::vector<BucketRecord>> AllBuckets(Txn& txn);

// Snapshots and clones (apply_snapshot.cpp).
// A new volume `req.name()` copied from req.from_volume() or req.from_snapshot().
Result<VolumeRecord> CloneVolume(Ctx& ctx, const VolumeCreateRequest& req);
// AlreadyExists while snapshots named `volume`@… remain (a new volume must not inherit them).
Status CheckSnapshotsGone(Txn& txn, std::string_view volume);
// PermissionDenied when the operation would change a read-only snapshot.
Status CheckWritable(Ctx& ctx);

// Per-area apply entry points (apply.cpp dispatches).
Status ApplyMkdir(Ctx& ctx, OpReply* reply);
Status ApplyCreate(Ctx& ctx, OpReply* reply);
Status ApplySymlink(Ctx& ctx, OpReply* reply);
Status ApplyLink(Ctx& ctx, OpReply* reply);
Status ApplyUnlink(Ctx& ctx, OpReply* reply);
Status ApplyRmdir(Ctx& ctx, OpReply* reply);
Status ApplyRename(Ctx& ctx, OpReply* reply);
Status ApplySetAttr(Ctx& ctx, OpReply* reply);
Status ApplySetXattr(Ctx& ctx, OpReply* reply);
Status ApplyRemoveXattr(Ctx& ctx, OpReply* reply);
Status ApplyFallocate(Ctx& ctx, OpReply* reply);
Status ApplyOpen(Ctx& ctx, OpReply* reply);
Status ApplyRelease(Ctx& ctx, OpReply* reply);
Status ApplyAllocate(Ctx& ctx, OpReply* reply);
Status ApplyCommit(Ctx& ctx, OpReply* reply);
Status ApplyReapIntents(Ctx& ctx, OpReply* reply);
// Keys of a time index ("<tag><u64 BE ms>…", in time order) older than `cutoff_ms`, at most
// 100,000 (one operation's share; the next round continues).
Result<std::vector<std::string>> ExpiredTimeKeys(Txn& txn, std::string_view prefix,
                                                 uint64_t cutoff_ms);
Status ApplyPruneDedup(Ctx& ctx, OpReply* reply);
Status ApplyGcSlices(Ctx& ctx, OpReply* reply);
Status ApplyCompactionDone(Ctx& ctx, OpReply* reply);
Status ApplyAbandon(Ctx& ctx, OpReply* reply);
Status ApplyPoolCreate(Ctx& ctx, OpReply* reply);
Status ApplyVolumeCreate(Ctx& ctx, OpReply* reply);
Status ApplyVolumeDelete(Ctx& ctx, OpReply* reply);
Status ApplyVolumeSetQuota(Ctx& ctx, OpReply* reply);
Status ApplyKeyCreate(Ctx& ctx, OpReply* reply);
Status ApplyKeyDelete(Ctx& ctx, OpReply* reply);
Status ApplyBucketCreate(Ctx& ctx, OpReply* reply);
Status ApplyBucketDelete(Ctx& ctx, OpReply* reply);
Status ApplyBucketGrant(Ctx& ctx, OpReply* reply);
Status ApplyBootstrap(Ctx& ctx, OpReply* reply);
Status ApplyRegister(Ctx& ctx, OpReply* reply);
Status ApplySetNodeState(Ctx& ctx, OpReply* reply);
Status ApplyCompleteMoves(Ctx& ctx, OpReply* reply);
Status ApplyReapSessions(Ctx& ctx, OpReply* reply);
// File locks (apply_lock.cpp).
Status ApplyLock(Ctx& ctx, OpReply* reply);
// Drops every lock `holder` (a lapsed session) holds; returns the inodes whose tables changed.
Result<std::vector<uint64_t>> DropHolderLocks(Ctx& ctx, uint64_t holder, uint64_t* dropped);
Status ApplySnapshotCreate(Ctx& ctx, OpReply* reply);
Status ApplySnapshotDelete(Ctx& ctx, OpReply* reply);
// Repair on report (apply_corruption.cpp).
Status ApplyReportCorruption(Ctx& ctx, OpReply* reply);
Status ApplyResolveCorruption(Ctx& ctx, OpReply* reply);
// Drops the suspect-copy records of a slice being collected.
Status DropSuspectsOfSlice(Ctx& ctx, uint64_t slice_id);
// Warm-ups (apply_warmup.cpp, docs/locality.md).
Status ApplyWarmupCreate(Ctx& ctx, OpReply* reply);
Status ApplyWarmupDelete(Ctx& ctx, OpReply* reply);
Status ApplyWarmCopies(Ctx& ctx, OpReply* reply);
Status ApplyWarmupRelease(Ctx& ctx, OpReply* reply);
Status ApplyWarmTrashDone(Ctx& ctx, OpReply* reply);
Status ApplyWarmupState(Ctx& ctx, OpReply* reply);
Status ApplyWarmEvict(Ctx& ctx, OpReply* reply);
// Drops the warm-copy records of a slice being collected (GC deletes its blocks everywhere).
Status DropWarmCopiesOfSlice(Ctx& ctx, uint64_t slice_id);
// A copy reported corrupt: if `node` holds it as a warm copy, the block leaves that record.
Status ForgetWarmBlock(Ctx& ctx, uint32_t node, uint64_t slice_id, uint32_t block);

}  // namespace granary::metanode
