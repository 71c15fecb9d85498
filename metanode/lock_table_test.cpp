// The lock table's rules (metanode/lock_table.h) and the long-poll waiters' deadlock check, as
// Linux applies them to local locks.
#include "metanode/lock_table.h"

#include <gtest/gtest.h>

#include <atomic>

#include "metanode/lock_waiters.h"

namespace granary::metanode {
namespace {

constexpr uint64_t kToEnd = INT64_MAX;

FileLock Posix(uint64_t holder, uint64_t owner, LockType type, uint64_t start, uint64_t end) {
  FileLock l;
  l.set_kind(LOCK_KIND_POSIX);
  l.set_type(type);
  l.set_start(start);
  l.set_end(end);
  l.set_holder(holder);
  l.set_owner(owner);
  return l;
}

FileLock Flock(uint64_t holder, uint64_t owner, LockType type) {
  FileLock l = Posix(holder, owner, type, 0, kToEnd);
  l.set_kind(LOCK_KIND_FLOCK);
  return l;
}

std::string Ranges(const std::vector<FileLock>& locks) {
  std::string out;
  for (const FileLock& l : locks) {
    out += (l.type() == LOCK_TYPE_WRITE ? "w" : "r") + std::to_string(l.start()) + "-" +
           (l.end() == kToEnd ? std::string("end") : std::to_string(l.end())) + " ";
  }
  return out;
}

TEST(LockTableTest, AnUnlockInTheMiddleSplitsARange) {
  std::vector<FileLock> locks;
  ASSERT_EQ(ApplyLockChange(locks, Posix(1, 1, LOCK_TYPE_WRITE, 0, 99), nullptr),
            LockChange::kChanged);
  ASSERT_EQ(ApplyLockChange(locks, Posix(1, 1, LOCK_TYPE_UNLOCK, 40, 59), nullptr),
            LockChange::kChanged);
  EXPECT_EQ(Ranges(locks), "w0-39 w60-99 ");
  // Unlocking what is not locked changes nothing (and writes nothing).
  EXPECT_EQ(ApplyLockChange(locks, Posix(1, 1, LOCK_TYPE_UNLOCK, 45, 50), nullptr),
            LockChange::kUnchanged);
}

TEST(LockTableTest, AdjacentRangesOfOneTypeMergeAndATypeChangeSplits) {
  std::vector<FileLock> locks;
  ApplyLockChange(locks, Posix(1, 1, LOCK_TYPE_READ, 0, 9), nullptr);
  ApplyLockChange(locks, Posix(1, 1, LOCK_TYPE_READ, 10, 19), nullptr);
  EXPECT_EQ(Ranges(locks), "r0-19 ");
  ApplyLockChange(locks, Posix(1, 1, LOCK_TYPE_WRITE, 5, 14), nullptr);
  EXPECT_EQ(Ranges(locks), "r0-4 w5-14 r15-19 ");
  EXPECT_EQ(ReleaseOwner(locks, 1, 1), LockChange::kChanged);
  EXPECT_TRUE(locks.empty());
}

TEST(LockTableTest, OwnersConflictOnOverlapOnlyAndEveryBlockerIsNamed) {
  std::vector<FileLock> locks;
  ApplyLockChange(locks, Posix(1, 1, LOCK_TYPE_READ, 0, 9), nullptr);
  ApplyLockChange(locks, Posix(2, 7, LOCK_TYPE_READ, 20, 29), nullptr);
  // Readers share; a writer over both is refused and told about both.
  EXPECT_EQ(ApplyLockChange(locks, Posix(3, 1, LOCK_TYPE_READ, 0, 29), nullptr),
            LockChange::kChanged);
  google::protobuf::RepeatedPtrField<FileLock> conflicts;
  EXPECT_EQ(ApplyLockChange(locks, Posix(4, 1, LOCK_TYPE_WRITE, 5, 25), &conflicts),
            LockChange::kConflict);
  EXPECT_EQ(conflicts.size(), 3);
  EXPECT_EQ(ApplyLockChange(locks, Posix(4, 1, LOCK_TYPE_WRITE, 30, kToEnd), nullptr),
            LockChange::kChanged);
  // The same owner on another host (another holder) is another owner.
  auto probe = Posix(2, 1, LOCK_TYPE_WRITE, 0, 0);
  auto first = FirstConflict(locks, probe);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->holder(), 1u);
  // An owner never conflicts with itself.
  std::vector<FileLock> mine = {Posix(1, 1, LOCK_TYPE_WRITE, 0, 9)};
  EXPECT_FALSE(FirstConflict(mine, Posix(1, 1, LOCK_TYPE_WRITE, 0, 9)).has_value());
}

TEST(LockTableTest, FlockIsWholeFileAndIndependentOfRecordLocks) {
  std::vector<FileLock> locks;
  ApplyLockChange(locks, Posix(1, 1, LOCK_TYPE_WRITE, 0, kToEnd), nullptr);
  EXPECT_EQ(ApplyLockChange(locks, Flock(2, 5, LOCK_TYPE_WRITE), nullptr), LockChange::kChanged);
  EXPECT_EQ(ApplyLockChange(locks, Flock(3, 6, LOCK_TYPE_READ), nullptr), LockChange::kConflict);
  // A conversion replaces the owner's flock (one per open file).
  EXPECT_EQ(ApplyLockChange(locks, Flock(2, 5, LOCK_TYPE_READ), nullptr), LockChange::kChanged);
  EXPECT_EQ(ApplyLockChange(locks, Flock(3, 6, LOCK_TYPE_READ), nullptr), LockChange::kChanged);
  EXPECT_EQ(locks.size(), 3u);
  // ReleaseOwner (close) leaves flock locks to the file's last close.
  EXPECT_EQ(ReleaseOwner(locks, 2, 5), LockChange::kUnchanged);
}

TEST(LockWaitersTest, ATwoOwnerCycleIsADeadlockAndAWakeAnswersTheWaiter) {
  LockWaiters waiters;
  std::atomic<int> answered{0};
  LockWaitRequest a;
  a.set_ino(9);
  a.set_holder(1);
  a.set_owner(1);
  *a.add_blockers() = Posix(2, 2, LOCK_TYPE_WRITE, 1, 1);
  a.set_detect_deadlock(true);
  a.set_timeout_ms(5000);
  const uint64_t id = waiters.Add(a, [&](LockWaitReply r) { answered += r.changed() ? 1 : 100; });
  ASSERT_NE(id, 0u);
  LockWaitRequest b = a;
  b.set_holder(2);
  b.set_owner(2);
  b.clear_blockers();
  *b.add_blockers() = Posix(1, 1, LOCK_TYPE_WRITE, 0, 0);
  EXPECT_EQ(waiters.Add(b, [](LockWaitReply) {}), 0u);  // would close the cycle: EDEADLK
  EXPECT_EQ(waiters.size(), 1u);
  waiters.Notify(9);
  EXPECT_EQ(answered.load(), 1);
  EXPECT_EQ(waiters.size(), 0u);
}

}  // namespace
}  // namespace granary::metanode
