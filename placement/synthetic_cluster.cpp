#include "placement/synthetic_cluster.h"

#include <fmt/format.h>

#include "placement/pool_topology.h"

namespace granary::placement::synthetic {

std::vector<Node> Cluster(int zones, int racks_per_zone, int hosts_per_rack, int per_host,
                          NodeId first_id) {
  std::vector<Node> nodes;
  NodeId id = first_id;
  for (int z = 0; z < zones; ++z) {
    for (int r = 0; r < racks_per_zone; ++r) {
      for (int h = 0; h < hosts_per_rack; ++h) {
        for (int d = 0; d < per_host; ++d) {
          Node node;
          node.id = id++;
          node.location.zone = fmt::format("z{}", z);
          node.location.rack = fmt::format("z{}-r{}", z, r);
          node.location.host = fmt::format("z{}-r{}-h{}", z, r, h);
          nodes.push_back(std::move(node));
        }
      }
    }
  }
  return nodes;
}

PoolSpec Replicated(PoolId id, uint32_t replicas, FailureDomain domain, uint32_t pg_count) {
  PoolSpec pool;
  pool.set_id(id);
  pool.set_name(fmt::format("pool{}", id));
  pool.set_redundancy(REPLICATED_POOL);
  pool.set_replicas(replicas);
  pool.set_failure_domain(domain);
  pool.set_pg_count(pg_count);
  return pool;
}

PoolSpec Erasure(PoolId id, uint32_t k, uint32_t m, FailureDomain domain, uint32_t pg_count) {
  PoolSpec pool;
  pool.set_id(id);
  pool.set_name(fmt::format("pool{}", id));
  pool.set_redundancy(ERASURE_CODED_POOL);
  pool.set_data_chunks(k);
  pool.set_coding_chunks(m);
  pool.set_failure_domain(domain);
  pool.set_pg_count(pg_count);
  return pool;
}

DomainLevel LevelOf(const PoolSpec& pool) { return internal::PoolDomainLevel(pool); }

std::string DomainKey(const Node& node, DomainLevel level) {
  switch (level) {
    case DomainLevel::kZone:
      return node.location.zone;
    case DomainLevel::kRack:
      return node.location.zone + "/" + node.location.rack;
    case DomainLevel::kHost:
      return node.location.zone + "/" + node.location.rack + "/" + node.location.host;
    case DomainLevel::kDatanode:
      break;
  }
  return std::to_string(node.id);
}

}  // namespace granary::placement::synthetic
