// The data path's last hour as the metadata leader sees it (docs/dashboard.md "Charts"). Each
// datanode heartbeat carries that node's cumulative data-protocol counters (IoCounters); the
// difference to its previous heartbeat is spread evenly over the time between the two into
// fixed slots of a bounded ring, so a slot's figure does not depend on how many heartbeats
// happened to land in it. Leader memory only, like liveness: a new leader starts an empty
// history and fills it from the heartbeats it receives.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <vector>

#include "granary/meta.pb.h"

namespace granary::metanode {

struct IoHistoryOptions {
  int64_t step_ms = 5000;          // one slot
  size_t slots = 720;              // 720 × 5 s = the last hour
  int64_t rate_window_ms = 10000;  // a datanode's current rates cover about this long
  // A node silent this long no longer holds back which slots count as complete.
  int64_t silent_ms = 30000;
};

class IoHistory {
 public:
  explicit IoHistory(IoHistoryOptions options = {});

  // One heartbeat's counters from `node_id`, received at `now_ms`. A node's first heartbeat (or
  // its first after a restart: counters went down) only sets the baseline.
  void Record(uint32_t node_id, const IoCounters& counters, int64_t now_ms);

  // The complete slots starting at or after `since_ms` — those every node heard from recently
  // has reported past — and each node's current rates.
  IoHistoryReply Snapshot(int64_t since_ms, int64_t now_ms) const;

 private:
  struct Slot {
    int64_t start_ms = -1;  // -1: empty
    double read_ops = 0, write_ops = 0, read_bytes = 0, write_bytes = 0, errors = 0;
    std::vector<double> read_latency, write_latency;  // per bucket, +Inf last
  };
  struct Seen {
    int64_t at_ms = 0;
    IoCounters counters;
  };
  struct Node {
    std::deque<Seen> recent;  // oldest first; the last one is the baseline
  };

  Slot& SlotFor(int64_t start_ms);
  void Spread(const IoCounters& before, const IoCounters& after, int64_t from_ms, int64_t to_ms);

  const IoHistoryOptions options_;
  const size_t buckets_;  // latency buckets incl. +Inf
  mutable std::mutex mu_;
  std::vector<Slot> ring_;
  std::map<uint32_t, Node> nodes_;
};

}  // namespace granary::metanode
