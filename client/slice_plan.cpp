#include "client/slice_plan.h"

#include <algorithm>
#include <map>

namespace granary::client {

std::vector<PlannedSlice> PlanSlices(const std::vector<DirtyRun>& runs, uint64_t max_slice) {
  std::vector<PlannedSlice> out;
  for (const DirtyRun& run : runs) {
    uint64_t off = run.offset;
    const uint64_t end = run.offset + run.length;
    while (off < end) {
      uint64_t range_end = (off / kChunkRangeSize + 1) * kChunkRangeSize;
      uint64_t len = std::min({end - off, range_end - off, max_slice});
      out.push_back({off, len, run.data + (off - run.offset)});
      off += len;
    }
  }
  return out;
}

Encoding SliceEncoding(const PoolSpec& pool, uint64_t length, uint32_t block_size) {
  if (pool.redundancy() == Redundancy::ERASURE_CODED_POOL && length >= block_size) {
    return Encoding::ERASURE_CODED;
  }
  return Encoding::REPLICATED;
}

std::vector<RangeSlices> CommitRanges(const std::vector<PlannedSlice>& slices,
                                      uint64_t first_slice_id, Encoding encoding) {
  std::map<uint64_t, RangeSlices> ranges;
  for (size_t i = 0; i < slices.size(); ++i) {
    const PlannedSlice& s = slices[i];
    uint64_t index = s.file_offset / kChunkRangeSize;
    RangeSlices& r = ranges[index];
    r.set_range_index(index);
    SliceRef* ref = r.add_slices();
    ref->set_slice_id(first_slice_id + i);
    ref->set_slice_length(s.length);
    ref->set_offset_in_slice(0);
    ref->set_length(s.length);
    ref->set_pos(s.file_offset % kChunkRangeSize);
    ref->set_encoding(s.encoding != Encoding::ENCODING_UNSPECIFIED ? s.encoding : encoding);
  }
  std::vector<RangeSlices> out;
  for (auto& [_, r] : ranges) out.push_back(std::move(r));
  return out;
}

}  // namespace granary::client
