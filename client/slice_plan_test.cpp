#include "client/slice_plan.h"

#include <gtest/gtest.h>

namespace granary::client {
namespace {

TEST(SlicePlanTest, SlicesNeverCrossAChunkRange) {
  std::vector<uint8_t> small(30);
  std::vector<uint8_t> big(2 * kChunkRangeSize + 5);
  const uint8_t* data = small.data();
  std::vector<DirtyRun> runs = {{kChunkRangeSize - 10, 30, data},
                                {3 * kChunkRangeSize, big.size(), big.data()}};
  auto slices = PlanSlices(runs);
  ASSERT_EQ(slices.size(), 5u);
  EXPECT_EQ(slices[0].file_offset, kChunkRangeSize - 10);
  EXPECT_EQ(slices[0].length, 10u);
  EXPECT_EQ(slices[1].file_offset, kChunkRangeSize);
  EXPECT_EQ(slices[1].length, 20u);
  EXPECT_EQ(slices[1].data, data + 10);
  EXPECT_EQ(slices[2].length, kChunkRangeSize);
  EXPECT_EQ(slices[4].length, 5u);
  EXPECT_EQ(slices[4].data, big.data() + 2 * kChunkRangeSize);
  for (const auto& s : slices) {
    EXPECT_EQ(s.file_offset / kChunkRangeSize, (s.file_offset + s.length - 1) / kChunkRangeSize);
  }
}

TEST(SlicePlanTest, CommitRangesGroupSlicesByRangeWithPositions) {
  std::vector<uint8_t> data(30);
  auto slices = PlanSlices({{kChunkRangeSize - 10, 30, data.data()}});
  auto ranges = CommitRanges(slices, 100, Encoding::REPLICATED);
  ASSERT_EQ(ranges.size(), 2u);
  EXPECT_EQ(ranges[0].range_index(), 0u);
  EXPECT_EQ(ranges[0].slices(0).slice_id(), 100u);
  EXPECT_EQ(ranges[0].slices(0).pos(), kChunkRangeSize - 10);
  EXPECT_EQ(ranges[1].range_index(), 1u);
  EXPECT_EQ(ranges[1].slices(0).slice_id(), 101u);
  EXPECT_EQ(ranges[1].slices(0).pos(), 0u);
  EXPECT_EQ(ranges[1].slices(0).length(), 20u);
}

TEST(SlicePlanTest, BlockArithmetic) {
  EXPECT_EQ(BlockCount(0, 4096), 0u);
  EXPECT_EQ(BlockCount(4097, 4096), 2u);
  EXPECT_EQ(BlockLength(4097, 4096, 1), 1u);
  EXPECT_EQ(BlockLength(8192, 4096, 1), 4096u);
}

}  // namespace
}  // namespace granary::client
