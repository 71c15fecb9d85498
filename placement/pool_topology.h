// Internal to placement/: one pool's view of the topology tree and the weighted rendezvous
// (straw2-like) draws down it. Not part of the public surface.
#pragma once

#include <array>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "common/status.h"
#include "placement/placement.h"

namespace granary::placement::internal {

inline constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
inline constexpr uint32_t kMaxWidth = 20;  // ec:16+4

DomainLevel PoolDomainLevel(const PoolSpec& pool);
bool IsErasureCoded(const PoolSpec& pool);
// Every node_selector pair is among the node's labels.
bool MatchesSelector(const Node& node, const PoolSpec& pool);
// Whether the node may hold members of the pool at all (selected, not out, weight > 0).
bool EligibleFor(const Node& node, const PoolSpec& pool);
// Whether the node may take *new* members: up and below the pool's nearly-full ratio.
bool AcceptsNewMembers(const Node& node, const PoolSpec& pool);

// Node indices below refer to the map's node table (ascending id).
class PoolTopology {
 public:
  // InvalidArgument when fewer than `width` failure domains hold an eligible node.
  static Result<PoolTopology> Build(std::span<const Node> nodes, const PoolSpec& pool,
                                    uint32_t width);

  bool Contains(uint32_t node) const { return domain_of_[node] != kNone; }
  bool Accepts(uint32_t node) const { return accepts_[node]; }
  // Failure-domain ordinal of an eligible node.
  uint32_t DomainOf(uint32_t node) const { return domain_of_[node]; }
  double Weight(uint32_t node) const { return weight_[node]; }
  double TotalWeight() const { return buckets_.empty() ? 0 : buckets_[0].weight; }
  uint32_t width() const { return width_; }

  // The raw choice: `width` nodes in distinct failure domains, drawn position by position down
  // the tree (out must hold width entries).
  void Raw(PgIndex pg, std::span<uint32_t> out) const;

  // One node for `pg` in a failure domain outside `taken_domains`, from an independent draw
  // `stream` (>= width, so it differs from the raw positions). Only accepting nodes when
  // accepting_only. kNone when no such node exists.
  uint32_t Pick(PgIndex pg, uint32_t stream, std::span<const uint32_t> taken_domains,
                bool accepting_only) const;

 private:
  struct Bucket {
    uint64_t id = 0;  // identity in the straw draws
    double weight = 0;
    double accept_weight = 0;
    uint32_t first_child = 0;
    uint32_t child_count = 0;
    uint32_t domain_lo = 0;  // failure-domain ordinals under this bucket: [lo, hi)
    uint32_t domain_hi = 0;
    uint32_t node = kNone;  // leaves: the datanode
    bool is_domain = false;
  };
  struct Draft;  // pool_topology.cpp: the tree before it is flattened

  void Flatten(const Draft& draft, uint32_t index, uint32_t domain);
  uint32_t Descend(uint64_t position_seed, uint64_t domain_seed,
                   std::span<const uint32_t> taken_domains, bool accepting_only) const;
  bool Viable(const Bucket& bucket, std::span<const uint32_t> taken_domains,
              bool accepting_only) const;

  uint64_t pool_seed_ = 0;
  uint32_t width_ = 0;
  std::vector<Bucket> buckets_;             // [0] is the root; children contiguous
  std::vector<uint32_t> domain_of_;         // per node; kNone when not eligible
  std::vector<uint8_t> accepts_;            // per node
  std::vector<double> weight_;              // per node
  std::vector<uint8_t> domain_accepts_;     // per domain: holds an accepting node
  std::vector<uint32_t> accepting_prefix_;  // accepting domains among ordinals [0, d)
};

}  // namespace granary::placement::internal
