#include "fuse/reader.h"

#include <fmt/format.h>

#include <algorithm>

#include "client/cluster_view.h"
#include "client/extent_reader.h"
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
  Status s =
      client::ReadExtents(*client_, (*map)->attr().layout(), (*map)->extents(), window, offset);
  if (s.code() == Code::STALE_EPOCH || s.code() == Code::NOT_FOUND) {
    // A newer cluster map, or slices compacted away since the map was cached: refetch both.
    GRANARY_TRY(client_->cluster().Refresh());
    std::lock_guard lock(cache.mu);
    cache.map.reset();
  }
  if (s.code() == Code::STALE_EPOCH || s.code() == Code::NOT_FOUND) {
    map = Map(ino, cache, version);
    if (!map.ok()) return map.status();
    s = client::ReadExtents(*client_, (*map)->attr().layout(), (*map)->extents(), window, offset);
  }
  if (!s.ok()) return s.WithContext(fmt::format("read ino {} at {}", ino, offset));
  return n;
}

}  // namespace granary::fuse
