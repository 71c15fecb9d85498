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

// Every PG's raw rendezvous members as node ids, pg-major.
Result<std::vector<NodeId>> RawMembers(const std::vector<Node>& nodes, const PoolSpec& pool) {
  auto width = PoolWidth(pool);
  GRANARY_TRY(width);
  std::vector<Node> sorted = nodes;
  std::sort(sorted.begin(), sorted.end(), [](const Node& a, const Node& b) { return a.id < b.id; });
  auto topo = internal::PoolTopology::Build(sorted, pool, *width);
  GRANARY_TRY(topo);
  std::vector<NodeId> out(static_cast<size_t>(pool.pg_count()) * *width);
  std::vector<uint32_t> slots(*width);
  for (PgIndex pg = 0; pg < pool.pg_count(); ++pg) {
    topo->Raw(pg, slots);
    for (size_t s = 0; s < *width; ++s) out[pg * *width + s] = sorted[slots[s]].id;
  }
  return out;
}

// Members that differ between two pg-major member arrays (sets for replicated pools, slots for
// EC pools); `involving` as in CountMoves.
MoveCount CountRawMoves(const std::vector<NodeId>& before, const std::vector<NodeId>& after,
                        uint32_t width, bool ec, NodeId onto, NodeId off) {
  MoveCount count;
  for (size_t base = 0; base < after.size(); base += width) {
    auto old_first = before.begin() + static_cast<ptrdiff_t>(base);
    auto new_first = after.begin() + static_cast<ptrdiff_t>(base);
    const bool lost_off = off != kNoNode &&
                          std::find(old_first, old_first + width, off) != old_first + width &&
                          std::find(new_first, new_first + width, off) == new_first + width;
    bool off_counted = false;
    for (size_t s = 0; s < width; ++s) {
      const bool moved =
          ec ? before[base + s] != after[base + s]
             : std::find(old_first, old_first + width, after[base + s]) == old_first + width;
      if (!moved) continue;
      ++count.moved;
      if (after[base + s] == onto || (ec ? before[base + s] == off : lost_off && !off_counted)) {
        ++count.involving;
        off_counted = off_counted || !ec;
      }
    }
  }
  return count;
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
  std::vector<std::vector<NodeId>> raw_before;
  for (const PoolSpec& pool : base.pools()) {
    auto raw = RawMembers(nodes, pool);
    GRANARY_TRY(raw);
    raw_before.push_back(std::move(*raw));
  }

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
      UpdateOptions with_balance = update;
      with_balance.balance = true;
      balanced = base.Update(changed, with_balance);
      if (!balanced.ok()) {
        return balanced.status().WithContext(fmt::format("churn event {}", event));
      }
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
    for (size_t p = 0; p < base.pools().size(); ++p) {
      const PoolSpec& pool = base.pools()[p];
      auto raw = RawMembers(changed, pool);
      GRANARY_TRY(raw);
      const uint32_t width = static_cast<uint32_t>(raw->size() / pool.pg_count());
      const MoveCount moves =
          CountRawMoves(raw_before[p], *raw, width, internal::IsErasureCoded(pool), onto, off);
      result.raw_rendezvous.moved += static_cast<double>(moves.moved);
      result.raw_rendezvous.moved_elsewhere += static_cast<double>(moves.moved - moves.involving);
    }
    result.raw_rendezvous.optimal += optimal;
    ++result.raw_rendezvous.events;
  }
  return result;
}

}  // namespace granary::placement
