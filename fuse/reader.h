// Reads of committed file bytes for the mount: the slice map is fetched once per open handle
// (and again after a local commit), and the blocks of one request are fetched in parallel from
// the nearest copies across datanodes. No per-file lock is held while reading, so the kernel's
// concurrent readahead requests of one file proceed in parallel.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <span>

#include "client/granary.h"
#include "common/status.h"

namespace granary::fuse {

// A handle's cached slice map and the inode data version it was fetched at.
struct CachedMap {
  std::mutex mu;
  std::shared_ptr<const ReadMapReply> map;
  uint64_t version = 0;
};

class Reader {
 public:
  explicit Reader(client::Client* client) : client_(client) {}

  // Reads up to out.size() committed bytes at `offset` (0 at or past the end); holes are
  // zeros. The map in `cache` is refetched when `version` moved.
  Result<size_t> Read(uint64_t ino, CachedMap& cache, uint64_t version, std::span<uint8_t> out,
                      uint64_t offset);

 private:
  Result<std::shared_ptr<const ReadMapReply>> Map(uint64_t ino, CachedMap& cache, uint64_t version);

  client::Client* client_;
};

}  // namespace granary::fuse
