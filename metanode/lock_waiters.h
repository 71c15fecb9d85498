// Blocked lock requests waiting on the leader (docs/mount.md "Locks"): a long poll. A client
// whose lock was refused calls LockWait with the table version it saw; the call is answered as
// soon as a Lock operation or a session reap changes that inode's table, or at its (bounded)
// timeout, and the client then tries again. In memory only: a new leader starts with none, and
// waiters whose call fails simply ask again. Also finds deadlocks between waiting owners.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "common/status.h"
#include "granary/meta.pb.h"

namespace granary::metanode {

class Txn;

class LockWaiters {
 public:
  // The longest a LockWait call is held (a client asks again after it).
  static constexpr uint32_t kMaxWaitMs = 10000;

  LockWaiters();
  ~LockWaiters();
  LockWaiters(const LockWaiters&) = delete;
  LockWaiters& operator=(const LockWaiters&) = delete;

  using Done = std::function<void(LockWaitReply)>;
  // Registers a waiter and returns its id; 0 when it would close a cycle of waiting owners
  // (req.detect_deadlock: the caller answers deadlock = true, nothing is registered).
  uint64_t Add(const LockWaitRequest& req, Done done);
  // Answers waiter `id` (changed = true) if it still waits; returns whether it did.
  bool Wake(uint64_t id);
  // Removes waiter `id` without answering; returns whether it was still waiting.
  bool Remove(uint64_t id);
  // The lock table of `ino` changed: every waiter on it is answered.
  void Notify(uint64_t ino);
  size_t size();

 private:
  struct Waiter {
    uint64_t ino = 0;
    std::pair<uint64_t, uint64_t> me;                    // (holder, owner)
    std::vector<std::pair<uint64_t, uint64_t>> blocked;  // by these (holder, owner)
    std::chrono::steady_clock::time_point deadline;
    Done done;
  };
  bool ClosesCycle(const Waiter& w) const;  // under mu_
  void TimerLoop();

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, Waiter> waiters_;
  uint64_t next_id_ = 1;
  bool stopping_ = false;
  std::thread timer_;
};

// Lock queries on a read view (apply_lock.cpp).
Result<GetLockReply> QueryGetLock(Txn& txn, const GetLockRequest& req);
Result<uint64_t> QueryLockVersion(Txn& txn, uint64_t ino);
Result<ListLocksReply> QueryListLocks(Txn& txn, uint64_t holder);

}  // namespace granary::metanode
