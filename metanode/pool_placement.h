// Per-pool placement status for ClusterStatus (docs/metadata.md "Node registry and the cluster
// map"): a pool that cannot be placed (fewer failure domains than its width) is absent from the
// PG map and every write to it fails; this says so, and why, for the operator's StoragePool
// health and for operators of the cluster.
#pragma once

#include <vector>

#include "granary/meta.pb.h"

namespace granary::metanode {

// One entry per pool of `map`, in map order. A pure function of the map.
std::vector<PoolPlacement> PoolPlacements(const ClusterMap& map);

}  // namespace granary::metanode
