// granary_placement: where PG members live (DESIGN §2). A pure library — no I/O, no clocks, no
// threads — used by the metanode, which computes and updates the map, and by clients, which read
// the serialised map that ClusterMap.placement carries.
//
// Public headers: placement/placement.h (this file: the map), placement/stripe.h (file layouts:
// stripe and block -> PG, writer-local stripes) and placement/simulator.h (movement figures for
// `granary admin placement-sim`). Design record: docs/placement.md.
//
// Model
// - Topology: datanode < host < rack < zone, from each node's Location; a node's weight is its
//   relative capacity. A pool uses the nodes that match its node_selector, are not `out` and have
//   weight > 0.
// - Each PG of a pool maps to an ordered list of `width` distinct datanodes (replicated:N -> N,
//   ec:K+M -> K+M, fragment i on member i) in distinct failure domains at the pool's level.
//   Members()[0] is the primary (replicated: head of the write chain) or fragment 0 (EC).
// - The preferred ("raw") members come from weighted rendezvous hashing (straw2-like) applied
//   level by level down the topology. The map itself holds explicit member lists: Update keeps a
//   member in place unless it must move (its node went out, left the pool or lost weight), or a
//   node that joined / gained weight takes its rendezvous share; Balance adds explicit overrides
//   (upmaps) so each datanode's PG-member count is within a tolerance of its weight share.
// - States: `up` nodes take new members; `down` nodes keep the members they have (the PG runs
//   degraded, repair waits) but take no new ones; `out` nodes are removed from every PG. Nodes
//   at or above the pool's nearly_full_ratio or full_ratio (used/capacity) keep their members and
//   take no new ones.
// - Locality: writer-local layouts pick PGs by primary (stripe.h, WriterLocalLayout); in a
//   prefer-gpu replicated pool the primary is a member on a gpu=true host whenever the PG has
//   one (reordering moves no data; EC pools keep fragment order). Readers use OrderByDistance.
// - Epochs: the map has an epoch; each PG has the epoch at which its ordered member list (or
//   its move state) last changed. A datanode rejects a write whose PG epoch is older than its
//   own (StaleEpoch).
// - Moves (docs/maintenance.md "PG moves"): when Update or Balance changes which datanodes hold
//   a PG, the PG keeps the member list that held its data (MovingFrom) and the epoch the move
//   started (MoveEpoch). Writers write to both sets, readers prefer the previous one, and
//   previous members keep their copies until CompleteMoves drops the previous list (the
//   metanode calls it once the new members report a complete repair pass at the move's epoch).
//   A PG that moves again before completing keeps the list of the first move (the one that holds
//   everything); a move back onto that list cancels the move.
//
// Thread safety: a PlacementMap is immutable after construction; concurrent reads are safe.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "common/topology.h"
#include "granary/types.pb.h"

namespace granary::placement {

using NodeId = uint32_t;
using PoolId = uint32_t;
using PgIndex = uint32_t;
using Epoch = uint64_t;

// An empty slot in a MovingFrom list (a previous member no longer in the node table).
inline constexpr NodeId kNoNode = 0xFFFFFFFFu;

// One PG whose move the metanode wants to complete, named with the move's start epoch so that a
// PG that moved again meanwhile is left alone.
struct MoveRef {
  PoolId pool = 0;
  PgIndex pg = 0;
  Epoch move_epoch = 0;
};

enum class NodeState : uint8_t { kUp = 0, kDown = 1, kOut = 2 };

// One datanode as placement sees it.
struct Node {
  NodeId id = 0;
  Location location;  // zone / rack / host / gpu
  Labels labels;      // matched against PoolSpec.node_selector
  double weight = 1;  // relative capacity; <= 0 keeps the node out of every pool
  NodeState state = NodeState::kUp;
  uint64_t used_bytes = 0;      // with capacity_bytes, decides nearly-full / full
  uint64_t capacity_bytes = 0;  // 0 = unknown (never counted as full)

