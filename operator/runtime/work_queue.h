// A de-duplicating work queue of object keys with delayed adds, per-key exponential back-off
// and a global token-bucket rate limit (the shape of client-go's workqueue):
//   - a key is queued at most once, however often it is added;
//   - a key being processed is never handed to a second worker; added meanwhile, it is queued
//     again when the first worker calls Done;
//   - AddRateLimited delays a key by max(base·2^failures, the bucket's wait).
// Bounded: at most one entry per distinct key. No thread of its own; Get waits for the next due
// delayed key.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

namespace granary::runtime {

using Clock = std::chrono::steady_clock;

struct RateLimit {
  std::chrono::milliseconds base_delay{5};
  std::chrono::milliseconds max_delay{60'000};
  double qps = 10;  // overall retries per second, after `burst`
  int burst = 100;
};

class WorkQueue {
 public:
  explicit WorkQueue(RateLimit limit = {});

  void Add(const std::string& key);
  void AddAfter(const std::string& key, std::chrono::milliseconds delay);
  // Back-off for a key that failed: call Forget once it succeeds.
  void AddRateLimited(const std::string& key);
  void Forget(const std::string& key);
  int Failures(const std::string& key) const;
  // The delay AddRateLimited would use now (it also takes a bucket token).
  std::chrono::milliseconds NextDelay(const std::string& key);

  // Blocks until a key is ready; nullopt once ShutDown is called. Every key returned must be
  // given back with Done.
  std::optional<std::string> Get();
  void Done(const std::string& key);

  // Wakes every Get (they return nullopt); queued keys stay for Reopen.
  void ShutDown();
  void Reopen();

  size_t Len() const;      // ready keys
  size_t Waiting() const;  // delayed keys
  // Called with the ready length after each change (for a depth gauge).
  void OnDepth(std::function<void(size_t)> f);

 private:
  void AddLocked(const std::string& key);
  void PromoteDueLocked(Clock::time_point now);

  RateLimit limit_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  std::set<std::string> dirty_;
  std::set<std::string> processing_;
  std::map<std::string, Clock::time_point> waiting_;  // key → when it is due
  std::map<std::string, int> failures_;
  double tokens_;
  Clock::time_point refilled_;
  bool shutdown_ = false;
  std::function<void(size_t)> on_depth_;
};

}  // namespace granary::runtime
