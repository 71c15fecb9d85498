#include "client/extent_reader.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <deque>

#include "client/block_io.h"
#include "client/cluster_view.h"
#include "client/ec_block_io.h"
#include "client/ec_codec.h"
#include "client/pool_rules.h"
#include "client/slice_plan.h"

namespace granary::client {

Status ReadExtents(Client& client, const Layout& layout,
                   const google::protobuf::RepeatedPtrField<Extent>& extents,
                   std::span<uint8_t> out, uint64_t offset) {
  std::memset(out.data(), 0, out.size());  // holes read as zeros
  ClusterView& view = client.cluster();
  BlockIo& io = client.blocks();
  EcBlockIo& ec_io = client.ec_blocks();
  if (view.epoch() == 0) GRANARY_TRY(view.Refresh());
  auto pool = LayoutPool(view, layout.pool_id());
  if (!pool.ok()) return pool.status();
  const uint32_t block_size = LayoutBlockSize(layout, *pool);
  const bool ec_pool = IsEcPool(*pool);
  std::shared_ptr<const EcCodec> codec;
  if (ec_pool) {
    auto c = EcCodec::Get(static_cast<int>(pool->data_chunks()),
                          static_cast<int>(pool->coding_chunks()));
    if (!c.ok()) return c.status().WithContext(fmt::format("pool {}", pool->name()));
    codec = std::move(*c);
  }

  struct Piece {
    BlockTarget target;
    BlockKey key;
    uint64_t block_offset;
    uint64_t block_length;
    bool erasure_coded;
    std::span<uint8_t> dest;
  };
  std::vector<Piece> pieces;
  const uint64_t end = offset + out.size();
  for (const Extent& e : extents) {
    uint64_t from = std::max(e.file_offset(), offset);
    uint64_t to = std::min(e.file_offset() + e.length(), end);
    if (from >= to) continue;
    // Slice bytes [s_from, s_to) hold file bytes [from, to).
    uint64_t s_from = e.offset_in_slice() + (from - e.file_offset());
    uint64_t s_to = s_from + (to - from);
    for (uint64_t b = s_from / block_size; b * block_size < s_to; ++b) {
      uint64_t b_from = std::max(s_from, b * block_size);
      uint64_t b_to = std::min(s_to, (b + 1) * block_size);
      auto target = view.Locate(layout, e.slice_id(), b);
      if (!target.ok()) return target.status();
      Piece p;
      p.erasure_coded =
          BlockIsErasureCoded(e.encoding(), e.slice_length(), block_size, static_cast<uint32_t>(b));
      if (p.erasure_coded && !codec) {
        return Corrupt(fmt::format("slice {} is erasure-coded but pool {} is not", e.slice_id(),
                                   pool->name()));
      }
      // During a PG move the previous members serve what the new ones still lack.
      p.target = ec_pool && !p.erasure_coded ? target->ForRead().FirstMembers(EcReplicaCount(*pool))
                                             : target->ForRead();
      // Warm-up copies of the slice (docs/locality.md) serve replicated blocks too.
      if (!ec_pool && e.warm_nodes_size() > 0) {
        p.target = view.WithWarmCopies(
            p.target, {e.warm_nodes().data(), static_cast<size_t>(e.warm_nodes_size())});
      }
      p.key.set_slice_id(e.slice_id());
      p.key.set_block_index(static_cast<uint32_t>(b));
      p.block_offset = b_from - b * block_size;
      p.block_length = BlockLength(e.slice_length(), block_size, static_cast<uint32_t>(b));
      p.dest = out.subspan(from + (b_from - s_from) - offset, b_to - b_from);
      pieces.push_back(std::move(p));
    }
  }

  // Up to max_inflight_blocks reads in flight; each verified (and failed over or rebuilt) in
  // order.
  struct Inflight {
    size_t piece;
    BlockIo::PendingRead replicated;
    EcBlockIo::PendingReadPtr ec;
  };
  const size_t window = client.options().max_inflight_blocks;
  std::deque<Inflight> inflight;
  Status first_error;
  size_t next = 0;
  while ((next < pieces.size() || !inflight.empty())) {
    while (next < pieces.size() && inflight.size() < window && first_error.ok()) {
      const Piece& p = pieces[next];
      Inflight f{next, {}, nullptr};
      if (p.erasure_coded) {
        f.ec =
            ec_io.StartRead(p.target, p.key, *codec, p.block_length, p.block_offset, p.dest.size());
      } else {
        f.replicated = io.StartRead(p.target, p.key, p.block_offset, p.dest.size());
      }
      inflight.push_back(std::move(f));
      ++next;
    }
    if (inflight.empty()) break;
    Inflight f = std::move(inflight.front());
    inflight.pop_front();
    const Piece& p = pieces[f.piece];
    Status s = p.erasure_coded ? ec_io.FinishRead(std::move(f.ec), p.dest)
                               : io.FinishRead(std::move(f.replicated), p.target, p.key,
                                               p.block_offset, p.dest);
    if (!s.ok() && first_error.ok()) first_error = std::move(s);
  }
  return first_error;
}

}  // namespace granary::client
