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
  std::vector<uint64_t> dropped;
  ChunkRecord clipped;
  clipped.set_format(chunk->format());
  for (const SliceRef& ref : chunk->slices()) {
    if (ref.pos() >= limit) {
      dropped.push_back(ref.slice_id());
      continue;
    }
    SliceRef& r = *clipped.add_slices() = ref;
    if (r.pos() + r.length() > limit) r.set_length(limit - r.pos());
  }
  *chunk = std::move(clipped);
  return dropped;
}

std::vector<uint64_t> PruneShadowed(ChunkRecord* chunk) {
  // Walk newest to oldest keeping the union of covered positions as disjoint [start, end).
  std::map<uint64_t, uint64_t> covered;
  auto fully_covered = [&](uint64_t lo, uint64_t hi) {
    auto it = covered.upper_bound(lo);
    if (it == covered.begin()) return false;
    --it;
    return it->first <= lo && it->second >= hi;
  };
  auto cover = [&](uint64_t lo, uint64_t hi) {
    auto it = covered.upper_bound(lo);
    if (it != covered.begin() && std::prev(it)->second >= lo) --it;
    while (it != covered.end() && it->first <= hi) {
      lo = std::min(lo, it->first);
      hi = std::max(hi, it->second);
      it = covered.erase(it);
    }
    covered.emplace(lo, hi);
  };
  std::vector<bool> keep(chunk->slices_size(), true);
  std::vector<uint64_t> dropped;
  for (int i = chunk->slices_size() - 1; i >= 0; --i) {
    const SliceRef& ref = chunk->slices(i);
    const uint64_t lo = ref.pos(), hi = ref.pos() + ref.length();
    if (fully_covered(lo, hi)) {
      keep[i] = false;
      dropped.push_back(ref.slice_id());
    } else {
      cover(lo, hi);
    }
  }
  if (dropped.empty()) return dropped;
  ChunkRecord pruned;
  pruned.set_format(chunk->format());
  for (int i = 0; i < chunk->slices_size(); ++i) {
    if (keep[i]) *pruned.add_slices() = chunk->slices(i);
  }
  *chunk = std::move(pruned);
  return dropped;
}

}  // namespace granary::metanode
