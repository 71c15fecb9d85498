#include "dashboard/io_view.h"

#include <gtest/gtest.h>

#include <vector>

namespace granary::dashboard {
namespace {

TEST(QuantileTest, InterpolatesInsideTheBucketLikePrometheus) {
  const std::vector<double> bounds{0.001, 0.01, 0.1};
  // 100 requests, all in (1 ms, 10 ms]: the median is half way through that bucket.
  const std::vector<double> counts{0, 100, 0, 0};
  EXPECT_NEAR(Quantile(0.5, bounds, counts), 0.0055, 1e-9);
  EXPECT_NEAR(Quantile(0.99, bounds, counts), 0.00991, 1e-9);
}

TEST(QuantileTest, IsZeroWithoutRequestsAndTheLastBoundPastIt) {
  const std::vector<double> bounds{0.001, 0.01};
  EXPECT_EQ(Quantile(0.5, bounds, std::vector<double>{0, 0, 0}), 0);
  EXPECT_EQ(Quantile(0.99, bounds, std::vector<double>{0, 0, 10}), 0.01);
}

IoHistoryReply History() {
  IoHistoryReply h;
  h.set_now_ms(100'000);
  h.set_step_ms(5000);
  h.add_latency_bounds(0.001);
  h.add_latency_bounds(0.01);
  for (int64_t start : {80'000, 90'000}) {  // the slot at 85 s is missing
    IoSlot* s = h.add_slots();
    s->set_start_ms(start);
    s->set_read_bytes(5000 * 1024);  // 1 KiB/ms = 1024000 B/s
    s->set_read_ops(50);
    for (double c : {0.0, 50.0, 0.0}) s->add_read_latency(c);
    for (double c : {0.0, 0.0, 0.0}) s->add_write_latency(c);
  }
  return h;
}

TEST(IoSeriesTest, LeavesAMissingSlotAsAGapNotAZero) {
  nlohmann::json s = IoSeries(History());
  ASSERT_EQ(s["t"].size(), 3u);
  EXPECT_EQ(s["t"][0], 85);
  EXPECT_EQ(s["read_Bps"][0], 1024000.0);
  EXPECT_TRUE(s["read_Bps"][1].is_null());
  EXPECT_EQ(s["read_iops"][2], 10.0);
  EXPECT_TRUE(s["write_p99_ms"][0].is_null());  // no writes: no latency rather than 0 ms
  EXPECT_NEAR(s["read_p50_ms"][0].get<double>(), 5.5, 1e-6);
}

TEST(IoRecentTest, AveragesTheSlotsOfTheLastWindow) {
  nlohmann::json r = IoRecent(History(), 60'000);
  EXPECT_EQ(r["seconds"], 10.0);
  EXPECT_EQ(r["read_Bps"], 1024000.0);
  EXPECT_EQ(r["read_iops"], 10.0);
  EXPECT_TRUE(r["write_p50_ms"].is_null());
}

}  // namespace
}  // namespace granary::dashboard
