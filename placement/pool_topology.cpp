#include "placement/pool_topology.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <string_view>
#include <tuple>

#include "placement/stripe.h"

namespace granary::placement::internal {

namespace {

// Wide buckets are split into about sqrt(n) hash-chosen virtual groups so that a draw costs
// O(sqrt(n)) per level instead of O(n) — a flat rack of 10,000 datanodes stays fast. Grouping
// only changes which node the raw draw prefers, and Update never moves members just because the
// raw preference shifted, so it costs no data movement.
constexpr size_t kMaxFanout = 48;

constexpr uint64_t kPoolTag = 0x706c6163656d6e74ULL;  // "placemnt"
constexpr uint64_t kNodeTag = 0x646174616e6f6465ULL;  // "datanode"
constexpr uint64_t kGroupTag = 0x67726f7570ULL;       // "group"

// FNV-1a over the bytes, then mixed: the identity of a named bucket.
uint64_t NameHash(uint64_t parent, std::string_view name) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : name) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return StableHash(parent, h);
}

// Weighted rendezvous (straw2): each candidate draws ln(u)/w with u uniform in (0, 1]; the
// largest wins, so a candidate wins with probability w / sum(w), and changing one candidate's
// weight only moves draws to or from that candidate.
double StrawKey(uint64_t hash, double weight) {
  const double u = static_cast<double>((hash >> 11) + 1) * 0x1.0p-53;
  return std::log(u) / weight;
}

}  // namespace

DomainLevel PoolDomainLevel(const PoolSpec& pool) {
  switch (pool.failure_domain()) {
    case DOMAIN_HOST:
      return DomainLevel::kHost;
    case DOMAIN_RACK:
      return DomainLevel::kRack;
    case DOMAIN_ZONE:
      return DomainLevel::kZone;
    default:
      return DomainLevel::kDatanode;
  }
}

bool IsErasureCoded(const PoolSpec& pool) { return pool.redundancy() == ERASURE_CODED_POOL; }

bool MatchesSelector(const Node& node, const PoolSpec& pool) {
  for (const auto& [key, value] : pool.node_selector()) {
    auto it = node.labels.find(key);
    if (it == node.labels.end() || it->second != value) return false;
  }
  return true;
}

bool EligibleFor(const Node& node, const PoolSpec& pool) {
  return node.state != NodeState::kOut && node.weight > 0 && MatchesSelector(node, pool);
}

bool AcceptsNewMembers(const Node& node, const PoolSpec& pool) {
  if (node.state != NodeState::kUp || !EligibleFor(node, pool)) return false;
  if (node.capacity_bytes == 0) return true;
  double ratio = pool.nearly_full_ratio() > 0 ? pool.nearly_full_ratio() : 0.85;
  if (pool.full_ratio() > 0) ratio = std::min(ratio, pool.full_ratio());
  return static_cast<double>(node.used_bytes) < ratio * static_cast<double>(node.capacity_bytes);
}

struct PoolTopology::Draft {
  Draft() = default;
  Draft(uint64_t id_in, bool is_domain_in) : id(id_in), is_domain(is_domain_in) {}
  uint64_t id = 0;
  bool is_domain = false;
  uint32_t node = kNone;
  std::vector<Draft> children;
};

