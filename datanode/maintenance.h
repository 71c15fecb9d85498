// Background upkeep of one datanode (DESIGN §4 "Failure", docs/durability.md):
// - repair: after every map change, for each PG this node is a member of, walk the metanode's
//   PG -> blocks index and fetch every block it lacks from another member (CRC-checked),
//   throttled; progress goes out with the heartbeat;
// - reconcile: ask the metanode which stored slices are dead (collected while this node was
//   away) and delete them; drop blocks of PGs it no longer serves once the cluster is healthy
//   (never those of a PG still moving off this node: writers and readers use it until the move
//   completes);
// - scrub: re-read every block at a bounded rate and verify its CRCs; a corrupt copy is
//   reported, deleted and rebuilt by the next repair pass.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "common/data_connection.h"
#include "datanode/block_store.h"
#include "datanode/epochs.h"
#include "datanode/meta_session.h"

namespace granary::datanode {

struct MaintenanceOptions {
  uint64_t repair_bytes_per_second = 256ull << 20;
  uint64_t scrub_bytes_per_second = 32ull << 20;
  // How often the worker looks for work (a new map, a full scrub round, reconciliation).
  std::chrono::milliseconds interval{1000};
  // A full scrub round starts this long after the previous one ended.
  std::chrono::milliseconds scrub_every{std::chrono::hours(24)};
  std::chrono::milliseconds read_timeout{10000};
};

class Maintenance {
 public:
  Maintenance(MaintenanceOptions options, BlockStore* store, MetaSession* session);
  ~Maintenance();
  void Start();
  void Stop();

  // {blocks known missing, map epoch of the last complete repair pass} (heartbeat payload).
  std::pair<uint64_t, uint64_t> progress() const {
    return {pending_.load(), repaired_epoch_.load()};
  }
  // Scrubs every block now (tests, `granary admin scrub` later); returns corrupt copies found.
  uint64_t ScrubAll();
  // Asks for a repair pass at once (fsck --repair).
  void RequestRepair();

 private:
  void Loop();
  // One pass over every PG of `map`; true when nothing is left missing.
  bool RepairPass(const ClusterMap& map);
  // Where a PG's members and their addresses stand in the map being repaired.
  struct PgView {
    const PoolSpec* pool = nullptr;
    uint32_t pg = 0;
    uint64_t epoch = 0;
    std::vector<uint32_t> members;
    uint32_t position = 0;  // this node's slot
    // While the PG moves: the previous member of each slot (placement::kNoNode where none);
    // they hold the data the new members are filling in. Empty otherwise.
    std::vector<uint32_t> from;
    const std::map<uint32_t, const NodeInfo*>* nodes = nullptr;
  };
  // Whether this node should hold `b`, and under which key.
  static std::optional<BlockKey> KeyFor(const PgView& pg, const PgBlock& b);
  Status RepairBlock(const PgView& pg, const PgBlock& b, const BlockKey& key);
  // Reads a whole stored block (or fragment) from `from`, CRC-checked end to end.
  Result<std::pair<AlignedBuffer, std::vector<uint32_t>>> ReadWhole(const std::string& from,
                                                                    const PgView& pg,
                                                                    const BlockKey& key);
  // True once done; false when it must wait (the cluster is not healthy yet).
  bool Reconcile(const ClusterMap& map);
  // Verifies one block; deletes and reports it when corrupt. True when corrupt.
  bool ScrubBlock(const BlockInfo& info);
  // Waits until `bytes` fit the rate since `start`; false when stopping.
  bool Throttle(uint64_t bytes, uint64_t rate);
  bool stopping();

  MaintenanceOptions options_;
  BlockStore* store_;
  MetaSession* session_;
  std::shared_ptr<DataConnectionPool> pool_ = DataConnectionPool::Create();
  std::atomic<uint64_t> pending_{0};
  std::atomic<uint64_t> repaired_epoch_{0};
  std::atomic<bool> repair_wanted_{true};
  bool reconciled_ = true;  // loop thread only

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace granary::datanode
