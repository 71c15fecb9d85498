// The upmap balancer: explicit per-PG overrides that bring every datanode's PG-member count to
// within a tolerance of its weight-proportional share, moving as few members as it can.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "placement/map_builder.h"
#include "placement/pool_topology.h"

namespace granary::placement {

using internal::kMaxWidth;
using internal::kNone;
using internal::PoolTopology;

namespace {

// Candidates examined per move: the least (most) loaded nodes first.
constexpr int kCandidatesPerMove = 64;

struct Shares {
  std::vector<double> target;  // weight-proportional member count; 0 = not in the pool
  std::vector<int64_t> high;   // most members allowed within tolerance
  std::vector<int64_t> low;    // fewest members allowed within tolerance
};

Shares ComputeShares(const PoolTopology& topo, size_t node_count, uint64_t members,
                     double tolerance) {
  Shares shares;
  shares.target.assign(node_count, 0);
  shares.high.assign(node_count, 0);
  shares.low.assign(node_count, 0);
  const double total_weight = topo.TotalWeight();
  for (uint32_t i = 0; i < node_count; ++i) {
    if (!topo.Contains(i) || total_weight <= 0) continue;
    const double t = static_cast<double>(members) * topo.Weight(i) / total_weight;
    shares.target[i] = t;
    // Rounded outwards so a whole number of members always fits.
    shares.high[i] =
        std::max<int64_t>(static_cast<int64_t>(std::ceil(t - 1e-9)),
                          static_cast<int64_t>(std::floor(t * (1 + tolerance) + 1e-9)));
    shares.low[i] = std::min<int64_t>(static_cast<int64_t>(std::floor(t + 1e-9)),
                                      static_cast<int64_t>(std::ceil(t * (1 - tolerance) - 1e-9)));
  }
  return shares;
}

}  // namespace

Result<uint64_t> MapBuilder::BalancePool(const std::vector<Node>& nodes,
                                         const std::unordered_map<NodeId, uint32_t>& node_index,
                                         const PoolSpec& spec, PoolMap& pool, double tolerance,
                                         uint64_t max_moves, Epoch epoch, bool whole) {
  const uint32_t width = pool.width;
  const uint32_t pg_count = spec.pg_count();
  auto topo_or = PoolTopology::Build(nodes, spec, width);
  GRANARY_TRY(topo_or);
  const PoolTopology& topo = *topo_or;
  const size_t n = nodes.size();
  const size_t slots = static_cast<size_t>(pg_count) * width;

  std::vector<uint32_t> members(slots);
  std::vector<int64_t> count(n, 0);
  std::vector<std::vector<uint32_t>> slots_of(n);
  for (size_t g = 0; g < slots; ++g) {
    auto it = node_index.find(pool.members[g]);
    if (it == node_index.end()) return Internal("balance: PG member missing from node table");
    members[g] = it->second;
    ++count[it->second];
    slots_of[it->second].push_back(static_cast<uint32_t>(g));
  }
  std::vector<uint32_t> raw(slots);
  for (PgIndex pg = 0; pg < pg_count; ++pg) {
    topo.Raw(pg, std::span<uint32_t>(raw.data() + static_cast<size_t>(pg) * width, width));
  }
  // Hysteresis: a node outside the allowance is brought well inside it (kAim of the
  // tolerance), so that the small shift of every share when a node joins or leaves does not
  // push a crowd of nodes sitting exactly on the edge back out.
  constexpr double kAim = 0.75;
  const Shares shares = ComputeShares(topo, n, slots, tolerance);
  const Shares aim = ComputeShares(topo, n, slots, tolerance * kAim);
  // A whole balance (a pool's first placement, an explicit Balance) acts on every node outside
  // the aim, so no node is left sitting on the allowance's edge to start with.
  const Shares& trigger = whole ? aim : shares;
  std::vector<uint8_t> shedding(n, 0), filling(n, 0);
  auto ratio = [&](uint32_t i) { return static_cast<double>(count[i]) / shares.target[i]; };
  std::set<std::pair<double, uint32_t>> by_load;
  for (uint32_t i = 0; i < n; ++i) {
    if (topo.Contains(i) && shares.target[i] > 0) by_load.emplace(ratio(i), i);
  }
  if (by_load.empty()) return uint64_t{0};

  // Change in sum((count - target)^2 / target) when one member moves from `from` to `to`; every
  // move must lower it, which bounds the work and forbids moves that only shuffle load.
  auto gain = [&](uint32_t from, uint32_t to) {
    const double tf = shares.target[from], tt = shares.target[to];
    return (1 - 2 * (static_cast<double>(count[from]) - tf)) / tf +
           (1 + 2 * (static_cast<double>(count[to]) - tt)) / tt;
  };
  // `to` may replace the member in slot g: not already a member, and its failure domain unused
  // by the PG's other members.
  auto fits = [&](uint32_t g, uint32_t to) {
    const size_t base = g - g % width;
    const uint32_t domain = topo.DomainOf(to);
    for (size_t s = base; s < base + width; ++s) {
      if (s == g) continue;
      if (members[s] == to || topo.DomainOf(members[s]) == domain) return false;
    }
    return true;
  };
  std::vector<uint8_t> pg_changed(pg_count, 0);
  uint64_t moves = 0;
  auto apply = [&](uint32_t g, uint32_t to) {
    const uint32_t from = members[g];
    by_load.erase({ratio(from), from});
    by_load.erase({ratio(to), to});
    members[g] = to;
    --count[from];
    ++count[to];
    auto& list = slots_of[from];
    list.erase(std::find(list.begin(), list.end(), g));
    slots_of[to].push_back(g);
    by_load.emplace(ratio(from), from);
    by_load.emplace(ratio(to), to);
    pg_changed[g / width] = 1;
    ++moves;
  };
  auto can_take = [&](uint32_t to) { return topo.Accepts(to) && count[to] + 1 <= aim.high[to]; };

  // Passes repeat while they move something: a node found stuck early in a pass may have
  // become movable after later moves.
  std::vector<uint8_t> stuck_high(n, 0), stuck_low(n, 0);
  for (uint64_t pass_start = ~uint64_t{0}; pass_start != moves;) {
    pass_start = moves;
    std::fill(stuck_high.begin(), stuck_high.end(), 0);
    std::fill(stuck_low.begin(), stuck_low.end(), 0);
    // Receivers never go above their aim, so once no node is left to shed, none appears
    // again in this pass (and likewise for nodes to fill).
    bool shed_done = false;
    while (max_moves == 0 || moves < max_moves) {
      // The most loaded node above its allowance sheds one member: preferably back to the raw
      // choice of that PG (undoing an override), else to the least loaded node that fits.
      uint32_t source = kNone;
      for (auto it = by_load.rbegin();
           !shed_done && it != by_load.rend() && it->first > 1 + tolerance * kAim * 0.5 - 1e-9;
           ++it) {
        const uint32_t i = it->second;
        if (stuck_high[i]) continue;
        if (count[i] > trigger.high[i]) shedding[i] = 1;
        if (shedding[i] && count[i] > aim.high[i]) {
          source = i;
          break;
        }
      }
      shed_done = source == kNone;
      if (source != kNone) {
        bool moved = false;
        for (uint32_t g : slots_of[source]) {
          const size_t base = g - g % width;
          for (size_t s = base; s < base + width && !moved; ++s) {
            const uint32_t to = raw[s];
            if (to != kNone && can_take(to) && gain(source, to) < -1e-12 && fits(g, to)) {
              apply(g, to);
              moved = true;
            }
          }
          if (moved) break;
        }
        int examined = 0;
        for (auto it = by_load.begin(); !moved && it != by_load.end(); ++it) {
          const uint32_t to = it->second;
          if (to == source || !can_take(to)) continue;
          if (++examined > kCandidatesPerMove || gain(source, to) >= -1e-12) break;
          for (uint32_t g : slots_of[source]) {
            if (fits(g, to)) {
              apply(g, to);
              moved = true;
              break;
            }
          }
        }
        if (!moved) stuck_high[source] = 1;
        continue;
      }
      // The least loaded node below its allowance pulls one member from the most loaded.
      uint32_t sink = kNone;
      for (auto it = by_load.begin(); it != by_load.end() && it->first < 1 - tolerance * kAim * 0.5;
           ++it) {
        const uint32_t i = it->second;
        if (stuck_low[i] || !topo.Accepts(i)) continue;
        if (count[i] < trigger.low[i]) filling[i] = 1;
        if (filling[i] && count[i] < aim.low[i]) {
          sink = i;
          break;
        }
      }
      if (sink == kNone) break;
      bool moved = false;
      int examined = 0;
      for (auto it = by_load.rbegin(); !moved && it != by_load.rend(); ++it) {
        const uint32_t from = it->second;
        if (from == sink || count[from] - 1 < aim.low[from]) continue;
        if (++examined > kCandidatesPerMove || gain(from, sink) >= -1e-12) break;
        for (uint32_t g : slots_of[from]) {
          if (fits(g, sink)) {
            apply(g, sink);
            moved = true;
            break;
          }
        }
      }
      if (!moved) stuck_low[sink] = 1;
    }
  }
  if (moves == 0) return moves;

  std::array<uint32_t, kMaxWidth> previous{};
  for (PgIndex pg = 0; pg < pg_count; ++pg) {
    if (!pg_changed[pg]) continue;
    const size_t base = static_cast<size_t>(pg) * width;
    for (size_t s = 0; s < width; ++s) previous[s] = node_index.at(pool.members[base + s]);
    std::span<uint32_t> slot_span(members.data() + base, width);
    OrderMembers(spec, pg, nodes, std::span<const uint32_t>(previous.data(), width), slot_span);
    for (size_t s = 0; s < width; ++s) pool.members[base + s] = nodes[members[base + s]].id;
    pool.pg_epochs[pg] = epoch;
  }
  return moves;
}

Result<BalanceStats> MapBuilder::Stats(const PlacementMap& map, PoolId pool_id) {
  const PoolSpec* spec = map.FindPool(pool_id);
  const PoolMap* pool = map.FindPoolMap(pool_id);
  if (spec == nullptr || pool == nullptr) return NotFound(fmt::format("pool {}", pool_id));
  auto topo = PoolTopology::Build(map.nodes_, *spec, pool->width);
  GRANARY_TRY(topo);
  const size_t n = map.nodes_.size();
  const uint32_t width = pool->width;
  std::vector<double> count(n, 0);
  BalanceStats stats;
  stats.members = pool->members.size();
  std::array<uint32_t, kMaxWidth> raw{};
  for (PgIndex pg = 0; pg < spec->pg_count(); ++pg) {
    topo->Raw(pg, std::span<uint32_t>(raw.data(), width));
    for (size_t s = 0; s < width; ++s) {
      const uint32_t node = map.node_index_.at(pool->members[static_cast<size_t>(pg) * width + s]);
      count[node] += 1;
      if (std::find(raw.begin(), raw.begin() + width, node) == raw.begin() + width) {
        ++stats.overrides;
      }
    }
  }
  const Shares shares = ComputeShares(*topo, n, stats.members, 0);
  double sum = 0, sum_sq = 0;
  stats.min_over_mean = std::numeric_limits<double>::infinity();
  for (uint32_t i = 0; i < n; ++i) {
    if (shares.target[i] <= 0) continue;
    const double r = count[i] / shares.target[i];
    ++stats.nodes;
    sum += r;
    sum_sq += r * r;
    stats.max_over_mean = std::max(stats.max_over_mean, r);
    stats.min_over_mean = std::min(stats.min_over_mean, r);
  }
  if (stats.nodes == 0) {
    stats.min_over_mean = 0;
    return stats;
  }
  const double mean = sum / stats.nodes;
  stats.stddev_over_mean = std::sqrt(std::max(0.0, sum_sq / stats.nodes - mean * mean));
  return stats;
}

}  // namespace granary::placement