Result<PoolTopology> PoolTopology::Build(std::span<const Node> nodes, const PoolSpec& pool,
                                         uint32_t width) {
  PoolTopology topo;
  topo.width_ = width;
  topo.pool_seed_ = StableHash(kPoolTag, pool.id());
  topo.domain_of_.assign(nodes.size(), kNone);
  topo.accepts_.assign(nodes.size(), 0);
  topo.weight_.assign(nodes.size(), 0);
  const DomainLevel level = PoolDomainLevel(pool);

  std::vector<uint32_t> eligible;
  for (uint32_t i = 0; i < nodes.size(); ++i) {
    if (!EligibleFor(nodes[i], pool)) continue;
    eligible.push_back(i);
    topo.weight_[i] = nodes[i].weight;
    topo.accepts_[i] = AcceptsNewMembers(nodes[i], pool);
  }
  std::sort(eligible.begin(), eligible.end(), [&](uint32_t a, uint32_t b) {
    const Location& la = nodes[a].location;
    const Location& lb = nodes[b].location;
    return std::tie(la.zone, la.rack, la.host, nodes[a].id) <
           std::tie(lb.zone, lb.rack, lb.host, nodes[b].id);
  });

  Draft root;
  root.id = NameHash(kPoolTag, "root");
  for (size_t i = 0; i < eligible.size();) {
    const Location& loc = nodes[eligible[i]].location;
    if (root.children.empty() || nodes[eligible[i - 1]].location.zone != loc.zone) {
      root.children.emplace_back(NameHash(root.id, loc.zone), level == DomainLevel::kZone);
    }
    Draft& zone = root.children.back();
    if (zone.children.empty() || nodes[eligible[i - 1]].location.rack != loc.rack) {
      zone.children.emplace_back(NameHash(zone.id, loc.rack), level == DomainLevel::kRack);
    }
    Draft& rack = zone.children.back();
    if (rack.children.empty() || nodes[eligible[i - 1]].location.host != loc.host) {
      rack.children.emplace_back(NameHash(rack.id, loc.host), level == DomainLevel::kHost);
    }
    Draft& host = rack.children.back();
    Draft leaf(StableHash(kNodeTag, nodes[eligible[i]].id), level == DomainLevel::kDatanode);
    leaf.node = eligible[i];
    host.children.push_back(std::move(leaf));
    ++i;
  }

  // Split wide buckets into virtual groups (see kMaxFanout).
  auto regroup = [](auto& self, Draft& draft) -> void {
    for (Draft& child : draft.children) self(self, child);
    const size_t n = draft.children.size();
    if (n <= kMaxFanout) return;
    const size_t group_count = static_cast<size_t>(std::ceil(std::sqrt(static_cast<double>(n))));
    std::vector<Draft> groups(group_count);
    for (size_t g = 0; g < group_count; ++g) groups[g].id = StableHash(draft.id, kGroupTag + g);
    for (Draft& child : draft.children) {
      groups[StableHash(child.id, kGroupTag) % group_count].children.push_back(std::move(child));
    }
    draft.children.clear();
    for (Draft& group : groups) {
      if (group.children.empty()) continue;
      if (group.children.size() > kMaxFanout) self(self, group);
      draft.children.push_back(std::move(group));
    }
  };
  regroup(regroup, root);

  topo.buckets_.resize(1);
  topo.Flatten(root, 0, kNone);
  const uint32_t domains = static_cast<uint32_t>(topo.domain_accepts_.size());
  if (domains < width) {
    return InvalidArgument(fmt::format(
        "pool '{}' (id {}) needs {} members in distinct {} failure domains, but only {} {} "
        "eligible datanodes (selected, not out, weight > 0); refusing to pack members",
        pool.name(), pool.id(), width, DomainLevelName(level), domains,
        domains == 1 ? "domain has" : "domains have"));
  }
  topo.accepting_prefix_.assign(domains + 1, 0);
  for (uint32_t d = 0; d < domains; ++d) {
    topo.accepting_prefix_[d + 1] = topo.accepting_prefix_[d] + topo.domain_accepts_[d];
  }
  return topo;
}

void PoolTopology::Flatten(const Draft& draft, uint32_t index, uint32_t domain) {
  if (draft.is_domain) {
    domain = static_cast<uint32_t>(domain_accepts_.size());
    domain_accepts_.push_back(0);
  }
  Bucket bucket;
  bucket.id = draft.id;
  bucket.is_domain = draft.is_domain;
  bucket.domain_lo = domain != kNone ? domain : static_cast<uint32_t>(domain_accepts_.size());
  if (draft.node != kNone) {
    bucket.node = draft.node;
    bucket.weight = weight_[draft.node];
    bucket.accept_weight = accepts_[draft.node] ? bucket.weight : 0;
    domain_of_[draft.node] = domain;
    if (accepts_[draft.node]) domain_accepts_[domain] = 1;
  } else {
    bucket.first_child = static_cast<uint32_t>(buckets_.size());
    bucket.child_count = static_cast<uint32_t>(draft.children.size());
    buckets_.resize(buckets_.size() + draft.children.size());
    for (uint32_t i = 0; i < bucket.child_count; ++i) {
      Flatten(draft.children[i], bucket.first_child + i, domain);
      bucket.weight += buckets_[bucket.first_child + i].weight;
      bucket.accept_weight += buckets_[bucket.first_child + i].accept_weight;
    }
  }
  bucket.domain_hi = domain != kNone ? domain + 1 : static_cast<uint32_t>(domain_accepts_.size());
  buckets_[index] = bucket;
}

