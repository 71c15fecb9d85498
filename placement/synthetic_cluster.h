// Synthetic clusters and pools for tests, the simulator and the benchmark.
#pragma once

#include <string>
#include <vector>

#include "placement/placement.h"

namespace granary::placement::synthetic {

// zones x racks_per_zone x hosts_per_rack x per_host datanodes, ids from first_id, weight 1,
// named z<i>, z<i>-r<j>, z<i>-r<j>-h<k>.
std::vector<Node> Cluster(int zones, int racks_per_zone, int hosts_per_rack, int per_host,
                          NodeId first_id = 1);

// `datanodes` nodes, `per_host` to a host, `hosts_per_rack` to a rack, `racks_per_zone` to a
// zone (0: one zone), named zone<i> / rack<j> / host<k>. Weights 1, or uniform in
// [1, 1 + weight_spread] drawn from `seed`.
std::vector<Node> ClusterOfSize(uint32_t datanodes, uint32_t per_host, uint32_t hosts_per_rack,
                                uint32_t racks_per_zone, double weight_spread, uint64_t seed);

PoolSpec Replicated(PoolId id, uint32_t replicas, FailureDomain domain, uint32_t pg_count);
PoolSpec Erasure(PoolId id, uint32_t k, uint32_t m, FailureDomain domain, uint32_t pg_count);

DomainLevel LevelOf(const PoolSpec& pool);
// The name of the node's failure domain at `level` ("z0/r1/h2", or the id for datanode).
std::string DomainKey(const Node& node, DomainLevel level);

}  // namespace granary::placement::synthetic