  bool operator==(const Node& other) const;
};

// From the registry's NodeInfo: location from the labels (host defaults to the node id),
// weight = capacity in TiB (1.0 when the capacity is not reported yet), state UP/DOWN/OUT
// (UNSPECIFIED counts as up).
Node NodeFromProto(const NodeInfo& info);
std::vector<Node> NodesFromProto(std::span<const NodeInfo> infos);

// Members of a pool: `replicas` for replicated pools, data + coding chunks for EC pools.
// InvalidArgument for a malformed spec (replicated N outside 1..5, K outside 1..16, M outside
// 1..4, pg_count outside 1..2^20; the metanode insists on a power of two).
Result<uint32_t> PoolWidth(const PoolSpec& pool);

// Distinct failure domains at the pool's level that hold a datanode the pool may use (selected,
// not out, weight > 0): the count Update compares with PoolWidth before placing the pool.
uint32_t FailureDomainCount(std::span<const Node> nodes, const PoolSpec& pool);

// Per-pool balance: each eligible node's PG-member count over its weight-proportional share.
struct BalanceStats {
  uint32_t nodes = 0;           // eligible datanodes (up or down, weight > 0, selected)
  uint64_t members = 0;         // pg_count * width
  double max_over_mean = 0;     // max(count / share); 1.0 is perfect
  double min_over_mean = 0;     // min(count / share)
  double stddev_over_mean = 0;  // standard deviation of count / share
  uint64_t overrides = 0;       // members that differ from the raw rendezvous choice
};

struct UpdateOptions {
  // Epoch of the new map; 0 means previous epoch + 1. Must be greater than the previous epoch.
  Epoch epoch = 0;
  // Run the balancer after remapping (same epoch). Off: only necessary moves and joins' shares.
  bool balance = true;
  // Balancer target: every count within [share * (1 - t), share * (1 + t)] (rounded outwards
  // to whole members), as far as failure domains and full/down nodes allow.
  double balance_tolerance = 0.05;
  // Upper bound on members the balancer moves in one call (0 = no bound), for throttling.
  uint64_t max_balance_moves = 0;
};

class PlacementMap {
 public:
  // An empty map (epoch 0, no pools); Update() from it builds the first map.
  PlacementMap() = default;

  // The first map (epoch 1 unless options.epoch says otherwise): Update() from the empty map.
  static Result<PlacementMap> Build(const std::vector<Node>& nodes,
                                    const std::vector<PoolSpec>& pools,
                                    const UpdateOptions& options = {});

  // The next map for a changed node list and/or pool list, moving as few members as possible:
  // - a member on a node that is now out, deselected or weightless is replaced by the least
  //   loaded of the raw choice and a few rendezvous draws among up, not nearly-full nodes in
  //   unused failure domains; nothing else moves;
  // - a node that joined (or gained weight by more than 1%) takes the raw draws that land on
  //   its failure domain where the PG has no member there yet, up to its share plus tolerance,
  //   each replacing the PG's most loaded member; nothing else moves because of it;
  // - a new pool gets the raw rendezvous choice; a pool whose pg_count doubled splits each PG
  //   onto its parent's members; a pool whose redundancy type, EC shape or failure domain changed
  //   is placed afresh; a replicated pool whose N changed keeps its first members.
  // PG epochs change only for PGs whose ordered member list changed.
  // InvalidArgument when a pool cannot place `width` members in distinct failure domains
  // (naming the pool, level and counts) — the map is never silently packed. A metanode that hits
  // this on marking a node out should keep the node `down` (its PGs run degraded) instead.
  Result<PlacementMap> Update(const std::vector<Node>& nodes, const std::vector<PoolSpec>& pools,
                              const UpdateOptions& options = {}) const;
  // Same pools as this map.
  Result<PlacementMap> Update(const std::vector<Node>& nodes,
                              const UpdateOptions& options = {}) const;

  // Only the balancer, over the whole map: nodes outside 3/4 of the tolerance around their share
  // move members to / from others until they are inside it, never onto down, nearly-full or full
  // nodes, never into a failure domain the PG already uses, preferring moves back to the raw
  // choice. (The balancing inside Update acts only on nodes outside the full tolerance and
  // brings them within 3/4 of it; a pool's first placement is balanced whole. The margin keeps
  // the small shift of every share on a join or leave from pushing nodes that sit exactly on
  // the edge out of their allowance.) Epoch as in UpdateOptions (0 = +1; unchanged when
  // nothing moved).
  Result<PlacementMap> Balance(double tolerance = 0.05, uint64_t max_moves = 0,
                               Epoch epoch = 0) const;

  Epoch epoch() const { return epoch_; }

