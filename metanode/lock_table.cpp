#include "metanode/lock_table.h"

#include <algorithm>
#include <limits>

namespace granary::metanode {

namespace {

bool SameOwner(const FileLock& a, const FileLock& b) {
  return a.holder() == b.holder() && a.owner() == b.owner();
}

bool Conflicts(const FileLock& held, const FileLock& want) {
  if (held.kind() != want.kind() || SameOwner(held, want)) return false;
  if (held.type() != LOCK_TYPE_WRITE && want.type() != LOCK_TYPE_WRITE) return false;
  if (want.kind() == LOCK_KIND_FLOCK) return true;
  return held.start() <= want.end() && want.start() <= held.end();
}

// Removes [start, end] from the POSIX locks of want's owner, splitting the ones that straddle it.
void CutRange(std::vector<FileLock>& locks, const FileLock& want) {
  std::vector<FileLock> out;
  for (const FileLock& l : locks) {
    if (l.kind() != LOCK_KIND_POSIX || !SameOwner(l, want) || l.end() < want.start() ||
        l.start() > want.end()) {
      out.push_back(l);
      continue;
    }
    if (l.start() < want.start()) {
      FileLock left = l;
      left.set_end(want.start() - 1);
      out.push_back(left);
    }
    if (l.end() > want.end()) {
      FileLock right = l;
      right.set_start(want.end() + 1);
      out.push_back(right);
    }
  }
  locks = std::move(out);
}

// Joins want's owner's POSIX locks of one type that touch or overlap (as Linux coalesces them).
void Coalesce(std::vector<FileLock>& locks, const FileLock& want) {
  std::vector<FileLock> mine, out;
  for (const FileLock& l : locks) {
    (l.kind() == LOCK_KIND_POSIX && SameOwner(l, want) ? mine : out).push_back(l);
  }
  std::sort(mine.begin(), mine.end(),
            [](const FileLock& a, const FileLock& b) { return a.start() < b.start(); });
  for (const FileLock& l : mine) {
    if (!out.empty()) {
      FileLock& last = out.back();
      if (last.kind() == LOCK_KIND_POSIX && SameOwner(last, want) && last.type() == l.type() &&
          (last.end() == std::numeric_limits<uint64_t>::max() || last.end() + 1 >= l.start())) {
        last.set_end(std::max(last.end(), l.end()));
        continue;
      }
    }
    out.push_back(l);
  }
  locks = std::move(out);
}

}  // namespace

LockChange ApplyLockChange(std::vector<FileLock>& locks, const FileLock& want,
                           google::protobuf::RepeatedPtrField<FileLock>* conflicts) {
  if (want.type() != LOCK_TYPE_UNLOCK) {
    bool blocked = false;
    for (const FileLock& l : locks) {
      if (Conflicts(l, want)) {
        blocked = true;
        if (conflicts != nullptr) *conflicts->Add() = l;
      }
    }
    if (blocked) return LockChange::kConflict;
  }
  const std::vector<FileLock> before = locks;
  if (want.kind() == LOCK_KIND_FLOCK) {
    std::erase_if(locks, [&](const FileLock& l) {
      return l.kind() == LOCK_KIND_FLOCK && SameOwner(l, want);
    });
    if (want.type() != LOCK_TYPE_UNLOCK) locks.push_back(want);
  } else {
    CutRange(locks, want);
    if (want.type() != LOCK_TYPE_UNLOCK) {
      locks.push_back(want);
      Coalesce(locks, want);
    }
  }
  auto same = [](const std::vector<FileLock>& a, const std::vector<FileLock>& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i) {
      if (a[i].SerializeAsString() != b[i].SerializeAsString()) return false;
    }
    return true;
  };
  return same(before, locks) ? LockChange::kUnchanged : LockChange::kChanged;
}

LockChange ReleaseOwner(std::vector<FileLock>& locks, uint64_t holder, uint64_t owner) {
  size_t n = locks.size();
  std::erase_if(locks, [&](const FileLock& l) {
    return l.kind() == LOCK_KIND_POSIX && l.holder() == holder && l.owner() == owner;
  });
  return locks.size() == n ? LockChange::kUnchanged : LockChange::kChanged;
}

std::optional<FileLock> FirstConflict(const std::vector<FileLock>& locks, const FileLock& probe) {
  for (const FileLock& l : locks) {
    if (Conflicts(l, probe)) return l;
  }
  return std::nullopt;
}

}  // namespace granary::metanode
