#include "datanode/scrub_pacer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <limits>

#include "tests/harness/test_support.h"

namespace granary::datanode {
namespace {

constexpr int64_t kDay = 86400 * 1000;
constexpr uint64_t kMiB = 1 << 20;

ScrubState State(int64_t created_ms, int64_t pass_start_ms = 0, uint64_t pass_bytes = 0,
                 uint64_t done_bytes = 0, int64_t prev_start_ms = 0, int64_t prev_end_ms = 0) {
  ScrubState s;
  s.created_ms = created_ms;
  s.pass_start_ms = pass_start_ms;
  s.pass_bytes = pass_bytes;
  s.done_bytes = done_bytes;
  s.prev_start_ms = prev_start_ms;
  s.prev_end_ms = prev_end_ms;
  return s;
}

TEST(ScrubPacerTest, APassIsSpreadEvenlyOverItsPeriod) {
  ScrubPacer pacer(7 * kDay, 32 * kMiB);
  ScrubState s = State(1000);
  EXPECT_TRUE(pacer.ShouldStart(s, 1000));  // nothing verified yet: at once
  s.pass_start_ms = 1000;
  s.pass_bytes = 700 * kMiB;
  EXPECT_FALSE(pacer.ShouldStart(s, 1000));
  EXPECT_EQ(pacer.DueBytes(s, 1000), 0u);
  EXPECT_EQ(pacer.DueBytes(s, 1000 + kDay), 100 * kMiB);
  EXPECT_EQ(pacer.DueBytes(s, 1000 + 7 * kDay / 2), 350 * kMiB);
  // Once the period is over, whatever is left is due now.
  EXPECT_EQ(pacer.DueBytes(s, 1000 + 7 * kDay), std::numeric_limits<uint64_t>::max());
  EXPECT_FALSE(pacer.Behind(s, 1000 + kDay));
}

TEST(ScrubPacerTest, NextPassStartsOnePeriodAfterThePreviousStarted) {
  ScrubPacer pacer(kDay, 0);
  ScrubState s = State(0, 0, 0, 0, 10 * kDay, 10 * kDay + 5000);
  EXPECT_FALSE(pacer.ShouldStart(s, 10 * kDay + 6000));  // finished early: wait for the period
  EXPECT_TRUE(pacer.ShouldStart(s, 11 * kDay));
  EXPECT_TRUE(pacer.ShouldStart(s, 13 * kDay));  // long overdue: at once
}

TEST(ScrubPacerTest, APassThatNeedsMoreThanTheThrottleIsBehind) {
  // 30 TiB in a week needs ~52 MiB/s; the throttle allows 32.
  ScrubPacer pacer(7 * kDay, 32 * kMiB);
  ScrubState s = State(0, 1, 30ull << 40);
  EXPECT_GT(pacer.NeededRate(s), 32 * kMiB);
  EXPECT_TRUE(pacer.Behind(s, 2));
  // Within the throttle but past the period with blocks left: behind too.
  ScrubPacer unthrottled(1000, 0);
  ScrubState late = State(0, 1, 10, 5);
  EXPECT_FALSE(unthrottled.Behind(late, 900));
  EXPECT_FALSE(unthrottled.Behind(late, 1002));  // the last blocks are read just after the end
  EXPECT_TRUE(unthrottled.Behind(late, 3200));
}

TEST(ScrubPacerTest, OldestUnscrubbedIsAboutOnePeriodWhenPassesKeepPace) {
  ScrubPacer pacer(7 * kDay, 0);
  // The previous pass ran from day 0 to day 7; this one started on day 7 and is half done.
  ScrubState s = State(0, 7 * kDay, 100, 50, 1, 7 * kDay);
  // The block after the cursor was verified half way through the previous pass.
  EXPECT_NEAR(pacer.OldestUnscrubbedMs(s, 7 * kDay + 7 * kDay / 2), 7 * kDay, 1000);
  // With no pass completed yet, blocks count as verified when the state was created.
  ScrubState fresh = State(5000);
  EXPECT_EQ(pacer.OldestUnscrubbedMs(fresh, 65000), 60000);
}

TEST(ScrubPacerTest, StateSurvivesARestart) {
  testing::TempDir dir;
  const std::string path = dir.str() + "/scrub.state";
  auto fresh = LoadScrubState(path, 42);
  ASSERT_TRUE(fresh.ok());
  EXPECT_EQ(fresh->created_ms, 42);
  EXPECT_EQ(fresh->pass_start_ms, 0);
  ScrubState s = State(42, 1000, 1ull << 40, 12345, 7, 9);
  BlockKey cursor;
  cursor.set_slice_id(0xabcdef0123ull);
  cursor.set_block_index(3);
  cursor.set_fragment(2);
  s.cursor = cursor;
  ASSERT_TRUE(SaveScrubState(path, s).ok());
  auto back = LoadScrubState(path, 99);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->created_ms, 42);
  EXPECT_EQ(back->pass_start_ms, 1000);
  EXPECT_EQ(back->pass_bytes, 1ull << 40);
  EXPECT_EQ(back->done_bytes, 12345u);
  EXPECT_EQ(back->prev_start_ms, 7);
  EXPECT_EQ(back->prev_end_ms, 9);
  ASSERT_TRUE(back->cursor.has_value());
  EXPECT_EQ(back->cursor->slice_id(), cursor.slice_id());
  EXPECT_EQ(back->cursor->block_index(), 3u);
  EXPECT_EQ(back->cursor->fragment(), 2u);
}

}  // namespace
}  // namespace granary::datanode
