// Where a slice's blocks live (DESIGN §2 "Where a slice lives"). A file's Layout is {pool, block
// size, stripe width W, seed, optional explicit pgs}. Its stripe is W PGs:
//   pg_j = layout.pgs[j]                          when the layout carries explicit PGs
//   pg_j = StableMod(StableHash(seed, j), P)      otherwise (P = the pool's pg_count)
// and block b of slice s goes to stripe[(StableHash(s, 0) mod W + b) mod W].
// The hash and mod below are part of the on-disk/wire contract: they must never change.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/status.h"
#include "granary/types.pb.h"
#include "placement/placement.h"

namespace granary::placement {

// A fixed 64-bit mix of two words (splitmix64-style finaliser). Never changes across releases.
uint64_t StableHash(uint64_t a, uint64_t b);

// x mod n that stays consistent when n doubles (Ceph's stable_mod idea): with n a power of two it
// is x & (n - 1), so PG i splits into i and i + n. Otherwise x & (2^k - 1) when that is below n,
// else x & (2^(k-1) - 1), with 2^k the next power of two >= n. n must be > 0.
uint32_t StableMod(uint64_t x, uint32_t n);

// Stripe position j (0 <= j < W) -> PG. InvalidArgument for W == 0, j >= W, explicit pgs whose
// count differs from W, or a PG >= pg_count.
Result<PgIndex> StripePg(const Layout& layout, uint32_t j, uint32_t pg_count);

// Position in the stripe of block `block` of slice `slice_id`: (StableHash(slice_id, 0) mod W +
// block) mod W. W must be > 0.
uint32_t BlockStripeIndex(uint64_t slice_id, uint64_t block, uint32_t stripe_width);

// Block `block` of slice `slice_id` -> PG: StripePg(layout, BlockStripeIndex(...), pg_count).
Result<PgIndex> BlockPg(const Layout& layout, uint64_t slice_id, uint64_t block, uint32_t pg_count);

// The ordinary (seeded) layout of a new file.
Layout SeededLayout(PoolId pool, uint32_t block_size, uint32_t stripe_width, uint64_t seed);

// A writer-local layout for a writer on `host` (DESIGN §2 GPU locality): explicit PGs whose
// primary (replicated) or fragment 0 (EC) is on a datanode of `host` — the rest of each PG stays
// in distinct failure domains as the map guarantees. Up to `stripe_width` distinct PGs, chosen by
// `seed` (StableHash(seed, pg) order) so different files spread over the host's PGs; the
// layout's stripe_width is the number returned (may be less than asked). NotFound when the host
// has no primary in the pool (the caller falls back to SeededLayout); NotFound for an unknown
// pool; InvalidArgument for stripe_width == 0.
Result<Layout> WriterLocalLayout(const PlacementMap& map, PoolId pool, std::string_view host,
                                 uint32_t block_size, uint32_t stripe_width, uint64_t seed);

}  // namespace granary::placement
