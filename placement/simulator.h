// The placement simulator's measurements (`granary admin placement-sim`, bench/, tests): member
// movement when datanodes join or leave a map, against the optimum. Pure: no I/O, no clocks.
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"
#include "placement/placement.h"

namespace granary::placement {

struct ChurnFigures {
  uint32_t events = 0;
  double moved = 0;            // PG members that changed datanode, summed over events
  double optimal = 0;          // the least any placement must move, summed over events: a joiner's
                               // weight share of the members, or the members a leaver held
  double moved_elsewhere = 0;  // moves not onto the joiner / not off the leaver
  double ratio() const { return optimal > 0 ? moved / optimal : 0; }
};

enum class Churn { kJoin, kLeave };

struct ChurnOptions {
  Churn kind = Churn::kJoin;
  uint32_t events = 100;  // each event starts again from `base`
  uint64_t seed = 1;
  bool rebalance = true;  // also measure Update with its balancing on
  double tolerance = 0.05;
};

struct ChurnResult {
  ChurnFigures update;      // Update alone (UpdateOptions::balance = false)
  ChurnFigures rebalanced;  // Update with its balancing on: the whole cost of staying balanced
  // For comparison: recomputing every PG from the level-by-level rendezvous alone, as a
  // stateless map would (what the explicit map and Update's rules avoid).
  ChurnFigures raw_rendezvous;
};

// Joins add one datanode of average weight: even events as a new host in a random existing
// rack, odd events on a random existing host. Leaves mark a random up datanode out.
Result<ChurnResult> MeasureChurn(const PlacementMap& base, const ChurnOptions& options);

// Members of `pool` whose datanode differs between two maps: replicated pools compare member
// sets, EC pools compare fragment by fragment. `involving` counts the moves onto `onto` or off
// `off` (pass kNoNode for neither).
struct MoveCount {
  uint64_t moved = 0;
  uint64_t involving = 0;
};
MoveCount CountMoves(const PlacementMap& before, const PlacementMap& after, PoolId pool,
                     NodeId onto, NodeId off);

}  // namespace granary::placement
