// Background compaction (DESIGN §2 "Layout and slices"): commits queue chunk ranges that hold many
// slice references; the compactor rewrites each as one slice through libgranary (same bytes, one
// reference), and the replaced slices become garbage. It runs in the metanode process (and in
// `granary server`), as a client of that metanode.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "client/granary.h"

namespace granary::client {

class Compactor {
 public:
  // Connects a client to the metanode at `meta` and runs rounds every `interval` on a thread of
  // their own until destroyed.
  // `active` (when set) decides before each round whether this compactor works: in a metadata
  // group only the leader's process compacts.
  static Result<std::unique_ptr<Compactor>> Start(const std::string& meta,
                                                  std::chrono::milliseconds interval,
                                                  std::function<bool()> active = nullptr);
  Compactor(std::unique_ptr<Client> client, std::chrono::milliseconds interval,
            std::function<bool()> active = nullptr);
  ~Compactor();
  Compactor(const Compactor&) = delete;
  Compactor& operator=(const Compactor&) = delete;

  // One round over up to `limit` queued ranges; returns how many were rewritten.
  Result<uint64_t> RunOnce(uint32_t limit = 100);

 private:
  void Loop();

  std::unique_ptr<Client> client_;
  const std::chrono::milliseconds interval_;
  std::function<bool()> active_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace granary::client
