#include "metanode/slice_map.h"

#include <algorithm>
#include <map>
#include <set>

#include "metanode/schema.h"

namespace granary::metanode {

std::vector<Extent> ResolveRange(const ChunkRecord& chunk, uint64_t range_index, uint64_t lo,
                                 uint64_t hi) {
  // Non-overlapping pieces keyed by start: {end, index of the reference}.
  struct Piece {
    uint64_t end;
    int ref;
  };
  std::map<uint64_t, Piece> pieces;
  for (int i = 0; i < chunk.slices_size(); ++i) {
    const SliceRef& ref = chunk.slices(i);
    uint64_t start = ref.pos(), end = ref.pos() + ref.length();
    if (end <= start) continue;
    // Cut the pieces overlapping [start, end): keep their parts outside it.
    auto it = pieces.lower_bound(start);
    if (it != pieces.begin() && std::prev(it)->second.end > start) --it;
    while (it != pieces.end() && it->first < end) {
      uint64_t p_start = it->first;
      Piece p = it->second;
      it = pieces.erase(it);
      if (p_start < start) pieces.emplace(p_start, Piece{start, p.ref});
      if (p.end > end) pieces.emplace(end, p);
    }
    pieces.emplace(start, Piece{end, i});
  }
  std::vector<Extent> out;
  const uint64_t base = range_index * kChunkRangeSize;
  for (const auto& [p_start, p] : pieces) {
    uint64_t s = std::max(p_start, lo), e = std::min(p.end, hi);
    if (s >= e) continue;
    const SliceRef& ref = chunk.slices(p.ref);
    uint64_t in_slice = ref.offset_in_slice() + (s - ref.pos());
    if (!out.empty()) {
      Extent& last = out.back();
      if (last.slice_id() == ref.slice_id() && last.file_offset() + last.length() == base + s &&
          last.offset_in_slice() + last.length() == in_slice) {
        last.set_length(last.length() + (e - s));
        continue;
      }
    }
    Extent& x = out.emplace_back();
    x.set_file_offset(base + s);
    x.set_length(e - s);
    x.set_slice_id(ref.slice_id());
    x.set_slice_length(ref.slice_length());
    x.set_offset_in_slice(in_slice);
    x.set_encoding(ref.encoding());
  }
  return out;
}

std::vector<uint64_t> ClipChunk(ChunkRecord* chunk, uint64_t limit) {
  std::set<uint64_t> dropped, kept;
  ChunkRecord clipped;
  clipped.set_format(chunk->format());
  for (const SliceRef& ref : chunk->slices()) {
    if (ref.pos() >= limit) {
      dropped.insert(ref.slice_id());
      continue;
    }
    SliceRef& r = *clipped.add_slices() = ref;
    if (r.pos() + r.length() > limit) r.set_length(limit - r.pos());
    kept.insert(ref.slice_id());
  }
  *chunk = std::move(clipped);
  std::vector<uint64_t> out;
  for (uint64_t id : dropped) {
    if (!kept.contains(id)) out.push_back(id);
  }
  return out;
}

}  // namespace granary::metanode
