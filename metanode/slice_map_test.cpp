#include "metanode/slice_map.h"

#include <gtest/gtest.h>

#include "metanode/schema.h"

namespace granary::metanode {
namespace {

SliceRef Ref(uint64_t id, uint64_t pos, uint64_t len, uint64_t off = 0, uint64_t slice_len = 0) {
  SliceRef r;
  r.set_slice_id(id);
  r.set_pos(pos);
  r.set_length(len);
  r.set_offset_in_slice(off);
  r.set_slice_length(slice_len ? slice_len : off + len);
  return r;
}

TEST(SliceMapTest, NewestSliceWinsPerByteAndHolesAreOmitted) {
  ChunkRecord c;
  *c.add_slices() = Ref(1, 0, 100);
  *c.add_slices() = Ref(2, 40, 20);
  *c.add_slices() = Ref(3, 200, 10);
  auto x = ResolveRange(c, 0, 0, 1000);
  ASSERT_EQ(x.size(), 4u);
  EXPECT_EQ(x[0].slice_id(), 1u);
  EXPECT_EQ(x[0].length(), 40u);
  EXPECT_EQ(x[1].slice_id(), 2u);
  EXPECT_EQ(x[1].file_offset(), 40u);
  EXPECT_EQ(x[2].slice_id(), 1u);
  EXPECT_EQ(x[2].file_offset(), 60u);
  EXPECT_EQ(x[2].offset_in_slice(), 60u);
  EXPECT_EQ(x[2].length(), 40u);
  EXPECT_EQ(x[3].file_offset(), 200u);  // 100..200 is a hole
}

TEST(SliceMapTest, WindowClipsAndRangeIndexOffsetsFileOffsets) {
  ChunkRecord c;
  *c.add_slices() = Ref(7, 10, 100, 5, 200);
  auto x = ResolveRange(c, 2, 50, 60);
  ASSERT_EQ(x.size(), 1u);
  EXPECT_EQ(x[0].file_offset(), 2 * kChunkRangeSize + 50);
  EXPECT_EQ(x[0].offset_in_slice(), 45u);
  EXPECT_EQ(x[0].length(), 10u);
}

TEST(SliceMapTest, NewerSliceCoveringEverythingHidesOlder) {
  ChunkRecord c;
  *c.add_slices() = Ref(1, 10, 10);
  *c.add_slices() = Ref(2, 30, 10);
  *c.add_slices() = Ref(3, 0, 50);
  auto x = ResolveRange(c, 0, 0, 50);
  ASSERT_EQ(x.size(), 1u);
  EXPECT_EQ(x[0].slice_id(), 3u);
  EXPECT_EQ(x[0].length(), 50u);
}

TEST(SliceMapTest, ClipDropsAndShortensReferences) {
  ChunkRecord c;
  *c.add_slices() = Ref(1, 0, 100);
  *c.add_slices() = Ref(2, 150, 10);
  auto dropped = ClipChunk(&c, 50);
  ASSERT_EQ(c.slices_size(), 1);
  EXPECT_EQ(c.slices(0).length(), 50u);
  EXPECT_EQ(dropped, std::vector<uint64_t>{2});
}

}  // namespace
}  // namespace granary::metanode
