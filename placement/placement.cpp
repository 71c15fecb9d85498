// Temporary: the interface is committed first so the metanode and client can build against it.
#include "placement/placement.h"

namespace granary::placement {

namespace {
Status NotYet() { return Unavailable("placement: implementation in progress (issue 3)"); }
}  // namespace

Node NodeFromProto(const NodeInfo& info) {
  Node node;
  node.id = info.id();
  Labels labels(info.labels().begin(), info.labels().end());
  node.location = Location::FromLabels(labels, std::to_string(info.id()));
  node.labels = std::move(labels);
  node.capacity_bytes = info.capacity_bytes();
  node.used_bytes = info.used_bytes();
  node.weight = info.capacity_bytes() == 0 ? 1.0
                                           : static_cast<double>(info.capacity_bytes()) /
                                                 static_cast<double>(uint64_t{1} << 40);
  node.state = info.state() == DOWN  ? NodeState::kDown
               : info.state() == OUT ? NodeState::kOut
                                     : NodeState::kUp;
  return node;
}

std::vector<Node> NodesFromProto(std::span<const NodeInfo> infos) {
  std::vector<Node> nodes;
  nodes.reserve(infos.size());
  for (const NodeInfo& info : infos) nodes.push_back(NodeFromProto(info));
  return nodes;
}

Result<uint32_t> PoolWidth(const PoolSpec&) { return NotYet(); }
Result<PlacementMap> PlacementMap::Build(std::span<const Node>, std::span<const PoolSpec>,
                                         const UpdateOptions&) {
  return NotYet();
}
Result<PlacementMap> PlacementMap::Update(std::span<const Node>, std::span<const PoolSpec>,
                                          const UpdateOptions&) const {
  return NotYet();
}
Result<PlacementMap> PlacementMap::Update(std::span<const Node>, const UpdateOptions&) const {
  return NotYet();
}
Result<PlacementMap> PlacementMap::Balance(double, uint64_t, Epoch) const { return NotYet(); }
Result<std::span<const NodeId>> PlacementMap::Members(PoolId, PgIndex) const { return NotYet(); }
Result<Epoch> PlacementMap::PgEpoch(PoolId, PgIndex) const { return NotYet(); }
std::vector<NodeId> PlacementMap::OrderByDistance(std::span<const NodeId> members,
                                                  const Location&) const {
  return {members.begin(), members.end()};
}
std::span<const PgIndex> PlacementMap::PgsWithPrimaryOnHost(PoolId, std::string_view) const {
  return {};
}
const Node* PlacementMap::FindNode(NodeId) const { return nullptr; }
const PoolSpec* PlacementMap::FindPool(PoolId) const { return nullptr; }
Result<BalanceStats> PlacementMap::Stats(PoolId) const { return NotYet(); }
std::string PlacementMap::Serialize() const { return {}; }
Result<PlacementMap> PlacementMap::Deserialize(std::string_view) { return NotYet(); }
bool PlacementMap::operator==(const PlacementMap& other) const { return epoch_ == other.epoch_; }

}  // namespace granary::placement
