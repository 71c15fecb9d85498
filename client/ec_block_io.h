// Erasure-coded blocks on the live data path (DESIGN §4, docs/erasure-coding.md): a full block
// is encoded by the client into K+M fragments written in parallel, fragment i to member i of the
// block's PG — never an in-place update, always a new slice. A read asks for the K data
// fragments only; a fragment that is missing, corrupt or not back within the fragment deadline
// is rebuilt from any K others (the same byte range of each).
#pragma once

#include <chrono>
#include <future>
#include <memory>
#include <span>

#include "client/block_io.h"
#include "client/cluster_view.h"
#include "client/ec_codec.h"
#include "common/status.h"

namespace granary::client {

struct EcReadOptions {
  // A data fragment not answered within this long (from the start of the block's read) is
  // rebuilt from other fragments; while rebuilding, one more fragment is asked for each time
  // this much passes without enough answers (a hedge against a second slow node).
  std::chrono::milliseconds fragment_deadline{1000};
  // Bound on the whole block read (every request carries it too).
  std::chrono::milliseconds request_timeout{30000};
};

class EcBlockIo {
 public:
  EcBlockIo(BlockIo& io, EcReadOptions options);
  ~EcBlockIo();

  // Encodes `block` and writes fragment i to target.members[i] in parallel, each a WRITE_BLOCK
  // with no chain, keyed {slice, block, fragment i}. Members that are down are skipped (the block
  // is stored degraded and left to repair); Unavailable without writing anything when fewer than
  // `min_fragments` members are up. Resolves once every write finished: OK when every up member
  // stored its fragment, else the first error (StaleEpoch, NoSpace, Unavailable…). The block's
  // bytes must stay valid until then; the parity lives as long as the writes.
  std::future<Status> WriteAsync(const BlockTarget& target, const BlockKey& key,
                                 const BlockOrigin& origin, std::span<const uint8_t> block,
                                 const EcCodec& codec, uint32_t min_fragments);

  // A block read in flight; FinishRead completes it (dropping it abandons the read).
  class PendingRead;
  struct PendingReadDeleter {
    void operator()(PendingRead* p) const;
  };
  using PendingReadPtr = std::unique_ptr<PendingRead, PendingReadDeleter>;
  // Starts reads of the data fragments that hold bytes [offset, offset + length) of an
  // erasure-coded block of `block_length` bytes.
  PendingReadPtr StartRead(const BlockTarget& target, const BlockKey& key, const EcCodec& codec,
                           uint64_t block_length, uint64_t offset, uint64_t length);
  // Waits for the data fragments and rebuilds any that failed or were late, then fills `out`
  // (length bytes). Never returns corrupt bytes. Unavailable (or StaleEpoch when a datanode
  // knows a newer map) when fewer than K fragments could be read intact, naming each failure.
  Status FinishRead(PendingReadPtr pending, std::span<uint8_t> out);

 private:
  // Datanodes that recently missed a fragment deadline: for a while (10 deadlines) readers ask
  // the other fragments straight away instead of paying the deadline on every block.
  class SlowNodes;

  BlockIo& io_;
  EcReadOptions options_;
  std::unique_ptr<SlowNodes> slow_;
};

}  // namespace granary::client
