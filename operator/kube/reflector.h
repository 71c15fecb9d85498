// List-then-watch for one resource, forever: the full state first (Replace), then every change
// (Apply). A watch that ends or is cut resumes from the last resourceVersion seen (events and
// bookmarks), after a back-off when it failed; a 410 Gone (history compacted) triggers a full
// relist. One thread per reflector.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "operator/kube/client.h"

namespace granary::kube {

struct ReflectorOptions {
  std::string ns;  // empty: every namespace (or a cluster-scoped resource)
  std::string label_selector;
  std::string field_selector;
  int64_t page_size = 500;
  int watch_timeout_seconds = 300;
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{5000};
};

class Reflector {
 public:
  struct Sink {
    // The whole state at `resource_version` (after every list).
    std::function<void(std::vector<Json> items, const std::string& resource_version)> replace;
    std::function<void(const WatchEvent& event)> apply;  // never a bookmark
  };

  Reflector(Client& client, Resource resource, ReflectorOptions options, Sink sink);
  ~Reflector();  // Stop()

  void Start();
  void Stop();

  std::string last_resource_version() const;
  uint64_t lists() const;    // full lists done (the first one and every relist)
  uint64_t watches() const;  // watch streams opened
  Status last_error() const;

 private:
  void Run();
  // Waits `d` or until Stop(); false when stopping.
  bool Pause(std::chrono::milliseconds d);
  void SetError(Status s);

  Client& client_;
  Resource resource_;
  ReflectorOptions options_;
  Sink sink_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  WatchStream* current_ = nullptr;  // guarded by mu_, for Stop() to cancel
  std::string rv_;
  uint64_t lists_ = 0;
  uint64_t watches_ = 0;
  Status last_error_;
  std::thread thread_;
};

}  // namespace granary::kube
