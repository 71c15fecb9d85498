// The one seam between the metanode and the placement library: computing the serialised PG map
// that ClusterMap.placement carries. Apply calls it whenever nodes or pools change, so an
// implementation must be a pure function of its arguments (the future Raft state machine
// replays it on every replica).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "granary/types.pb.h"

namespace granary::metanode {

// A PG move to complete: (pool, pg) and the epoch its move started.
struct PgMove {
  uint32_t pool = 0;
  uint32_t pg = 0;
  uint64_t move_epoch = 0;
};

class PgMapper {
 public:
  virtual ~PgMapper() = default;
  // The PG map of every pool over `nodes` (all registered datanodes with their states) at
  // `epoch`. `previous` is the map of the previous epoch (empty at first), so an implementation
  // can keep its balancer's upmaps.
  virtual Result<std::string> Compute(uint64_t epoch, const std::vector<PoolSpec>& pools,
                                      const std::vector<NodeInfo>& nodes,
                                      std::string_view previous) const = 0;

  // The map `previous` at `epoch` with the listed moves completed (their previous member lists
  // dropped, their PG epochs bumped). nullopt when none of them is still moving at its listed
  // move epoch (nothing to publish). Pure, like Compute.
  virtual Result<std::optional<std::string>> CompleteMoves(
      uint64_t epoch, std::string_view previous, const std::vector<PgMove>& moves) const = 0;

  // The layout of a new file written from `host` in a writer-local pool (DESIGN §2 GPU
  // locality): explicit PGs whose primary / fragment 0 is on that host, read from the serialised
  // map `placement`. NotFound when the host has no datanode holding a primary of the pool (the
  // caller then uses the seeded layout). Pure, like Compute.
  virtual Result<Layout> WriterLocalLayout(std::string_view placement, uint32_t pool,
                                           std::string_view host, uint32_t block_size,
                                           uint32_t stripe_width, uint64_t seed) const = 0;
};

// The placement library's mapper (placement/placement.h).
std::unique_ptr<PgMapper> MakePlacementPgMapper();

}  // namespace granary::metanode
