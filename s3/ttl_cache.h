// TtlCache: the gateway's short-lived caches of access-key secrets and buckets (internal.h).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "common/status.h"

namespace granary::s3 {

// Values looked up by name and kept for `ttl`; errors are not kept. Cleared whole past 10,000
// entries, so a flood of names cannot grow it. Hand-written: none of the listed libraries has a
// small expiring map.
template <typename V>
class TtlCache {
 public:
  explicit TtlCache(std::chrono::steady_clock::duration ttl) : ttl_(ttl) {}
  // The kept value, or fetch()'s (kept when it succeeds).
  Result<V> Get(const std::string& name, const std::function<Result<V>()>& fetch) {
    const auto now = std::chrono::steady_clock::now();
    {
      std::lock_guard lock(mu_);
      auto it = entries_.find(name);
      if (it != entries_.end() && now - it->second.second < ttl_) return it->second.first;
    }
    Result<V> fetched = fetch();
    if (!fetched.ok()) return fetched;
    std::lock_guard lock(mu_);
    if (entries_.size() > 10000) entries_.clear();
    entries_[name] = {*fetched, now};
    return fetched;
  }
  void Forget(const std::string& name) {
    std::lock_guard lock(mu_);
    entries_.erase(name);
  }

 private:
  const std::chrono::steady_clock::duration ttl_;
  std::mutex mu_;
  std::map<std::string, std::pair<V, std::chrono::steady_clock::time_point>> entries_;
};

}  // namespace granary::s3
