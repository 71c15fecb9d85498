#include "placement/synthetic_cluster.h"

#include <fmt/format.h>

#include <algorithm>
#include <random>

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

std::vector<Node> ClusterOfSize(uint32_t datanodes, uint32_t per_host, uint32_t hosts_per_rack,
                                uint32_t racks_per_zone, double weight_spread, uint64_t seed) {
  per_host = std::max<uint32_t>(per_host, 1);
  hosts_per_rack = std::max<uint32_t>(hosts_per_rack, 1);
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> spread(0, weight_spread);
  std::vector<Node> nodes;
  nodes.reserve(datanodes);
  for (uint32_t i = 0; i < datanodes; ++i) {
    const uint32_t host = i / per_host;
    const uint32_t rack = host / hosts_per_rack;
    const uint32_t zone = racks_per_zone == 0 ? 0 : rack / racks_per_zone;
    Node node;
    node.id = i + 1;
    node.location.zone = fmt::format("zone{}", zone);
    node.location.rack = fmt::format("rack{}", rack);
    node.location.host = fmt::format("host{}", host);
    node.weight = weight_spread > 0 ? 1 + spread(rng) : 1;
    nodes.push_back(std::move(node));
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
