#include "placement/stripe.h"

#include <gtest/gtest.h>

#include <set>

namespace granary::placement {
namespace {

TEST(StableHashTest, IsFrozen) {
  // Layouts on disk depend on these values: a change here breaks every existing file.
  EXPECT_EQ(StableHash(0, 0), 0x6db6ca64564daeaaULL);
  EXPECT_EQ(StableHash(1, 2), 0xad033dc77dd95cd3ULL);
  EXPECT_EQ(StableHash(42, 7), 0xab1fcd4da5ec46c5ULL);
  EXPECT_EQ(StableMod(StableHash(42, 7), 100), 69u);
  EXPECT_NE(StableHash(1, 2), StableHash(2, 1));
}

TEST(StableModTest, SplitsPowerOfTwoPgsIntoParentAndParentPlusP) {
  for (uint64_t x = 0; x < 10000; ++x) {
    const uint64_t h = StableHash(x, 1);
    const uint32_t parent = StableMod(h, 64);
    const uint32_t child = StableMod(h, 128);
    EXPECT_TRUE(child == parent || child == parent + 64);
    EXPECT_EQ(parent, h & 63);
  }
}

TEST(StableModTest, StaysBelowNForAnyN) {
  for (uint32_t n = 1; n < 200; ++n) {
    for (uint64_t x = 0; x < 300; ++x) EXPECT_LT(StableMod(StableHash(x, n), n), n);
  }
}

TEST(StripeTest, SeededStripeUsesHashOfSeedAndPosition) {
  Layout layout = SeededLayout(1, 4 << 20, 8, 1234);
  for (uint32_t j = 0; j < 8; ++j) {
    auto pg = StripePg(layout, j, 256);
    ASSERT_TRUE(pg.ok());
    EXPECT_EQ(*pg, StableMod(StableHash(1234, j), 256));
  }
  EXPECT_FALSE(StripePg(layout, 8, 256).ok());
}

TEST(StripeTest, ExplicitPgsWinOverTheSeed) {
  Layout layout = SeededLayout(1, 4 << 20, 3, 99);
  layout.add_pgs(5);
  layout.add_pgs(6);
  layout.add_pgs(7);
  EXPECT_EQ(*StripePg(layout, 1, 64), 6u);
  EXPECT_EQ(StripePg(layout, 0, 4).status().code(), Code::INVALID_ARGUMENT);  // PG 5 >= 4
  layout.add_pgs(8);
  EXPECT_EQ(StripePg(layout, 0, 64).status().code(), Code::INVALID_ARGUMENT);  // 4 PGs, W=3
}

TEST(StripeTest, ConsecutiveBlocksWalkTheStripe) {
  Layout layout = SeededLayout(1, 4 << 20, 4, 7);
  std::set<uint32_t> positions;
  const uint32_t first = BlockStripeIndex(555, 0, 4);
  for (uint64_t b = 0; b < 4; ++b) {
    const uint32_t pos = BlockStripeIndex(555, b, 4);
    EXPECT_EQ(pos, (first + b) % 4);
    positions.insert(pos);
    EXPECT_EQ(*BlockPg(layout, 555, b, 64), *StripePg(layout, pos, 64));
  }
  EXPECT_EQ(positions.size(), 4u);
}

TEST(StripeTest, ZeroWidthIsRejected) {
  Layout layout = SeededLayout(1, 4 << 20, 0, 7);
  EXPECT_EQ(BlockPg(layout, 1, 0, 64).status().code(), Code::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace granary::placement
