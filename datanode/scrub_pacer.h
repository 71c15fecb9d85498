// When the scrubber verifies what (docs/maintenance.md "Scrub"): a pass re-reads every stored
// block once per period, spread evenly over the period (Ceph's weekly deep scrub, paced rather
// than bursty), never faster than the scrub throttle. Pure arithmetic over the pass state, so it
// is unit-tested without a disk; the state is kept in DIR/scrub.state across restarts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/status.h"
#include "granary/data.pb.h"

namespace granary::datanode {

// Where the scrubber stands. Times are wall-clock milliseconds (they survive a restart).
struct ScrubState {
  // When this store's scrub state began: blocks stored before then are taken as verified then.
  int64_t created_ms = 0;
  // The running pass (pass_start_ms 0: none running).
  int64_t pass_start_ms = 0;
  uint64_t pass_bytes = 0;  // bytes held when it started (grown if more were verified)
  uint64_t done_bytes = 0;
  std::optional<BlockKey> cursor;  // last block verified in this pass
  // The last completed pass (0: none yet).
  int64_t prev_start_ms = 0;
  int64_t prev_end_ms = 0;
};

class ScrubPacer {
 public:
  // throttle_bytes_per_second 0 = unlimited.
  ScrubPacer(int64_t period_ms, uint64_t throttle_bytes_per_second)
      : period_ms_(period_ms < 1 ? 1 : period_ms), throttle_(throttle_bytes_per_second) {}

  int64_t period_ms() const { return period_ms_; }
  // True when no pass runs and the next one is due: one period after the previous one started
  // (at once when none completed yet, or when that was longer ago).
  bool ShouldStart(const ScrubState& s, int64_t now_ms) const;
  // Bytes the running pass should have verified by `now_ms`: its share of the period elapsed;
  // everything (UINT64_MAX) once the period is over.
  uint64_t DueBytes(const ScrubState& s, int64_t now_ms) const;
  // The running pass cannot finish within the period: its bytes need more than the throttle
  // allows, or the period is clearly over (by a tenth and 2 s) and blocks are left.
  bool Behind(const ScrubState& s, int64_t now_ms) const;
  // The rate (bytes/s) the running pass needs to finish in its period.
  uint64_t NeededRate(const ScrubState& s) const;
  // Age of the block verified longest ago: the block after the cursor, last verified by the
  // previous pass at the same fraction of its course (both passes paced evenly).
  int64_t OldestUnscrubbedMs(const ScrubState& s, int64_t now_ms) const;

 private:
  int64_t period_ms_;
  uint64_t throttle_;
};

// DIR/scrub.state: "key value" lines, written to a temp file and renamed (not fsynced: a lost
// update only repeats part of a pass). A missing file is a fresh state created `now_ms`.
Result<ScrubState> LoadScrubState(const std::string& path, int64_t now_ms);
Status SaveScrubState(const std::string& path, const ScrubState& state);

}  // namespace granary::datanode
