// The PgMapper over the placement library (placement/placement.h).
#include "metanode/pg_mapper.h"

#include <fmt/format.h>

#include "placement/placement.h"

namespace granary::metanode {

namespace {

class PlacementPgMapper : public PgMapper {
 public:
  Result<std::string> Compute(uint64_t epoch, const std::vector<PoolSpec>& pools,
                              const std::vector<NodeInfo>& nodes,
                              std::string_view previous) const override {
    const std::vector<placement::Node> ns = placement::NodesFromProto(nodes);
    placement::PlacementMap base;
    if (!previous.empty()) {
      auto prev = placement::PlacementMap::Deserialize(previous);
      // An unreadable previous map (older metanode, interim format) is rebuilt from scratch.
      if (prev.ok()) base = std::move(*prev);
    }
    placement::UpdateOptions options;
    options.epoch = std::max<uint64_t>(epoch, base.epoch() + 1);
    auto map = base.Update(ns, pools, options);
    if (map.ok()) return map->Serialize();
    if (map.status().code() != Code::INVALID_ARGUMENT) return map.status();
    // Some pool cannot be placed yet (fewer failure domains than its width — e.g. no datanode
    // registered yet). Map the pools that can be placed; the others appear once enough
    // datanodes join, and writers to them get Unavailable meanwhile.
    std::vector<PoolSpec> placeable;
    for (const PoolSpec& pool : pools) {
      if (base.Update(ns, {pool}, options).ok()) placeable.push_back(pool);
    }
    auto partial = base.Update(ns, placeable, options);
    if (!partial.ok()) return partial.status();
    return partial->Serialize();
  }
};

}  // namespace

std::unique_ptr<PgMapper> MakePlacementPgMapper() { return std::make_unique<PlacementPgMapper>(); }

}  // namespace granary::metanode
