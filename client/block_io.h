// Block-level data path of libgranary (DESIGN §4): chain-replicated writes and CRC-verified
// reads of the nearest healthy copy with failover, plus the single-copy primitives the EC path
// (ec_block_io.h) builds on. Knows nothing of files or slice maps.
#pragma once

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <span>
#include <vector>

#include "client/cluster_view.h"
#include "common/data_connection.h"
#include "common/status.h"

namespace granary::client {

struct BlockIoOptions {
  std::chrono::milliseconds request_timeout{30000};
};

// Called once per corrupt copy found by a reader: (node id, block, detail). The file layer
// forwards it to the metanode's ReportCorruption.
using CorruptionReporter =
    std::function<void(uint32_t node_id, const BlockKey& key, const std::string& detail)>;

class BlockIo {
 public:
  BlockIo(std::shared_ptr<DataConnectionPool> pool, BlockIoOptions options,
          CorruptionReporter report_corruption);

  // Starts a chain write of `data` (one whole block) to the target's up members: the first is
  // the head, the rest its chain; the future resolves after every member fsynced. `data` must
  // stay valid until the future resolves. Unavailable when fewer than `min_members` are up.
  // Errors carry the datanode's code: StaleEpoch (refresh the map and relocate), NoSpace,
  // Corrupt, Unavailable.
  std::future<Status> WriteAsync(const BlockTarget& target, const BlockKey& key,
                                 const BlockOrigin& origin, std::span<const uint8_t> data,
                                 uint32_t min_members);
  // The same with a callback, run exactly once (on a connection's receiver thread, or on the
  // caller's when the write fails before it is sent); it must not block. `data` must stay valid
  // until then.
  using WriteDone = std::function<void(Status)>;
  void WriteAsync(const BlockTarget& target, const BlockKey& key, const BlockOrigin& origin,
                  std::span<const uint8_t> data, uint32_t min_members, WriteDone done);

  // Reads bytes [offset, offset + out.size()) of a block into `out`, from the nearest copy that
  // has it intact: each copy's bytes are checked against the CRCs the writer computed; a bad
  // copy is reported and the next one tried. Corrupt when every copy that answered was bad,
  // else the last error (NotFound, Unavailable, StaleEpoch…).
  Status Read(const BlockTarget& target, const BlockKey& key, uint64_t offset,
              std::span<uint8_t> out);

  // Issues a read of one copy without waiting (the first try of a parallel read); Finish
  // verifies it and fails over synchronously when needed.
  struct PendingRead {
    std::future<Result<DataReply>> reply;
    size_t tried = 0;  // position in target.read_order
  };
  PendingRead StartRead(const BlockTarget& target, const BlockKey& key, uint64_t offset,
                        uint64_t length);
  Status FinishRead(PendingRead pending, const BlockTarget& target, const BlockKey& key,
                    uint64_t offset, std::span<uint8_t> out);

  // One READ_BLOCK of bytes [offset, offset + length) (rounded out to 4 KiB) from `replica`,
  // unverified; `done` runs once, on a receiver thread, and must not block. For readers that
  // combine several copies (EC fragments) and check each with CheckReply.
  using ReadDone = std::function<void(Result<DataReply>)>;
  void ReadAsync(const BlockTarget& target, const Replica& replica, const BlockKey& key,
                 uint64_t offset, uint64_t length, std::chrono::steady_clock::time_point deadline,
                 ReadDone done);

  // Checks a READ_BLOCK reply from `replica`: its code, that it covers [offset, offset +
  // length), and every 4 KiB unit against the writer's CRC. A mismatch is counted, logged and
  // reported (Corrupt naming the node and offset). A good reply is counted in
  // granary_client_read_bytes_total by the replica's distance.
  Status CheckReply(const DataReply& reply, const Replica& replica, const BlockKey& key,
                    uint64_t offset, uint64_t length);

  const BlockIoOptions& options() const { return options_; }

 private:
  DataRequest ReadRequest(const BlockTarget& target, const BlockKey& key, uint64_t offset,
                          uint64_t length) const;
  // CheckReply, then copies the asked bytes out.
  Status Verify(const DataReply& reply, const Replica& replica, const BlockKey& key,
                uint64_t offset, std::span<uint8_t> out);

  std::shared_ptr<DataConnectionPool> pool_;
  BlockIoOptions options_;
  CorruptionReporter report_corruption_;
};

}  // namespace granary::client