  // Ordered members of a PG: primary / fragment 0 first. NotFound for an unknown pool,
  // InvalidArgument for pg >= pg_count. The span lives as long as the map.
  Result<std::span<const NodeId>> Members(PoolId pool, PgIndex pg) const;
  // Epoch at which the PG's member list (or move state) last changed.
  Result<Epoch> PgEpoch(PoolId pool, PgIndex pg) const;

  // While the PG moves: the ordered member list that held its data when the move started
  // (slot i = fragment i for EC pools; kNoNode for a member that left the node table). Empty
  // when the PG is not moving. Errors as Members.
  Result<std::span<const NodeId>> MovingFrom(PoolId pool, PgIndex pg) const;
  // Epoch the PG's current move started at; 0 when it is not moving.
  Result<Epoch> MoveEpoch(PoolId pool, PgIndex pg) const;
  // PGs moving in every pool.
  uint64_t MovingPgs() const;
  // Members of the PG that are filling: in Members but not holding the data yet (replicated:
  // not in MovingFrom; EC: a slot whose MovingFrom entry is another node). Empty when not moving.
  std::vector<NodeId> FillingMembers(PoolId pool, PgIndex pg) const;

  // The next map (epoch as in UpdateOptions, 0 = +1) with the listed moves completed: their
  // previous member lists dropped and their PG epochs set to the new epoch (so writers still on
  // the dual set refresh). A ref whose PG is not moving, or moved again since (another
  // move_epoch), is skipped; `completed` (optional) counts the others.
  Result<PlacementMap> CompleteMoves(std::span<const MoveRef> moves, Epoch epoch = 0,
                                     uint64_t* completed = nullptr) const;

  // `members` ordered nearest first for a reader at `reader`: up nodes before down/out/unknown
  // ones, then by Distance (same host < rack < zone < elsewhere), then in the given order (so the
  // primary wins ties).
  std::vector<NodeId> OrderByDistance(std::span<const NodeId> members,
                                      const Location& reader) const;

  // PGs of `pool` whose primary (fragment 0) sits on a datanode of `host`, ascending. Empty when
  // the host has none (or the pool is unknown). Used by writer-local layouts (stripe.h).
  std::span<const PgIndex> PgsWithPrimaryOnHost(PoolId pool, std::string_view host) const;

  const std::vector<Node>& nodes() const { return nodes_; }
  const Node* FindNode(NodeId id) const;
  const std::vector<PoolSpec>& pools() const { return specs_; }
  const PoolSpec* FindPool(PoolId id) const;

  // Balance of one pool (NotFound for an unknown pool). Computes the raw choice to count
  // overrides, so it costs about as much as mapping the pool once.
  Result<BalanceStats> Stats(PoolId pool) const;

  // Compact versioned bytes for ClusterMap.placement: magic, format version, the node table,
  // the pools and every PG's epoch and members (node-table indices as varints), CRC32C.
  std::string Serialize() const;
  // InvalidArgument for input that is not a placement map or has a newer format version;
  // Corrupt for a bad checksum, truncation or inconsistent contents.
  static Result<PlacementMap> Deserialize(std::string_view bytes);

  bool operator==(const PlacementMap& other) const;

 private:
  struct PoolMap {
    uint32_t width = 0;
    std::vector<NodeId> members;  // pg_count * width, each PG's ordered list
    std::vector<Epoch> pg_epochs;
    // Moves: per PG the epoch its move started (0 = not moving) and, pg-major like `members`,
    // the previous member list while moving (kNoNode otherwise).
    std::vector<Epoch> move_epochs;
    std::vector<NodeId> from;
    // host -> PGs whose Members()[0] is on that host (ascending); rebuilt by Index().
    std::unordered_map<std::string, std::vector<PgIndex>> primaries_by_host;
  };
  friend class MapBuilder;  // placement.cpp: Update/Balance/Deserialize fill the fields.

  void Index();  // node and pool lookups, primaries_by_host
  const PoolMap* FindPoolMap(PoolId id) const;

  Epoch epoch_ = 0;
  std::vector<Node> nodes_;         // ascending id
  std::vector<PoolSpec> specs_;     // ascending id
  std::vector<PoolMap> pool_maps_;  // parallel to specs_
  std::unordered_map<NodeId, uint32_t> node_index_;
  std::unordered_map<PoolId, uint32_t> pool_index_;
};

}  // namespace granary::placement
