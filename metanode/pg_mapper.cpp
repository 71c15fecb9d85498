// The PgMapper over the placement library (placement/placement.h).
#include "metanode/pg_mapper.h"

#include <fmt/format.h>

#include <memory>
#include <mutex>

#include "placement/placement.h"
#include "placement/stripe.h"

namespace granary::metanode {

namespace {

class PlacementPgMapper : public PgMapper {
 public:
  Result<std::string> Compute(uint64_t epoch, const std::vector<PoolSpec>& pools,
                              const std::vector<NodeInfo>& nodes,
                              std::string_view previous) const override {
    const std::vector<placement::Node> ns = placement::NodesFromProto(nodes);
    placement::PlacementMap base;
    if (!previous.empty()) {
      auto prev = placement::PlacementMap::Deserialize(previous);
      // An unreadable previous map (older metanode, interim format) is rebuilt from scratch.
      if (prev.ok()) base = std::move(*prev);
    }
    placement::UpdateOptions options;
    options.epoch = std::max<uint64_t>(epoch, base.epoch() + 1);
    auto map = base.Update(ns, pools, options);
    if (map.ok()) return map->Serialize();
    if (map.status().code() != Code::INVALID_ARGUMENT) return map.status();
    // Some pool cannot be placed yet (fewer failure domains than its width — e.g. no datanode
    // registered yet). Map the pools that can be placed; the others appear once enough
    // datanodes join, and writers to them get Unavailable meanwhile.
    std::vector<PoolSpec> placeable;
    for (const PoolSpec& pool : pools) {
      if (base.Update(ns, {pool}, options).ok()) placeable.push_back(pool);
    }
    auto partial = base.Update(ns, placeable, options);
    if (!partial.ok()) return partial.status();
    return partial->Serialize();
  }

  Result<std::optional<std::string>> CompleteMoves(
      uint64_t epoch, std::string_view previous, const std::vector<PgMove>& moves) const override {
    auto base = placement::PlacementMap::Deserialize(previous);
    if (!base.ok()) return base.status().WithContext("complete PG moves");
    std::vector<placement::MoveRef> refs;
    refs.reserve(moves.size());
    for (const PgMove& m : moves) refs.push_back({m.pool, m.pg, m.move_epoch});
    uint64_t completed = 0;
    auto map = base->CompleteMoves(refs, std::max<uint64_t>(epoch, base->epoch() + 1), &completed);
    if (!map.ok()) return map.status().WithContext("complete PG moves");
    if (completed == 0) return std::optional<std::string>();
    return std::optional<std::string>(map->Serialize());
  }

  Result<Layout> WriterLocalLayout(std::string_view placement, uint32_t pool, std::string_view host,
                                   uint32_t block_size, uint32_t stripe_width,
                                   uint64_t seed) const override {
    if (placement.empty()) return NotFound("no PG map yet");
    auto map = Decoded(placement);
    if (!map.ok()) return map.status();
    return placement::WriterLocalLayout(**map, pool, host, block_size, stripe_width, seed);
  }

 private:
  // Creates in a writer-local pool would otherwise decode the whole map each time; the map
  // changes only with the cluster epoch, so the last decoded one is kept (keyed by its bytes,
  // which keeps the result a pure function of the argument).
  Result<std::shared_ptr<const placement::PlacementMap>> Decoded(std::string_view bytes) const {
    std::lock_guard lock(mu_);
    if (cached_ && cached_bytes_ == bytes) return cached_;
    auto map = placement::PlacementMap::Deserialize(bytes);
    if (!map.ok()) return map.status().WithContext("decode PG map for a writer-local layout");
    cached_ = std::make_shared<const placement::PlacementMap>(std::move(*map));
    cached_bytes_.assign(bytes);
    return cached_;
  }

  mutable std::mutex mu_;
  mutable std::string cached_bytes_;
  mutable std::shared_ptr<const placement::PlacementMap> cached_;
};

}  // namespace

std::unique_ptr<PgMapper> MakePlacementPgMapper() { return std::make_unique<PlacementPgMapper>(); }

}  // namespace granary::metanode
