// The client's cached view of the cluster (DESIGN §2): the node table and the placement map,
// refetched from the metanode only when its epoch moved (StaleEpoch, a failed datanode).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "common/topology.h"
#include "granary/meta.pb.h"
#include "placement/placement.h"

namespace granary::client {

// One member of a PG as the data path needs it.
struct Replica {
  uint32_t node_id = 0;
  std::string data_address;
  bool up = true;
  // From the client's Location (common/topology.h Distance): 0 same host, 1 same rack,
  // 2 same zone, 3 elsewhere or unknown.
  int distance = 3;
  // The PG is moving and this member does not hold its data yet (docs/maintenance.md "PG
  // moves"): written to, read from last.
  bool filling = false;
  // Not a member: a datanode holding a warm-up copy (docs/locality.md), read from only.
  bool warm = false;
};

// Where one block lives: its PG, the PG's epoch and members in placement order (primary /
// fragment 0 first), and the order a reader should try them in (nearest healthy first).
struct BlockTarget {
  uint32_t pool_id = 0;
  uint32_t pg = 0;
  uint64_t pg_epoch = 0;
  std::vector<Replica> members;
  std::vector<size_t> read_order;  // indices into members
  // While the PG moves: slot by slot, the member that held the PG's data before the move (an
  // entry with an empty address where there was none). Writers also write to the ones that are
  // not members any more, so that nothing acknowledged lives only on filling members. Empty
  // when the PG is not moving.
  std::vector<Replica> previous;

  // The same PG narrowed to its first `n` members (replicated blocks of an EC pool live on
  // members 0..M), read order kept.
  BlockTarget FirstMembers(size_t n) const;
  // The same PG narrowed to member `i` alone (one EC fragment), with the previous member of
  // that slot while moving.
  BlockTarget OnlyMember(size_t i) const;
  // Every member a write goes to: the members, then previous members that are not members any
  // more (a move in progress).
  std::vector<const Replica*> WriteSet() const;
  // The target a reader uses: while the PG moves, each slot whose member is still filling is
  // served by the slot's previous member when that one is up (it has the data; for EC slot i is
  // fragment i), and the filling members come last in the read order (after them, appended,
  // the filling members that were replaced, so a replicated reader still tries every copy).
  // Unchanged when the PG is not moving.
  BlockTarget ForRead() const;
};

class ClusterView {
 public:
  // Returns the cluster map, or one with `unchanged` set when `known_epoch` is current.
  using Fetch = std::function<Result<ClusterMap>(uint64_t known_epoch)>;

  ClusterView(Fetch fetch, Location self) : fetch_(std::move(fetch)), self_(std::move(self)) {}

  // Fetches the map if the metanode has a newer one. Unavailable when the metanode is
  // unreachable; Corrupt when the placement bytes do not decode.
  Status Refresh();
  // Refresh only when the cached epoch is below `epoch` (a datanode told us of a newer one).
  Status RefreshIfOlderThan(uint64_t epoch);

  uint64_t epoch() const;
  const Location& self() const { return self_; }

  // Block `block` of slice `slice_id` in a file with `layout`. Unavailable before the first
  // successful Refresh; errors from the placement map otherwise (unknown pool, bad layout).
  Result<BlockTarget> Locate(const Layout& layout, uint64_t slice_id, uint64_t block) const;

  // `target` (a replicated block's read target) with the datanodes holding a warm-up copy of
  // its slice added (docs/locality.md): read in order of distance like the members, a member
  // first at equal distance. Unknown nodes are skipped.
  BlockTarget WithWarmCopies(const BlockTarget& target, std::span<const uint32_t> nodes) const;

  // The pool as the map knows it (block size, redundancy), NotFound otherwise.
  Result<PoolSpec> Pool(uint32_t pool_id) const;

  // Snapshot of the placement map for layout decisions (writer-local). Null before Refresh.
  std::shared_ptr<const placement::PlacementMap> map() const;

 private:
  struct Snapshot {
    uint64_t epoch = 0;
    std::shared_ptr<const placement::PlacementMap> map;
    std::unordered_map<uint32_t, NodeInfo> nodes;
  };
  std::shared_ptr<const Snapshot> Current() const;

  Fetch fetch_;
  Location self_;
  std::mutex refresh_mu_;  // one fetch at a time
  mutable std::mutex mu_;
  std::shared_ptr<const Snapshot> snapshot_;
};

}  // namespace granary::client
