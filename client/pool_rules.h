// Pool rules the client's data path shares (file writes, reads, object writes): EC or not,
// how many members acknowledge a write, where an EC pool keeps replicated blocks, and a layout's
// pool and block size. Internal to client/.
#pragma once

#include <cstdint>

#include "client/cluster_view.h"
#include "common/status.h"

namespace granary::client {

bool IsEcPool(const PoolSpec& pool);
// Members needed to acknowledge a write.
uint32_t MinMembers(const PoolSpec& pool);
// Copies of a replicated block in an EC pool (on the PG's first M+1 members), and how many of
// them a write needs.
uint32_t EcReplicaCount(const PoolSpec& pool);
uint32_t EcReplicaMinimum(const PoolSpec& pool);
// The pool of a layout from the cached map, refetched once when the map does not know it yet.
Result<PoolSpec> LayoutPool(ClusterView& view, uint32_t pool_id);
uint32_t LayoutBlockSize(const Layout& layout, const PoolSpec& pool);

}  // namespace granary::client
