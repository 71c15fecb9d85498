#include "fuse/reader.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <deque>

#include "client/block_io.h"
#include "client/cluster_view.h"
#include "client/meta_client.h"

namespace granary::fuse {

Result<std::shared_ptr<const ReadMapReply>> Reader::Map(uint64_t ino, CachedMap& cache,
                                                        uint64_t version) {
  {
    std::lock_guard lock(cache.mu);
    if (cache.map && cache.version == version) return cache.map;
  }
  auto map = client_->meta().ReadMap(ino, 0, 0);
  if (!map.ok()) return map.status().WithContext(fmt::format("read map ino {}", ino));
  auto shared = std::make_shared<const ReadMapReply>(std::move(*map));
  std::lock_guard lock(cache.mu);
  cache.map = shared;
  cache.version = version;
  return shared;
}

Result<size_t> Reader::Read(uint64_t ino, CachedMap& cache, uint64_t version,
                            std::span<uint8_t> out, uint64_t offset) {
  auto map = Map(ino, cache, version);
  if (!map.ok()) return map.status();
  const uint64_t size = (*map)->attr().size();
  if (offset >= size) return size_t{0};
  const size_t n = std::min<uint64_t>(out.size(), size - offset);
  std::span<uint8_t> window = out.first(n);
  Status s = ReadExtents(**map, window, offset);
  if (s.code() == Code::STALE_EPOCH || s.code() == Code::NOT_FOUND) {
    // A newer cluster map, or slices compacted away since the map was cached: refetch both.
    GRANARY_TRY(client_->cluster().Refresh());
    std::lock_guard lock(cache.mu);
    cache.map.reset();
  }
  if (s.code() == Code::STALE_EPOCH || s.code() == Code::NOT_FOUND) {
    map = Map(ino, cache, version);
    if (!map.ok()) return map.status();
    s = ReadExtents(**map, window, offset);
  }
  if (!s.ok()) return s.WithContext(fmt::format("read ino {} at {}", ino, offset));
  return n;
}

Status Reader::ReadExtents(const ReadMapReply& map, std::span<uint8_t> out, uint64_t offset) {
  client::ClusterView& view = client_->cluster();
  client::BlockIo& io = client_->blocks();
  const Layout& layout = map.attr().layout();
  if (view.epoch() == 0) GRANARY_TRY(view.Refresh());
  uint32_t block_size = layout.block_size();
  if (block_size == 0) {
    auto pool = view.Pool(layout.pool_id());
    if (!pool.ok()) return pool.status();
    block_size = pool->block_size();
  }

  struct Piece {
    client::BlockTarget target;
    BlockKey key;
    uint64_t block_offset;
    std::span<uint8_t> dest;
  };
  std::vector<Piece> pieces;
  const uint64_t end = offset + out.size();
  std::memset(out.data(), 0, out.size());  // holes read as zeros
  for (const Extent& e : map.extents()) {
    uint64_t from = std::max(e.file_offset(), offset);
    uint64_t to = std::min(e.file_offset() + e.length(), end);
    if (from >= to) continue;
    uint64_t s_from = e.offset_in_slice() + (from - e.file_offset());
    uint64_t s_to = s_from + (to - from);
    for (uint64_t b = s_from / block_size; b * block_size < s_to; ++b) {
      uint64_t b_from = std::max(s_from, b * block_size);
      uint64_t b_to = std::min(s_to, (b + 1) * block_size);
      auto target = view.Locate(layout, e.slice_id(), b);
      if (!target.ok()) return target.status();
      Piece p;
      p.target = std::move(*target);
      p.key.set_slice_id(e.slice_id());
      p.key.set_block_index(static_cast<uint32_t>(b));
      p.block_offset = b_from - b * block_size;
      p.dest = out.subspan(from + (b_from - s_from) - offset, b_to - b_from);
      pieces.push_back(std::move(p));
    }
  }

  const size_t window = client_->options().max_inflight_blocks;
  std::deque<std::pair<size_t, client::BlockIo::PendingRead>> inflight;
  Status first_error;
  size_t next = 0;
  while (next < pieces.size() || !inflight.empty()) {
    while (next < pieces.size() && inflight.size() < window && first_error.ok()) {
      const Piece& p = pieces[next];
      inflight.emplace_back(next, io.StartRead(p.target, p.key, p.block_offset, p.dest.size()));
      ++next;
    }
    if (inflight.empty()) break;
    auto [index, pending] = std::move(inflight.front());
    inflight.pop_front();
    const Piece& p = pieces[index];
    Status s = io.FinishRead(std::move(pending), p.target, p.key, p.block_offset, p.dest);
    if (!s.ok() && first_error.ok()) first_error = std::move(s);
  }
  return first_error;
}

}  // namespace granary::fuse
