#include "placement/placement.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>

#include "placement/map_builder.h"
#include "placement/pool_topology.h"
#include "placement/stripe.h"

namespace granary::placement {

using internal::kMaxWidth;
using internal::kNone;
using internal::PoolTopology;

namespace {

constexpr uint64_t kGpuTag = 0x677075ULL;  // "gpu"

std::string SpecBytes(const PoolSpec& spec) {
  std::string out;
  spec.SerializeToString(&out);  // maps aside, field order is fixed; compared only for equality
  return out;
}

bool SameSpec(const PoolSpec& a, const PoolSpec& b) {
  if (a.node_selector_size() != b.node_selector_size()) return false;
  for (const auto& [k, v] : a.node_selector()) {
    auto it = b.node_selector().find(k);
    if (it == b.node_selector().end() || it->second != v) return false;
  }
  PoolSpec a2 = a, b2 = b;
  a2.clear_node_selector();
  b2.clear_node_selector();
  return SpecBytes(a2) == SpecBytes(b2);
}

// Same redundancy type, EC shape and failure domain: members can be kept.
bool SameShape(const PoolSpec& a, const PoolSpec& b) {
  if (internal::IsErasureCoded(a) != internal::IsErasureCoded(b)) return false;
  if (internal::PoolDomainLevel(a) != internal::PoolDomainLevel(b)) return false;
  if (internal::IsErasureCoded(a)) {
    return a.data_chunks() == b.data_chunks() && a.coding_chunks() == b.coding_chunks();
  }
  return true;
}

bool Contains(std::span<const uint32_t> list, uint32_t x) {
  return std::find(list.begin(), list.end(), x) != list.end();
}

}  // namespace

bool Node::operator==(const Node& other) const {
  return id == other.id && location.zone == other.location.zone &&
         location.rack == other.location.rack && location.host == other.location.host &&
         location.gpu == other.location.gpu && labels == other.labels && weight == other.weight &&
         state == other.state && used_bytes == other.used_bytes &&
         capacity_bytes == other.capacity_bytes;
}

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

Result<uint32_t> PoolWidth(const PoolSpec& pool) {
  const std::string name = fmt::format("pool '{}' (id {})", pool.name(), pool.id());
  // DESIGN §2 wants a power of two (so PGs split by doubling); the map itself works for any
  // count, which lets the simulator use round numbers.
  if (pool.pg_count() == 0 || pool.pg_count() > (1u << 20)) {
    return InvalidArgument(
        fmt::format("{}: pg_count {} is outside 1..2^20", name, pool.pg_count()));
  }
  if (internal::IsErasureCoded(pool)) {
    if (pool.data_chunks() < 1 || pool.data_chunks() > 16 || pool.coding_chunks() < 1 ||
        pool.coding_chunks() > 4) {
      return InvalidArgument(fmt::format("{}: ec:{}+{} needs 1 <= K <= 16 and 1 <= M <= 4", name,
                                         pool.data_chunks(), pool.coding_chunks()));
    }
    return pool.data_chunks() + pool.coding_chunks();
  }
  if (pool.replicas() < 1 || pool.replicas() > 5) {
    return InvalidArgument(
        fmt::format("{}: replicated:{} needs 1 <= N <= 5", name, pool.replicas()));
  }
  return pool.replicas();
}

// ---- MapBuilder: remapping ------------------------------------------------------------------

void MapBuilder::OrderMembers(const PoolSpec& spec, PgIndex pg, std::span<const Node> nodes,
                              std::span<const uint32_t> previous, std::span<uint32_t> slots) {
  if (internal::IsErasureCoded(spec)) return;
  std::array<uint32_t, kMaxWidth> ordered{};
  size_t n = 0;
  for (uint32_t node : previous) {
    if (node != kNone && Contains(slots, node)) ordered[n++] = node;
  }
  for (uint32_t node : slots) {
    if (!Contains(previous, node)) ordered[n++] = node;
  }
  if (spec.locality() == PREFER_GPU) {
    size_t best = n;
    uint64_t best_draw = 0;
    for (size_t i = 0; i < n; ++i) {
      if (!nodes[ordered[i]].location.gpu) continue;
      const uint64_t draw = StableHash(StableHash(kGpuTag, spec.id()) ^ pg, nodes[ordered[i]].id);
      if (best == n || draw > best_draw) {
        best = i;
        best_draw = draw;
      }
    }
    if (best != n) std::rotate(ordered.begin(), ordered.begin() + best, ordered.begin() + best + 1);
  }
  std::copy(ordered.begin(), ordered.begin() + n, slots.begin());
}

namespace {

struct PoolRemap {
  PoolRemap(const PoolSpec& spec_in, uint32_t width_in, const PoolTopology& topo_in,
            std::span<const Node> nodes_in)
      : spec(spec_in), width(width_in), topo(topo_in), nodes(nodes_in) {}
  const PoolSpec& spec;
  uint32_t width;
  const PoolTopology& topo;
  std::span<const Node> nodes;
  // Only when the previous map's members are kept:
  const PlacementMap* previous = nullptr;
  std::span<const NodeId> previous_members;
  uint32_t previous_width = 0;
  uint32_t previous_pg_count = 0;
  const std::unordered_map<NodeId, uint32_t>* node_index = nullptr;
  std::vector<uint8_t> gaining;   // per node: joined the pool or gained weight
  std::vector<uint8_t> shedding;  // per node: lost weight
  std::unordered_map<uint32_t, std::vector<uint32_t>> gaining_in_domain;  // domain -> nodes
  // Per node, kept current while PGs are remapped: members held, and the weight share.
  std::vector<double> count;
  std::vector<double> target;
  std::vector<double> high;  // most members a gaining node takes (share plus tolerance)
  std::vector<double> low;   // fewest members a node is left with when it makes room

