#include "client/pool_rules.h"

#include <fmt/format.h>

#include <algorithm>

namespace granary::client {

bool IsEcPool(const PoolSpec& pool) { return pool.redundancy() == Redundancy::ERASURE_CODED_POOL; }

// Members needed to acknowledge a write: Ceph's rules, size - size/2 for replicated pools
// (3 -> 2, 2 -> 1) and K+1 fragments for EC pools.
uint32_t MinMembers(const PoolSpec& pool) {
  if (pool.min_size() > 0) return pool.min_size();
  if (IsEcPool(pool))
    return std::min(pool.data_chunks() + 1, pool.data_chunks() + pool.coding_chunks());
  uint32_t size = pool.replicas() ? pool.replicas() : 1;
  return size - size / 2;
}

// Replicated blocks of an EC pool: M+1 copies on the PG's first M+1 members, so that any M
// losses leave one, as for the fragments. A write may skip as many down members as an EC write
// may (K+M - min_size), but always needs one copy.
uint32_t EcReplicaCount(const PoolSpec& pool) { return pool.coding_chunks() + 1; }
uint32_t EcReplicaMinimum(const PoolSpec& pool) {
  const uint32_t tolerated = pool.data_chunks() + pool.coding_chunks() - MinMembers(pool);
  const uint32_t copies = EcReplicaCount(pool);
  return copies > tolerated ? copies - tolerated : 1;
}

// The pool of a layout from the cached map, refetched once when the map does not know it yet.
// A pool the metanode has but could not place (fewer failure domains than its width, e.g.
// ec:8+3 on 6 datanodes) is absent from the map: Unavailable, since it may be placed once
// enough datanodes join.
Result<PoolSpec> LayoutPool(ClusterView& view, uint32_t pool_id) {
  auto pool = view.Pool(pool_id);
  if (pool.ok()) return pool;
  GRANARY_TRY(view.Refresh());
  pool = view.Pool(pool_id);
  if (pool.ok() || pool.status().code() != Code::NOT_FOUND) return pool;
  return Unavailable(
      fmt::format("pool {} is not placed in cluster map epoch {}: not enough "
                  "datanodes in distinct failure domains for its width",
                  pool_id, view.epoch()));
}

uint32_t LayoutBlockSize(const Layout& layout, const PoolSpec& pool) {
  return layout.block_size() ? layout.block_size() : pool.block_size();
}

}  // namespace granary::client