bool PoolTopology::Viable(const Bucket& bucket, std::span<const uint32_t> taken_domains,
                          bool accepting_only) const {
  int64_t available;
  if (accepting_only) {
    if (bucket.accept_weight <= 0) return false;
    available = accepting_prefix_[bucket.domain_hi] - accepting_prefix_[bucket.domain_lo];
  } else {
    if (bucket.weight <= 0) return false;
    available = bucket.domain_hi - bucket.domain_lo;
  }
  for (uint32_t d : taken_domains) {
    if (d >= bucket.domain_lo && d < bucket.domain_hi && (!accepting_only || domain_accepts_[d])) {
      --available;
    }
  }
  return available > 0;
}

uint32_t PoolTopology::Descend(uint64_t position_seed, uint64_t domain_seed,
                               std::span<const uint32_t> taken_domains, bool accepting_only) const {
  if (buckets_.empty() || !Viable(buckets_[0], taken_domains, accepting_only)) return kNone;
  uint32_t at = 0;
  // Above the failure-domain level each position draws independently (position_seed) and
  // skips exhausted subtrees; inside a domain every position draws alike (domain_seed), so a
  // domain yields the same datanode whichever position chose it.
  bool inside = buckets_[0].is_domain;
  while (buckets_[at].node == kNone) {
    const Bucket& parent = buckets_[at];
    const uint64_t seed = inside ? domain_seed : position_seed;
    uint32_t best = kNone;
    double best_key = -std::numeric_limits<double>::infinity();
    for (uint32_t c = parent.first_child; c < parent.first_child + parent.child_count; ++c) {
      const Bucket& child = buckets_[c];
      const double w = accepting_only ? child.accept_weight : child.weight;
      if (w <= 0) continue;
      if (!inside && !Viable(child, taken_domains, accepting_only)) continue;
      const double key = StrawKey(StableHash(seed, child.id), w);
      if (best == kNone || key > best_key) {
        best = c;
        best_key = key;
      }
    }
    if (best == kNone) return kNone;
    at = best;
    inside = inside || buckets_[at].is_domain;
  }
  return buckets_[at].node;
}

void PoolTopology::Raw(PgIndex pg, std::span<uint32_t> out) const {
  const uint64_t pg_seed = StableHash(pool_seed_, pg);
  const uint64_t domain_seed = StableHash(pg_seed, 0);
  std::array<uint32_t, kMaxWidth> taken{};
  for (uint32_t r = 0; r < width_; ++r) {
    const uint32_t node = Descend(StableHash(pg_seed, r + 1), domain_seed,
                                  std::span<const uint32_t>(taken.data(), r), false);
    out[r] = node;
    taken[r] = node == kNone ? kNone : domain_of_[node];
  }
}

uint32_t PoolTopology::Pick(PgIndex pg, uint32_t stream, std::span<const uint32_t> taken_domains,
                            bool accepting_only) const {
  const uint64_t pg_seed = StableHash(pool_seed_, pg);
  return Descend(StableHash(pg_seed, stream + 1), StableHash(pg_seed, 0), taken_domains,
                 accepting_only);
}

}  // namespace granary::placement::internal

namespace granary::placement {

uint32_t FailureDomainCount(std::span<const Node> nodes, const PoolSpec& pool) {
  const DomainLevel level = internal::PoolDomainLevel(pool);
  // The domain is the node's path down the topology tree to the pool's level (a host name is
  // only unique inside its rack and zone, as in PoolTopology::Build).
  std::set<std::tuple<std::string, std::string, std::string, NodeId>> domains;
  for (const Node& n : nodes) {
    if (!internal::EligibleFor(n, pool)) continue;
    const Location& l = n.location;
    domains.emplace(l.zone, level <= DomainLevel::kRack ? l.rack : "",
                    level <= DomainLevel::kHost ? l.host : "",
                    level == DomainLevel::kDatanode ? n.id : 0);
  }
  return static_cast<uint32_t>(domains.size());
}

}  // namespace granary::placement
