// Pure slice-map arithmetic (DESIGN §2 "Layout and slices"): resolving a chunk range's slice
// references newest-wins, and clipping them for truncate.
#pragma once

#include <cstdint>
#include <vector>

#include "metanode/records.pb.h"

namespace granary::metanode {

// Extents backing bytes [lo, hi) of chunk range `range_index` (lo/hi relative to the range),
// resolved so that each byte comes from the newest reference covering it (references are in
// commit order, newest last). Holes are omitted; extents are in file-offset order and adjacent
// pieces of one slice are merged.
std::vector<Extent> ResolveRange(const ChunkRecord& chunk, uint64_t range_index, uint64_t lo,
                                 uint64_t hi);

// Drops references (or parts of them) at positions >= `limit`. Returns the slice id of every
// reference dropped (once per reference: each one held a count on its slice).
std::vector<uint64_t> ClipChunk(ChunkRecord* chunk, uint64_t limit);

// Drops references whose every byte is covered by newer references (an overwrite), so that
// overwritten slices can be collected without rewriting data. Returns the slice id of every
// reference dropped, once per reference.
std::vector<uint64_t> PruneShadowed(ChunkRecord* chunk);

}  // namespace granary::metanode
