// What changed in the namespace, for clients that cache names and attributes (docs/mount.md
// "Coherent caching"). Every member records, as it applies operations, which inodes and which
// names (parent, name) each one wrote, numbered by position in the apply order (the Raft log
// index in a group), so a new leader serves the same numbering. In memory: the last kCapacity
// changes; a client asking for older ones, or a member that just started, answers `reset`.
// Clients long-poll: a Changes call waits until a change arrives or its timeout passes.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "granary/meta.pb.h"

namespace granary::metanode {

// One write, attributed to the client whose operation made it (0: housekeeping).
struct FeedChange {
  uint64_t client = 0;
  Change change;
};

class ChangeFeed {
 public:
  static constexpr size_t kCapacity = 1 << 16;
  static constexpr uint32_t kMaxWaitMs = 10000;
  static constexpr uint32_t kMaxPerReply = 4096;

  ChangeFeed();
  ~ChangeFeed();  // answers every waiter (empty) and stops the timer
  ChangeFeed(const ChangeFeed&) = delete;
  ChangeFeed& operator=(const ChangeFeed&) = delete;

  // Where numbering starts: changes before `position` were never seen here. `epoch` names the
  // numbering (the same on every member of a group; a fresh one for a lone metanode's run).
  void Start(uint64_t epoch, uint64_t position);
  // The changes of the operations applied at `position` (increasing), once they are durable.
  void Append(uint64_t position, std::vector<FeedChange> changes);

  using Done = std::function<void(ChangesReply)>;
  // Answers at once when changes after req.since are waiting (or the client must reset), else
  // when one arrives or after req.timeout_ms (at most kMaxWaitMs).
  void Poll(const ChangesRequest& req, Done done);

 private:
  struct Entry {
    uint64_t seq;
    FeedChange change;
  };
  struct Waiter {
    ChangesRequest req;
    std::chrono::steady_clock::time_point deadline;
    Done done;
  };
  // Fills a reply for `req` if there is something to say now (under mu_).
  bool Answer(const ChangesRequest& req, ChangesReply* reply) const;
  void TimerLoop();

  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t epoch_ = 0;
  uint64_t valid_from_ = 0;  // every change with seq >= this is here (or was never made)
  uint64_t next_ = 0;        // the seq after the last change
  std::deque<Entry> entries_;
  std::map<uint64_t, Waiter> waiters_;
  uint64_t next_waiter_ = 1;
  bool stopping_ = false;
  std::thread timer_;
};

}  // namespace granary::metanode
