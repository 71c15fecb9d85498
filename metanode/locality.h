// Where a volume's data lives, block by block (docs/locality.md): the walk behind
// `admin volume locality`, the warm-up planner and warm-up progress. Internal to metanode/.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "granary/meta.pb.h"
#include "metanode/records.pb.h"
#include "metanode/store.h"

namespace granary::placement {
class PlacementMap;
}

namespace granary::metanode {

// The inode `path` names inside `volume` ("" and "/" are its root); `normalized` gets the path
// as "/a/b". NotFound naming the missing component.
Result<uint64_t> ResolveVolumePath(Txn& txn, const Volume& volume, std::string_view path,
                                   std::string* normalized);

// The distinct slices under `root` (a directory walked recursively, or one file); hard links
// and shared slices are counted once.
struct SubtreeSlices {
  uint64_t files = 0;
  std::map<uint64_t, SliceRecord> slices;
};
Result<SubtreeSlices> CollectSlices(Txn& txn, uint64_t root);

// One block of a slice and the datanodes holding a whole copy of it (counted copies: members,
// and while the PG moves the previous members; EC-coded blocks have none, each member holds a
// fragment).
struct BlockPlace {
  uint32_t index = 0;
  uint32_t pg = 0;
  uint64_t length = 0;
  std::vector<uint32_t> copies;     // nodes holding the whole block as a counted copy
  std::vector<uint32_t> fragments;  // EC-coded: nodes holding one fragment each
  uint64_t fragment_bytes = 0;
};
// The blocks of `slice` as `map` places them. NotFound when its pool is not in the map.
Result<std::vector<BlockPlace>> PlaceSlice(const placement::PlacementMap& map,
                                           const SliceRecord& slice);

// Node id -> host / rack / zone, as placement reads them from the labels.
struct NodePlaces {
  std::map<uint32_t, NodeInfo> nodes;
  std::string HostOf(uint32_t node) const;
  std::string RackOf(uint32_t node) const;
  std::string ZoneOf(uint32_t node) const;
};
Result<NodePlaces> LoadNodePlaces(Txn& txn);

// The warm copies of `slice_id`: node -> record.
Result<std::map<uint32_t, ExtraCopyRecord>> WarmCopiesOf(Txn& txn, uint64_t slice_id);

// `admin volume locality` (a read: runs on a ReadView).
Result<VolumeLocalityReply> QueryVolumeLocality(Txn& txn, const VolumeLocalityRequest& req);

// Warm-ups (all, or the one named), with their progress computed now.
Result<WarmupListReply> QueryWarmups(Txn& txn, const WarmupListRequest& req);
// Every warm-up record, by name.
Result<std::vector<WarmupRecord>> AllWarmups(Txn& txn);

// The slices under a root with their blocks placed and their warm copies.
struct SubtreePlaces {
  SubtreeSlices subtree;
  std::map<uint64_t, std::vector<BlockPlace>> blocks;            // slice -> blocks
  std::map<uint64_t, std::map<uint32_t, ExtraCopyRecord>> warm;  // slice -> node -> copy
};
Result<SubtreePlaces> PlaceSubtree(Txn& txn, const placement::PlacementMap& map, uint64_t root);

// A warm-up's coverage of one host: logical bytes to have there, of which local through a
// counted copy, of which through a warm copy; `missing` lists, per slice, the blocks with no
// copy on the host (what the planner hands out).
struct HostCoverage {
  uint64_t bytes = 0, local_bytes = 0, warm_bytes = 0;
  std::map<uint64_t, std::vector<const BlockPlace*>> missing;
};
HostCoverage CoverHost(const SubtreePlaces& places, const NodePlaces& nodes, std::string_view host);

// The placement map the cluster record holds.
Result<placement::PlacementMap> LoadPlacement(Txn& txn);

}  // namespace granary::metanode
