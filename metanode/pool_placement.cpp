#include "metanode/pool_placement.h"

#include <fmt/format.h>

#include <map>

#include "placement/placement.h"

namespace granary::metanode {

namespace {

std::string DomainsName(FailureDomain d, uint32_t n) {
  const char* name = d == DOMAIN_HOST   ? "host"
                     : d == DOMAIN_RACK ? "rack"
                     : d == DOMAIN_ZONE ? "zone"
                                        : "datanode";
  return fmt::format("{}{}", name, n == 1 ? "" : "s");
}

}  // namespace

std::vector<PoolPlacement> PoolPlacements(const ClusterMap& map) {
  std::vector<PoolPlacement> out;
  auto placed = placement::PlacementMap::Deserialize(map.placement());
  const std::vector<NodeInfo> infos(map.nodes().begin(), map.nodes().end());
  const std::vector<placement::Node> nodes = placement::NodesFromProto(infos);
  std::map<uint32_t, NodeState> states;
  for (const auto& n : map.nodes()) states[n.id()] = n.state();
  for (const PoolSpec& pool : map.pools()) {
    PoolPlacement& p = out.emplace_back();
    p.set_pool_id(pool.id());
    p.set_name(pool.name());
    p.set_failure_domain(pool.failure_domain() == FAILURE_DOMAIN_UNSPECIFIED
                             ? DOMAIN_DATANODE
                             : pool.failure_domain());
    auto width = placement::PoolWidth(pool);
    p.set_width(width.ok() ? *width : 0);
    p.set_failure_domains(placement::FailureDomainCount(nodes, pool));
    p.set_placed(placed.ok() && placed->FindPool(pool.id()) != nullptr);
    p.set_pgs(pool.pg_count());
    for (uint32_t pg = 0; pg < pool.pg_count(); ++pg) {
      auto members = p.placed() ? placed->Members(pool.id(), pg)
                                : Result<std::span<const uint32_t>>(NotFound("not placed"));
      bool degraded = !members.ok() || members->size() < p.width();
      if (members.ok()) {
        for (uint32_t id : *members) degraded = degraded || states[id] != UP;
      }
      if (degraded) p.set_pgs_degraded(p.pgs_degraded() + 1);
    }
    if (!p.placed()) {
      // The reason a person acts on: how many failure domains it needs and has.
      p.set_message(p.failure_domains() < p.width()
                        ? fmt::format("needs {} {}, has {}", p.width(),
                                      DomainsName(p.failure_domain(), p.width()),
                                      p.failure_domains())
                        : "not in the PG map yet");
    }
  }
  return out;
}

}  // namespace granary::metanode
