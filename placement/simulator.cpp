#include "placement/simulator.h"

#include <fmt/format.h>

#include <algorithm>
#include <random>

#include "placement/pool_topology.h"

namespace granary::placement {

namespace {

// Total weight of the nodes a pool may use.
double PoolWeight(const std::vector<Node>& nodes, const PoolSpec& pool) {
  double sum = 0;
  for (const Node& node : nodes) {
    if (internal::EligibleFor(node, pool)) sum += node.weight;
  }
  return sum;
}

}  // namespace

MoveCount CountMoves(const PlacementMap& before, const PlacementMap& after, PoolId pool,
                     NodeId onto, NodeId off) {
  MoveCount count;
  const PoolSpec* spec = after.FindPool(pool);
  if (spec == nullptr || before.FindPool(pool) == nullptr) return count;
  const bool ec = internal::IsErasureCoded(*spec);
  for (PgIndex pg = 0; pg < spec->pg_count(); ++pg) {
    auto old_members = before.Members(pool, pg);
    auto new_members = after.Members(pool, pg);
    if (!old_members.ok() || !new_members.ok()) continue;
    std::span<const NodeId> a = *old_members;
    std::span<const NodeId> b = *new_members;
    for (size_t s = 0; s < b.size(); ++s) {
      bool moved;
      NodeId moved_from = s < a.size() ? a[s] : kNoNode;
      if (ec) {
        moved = moved_from != b[s];
      } else {
        moved = std::find(a.begin(), a.end(), b[s]) == a.end();
        moved_from = kNoNode;
        for (NodeId old : a) {
          if (std::find(b.begin(), b.end(), old) == b.end()) moved_from = old;
        }
      }
      if (!moved) continue;
      ++count.moved;
      if ((onto != kNoNode && b[s] == onto) || (off != kNoNode && moved_from == off)) {
        ++count.involving;
      }
    }
  }
  return count;
}

Result<ChurnResult> MeasureChurn(const PlacementMap& base, const ChurnOptions& options) {
  ChurnResult result;
  std::mt19937_64 rng(options.seed);
  const std::vector<Node>& nodes = base.nodes();
  if (nodes.empty()) return InvalidArgument("churn on an empty map");
  double mean_weight = 0;
  NodeId max_id = 0;
  for (const Node& node : nodes) {
    mean_weight += node.weight;
    max_id = std::max(max_id, node.id);
  }
  mean_weight /= static_cast<double>(nodes.size());
  UpdateOptions update;
  update.balance = false;
  update.balance_tolerance = options.tolerance;

  for (uint32_t event = 0; event < options.events; ++event) {
    std::vector<Node> changed = nodes;
    NodeId onto = kNoNode, off = kNoNode;
    const Node& pick = nodes[rng() % nodes.size()];
    if (options.kind == Churn::kJoin) {
      Node joiner = pick;
      joiner.id = max_id + 1 + event;
      joiner.weight = mean_weight;
      joiner.state = NodeState::kUp;
      joiner.used_bytes = 0;
      if (event % 2 == 0) joiner.location.host = fmt::format("joined-host-{}", event);
      changed.push_back(joiner);
      onto = joiner.id;
    } else {
      std::vector<size_t> up;
      for (size_t i = 0; i < nodes.size(); ++i) {
        if (nodes[i].state == NodeState::kUp) up.push_back(i);
      }
      if (up.empty()) return InvalidArgument("no up datanode to take out");
      const size_t victim = up[rng() % up.size()];
      changed[victim].state = NodeState::kOut;
      off = changed[victim].id;
    }
    auto after = base.Update(changed, update);
    if (!after.ok()) return after.status().WithContext(fmt::format("churn event {}", event));
    Result<PlacementMap> balanced = *after;
    if (options.rebalance) {
      balanced = after->Balance(options.tolerance);
      if (!balanced.ok())
        return balanced.status().WithContext(fmt::format("churn event {}", event));
    }
    double optimal = 0;
    for (const PoolSpec& pool : base.pools()) {
      if (options.kind == Churn::kJoin) {
        auto width = PoolWidth(pool);
        const double members = static_cast<double>(pool.pg_count()) * (width.ok() ? *width : 0);
        const double total = PoolWeight(changed, pool);
        if (total > 0) optimal += members * mean_weight / total;
      } else {
        for (PgIndex pg = 0; pg < pool.pg_count(); ++pg) {
          auto members = base.Members(pool.id(), pg);
          if (!members.ok()) continue;
          for (NodeId id : *members) optimal += id == off ? 1 : 0;
        }
      }
    }
    auto add = [&](ChurnFigures& figures, const PlacementMap& next) {
      for (const PoolSpec& pool : base.pools()) {
        const MoveCount moves = CountMoves(base, next, pool.id(), onto, off);
        figures.moved += static_cast<double>(moves.moved);
        figures.moved_elsewhere += static_cast<double>(moves.moved - moves.involving);
      }
      figures.optimal += optimal;
      ++figures.events;
    };
    add(result.update, *after);
    if (options.rebalance) add(result.rebalanced, *balanced);
  }
  return result;
}

}  // namespace granary::placement
