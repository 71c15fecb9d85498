// The rules of one inode's lock table (docs/mount.md "Locks"), as Linux applies them to local
// locks: POSIX record locks (process-associated and OFD alike) split and merge by byte range per
// (holder, owner); flock locks cover the whole file, one per (holder, owner). The two kinds never
// conflict with each other. Pure functions: apply_lock.cpp stores the result.
#pragma once

#include <optional>
#include <vector>

#include "granary/meta.pb.h"

namespace granary::metanode {

enum class LockChange { kUnchanged, kChanged, kConflict };

// Takes, converts or (LOCK_TYPE_UNLOCK) releases `want` for (want.holder, want.owner). On a
// conflict `locks` is unchanged and every lock in the way is added to `conflicts`.
LockChange ApplyLockChange(std::vector<FileLock>& locks, const FileLock& want,
                           google::protobuf::RepeatedPtrField<FileLock>* conflicts);
// close(2): drops every POSIX lock of (holder, owner).
LockChange ReleaseOwner(std::vector<FileLock>& locks, uint64_t holder, uint64_t owner);
// F_GETLK: the first lock of another (holder, owner) that `probe` conflicts with.
std::optional<FileLock> FirstConflict(const std::vector<FileLock>& locks, const FileLock& probe);

}  // namespace granary::metanode
