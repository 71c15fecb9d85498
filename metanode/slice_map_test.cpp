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

TEST(SliceMapTest, PruneDropsOnlyFullyOverwrittenReferences) {
  ChunkRecord c;
  *c.add_slices() = Ref(1, 0, 100);   // covered by 3 + 4 together
  *c.add_slices() = Ref(2, 200, 50);  // partly covered by 4: kept
  *c.add_slices() = Ref(3, 0, 60);
  *c.add_slices() = Ref(4, 60, 160);
  auto dropped = PruneShadowed(&c);
  EXPECT_EQ(dropped, std::vector<uint64_t>{1});
  ASSERT_EQ(c.slices_size(), 3);
  EXPECT_EQ(c.slices(0).slice_id(), 2u);
  // What reads resolve is unchanged.
  auto x = ResolveRange(c, 0, 0, 250);
  ASSERT_EQ(x.size(), 3u);
  EXPECT_EQ(x[2].slice_id(), 2u);
  EXPECT_EQ(x[2].file_offset(), 220u);
  // Repeated whole overwrites keep one reference.
  ChunkRecord w;
  for (uint64_t id = 1; id <= 100; ++id) {
    *w.add_slices() = Ref(id, 0, 4096);
    PruneShadowed(&w);
  }
  ASSERT_EQ(w.slices_size(), 1);
  EXPECT_EQ(w.slices(0).slice_id(), 100u);
}

}  // namespace
}  // namespace granary::metanode
