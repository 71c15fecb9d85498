#include "metanode/lock_waiters.h"

#include <algorithm>
#include <set>

namespace granary::metanode {

LockWaiters::LockWaiters() : timer_([this] { TimerLoop(); }) {}

LockWaiters::~LockWaiters() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  timer_.join();
  // Calls still held are answered (the client asks again, elsewhere if need be).
  for (auto& [id, w] : waiters_) w.done(LockWaitReply());
}

bool LockWaiters::ClosesCycle(const Waiter& w) const {
  // Owners w waits for, transitively through the other waiters: a cycle when w's own owner is
  // among them (the two-owner case is the first step).
  std::set<std::pair<uint64_t, uint64_t>> seen;
  std::vector<std::pair<uint64_t, uint64_t>> todo = w.blocked;
  while (!todo.empty()) {
    auto owner = todo.back();
    todo.pop_back();
    if (owner == w.me) return true;
    if (!seen.insert(owner).second) continue;
    for (const auto& [id, other] : waiters_) {
      if (other.me == owner) todo.insert(todo.end(), other.blocked.begin(), other.blocked.end());
    }
  }
  return false;
}

uint64_t LockWaiters::Add(const LockWaitRequest& req, Done done) {
  Waiter w;
  w.ino = req.ino();
  w.me = {req.holder(), req.owner()};
  for (const FileLock& b : req.blockers()) w.blocked.emplace_back(b.holder(), b.owner());
  uint32_t ms = req.timeout_ms() == 0 ? kMaxWaitMs : std::min(req.timeout_ms(), kMaxWaitMs);
  w.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  w.done = std::move(done);
  std::lock_guard lock(mu_);
  if (req.detect_deadlock() && ClosesCycle(w)) return 0;
  uint64_t id = next_id_++;
  waiters_.emplace(id, std::move(w));
  cv_.notify_all();
  return id;
}

bool LockWaiters::Wake(uint64_t id) {
  Done done;
  {
    std::lock_guard lock(mu_);
    auto it = waiters_.find(id);
    if (it == waiters_.end()) return false;
    done = std::move(it->second.done);
    waiters_.erase(it);
  }
  LockWaitReply reply;
  reply.set_changed(true);
  done(std::move(reply));
  return true;
}

bool LockWaiters::Remove(uint64_t id) {
  std::lock_guard lock(mu_);
  return waiters_.erase(id) > 0;
}

void LockWaiters::Notify(uint64_t ino) {
  std::vector<Done> woken;
  {
    std::lock_guard lock(mu_);
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (it->second.ino == ino) {
        woken.push_back(std::move(it->second.done));
        it = waiters_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (Done& done : woken) {
    LockWaitReply reply;
    reply.set_changed(true);
    done(std::move(reply));
  }
}

size_t LockWaiters::size() {
  std::lock_guard lock(mu_);
  return waiters_.size();
}

void LockWaiters::TimerLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    auto next = std::chrono::steady_clock::time_point::max();
    for (const auto& [id, w] : waiters_) next = std::min(next, w.deadline);
    if (next == std::chrono::steady_clock::time_point::max()) {
      cv_.wait(lock);
    } else {
      cv_.wait_until(lock, next);
    }
    const auto now = std::chrono::steady_clock::now();
    std::vector<Done> expired;
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (it->second.deadline <= now) {
        expired.push_back(std::move(it->second.done));
        it = waiters_.erase(it);
      } else {
        ++it;
      }
    }
    lock.unlock();
    for (Done& done : expired) done(LockWaitReply());  // unchanged: the client asks again
    lock.lock();
  }
}

}  // namespace granary::metanode
