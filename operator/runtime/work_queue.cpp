#include "operator/runtime/work_queue.h"

#include <algorithm>
#include <cmath>

namespace granary::runtime {

WorkQueue::WorkQueue(RateLimit limit)
    : limit_(limit), tokens_(limit.burst), refilled_(Clock::now()) {}

void WorkQueue::OnDepth(std::function<void(size_t)> f) {
  std::lock_guard lock(mu_);
  on_depth_ = std::move(f);
}

void WorkQueue::AddLocked(const std::string& key) {
  waiting_.erase(key);
  if (dirty_.count(key)) return;
  dirty_.insert(key);
  if (processing_.count(key)) return;  // Done re-queues it
  queue_.push_back(key);
  if (on_depth_) on_depth_(queue_.size());
  cv_.notify_one();
}

void WorkQueue::Add(const std::string& key) {
  std::lock_guard lock(mu_);
  AddLocked(key);
}

void WorkQueue::AddAfter(const std::string& key, std::chrono::milliseconds delay) {
  if (delay.count() <= 0) return Add(key);
  std::lock_guard lock(mu_);
  if (dirty_.count(key)) return;  // already due now
  auto due = Clock::now() + delay;
  auto it = waiting_.find(key);
  if (it == waiting_.end() || due < it->second) waiting_[key] = due;
  cv_.notify_all();  // a Get may be sleeping until a later due time
}

std::chrono::milliseconds WorkQueue::NextDelay(const std::string& key) {
  std::lock_guard lock(mu_);
  int n = failures_[key]++;
  double exp = std::min<double>(
      std::chrono::duration<double, std::milli>(limit_.base_delay).count() * std::pow(2.0, n),
      static_cast<double>(limit_.max_delay.count()));
  // Token bucket with reservations: a negative balance is the wait for this caller's token.
  auto now = Clock::now();
  double elapsed = std::chrono::duration<double>(now - refilled_).count();
  tokens_ = std::min<double>(limit_.burst, tokens_ + elapsed * limit_.qps);
  refilled_ = now;
  tokens_ -= 1;
  double bucket_ms = tokens_ >= 0 ? 0 : -tokens_ / limit_.qps * 1000;
  return std::chrono::milliseconds(static_cast<int64_t>(std::max(exp, bucket_ms)));
}

void WorkQueue::AddRateLimited(const std::string& key) { AddAfter(key, NextDelay(key)); }

void WorkQueue::Forget(const std::string& key) {
  std::lock_guard lock(mu_);
  failures_.erase(key);
}

int WorkQueue::Failures(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

void WorkQueue::PromoteDueLocked(Clock::time_point now) {
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    if (it->second <= now) {
      std::string key = it->first;
      it = waiting_.erase(it);
      AddLocked(key);
    } else {
      ++it;
    }
  }
}

std::optional<std::string> WorkQueue::Get() {
  std::unique_lock lock(mu_);
  while (true) {
    if (shutdown_) return std::nullopt;
    PromoteDueLocked(Clock::now());
    if (!queue_.empty()) break;
    if (waiting_.empty()) {
      cv_.wait(lock);
    } else {
      auto next = std::min_element(waiting_.begin(), waiting_.end(), [](auto& a, auto& b) {
                    return a.second < b.second;
                  })->second;
      cv_.wait_until(lock, next);
    }
  }
  std::string key = std::move(queue_.front());
  queue_.pop_front();
  dirty_.erase(key);
  processing_.insert(key);
  if (on_depth_) on_depth_(queue_.size());
  return key;
}

void WorkQueue::Done(const std::string& key) {
  std::lock_guard lock(mu_);
  processing_.erase(key);
  if (dirty_.count(key)) {
    queue_.push_back(key);
    if (on_depth_) on_depth_(queue_.size());
    cv_.notify_one();
  }
}

void WorkQueue::ShutDown() {
  std::lock_guard lock(mu_);
  shutdown_ = true;
  cv_.notify_all();
}

void WorkQueue::Reopen() {
  std::lock_guard lock(mu_);
  shutdown_ = false;
}

size_t WorkQueue::Len() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

size_t WorkQueue::Waiting() const {
  std::lock_guard lock(mu_);
  return waiting_.size();
}

}  // namespace granary::runtime