  double Load(uint32_t node) const {
    return target[node] > 0 ? count[node] / target[node] : count[node];
  }
  void Replace(std::span<uint32_t> slots, size_t s, uint32_t node) {
    if (slots[s] != kNone) count[slots[s]] -= 1;
    slots[s] = node;
    count[node] += 1;
  }
};

// One PG: keep what may stay, let gaining nodes take their raw share, refill holes.
Status RemapPg(PoolRemap& ctx, PgIndex pg, std::span<uint32_t> slots,
               std::span<uint32_t> previous) {
  const PoolTopology& topo = ctx.topo;
  const uint32_t width = ctx.width;
  std::array<uint32_t, kMaxWidth> raw{};
  topo.Raw(pg, std::span<uint32_t>(raw.data(), width));
  std::span<const uint32_t> raw_span(raw.data(), width);

  auto domain_taken = [&](uint32_t node, size_t except_slot) {
    const uint32_t domain = topo.DomainOf(node);
    for (size_t s = 0; s < width; ++s) {
      if (s != except_slot && slots[s] != kNone && topo.DomainOf(slots[s]) == domain) return true;
    }
    return false;
  };

  if (ctx.previous != nullptr) {
    const PgIndex parent = pg % ctx.previous_pg_count;  // a split: PG p + k*P comes from p
    for (size_t s = 0; s < ctx.previous_width; ++s) {
      auto it = ctx.node_index->find(ctx.previous_members[parent * ctx.previous_width + s]);
      previous[s] = it == ctx.node_index->end() ? kNone : it->second;
    }
    for (size_t s = 0; s < width; ++s) slots[s] = s < ctx.previous_width ? previous[s] : kNone;
    for (size_t s = 0; s < width; ++s) {
      // A member on a node that is out, deselected or weightless must move; so must the later
      // of two members that now share a failure domain (labels changed).
      if (slots[s] != kNone && (!topo.Contains(slots[s]) || domain_taken(slots[s], s))) {
        ctx.count[slots[s]] -= 1;
        slots[s] = kNone;
      }
    }
    // Nodes that joined or gained weight take the raw draws that land on their failure domain
    // where the PG has no member in that domain yet, up to their share plus tolerance. (A draw
    // inside a domain the PG already uses would only swap members within the domain: pure
    // extra movement.) The member that makes room is a hole, else the most loaded member, so a
    // join also evens out the old nodes.
    for (uint32_t drawn : raw_span) {
      if (domain_taken(drawn, width)) continue;
      uint32_t node = ctx.gaining[drawn] ? drawn : kNone;
      if (node == kNone) {
        auto it = ctx.gaining_in_domain.find(topo.DomainOf(drawn));
        if (it == ctx.gaining_in_domain.end()) continue;
        for (uint32_t candidate : it->second) {
          if (node == kNone || ctx.Load(candidate) < ctx.Load(node)) node = candidate;
        }
      }
      if (ctx.count[node] + 1 > ctx.high[node]) continue;
      size_t victim = width;
      for (size_t s = 0; s < width && victim == width; ++s) {
        if (slots[s] == kNone) victim = s;
      }
      if (victim == width) {
        for (size_t s = 0; s < width; ++s) {
          if (ctx.gaining[slots[s]]) continue;  // never displace another newcomer
          if (victim == width || ctx.Load(slots[s]) > ctx.Load(slots[victim])) victim = s;
        }
      }
      // Taking the draw must not push the member that makes room below its allowance: the
      // balancer would then have to refill it from elsewhere (a second move for one join).
      if (victim == width ||
          (slots[victim] != kNone && ctx.count[slots[victim]] - 1 < ctx.low[slots[victim]])) {
        continue;
      }
      ctx.Replace(slots, victim, node);
    }
    // Nodes that lost weight give up members the raw draw no longer puts on them.
    for (size_t s = 0; s < width; ++s) {
      if (slots[s] == kNone || !ctx.shedding[slots[s]] || Contains(raw_span, slots[s])) continue;
      for (uint32_t node : raw_span) {
        if (!Contains(slots, node) && topo.Accepts(node) && !domain_taken(node, s)) {
          ctx.Replace(slots, s, node);
          break;
        }
      }
    }
  } else {
    for (size_t s = 0; s < width; ++s) {
      slots[s] = kNone;
      if (topo.Accepts(raw[s])) ctx.Replace(slots, s, raw[s]);
    }
  }

  // Holes: the least loaded of a few candidates — the first raw choice that fits and
  // independent draws among accepting nodes in unused domains (the power of several choices
  // keeps a leaver's members from piling onto a few nodes); if every free domain is down or
  // nearly full, any node in an unused domain.
  for (size_t s = 0; s < width; ++s) {
    if (slots[s] != kNone) continue;
    uint32_t best = kNone;
    for (uint32_t node : raw_span) {
      if (!Contains(slots, node) && topo.Accepts(node) && !domain_taken(node, s)) {
        best = node;
        break;
      }
    }
    std::array<uint32_t, kMaxWidth> taken{};
    size_t taken_count = 0;
    for (uint32_t node : slots) {
      if (node != kNone) taken[taken_count++] = topo.DomainOf(node);
    }
    std::span<const uint32_t> taken_span(taken.data(), taken_count);
    constexpr uint32_t kDraws = 3;
    for (uint32_t k = 0; k < kDraws; ++k) {
      const uint32_t stream = width + static_cast<uint32_t>(s) + k * kMaxWidth;
      const uint32_t node = topo.Pick(pg, stream, taken_span, true);
      if (node != kNone && (best == kNone || ctx.Load(node) < ctx.Load(best))) best = node;
    }
    if (best == kNone) best = topo.Pick(pg, width + static_cast<uint32_t>(s), taken_span, false);
    if (best == kNone) {
      return Internal(
          fmt::format("pool {} pg {}: no datanode left for member {}", ctx.spec.id(), pg, s));
    }
    ctx.Replace(slots, s, best);
  }
  MapBuilder::OrderMembers(ctx.spec, pg, ctx.nodes, previous, slots);
  return Status::Ok();
}

}  // namespace

Result<PlacementMap> MapBuilder::Update(const PlacementMap& previous,
                                        std::span<const Node> nodes_in,
                                        std::span<const PoolSpec> pools_in,
                                        const UpdateOptions& options) {
  if (options.epoch != 0 && options.epoch <= previous.epoch_) {
    return InvalidArgument(fmt::format("new PG map epoch {} is not after the current epoch {}",
                                       options.epoch, previous.epoch_));
  }
  const Epoch epoch = options.epoch != 0 ? options.epoch : previous.epoch_ + 1;

  PlacementMap map;
  map.epoch_ = epoch;
  map.nodes_.assign(nodes_in.begin(), nodes_in.end());
  std::sort(map.nodes_.begin(), map.nodes_.end(),
            [](const Node& a, const Node& b) { return a.id < b.id; });
  for (size_t i = 1; i < map.nodes_.size(); ++i) {
    if (map.nodes_[i].id == map.nodes_[i - 1].id) {
      return InvalidArgument(fmt::format("datanode {} listed twice", map.nodes_[i].id));
    }
  }
  map.specs_.assign(pools_in.begin(), pools_in.end());
  std::sort(map.specs_.begin(), map.specs_.end(),
            [](const PoolSpec& a, const PoolSpec& b) { return a.id() < b.id(); });
  for (size_t i = 1; i < map.specs_.size(); ++i) {
    if (map.specs_[i].id() == map.specs_[i - 1].id()) {
      return InvalidArgument(fmt::format("pool {} listed twice", map.specs_[i].id()));
    }
  }
  std::unordered_map<NodeId, uint32_t> node_index;
  for (uint32_t i = 0; i < map.nodes_.size(); ++i) node_index[map.nodes_[i].id] = i;

  bool changed = map.nodes_ != previous.nodes_ || map.specs_.size() != previous.specs_.size();
  for (size_t p = 0; !changed && p < map.specs_.size(); ++p) {
    changed = !SameSpec(map.specs_[p], previous.specs_[p]);
  }

  map.pool_maps_.resize(map.specs_.size());
  for (size_t p = 0; p < map.specs_.size(); ++p) {
    const PoolSpec& spec = map.specs_[p];
    auto width = PoolWidth(spec);
    GRANARY_TRY(width);
    auto topo = PoolTopology::Build(map.nodes_, spec, *width);
    GRANARY_TRY(topo);
    PoolRemap ctx(spec, *width, *topo, map.nodes_);
    const size_t node_count = map.nodes_.size();
    ctx.gaining.assign(node_count, 0);
    ctx.shedding.assign(node_count, 0);
    ctx.count.assign(node_count, 0);
    ctx.target.assign(node_count, 0);
    ctx.high.assign(node_count, 0);
    ctx.low.assign(node_count, 0);
    const double members = static_cast<double>(spec.pg_count()) * *width;
    for (uint32_t i = 0; i < node_count; ++i) {
      if (!topo->Contains(i) || topo->TotalWeight() <= 0) continue;
      ctx.target[i] = members * topo->Weight(i) / topo->TotalWeight();
      ctx.high[i] = std::max(std::ceil(ctx.target[i]),
                             std::floor(ctx.target[i] * (1 + options.balance_tolerance)));
      ctx.low[i] = std::min(std::floor(ctx.target[i]),
                            std::ceil(ctx.target[i] * (1 - options.balance_tolerance)));
    }

    const PoolSpec* old_spec = previous.FindPool(spec.id());
    const PoolMap* old_map = previous.FindPoolMap(spec.id());
    const uint32_t pg_count = spec.pg_count();
    const bool split = old_spec != nullptr && std::has_single_bit(old_spec->pg_count()) &&
                       std::has_single_bit(pg_count) && pg_count > old_spec->pg_count();
    if (old_spec != nullptr && SameShape(*old_spec, spec) &&
        (pg_count == old_spec->pg_count() || split)) {
      ctx.previous = &previous;
      ctx.previous_members = old_map->members;
      ctx.previous_width = old_map->width;
      ctx.previous_pg_count = old_spec->pg_count();
      ctx.node_index = &node_index;
      for (uint32_t i = 0; i < map.nodes_.size(); ++i) {
        const Node& node = map.nodes_[i];
        const Node* old_node = previous.FindNode(node.id);
        const double old_weight = old_node != nullptr && internal::EligibleFor(*old_node, *old_spec)
                                      ? old_node->weight
                                      : 0;
        const double weight = topo->Contains(i) ? node.weight : 0;
        // 1% hysteresis: capacity reports that wobble must not churn members.
        ctx.gaining[i] = topo->Accepts(i) && (old_weight <= 0 || weight > old_weight * 1.01);
        ctx.shedding[i] = weight > 0 && old_weight > weight * 1.01;
        if (ctx.gaining[i]) ctx.gaining_in_domain[topo->DomainOf(i)].push_back(i);
      }
      for (PgIndex pg = 0; pg < pg_count; ++pg) {
        const PgIndex parent = pg % ctx.previous_pg_count;
        for (size_t s = 0; s < ctx.previous_width; ++s) {
          auto it = node_index.find(old_map->members[parent * ctx.previous_width + s]);
          if (it != node_index.end()) ctx.count[it->second] += 1;
        }
      }
    }

    PoolMap& pool = map.pool_maps_[p];
    pool.width = *width;
    pool.members.resize(static_cast<size_t>(pg_count) * *width);
    pool.pg_epochs.assign(pg_count, epoch);
    std::array<uint32_t, kMaxWidth> slots{};
    std::array<uint32_t, kMaxWidth> prev{};
    for (PgIndex pg = 0; pg < pg_count; ++pg) {
      prev.fill(kNone);
      std::span<uint32_t> slot_span(slots.data(), *width);
      GRANARY_TRY(RemapPg(ctx, pg, slot_span,
                          std::span<uint32_t>(prev.data(), ctx.previous ? ctx.previous_width : 0)));
      NodeId* out = &pool.members[static_cast<size_t>(pg) * *width];
      for (size_t s = 0; s < *width; ++s) out[s] = map.nodes_[slots[s]].id;
      if (ctx.previous != nullptr && pg < ctx.previous_pg_count && *width == ctx.previous_width &&
          std::equal(out, out + *width,
                     old_map->members.begin() + static_cast<ptrdiff_t>(pg) * *width)) {
        pool.pg_epochs[pg] = old_map->pg_epochs[pg];
      } else {
        changed = true;
      }
    }
    if (options.balance) {
      auto moved = BalancePool(map.nodes_, node_index, spec, pool, options.balance_tolerance,
                               options.max_balance_moves, epoch, ctx.previous == nullptr);
      GRANARY_TRY(moved);
      changed = changed || *moved > 0;
    }
    TrackMoves(spec, ctx.previous != nullptr ? old_map : nullptr, pool, node_index, epoch);
  }
  if (!changed && options.epoch == 0) return previous;  // nothing to publish
  return MapBuilder::Index(map);
}

namespace {

// Whether two member lists hold the same data: the same slots for EC pools (slot i is fragment
// i), the same set for replicated ones (reordering a chain moves no data).
bool SameHolders(bool erasure_coded, std::span<const NodeId> a, std::span<const NodeId> b) {
  if (erasure_coded) return std::equal(a.begin(), a.end(), b.begin(), b.end());
  std::array<NodeId, kMaxWidth> x{}, y{};
  std::copy(a.begin(), a.end(), x.begin());
  std::copy(b.begin(), b.end(), y.begin());
  std::sort(x.begin(), x.begin() + a.size());
  std::sort(y.begin(), y.begin() + b.size());
  return a.size() == b.size() && std::equal(x.begin(), x.begin() + a.size(), y.begin());
}

}  // namespace

void MapBuilder::TrackMoves(const PoolSpec& spec, const PoolMap* old, PoolMap& now,
                            const std::unordered_map<NodeId, uint32_t>& node_index, Epoch epoch) {
  const uint32_t pg_count = spec.pg_count();
  const size_t w = now.width;
  std::vector<Epoch> move_epochs(pg_count, 0);
  std::vector<NodeId> from(pg_count * w, kNoNode);
  // A split or a reshape re-places the data wholesale; it is not tracked as a move.
  if (old != nullptr && old->width == w && old->pg_epochs.size() == pg_count) {
    const bool ec = internal::IsErasureCoded(spec);
    for (PgIndex pg = 0; pg < pg_count; ++pg) {
      const size_t at = static_cast<size_t>(pg) * w;
      std::span<const NodeId> cur(now.members.data() + at, w);
      std::span<const NodeId> prev(old->members.data() + at, w);
      const bool was_moving = !old->move_epochs.empty() && old->move_epochs[pg] != 0;
      // The list that holds the PG's data: the previous members, or, while a move is still
      // filling its new members, the list that move started from.
      std::span<const NodeId> holders =
          was_moving ? std::span<const NodeId>(old->from.data() + at, w) : prev;
      if (SameHolders(ec, holders, cur)) {
        if (was_moving) now.pg_epochs[pg] = epoch;  // moved back: the dual write set is gone
        continue;
      }
      const bool same_members = std::equal(cur.begin(), cur.end(), prev.begin(), prev.end());
      move_epochs[pg] = was_moving && same_members ? old->move_epochs[pg] : epoch;
      if (move_epochs[pg] == epoch) now.pg_epochs[pg] = epoch;
      for (size_t s = 0; s < w; ++s) {
        from[at + s] = node_index.contains(holders[s]) ? holders[s] : kNoNode;
      }
    }
  }
  now.move_epochs = std::move(move_epochs);
  now.from = std::move(from);
}

// ---- PlacementMap -----------------------------------------------------------------------------

Result<PlacementMap> PlacementMap::Build(const std::vector<Node>& nodes,
                                         const std::vector<PoolSpec>& pools,
                                         const UpdateOptions& options) {
  return PlacementMap().Update(nodes, pools, options);
}

Result<PlacementMap> PlacementMap::Update(const std::vector<Node>& nodes,
                                          const std::vector<PoolSpec>& pools,
                                          const UpdateOptions& options) const {
  auto map = MapBuilder::Update(*this, nodes, pools, options);
  if (!map.ok()) return map.status().WithContext(fmt::format("PG map epoch {}", epoch_ + 1));
  return map;
}

Result<PlacementMap> PlacementMap::Update(const std::vector<Node>& nodes,
                                          const UpdateOptions& options) const {
  return Update(nodes, specs_, options);
}

Result<PlacementMap> PlacementMap::Balance(double tolerance, uint64_t max_moves,
                                           Epoch epoch) const {
  if (epoch != 0 && epoch <= epoch_) {
    return InvalidArgument(
        fmt::format("balance: epoch {} is not after the current epoch {}", epoch, epoch_));
  }
  PlacementMap map = *this;
  map.epoch_ = epoch != 0 ? epoch : epoch_ + 1;
  uint64_t moved = 0;
  for (size_t p = 0; p < specs_.size(); ++p) {
    auto n = MapBuilder::BalancePool(map.nodes_, map.node_index_, specs_[p], map.pool_maps_[p],
                                     tolerance, max_moves == 0 ? 0 : max_moves - moved, map.epoch_,
                                     true);
    if (!n.ok()) return n.status().WithContext("balance");
    moved += *n;
    MapBuilder::TrackMoves(specs_[p], &pool_maps_[p], map.pool_maps_[p], map.node_index_,
                           map.epoch_);
    if (max_moves != 0 && moved >= max_moves) break;
  }
  if (moved == 0 && epoch == 0) return *this;
  return MapBuilder::Index(map);
}

void PlacementMap::Index() {
  node_index_.clear();
  for (uint32_t i = 0; i < nodes_.size(); ++i) node_index_[nodes_[i].id] = i;
  pool_index_.clear();
  for (uint32_t p = 0; p < specs_.size(); ++p) {
    pool_index_[specs_[p].id()] = p;
    PoolMap& pool = pool_maps_[p];
    pool.primaries_by_host.clear();
    for (PgIndex pg = 0; pg < specs_[p].pg_count(); ++pg) {
      const Node* primary = FindNode(pool.members[static_cast<size_t>(pg) * pool.width]);
      if (primary != nullptr) pool.primaries_by_host[primary->location.host].push_back(pg);
    }
  }
}

const PlacementMap::PoolMap* PlacementMap::FindPoolMap(PoolId id) const {
  auto it = pool_index_.find(id);
  return it == pool_index_.end() ? nullptr : &pool_maps_[it->second];
}

const Node* PlacementMap::FindNode(NodeId id) const {
  auto it = node_index_.find(id);
  return it == node_index_.end() ? nullptr : &nodes_[it->second];
}

const PoolSpec* PlacementMap::FindPool(PoolId id) const {
  auto it = pool_index_.find(id);
  return it == pool_index_.end() ? nullptr : &specs_[it->second];
}

Result<std::span<const NodeId>> PlacementMap::Members(PoolId pool, PgIndex pg) const {
  auto it = pool_index_.find(pool);
  if (it == pool_index_.end()) {
    return NotFound(fmt::format("pool {} not in PG map epoch {}", pool, epoch_));
  }
  const PoolMap& map = pool_maps_[it->second];
  if (pg >= specs_[it->second].pg_count()) {
    return InvalidArgument(
        fmt::format("pool {} has {} PGs, not PG {}", pool, specs_[it->second].pg_count(), pg));
  }
  return std::span<const NodeId>(map.members.data() + static_cast<size_t>(pg) * map.width,
                                 map.width);
}

Result<Epoch> PlacementMap::PgEpoch(PoolId pool, PgIndex pg) const {
  auto it = pool_index_.find(pool);
  if (it == pool_index_.end()) {
    return NotFound(fmt::format("pool {} not in PG map epoch {}", pool, epoch_));
  }
  if (pg >= specs_[it->second].pg_count()) {
    return InvalidArgument(
        fmt::format("pool {} has {} PGs, not PG {}", pool, specs_[it->second].pg_count(), pg));
  }
  return pool_maps_[it->second].pg_epochs[pg];
}

Result<std::span<const NodeId>> PlacementMap::MovingFrom(PoolId pool, PgIndex pg) const {
  auto members = Members(pool, pg);  // validates pool and pg
  GRANARY_TRY(members);
  const PoolMap& map = *FindPoolMap(pool);
  if (map.move_epochs.empty() || map.move_epochs[pg] == 0) return std::span<const NodeId>();
  return std::span<const NodeId>(map.from.data() + static_cast<size_t>(pg) * map.width, map.width);
}

Result<Epoch> PlacementMap::MoveEpoch(PoolId pool, PgIndex pg) const {
  auto members = Members(pool, pg);
  GRANARY_TRY(members);
  const PoolMap& map = *FindPoolMap(pool);
  return map.move_epochs.empty() ? 0 : map.move_epochs[pg];
}

uint64_t PlacementMap::MovingPgs() const {
  uint64_t n = 0;
  for (const PoolMap& map : pool_maps_) {
    n += std::count_if(map.move_epochs.begin(), map.move_epochs.end(),
                       [](Epoch e) { return e != 0; });
  }
  return n;
}

std::vector<NodeId> PlacementMap::FillingMembers(PoolId pool, PgIndex pg) const {
  auto members = Members(pool, pg);
  auto from = MovingFrom(pool, pg);
  std::vector<NodeId> filling;
  if (!members.ok() || !from.ok() || from->empty()) return filling;
  const PoolSpec* spec = FindPool(pool);
  const bool ec = internal::IsErasureCoded(*spec);
  for (size_t s = 0; s < members->size(); ++s) {
    const NodeId id = (*members)[s];
    const bool holds = ec ? (*from)[s] == id : Contains(*from, id);
    if (!holds) filling.push_back(id);
  }
  return filling;
}

Result<PlacementMap> PlacementMap::CompleteMoves(std::span<const MoveRef> moves, Epoch epoch,
                                                 uint64_t* completed) const {
  if (epoch != 0 && epoch <= epoch_) {
    return InvalidArgument(
        fmt::format("complete moves: epoch {} is not after the current epoch {}", epoch, epoch_));
  }
  PlacementMap map = *this;
  map.epoch_ = epoch != 0 ? epoch : epoch_ + 1;
  uint64_t n = 0;
  for (const MoveRef& ref : moves) {
    auto it = map.pool_index_.find(ref.pool);
    if (it == map.pool_index_.end() || ref.pg >= map.specs_[it->second].pg_count()) continue;
    PoolMap& pool = map.pool_maps_[it->second];
    if (pool.move_epochs.empty() || ref.move_epoch == 0 ||
        pool.move_epochs[ref.pg] != ref.move_epoch) {
      continue;
    }
    pool.move_epochs[ref.pg] = 0;
    std::fill_n(pool.from.begin() + static_cast<ptrdiff_t>(ref.pg) * pool.width, pool.width,
                kNoNode);
    pool.pg_epochs[ref.pg] = map.epoch_;
    ++n;
  }
  if (completed != nullptr) *completed = n;
  return map;
}

std::vector<NodeId> PlacementMap::OrderByDistance(std::span<const NodeId> members,
                                                  const Location& reader) const {
  std::vector<std::pair<int, NodeId>> keyed;
  keyed.reserve(members.size());
  for (NodeId id : members) {
    const Node* node = FindNode(id);
    const int rank = node == nullptr || node->state != NodeState::kUp
                         ? 4 + 3  // after every up node, whatever its distance
                         : Distance(reader, node->location);
    keyed.emplace_back(rank, id);
  }
  std::stable_sort(keyed.begin(), keyed.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<NodeId> ordered;
  ordered.reserve(keyed.size());
  for (const auto& [rank, id] : keyed) ordered.push_back(id);
  return ordered;
}

std::span<const PgIndex> PlacementMap::PgsWithPrimaryOnHost(PoolId pool,
                                                            std::string_view host) const {
  const PoolMap* map = FindPoolMap(pool);
  if (map == nullptr) return {};
  auto it = map->primaries_by_host.find(std::string(host));
  if (it == map->primaries_by_host.end()) return {};
  return it->second;
}

Result<BalanceStats> PlacementMap::Stats(PoolId pool) const {
  return MapBuilder::Stats(*this, pool);
}

std::string PlacementMap::Serialize() const { return MapBuilder::Serialize(*this); }

Result<PlacementMap> PlacementMap::Deserialize(std::string_view bytes) {
  return MapBuilder::Deserialize(bytes);
}

bool PlacementMap::operator==(const PlacementMap& other) const {
  if (epoch_ != other.epoch_ || nodes_ != other.nodes_ || specs_.size() != other.specs_.size()) {
    return false;
  }
  for (size_t p = 0; p < specs_.size(); ++p) {
    if (!SameSpec(specs_[p], other.specs_[p]) ||
        pool_maps_[p].members != other.pool_maps_[p].members ||
        pool_maps_[p].pg_epochs != other.pool_maps_[p].pg_epochs ||
        pool_maps_[p].move_epochs != other.pool_maps_[p].move_epochs ||
        pool_maps_[p].from != other.pool_maps_[p].from) {
      return false;
    }
  }
  return true;
}

}  // namespace granary::placement
