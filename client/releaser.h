// Releases of open-file pins, sent in the background (docs/durability.md "Closing"). A close
// must not wait for a durable metadata operation that only says "this handle is gone": the pin
// keeps an unlinked file's bytes until its last close, nothing else. Releases queue here and
// travel in batches (one Batch call, one replicated log entry for many closes); a failed call is
// tried again until it succeeds. If the client dies first, its session lapses and the metanode
// drops its pins anyway (docs/metadata.md "Client sessions and reaping").
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <utility>

#include "client/meta_client.h"

namespace granary::client {

class Releaser {
 public:
  explicit Releaser(MetaClient& meta);
  // Sends what is queued (trying for up to the client's operation deadline), then stops.
  ~Releaser();
  Releaser(const Releaser&) = delete;
  Releaser& operator=(const Releaser&) = delete;

  void Release(uint64_t ino, uint64_t owner);
  // Returns once everything queued before the call was sent and answered (or the deadline of
  // one attempt passed): for tests and an orderly shutdown.
  void Drain();

 private:
  static constexpr size_t kMaxBatch = 1024;
  void Run();

  MetaClient& meta_;
  std::mutex mu_;
  std::condition_variable cv_, idle_cv_;
  std::deque<std::pair<uint64_t, uint64_t>> queue_;  // (ino, owner)
  size_t sending_ = 0;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace granary::client
