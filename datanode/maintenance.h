// Background upkeep of one datanode (DESIGN §4 "Failure", docs/maintenance.md):
// - repair: after every map change, for each PG this node is a member of, walk the metanode's
//   PG -> blocks index and fetch every block it lacks from another member (CRC-checked),
//   throttled; progress goes out with the heartbeat;
// - repair on report: every heartbeat reply lists the copies on this node reported corrupt
//   (suspects); each is quarantined (not served), verified, and when bad deleted and fetched or
//   rebuilt like a missing block, then resolved on the metanode (suspects.cpp);
// - reconcile: ask the metanode which stored slices are dead (collected while this node was
//   away) and delete them; drop blocks of PGs it no longer serves once the cluster is healthy
//   (never those of a PG still moving off this node: writers and readers use it until the move
//   completes);
// - scrub: re-read every block once per period, paced evenly, and verify its CRCs; a corrupt
//   copy is reported and replaced as above (scrub.cpp, scrub_pacer.h);
// - warm copies (warm.cpp, docs/locality.md): copy the slices the metanode's warm-up plan hands
//   out with the heartbeat reply, report them; reconcile drops warm copies nobody wants.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <tuple>

#include "common/data_connection.h"
#include "common/log.h"
#include "datanode/block_store.h"
#include "datanode/epochs.h"
#include "datanode/meta_session.h"
#include "datanode/scrub_pacer.h"

namespace granary::placement {
class PlacementMap;
}

namespace granary::datanode {

struct MaintenanceOptions {
  uint64_t repair_bytes_per_second = 256ull << 20;
  uint64_t scrub_bytes_per_second = 32ull << 20;
  // How often the worker looks for work (a new map, scrub, reconciliation) when idle.
  std::chrono::milliseconds interval{1000};
  // A scrub pass verifies every stored block once in this period, spread evenly over it.
  std::chrono::milliseconds scrub_period{std::chrono::hours(24 * 7)};
  std::chrono::milliseconds read_timeout{10000};
  // A suspect that could not be settled (no good source reachable) is tried again this late.
  std::chrono::milliseconds suspect_retry{2000};
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
  // Asks for a repair pass at once (fsck --repair).
  void RequestRepair();

  // Heartbeat hooks (heartbeat thread; they only take locks briefly): scrub progress out, the
  // suspect copies this node holds in.
  void FillHeartbeat(HeartbeatRequest* req);
  void OnHeartbeatReply(const HeartbeatReply& reply);
  // A stored copy this node found damaged (block store listener, scrub): quarantined at once;
  // reported, deleted and replaced by the maintenance thread. Any thread; never blocks on I/O.
  void ReportLocal(const BlockKey& key, const std::string& detail, CorruptionSource source);
  ScrubProgress scrub_progress();

 private:
  using Key = std::tuple<uint64_t, uint32_t, uint32_t>;
  static Key KeyOf(const BlockKey& k) { return {k.slice_id(), k.block_index(), k.fragment()}; }
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
  // The view of (pool, pg) when this node is one of its members.
  std::optional<PgView> ViewOf(const placement::PlacementMap& placement, const PoolSpec& pool,
                               uint32_t pg, const std::map<uint32_t, const NodeInfo*>& nodes);
  // Whether this node should hold `b`, and under which key.
  static std::optional<BlockKey> KeyFor(const PgView& pg, const PgBlock& b);
  Status RepairBlock(const PgView& pg, const PgBlock& b, const BlockKey& key);
  // Reads a whole stored block (or fragment) from `node`, CRC-checked end to end; a copy that
  // fails its CRCs is reported (it is replaced like any reported copy).
  Result<std::pair<AlignedBuffer, std::vector<uint32_t>>> ReadWhole(const NodeInfo& node,
                                                                    const PgView& pg,
                                                                    const BlockKey& key);
  // True once done; false when it must wait (the cluster is not healthy yet).
  bool Reconcile(const ClusterMap& map);
  bool ReconcileCounting(const ClusterMap& map, uint64_t& reclaimed);
  // Reads a stored copy whole and checks it against its stored CRCs: Ok, CORRUPT (damaged), or
  // another error (absent, EIO). Counts the bytes as scrubbed.
  Status VerifyStored(const BlockKey& key);
  // Verifies one block for the scrubber; reports it when corrupt. True when corrupt.
  bool ScrubBlock(const BlockInfo& info);
  // One paced stretch of the scrub pass (scrub.cpp); true when it is behind its schedule and
  // wants to run again without waiting.
  bool ScrubStep();
  void LoadScrub();
  // Repair on report (suspects.cpp).
  bool SuspectsWaiting();
  void HandleLocalFindings();
  void HandleSuspects(const ClusterMap& map);
  // Warm copies (warm.cpp).
  void TakeWarmTasks(const HeartbeatReply& reply);
  void HandleWarmTasks(const ClusterMap& map);
  bool WarmBusy(uint64_t slice_id);
  void ReconcileWarm(const placement::PlacementMap& placement);
  // Settles one suspect; false to try it again later.
  bool Settle(const SuspectCopy& copy, const placement::PlacementMap& placement,
              const std::map<uint32_t, const NodeInfo*>& nodes);
  bool Resolve(const SuspectCopy& copy, SuspectOutcome outcome);
  // Waits until `bytes` fit the rate since `start`; false when stopping.
  bool Throttle(uint64_t bytes, uint64_t rate);
  bool stopping();
  // Wakes the loop for work that should not wait for the interval.
  void Wake();

  MaintenanceOptions options_;
  BlockStore* store_;
  MetaSession* session_;
  std::shared_ptr<DataConnectionPool> pool_ = DataConnectionPool::Create();
  std::atomic<uint64_t> pending_{0};
  std::atomic<uint64_t> repaired_epoch_{0};
  std::atomic<bool> repair_wanted_{true};
  bool reconciled_ = true;  // loop thread only
  // Info summaries of repair passes and reclaims, at most one a minute (loop thread only).
  PassSummary repair_summary_;
  PassSummary reclaim_summary_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool woken_ = false;
  std::thread thread_;

  // Repair on report. A local finding waits to be reported; an offered suspect is a record the
  // metanode holds for this node; `resolved_` remembers what was settled (key -> the record's
  // report count) so that a heartbeat reply built before the resolve is not acted on twice.
  struct LocalFinding {
    std::string detail;
    CorruptionSource source = CORRUPTION_SOURCE_UNSPECIFIED;
  };
  std::mutex suspects_mu_;
  std::map<Key, LocalFinding> local_;
  std::map<Key, SuspectCopy> offered_;
  std::map<Key, std::pair<uint32_t, std::chrono::steady_clock::time_point>> resolved_;
  std::map<Key, std::chrono::steady_clock::time_point> retry_at_;  // loop thread only
  std::set<Key> deleted_bad_;  // copies this node deleted as bad (loop thread only)

  // Warm copies (warm.cpp): the latest plan's tasks for this node, slices reported recently,
  // and a pause after running out of space.
  std::mutex warm_mu_;
  std::map<uint64_t, WarmTask> warm_offered_;
  std::map<uint64_t, std::chrono::steady_clock::time_point> warm_reported_;
  std::chrono::steady_clock::time_point warm_paused_until_{};

  // Scrub (scrub.cpp): the pass state, guarded by scrub_mu_ (the heartbeat reads it).
  std::mutex scrub_mu_;
  ScrubState scrub_;
  ScrubPacer pacer_;
  uint64_t scrub_passes_ = 0;
  bool scrub_behind_logged_ = false;
  int64_t scrub_saved_ms_ = 0;
};

}  // namespace granary::datanode
