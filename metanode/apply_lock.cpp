// Cluster-wide file locks (docs/mount.md "Locks"): one LockTableRecord per locked inode, changed
// only by Lock operations and by the reaping of a lapsed session. A lock's holder is the client
// session of the operation that took it, never what the request claims, so a dead client's
// locks go with its session.
#include <fmt/format.h>

#include <algorithm>

#include "metanode/apply_internal.h"
#include "metanode/lock_table.h"
#include "metanode/schema.h"

namespace granary::metanode {

namespace {

constexpr std::string_view kLockVersionCounter = "lock-version";

Result<LockTableRecord> LoadLocks(Txn& txn, uint64_t ino) {
  auto rec = FindRecord<LockTableRecord>(txn, Cf::kSystem, LockTableKey(ino));
  GRANARY_TRY(rec);
  return *rec ? std::move(**rec) : LockTableRecord();
}

// Saves the table with a fresh version and keeps the "f" holder index in step: an entry for
// every holder with a lock on the inode, none for the others.
Status SaveLocks(Ctx& ctx, uint64_t ino, LockTableRecord& table,
                 const std::vector<uint64_t>& holders_before) {
  auto version = NextId(ctx.txn, kLockVersionCounter);
  GRANARY_TRY(version);
  table.set_format(kFormat);
  table.set_version(*version);
  std::vector<uint64_t> after;
  for (const FileLock& l : table.locks()) after.push_back(l.holder());
  std::sort(after.begin(), after.end());
  after.erase(std::unique(after.begin(), after.end()), after.end());
  for (uint64_t h : holders_before) {
    if (!std::binary_search(after.begin(), after.end(), h)) {
      ctx.txn.Delete(Cf::kSystem, LockIndexKey(h, ino));
    }
  }
  for (uint64_t h : after) ctx.txn.Put(Cf::kSystem, LockIndexKey(h, ino), "");
  if (table.locks().empty()) {
    ctx.txn.Delete(Cf::kSystem, LockTableKey(ino));
  } else {
    ctx.txn.PutRecord(Cf::kSystem, LockTableKey(ino), table);
  }
  return Status::Ok();
}

std::vector<uint64_t> HoldersOf(const LockTableRecord& table) {
  std::vector<uint64_t> holders;
  for (const FileLock& l : table.locks()) holders.push_back(l.holder());
  std::sort(holders.begin(), holders.end());
  holders.erase(std::unique(holders.begin(), holders.end()), holders.end());
  return holders;
}

}  // namespace

Status ApplyLock(Ctx& ctx, OpReply* reply) {
  const LockRequest& req = ctx.op.lock();
  const uint64_t holder = ctx.op.id().client_id();
  if (holder == 0) return InvalidArgument("lock: a lock needs a client session");
  if (req.lock().start() > req.lock().end()) {
    return InvalidArgument(
        fmt::format("lock range [{}, {}] is empty", req.lock().start(), req.lock().end()));
  }
  auto inode = FindRecord<InodeRecord>(ctx.txn, Cf::kInodes, InodeKey(req.ino()));
  GRANARY_TRY(inode);
  // An inode that is gone can hold no lock; unlocking it is not an error (close after unlink).
  const bool unlocking = req.release_owner() || req.lock().type() == LOCK_TYPE_UNLOCK;
  if (!*inode && !unlocking) return NotFound(fmt::format("inode {}", req.ino()));
  auto table = LoadLocks(ctx.txn, req.ino());
  GRANARY_TRY(table);
  const std::vector<uint64_t> before = HoldersOf(*table);
  FileLock want = req.lock();
  want.set_holder(holder);
  LockReply& out = *reply->mutable_lock();
  std::vector<FileLock> locks(table->locks().begin(), table->locks().end());
  LockChange change = req.release_owner() ? ReleaseOwner(locks, holder, want.owner())
                                          : ApplyLockChange(locks, want, out.mutable_conflicts());
  out.set_granted(change != LockChange::kConflict);
  // Linux converts a flock by dropping the old lock first: a refused conversion loses it.
  if (change == LockChange::kConflict && want.kind() == LOCK_KIND_FLOCK) {
    FileLock drop = want;
    drop.set_type(LOCK_TYPE_UNLOCK);
    change = ApplyLockChange(locks, drop, nullptr);
  }
  if (change == LockChange::kChanged) {
    table->mutable_locks()->Assign(locks.begin(), locks.end());
    GRANARY_TRY(SaveLocks(ctx, req.ino(), *table, before));
  }
  out.set_version(table->version());
  return Status::Ok();
}

Result<std::vector<uint64_t>> DropHolderLocks(Ctx& ctx, uint64_t holder, uint64_t* dropped) {
  std::vector<uint64_t> inos;
  const std::string prefix = LockIndexPrefix(holder);
  GRANARY_TRY(
      ctx.txn.Scan(Cf::kSystem, prefix, "", false, [&](std::string_view key, std::string_view) {
        inos.push_back(ReadU64(key.substr(prefix.size())));
        return true;
      }));
  for (uint64_t ino : inos) {
    auto table = LoadLocks(ctx.txn, ino);
    GRANARY_TRY(table);
    const std::vector<uint64_t> before = HoldersOf(*table);
    std::vector<FileLock> locks(table->locks().begin(), table->locks().end());
    size_t n = locks.size();
    std::erase_if(locks, [&](const FileLock& l) { return l.holder() == holder; });
    *dropped += n - locks.size();
    table->mutable_locks()->Assign(locks.begin(), locks.end());
    GRANARY_TRY(SaveLocks(ctx, ino, *table, before));
    ctx.txn.Delete(Cf::kSystem, LockIndexKey(holder, ino));
  }
  return inos;
}

Result<GetLockReply> QueryGetLock(Txn& txn, const GetLockRequest& req) {
  auto table = LoadLocks(txn, req.ino());
  GRANARY_TRY(table);
  GetLockReply reply;
  std::vector<FileLock> locks(table->locks().begin(), table->locks().end());
  if (auto c = FirstConflict(locks, req.lock())) {
    reply.set_found(true);
    *reply.mutable_conflict() = *c;
  }
  return reply;
}

Result<uint64_t> QueryLockVersion(Txn& txn, uint64_t ino) {
  auto table = LoadLocks(txn, ino);
  GRANARY_TRY(table);
  return table->version();
}

Result<ListLocksReply> QueryListLocks(Txn& txn, uint64_t holder) {
  ListLocksReply reply;
  std::vector<uint64_t> inos;
  const std::string prefix = LockIndexPrefix(holder);
  GRANARY_TRY(txn.Scan(Cf::kSystem, prefix, "", false, [&](std::string_view key, std::string_view) {
    inos.push_back(ReadU64(key.substr(prefix.size())));
    return true;
  }));
  for (uint64_t ino : inos) {
    auto table = LoadLocks(txn, ino);
    GRANARY_TRY(table);
    HeldLocks& held = *reply.add_inodes();
    held.set_ino(ino);
    for (const FileLock& l : table->locks()) {
      if (l.holder() == holder) *held.add_locks() = l;
    }
  }
  return reply;
}

}  // namespace granary::metanode
