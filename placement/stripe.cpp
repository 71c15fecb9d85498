#include "placement/stripe.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <vector>

namespace granary::placement {

uint64_t StableHash(uint64_t a, uint64_t b) {
  // splitmix64's finaliser over a and b folded with distinct odd constants. Hand-written: the
  // constants are the contract (layouts on disk depend on them), so no library hash may be used.
  uint64_t x = a * 0x9e3779b97f4a7c15ULL ^ (b + 0x632be59bd9b4e019ULL);
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

uint32_t StableMod(uint64_t x, uint32_t n) {
  const uint64_t mask = std::bit_ceil(static_cast<uint64_t>(n)) - 1;
  const uint64_t low = x & mask;
  return static_cast<uint32_t>(low < n ? low : x & (mask >> 1));
}

Result<PgIndex> StripePg(const Layout& layout, uint32_t j, uint32_t pg_count) {
  const uint32_t width = layout.stripe_width();
  if (width == 0) return InvalidArgument("layout has stripe width 0");
  if (j >= width) {
    return InvalidArgument(fmt::format("stripe position {} outside stripe width {}", j, width));
  }
  if (pg_count == 0) return InvalidArgument("pool has no PGs");
  if (layout.pgs_size() > 0) {
    if (static_cast<uint32_t>(layout.pgs_size()) != width) {
      return InvalidArgument(
          fmt::format("layout lists {} PGs for stripe width {}", layout.pgs_size(), width));
    }
    const uint32_t pg = layout.pgs(static_cast<int>(j));
    if (pg >= pg_count) {
      return InvalidArgument(fmt::format("layout PG {} outside pool of {} PGs", pg, pg_count));
    }
    return pg;
  }
  return StableMod(StableHash(layout.seed(), j), pg_count);
}

uint32_t BlockStripeIndex(uint64_t slice_id, uint64_t block, uint32_t stripe_width) {
  return static_cast<uint32_t>((StableHash(slice_id, 0) % stripe_width + block % stripe_width) %
                               stripe_width);
}

Result<PgIndex> BlockPg(const Layout& layout, uint64_t slice_id, uint64_t block,
                        uint32_t pg_count) {
  if (layout.stripe_width() == 0) return InvalidArgument("layout has stripe width 0");
  return StripePg(layout, BlockStripeIndex(slice_id, block, layout.stripe_width()), pg_count);
}

Layout SeededLayout(PoolId pool, uint32_t block_size, uint32_t stripe_width, uint64_t seed) {
  Layout layout;
  layout.set_pool_id(pool);
  layout.set_block_size(block_size);
  layout.set_stripe_width(stripe_width);
  layout.set_seed(seed);
  return layout;
}

Result<Layout> WriterLocalLayout(const PlacementMap& map, PoolId pool, std::string_view host,
                                 uint32_t block_size, uint32_t stripe_width, uint64_t seed) {
  if (stripe_width == 0) return InvalidArgument("writer-local layout with stripe width 0");
  if (map.FindPool(pool) == nullptr) {
    return NotFound(fmt::format("writer-local layout: no pool {} in the PG map", pool));
  }
  std::span<const PgIndex> local = map.PgsWithPrimaryOnHost(pool, host);
  if (local.empty()) {
    return NotFound(
        fmt::format("writer-local layout: host '{}' holds no primary of pool {}", host, pool));
  }
  // Rank the host's PGs by a seeded hash so that files from one host spread over all of them.
  std::vector<std::pair<uint64_t, PgIndex>> ranked;
  ranked.reserve(local.size());
  for (PgIndex pg : local) ranked.emplace_back(StableHash(seed, pg), pg);
  const size_t take = std::min<size_t>(stripe_width, ranked.size());
  std::partial_sort(ranked.begin(), ranked.begin() + static_cast<ptrdiff_t>(take), ranked.end());
  Layout layout = SeededLayout(pool, block_size, static_cast<uint32_t>(take), seed);
  for (size_t i = 0; i < take; ++i) layout.add_pgs(ranked[i].second);
  return layout;
}

}  // namespace granary::placement
