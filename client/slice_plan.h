// How dirty bytes become slices and blocks (DESIGN §2 "Layout and slices"): a flush turns each
// dirty run into slices that never cross a 64 MiB chunk range, and each slice into blocks of
// the pool's block size.
#pragma once

#include <cstdint>
#include <vector>

#include "granary/meta.pb.h"

namespace granary::client {

inline constexpr uint64_t kChunkRangeSize = 64ull << 20;

struct PlannedSlice {
  uint64_t file_offset = 0;
  uint64_t length = 0;
  const uint8_t* data = nullptr;  // points into the run being flushed
  // How the slice is stored (SliceEncoding); UNSPECIFIED = the CommitRanges default.
  Encoding encoding = Encoding::ENCODING_UNSPECIFIED;
};

struct DirtyRun {
  uint64_t offset;
  uint64_t length;
  const uint8_t* data;
};

// Cuts runs at chunk-range boundaries (and at `max_slice` bytes) into slices, in file order.
std::vector<PlannedSlice> PlanSlices(const std::vector<DirtyRun>& runs,
                                     uint64_t max_slice = kChunkRangeSize);

inline uint32_t BlockCount(uint64_t slice_length, uint32_t block_size) {
  return static_cast<uint32_t>((slice_length + block_size - 1) / block_size);
}
inline uint64_t BlockLength(uint64_t slice_length, uint32_t block_size, uint32_t block) {
  uint64_t start = uint64_t{block} * block_size;
  return slice_length - start < block_size ? slice_length - start : block_size;
}

// How a slice of `length` bytes is stored in `pool` (docs/erasure-coding.md): replicated pools
// replicate; an EC pool erasure-codes a slice of at least one stripe (one full block) and
// replicates a shorter one.
Encoding SliceEncoding(const PoolSpec& pool, uint64_t length, uint32_t block_size);

// Whether block `block` of a slice is stored as EC fragments: only full-size blocks of an
// ERASURE_CODED slice are; its short tail block, if any, is replicated on the PG's first M+1
// members (the same durability: any M of them may be lost).
inline bool BlockIsErasureCoded(Encoding slice_encoding, uint64_t slice_length, uint32_t block_size,
                                uint32_t block) {
  return slice_encoding == Encoding::ERASURE_CODED &&
         BlockLength(slice_length, block_size, block) == block_size;
}

// The commit's per-range slice lists for slices numbered first_slice_id, first_slice_id+1, …
// in the order of `slices`; each slice's own encoding, or `encoding` where it has none.
std::vector<RangeSlices> CommitRanges(const std::vector<PlannedSlice>& slices,
                                      uint64_t first_slice_id, Encoding encoding);

}  // namespace granary::client
