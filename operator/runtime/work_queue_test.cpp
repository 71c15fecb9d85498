#include "operator/runtime/work_queue.h"

#include <gtest/gtest.h>

#include <thread>

namespace granary::runtime {
namespace {

using std::chrono::milliseconds;

TEST(WorkQueueTest, AddsOfAQueuedKeyCollapseIntoOne) {
  WorkQueue q;
  q.Add("a");
  q.Add("b");
  q.Add("a");
  EXPECT_EQ(q.Len(), 2u);
  EXPECT_EQ(*q.Get(), "a");
  EXPECT_EQ(*q.Get(), "b");
  EXPECT_EQ(q.Len(), 0u);
}

TEST(WorkQueueTest, AKeyInProcessIsRequeuedOnlyWhenDone) {
  WorkQueue q;
  q.Add("a");
  auto key = q.Get();
  q.Add("a");  // changed while being reconciled
  q.Add("a");
  EXPECT_EQ(q.Len(), 0u) << "never handed to a second worker while the first holds it";
  q.Done(*key);
  EXPECT_EQ(q.Len(), 1u);
  q.Done(*q.Get());
  EXPECT_EQ(q.Len(), 0u);
}

TEST(WorkQueueTest, BackOffDoublesPerKeyUntilForgotten) {
  WorkQueue q({milliseconds(10), milliseconds(70), 1000, 1000});
  EXPECT_EQ(q.NextDelay("a"), milliseconds(10));
  EXPECT_EQ(q.NextDelay("a"), milliseconds(20));
  EXPECT_EQ(q.NextDelay("a"), milliseconds(40));
  EXPECT_EQ(q.NextDelay("a"), milliseconds(70)) << "capped";
  EXPECT_EQ(q.NextDelay("b"), milliseconds(10)) << "per key";
  EXPECT_EQ(q.Failures("a"), 4);
  q.Forget("a");
  EXPECT_EQ(q.NextDelay("a"), milliseconds(10));
}

TEST(WorkQueueTest, GlobalBucketLimitsRetriesAfterTheBurst) {
  WorkQueue q({milliseconds(1), milliseconds(1000), /*qps=*/10, /*burst=*/2});
  EXPECT_LE(q.NextDelay("a").count(), 1);
  EXPECT_LE(q.NextDelay("b").count(), 1);
  // Bucket empty: about 100 ms per retry at 10/s (less whatever time passed between calls).
  auto third = q.NextDelay("c");
  EXPECT_GE(third.count(), 50);
  EXPECT_LE(third.count(), 110);
  EXPECT_GE(q.NextDelay("d").count(), third.count() + 50) << "the wait grows with the backlog";
}

TEST(WorkQueueTest, DelayedKeysComeOutWhenDueAndNotBefore) {
  WorkQueue q;
  auto start = Clock::now();
  q.AddAfter("late", milliseconds(60));
  q.AddAfter("early", milliseconds(20));
  EXPECT_EQ(q.Waiting(), 2u);
  EXPECT_EQ(*q.Get(), "early");
  EXPECT_GE(Clock::now() - start, milliseconds(20));
  EXPECT_EQ(*q.Get(), "late");
  EXPECT_GE(Clock::now() - start, milliseconds(60));
}

TEST(WorkQueueTest, AnImmediateAddOvertakesADelayedOne) {
  WorkQueue q;
  q.AddAfter("a", milliseconds(60'000));
  q.Add("a");
  EXPECT_EQ(q.Waiting(), 0u);
  EXPECT_EQ(*q.Get(), "a");
}

TEST(WorkQueueTest, ShutDownWakesBlockedGetters) {
  WorkQueue q;
  std::optional<std::string> got = "unset";
  std::thread t([&] { got = q.Get(); });
  q.ShutDown();
  t.join();
  EXPECT_FALSE(got.has_value());
  q.Reopen();
  q.Add("x");
  EXPECT_EQ(*q.Get(), "x");
}

}  // namespace
}  // namespace granary::runtime
