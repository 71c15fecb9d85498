#include "metanode/io_history.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "common/metrics.h"

namespace granary::metanode {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000;  // a slot boundary (divisible by 5000)

// Counters of a node that has done `reads` reads of `size` bytes, each taking `seconds`.
IoCounters Counters(uint64_t reads, uint64_t size, double seconds = 0.001) {
  Histogram h;
  for (uint64_t i = 0; i < reads; ++i) h.Observe(seconds);
  IoCounters c;
  c.set_read_ops(reads);
  c.set_read_bytes(reads * size);
  for (size_t i = 0; i < h.bounds().size(); ++i) c.add_read_latency(h.bucket_count(i));
  c.add_read_latency(h.count());
  Histogram empty;
  for (size_t i = 0; i <= empty.bounds().size(); ++i) c.add_write_latency(0);
  return c;
}

TEST(IoHistoryTest, SpreadsEachHeartbeatsDifferenceOverTheTimeItCovers) {
  IoHistory history;
  history.Record(1, Counters(0, 4096), kT0 + 1000);
  // 100 reads within [1 s, 3 s): all in slot 0.
  history.Record(1, Counters(100, 4096), kT0 + 3000);
  // 300 more over [3 s, 9 s): 2 s of the 6 in slot 0, 4 in slot 1.
  history.Record(1, Counters(400, 4096), kT0 + 9000);
  history.Record(1, Counters(400, 4096), kT0 + 10000);
  IoHistoryReply r = history.Snapshot(0, kT0 + 10000);
  ASSERT_EQ(r.slots_size(), 2);
  EXPECT_EQ(r.slots(0).start_ms(), kT0);
  EXPECT_NEAR(r.slots(0).read_ops(), 100 + 100, 1e-6);
  EXPECT_NEAR(r.slots(1).read_ops(), 200, 1e-6);
  EXPECT_NEAR(r.slots(0).read_bytes(), 200 * 4096.0, 1e-3);
  // Every read took 1 ms: all of them in the bucket whose upper bound is 1 ms.
  const auto& bounds = Histogram::LatencyBounds();
  const size_t ms = std::find(bounds.begin(), bounds.end(), 0.001) - bounds.begin();
  EXPECT_NEAR(r.slots(0).read_latency(static_cast<int>(ms)), 200, 1e-6);
  EXPECT_NEAR(r.slots(0).read_latency(0), 0, 1e-9);
}

TEST(IoHistoryTest, ASlotCountsOnlyOnceEveryLiveNodeReportedPastIt) {
  IoHistory history;
  history.Record(1, Counters(0, 1), kT0);
  history.Record(2, Counters(0, 1), kT0);
  history.Record(1, Counters(50, 1), kT0 + 6000);
  history.Record(2, Counters(10, 1), kT0 + 4000);
  // Node 2 has not reported past kT0 + 5000 yet: slot 0 is not complete.
  EXPECT_EQ(history.Snapshot(0, kT0 + 6000).slots_size(), 0);
  history.Record(2, Counters(20, 1), kT0 + 6000);
  IoHistoryReply r = history.Snapshot(0, kT0 + 6000);
  ASSERT_EQ(r.slots_size(), 1);
  EXPECT_NEAR(r.slots(0).read_ops(), 50 * 5.0 / 6 + 10 + 10 * 0.5, 1e-9);
  // A node silent for longer than silent_ms no longer holds the history back.
  history.Record(1, Counters(50, 1), kT0 + 50000);
  EXPECT_GT(history.Snapshot(0, kT0 + 50000).slots_size(), 1);
}

TEST(IoHistoryTest, ARestartedNodeStartsANewBaselineAndRatesCoverTheLastSeconds) {
  IoHistory history;
  history.Record(7, Counters(0, 1000), kT0);
  history.Record(7, Counters(100, 1000), kT0 + 2000);
  history.Record(7, Counters(200, 1000), kT0 + 4000);
  IoHistoryReply r = history.Snapshot(0, kT0 + 4000);
  ASSERT_EQ(r.nodes_size(), 1);
  EXPECT_DOUBLE_EQ(r.nodes(0).read_ops_per_s(), 50);
  EXPECT_DOUBLE_EQ(r.nodes(0).read_bytes_per_s(), 50'000);
  // Restarted: its counters start again from zero; nothing negative is recorded.
  history.Record(7, Counters(5, 1000), kT0 + 6000);
  history.Record(7, Counters(15, 1000), kT0 + 8000);
  history.Record(7, Counters(25, 1000), kT0 + 10000);
  r = history.Snapshot(0, kT0 + 10000);
  double total = 0;
  for (const IoSlot& s : r.slots()) {
    EXPECT_GE(s.read_ops(), 0);
    total += s.read_ops();
  }
  EXPECT_NEAR(total, 200 + 20, 1e-6);
  EXPECT_DOUBLE_EQ(r.nodes(0).read_ops_per_s(), 5);
}

TEST(IoHistoryTest, KeepsOnlyTheLastHour) {
  IoHistoryOptions o;
  o.slots = 12;  // one minute
  IoHistory history(o);
  int64_t t = kT0;
  history.Record(1, Counters(0, 1), t);
  for (uint64_t i = 1; i <= 60; ++i) history.Record(1, Counters(i, 1), t + int64_t(i) * 2000);
  IoHistoryReply r = history.Snapshot(0, t + 120000);
  EXPECT_LE(r.slots_size(), 12);
  ASSERT_GT(r.slots_size(), 0);
  EXPECT_GE(r.slots(0).start_ms(), t + 120000 - 60000);
  EXPECT_EQ(r.latency_bounds_size(), static_cast<int>(Histogram::LatencyBounds().size()));
}

}  // namespace
}  // namespace granary::metanode
