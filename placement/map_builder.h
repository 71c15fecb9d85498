// Internal to placement/: the code that fills a PlacementMap's private fields, split by concern
// over placement.cpp (remapping), balancer.cpp and serialize.cpp.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "placement/placement.h"
#include "placement/pool_topology.h"

namespace granary::placement {

class MapBuilder {
 public:
  using PoolMap = PlacementMap::PoolMap;

  static Result<PlacementMap> Update(const PlacementMap& previous, std::span<const Node> nodes,
                                     std::span<const PoolSpec> pools, const UpdateOptions& options);

  // Moves members of one pool toward its weight shares; returns the number of members moved.
  // Nodes outside [share * (1 - tolerance), share * (1 + tolerance)] — or, for a `whole`
  // balance, outside 3/4 of that — are brought within 3/4 of it. PGs whose member list changed
  // get `epoch`.
  static Result<uint64_t> BalancePool(const std::vector<Node>& nodes,
                                      const std::unordered_map<NodeId, uint32_t>& node_index,
                                      const PoolSpec& spec, PoolMap& pool, double tolerance,
                                      uint64_t max_moves, Epoch epoch, bool whole);

  static Result<BalanceStats> Stats(const PlacementMap& map, PoolId pool);

  static std::string Serialize(const PlacementMap& map);
  static Result<PlacementMap> Deserialize(std::string_view bytes);

  // Replicated pools: members that stayed keep their previous relative order and come first
  // (a member that still has to rebuild never becomes primary), newcomers follow in slot order;
  // then prefer-gpu moves the gpu member with the highest draw to the front. EC pools keep slot
  // order: slot i is fragment i.
  static void OrderMembers(const PoolSpec& spec, PgIndex pg, std::span<const Node> nodes,
                           std::span<const uint32_t> previous, std::span<uint32_t> slots);

  // After `now`'s members were recomputed from `old` (same shape and PG count, or null for a
  // fresh placement): PGs whose holders changed start (or keep) a move from the list that held
  // their data; PGs back on that list stop moving. `node_index` is the new map's node table.
  static void TrackMoves(const PoolSpec& spec, const PoolMap* old, PoolMap& now,
                         const std::unordered_map<NodeId, uint32_t>& node_index, Epoch epoch);

  static PlacementMap& Index(PlacementMap& map) {
    map.Index();
    return map;
  }
};

}  // namespace granary::placement
