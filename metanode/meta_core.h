// MetaCore: the metanode without its network front end — store, state machine, group commit,
// node liveness and housekeeping. The gRPC service (service.h) and the unit tests drive it.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/log.h"
#include "granary/data.grpc.pb.h"
#include "granary/meta.pb.h"
#include "metanode/apply.h"
#include "metanode/committer.h"
#include "metanode/io_history.h"
#include "metanode/lock_waiters.h"
#include "metanode/pg_mapper.h"
#include "metanode/secrets.h"
#include "metanode/store.h"
#include "metanode/warmups.h"

namespace granary::metanode {

struct MetaCoreOptions {
  std::string data_dir;    // RocksDB lives in data_dir/db, the secret key beside it
  bool in_memory = false;  // tests: RocksDB in a memory Env, key in memory
  std::string default_pool = "default";
  int64_t lease_ms = 60000;       // allocation intent lease
  int64_t reap_grace_ms = 60000;  // an expired intent is reaped this long after its lease
  int64_t down_after_ms = 30000;  // a datanode silent this long is marked down
  // A down datanode silent this long is marked out: its PGs are remapped and repaired elsewhere.
  int64_t out_after_ms = 10 * 60 * 1000;
  // An unreferenced slice's blocks are deleted this long after it lost its last reference
  // (longer than any read in flight that still holds the old slice map).
  int64_t gc_grace_ms = 5 * 60 * 1000;
  int64_t housekeeping_ms = 1000;  // period of reaping and liveness checks; 0 = never
  // Stored replies of applied operations are kept this long: longer than any client retries.
  int64_t dedup_retention_ms = 10 * 60 * 1000;
  // A client that has not renewed its session (KeepAlive, or any mutating request) for this long
  // loses every pin it holds (docs/metadata.md "Client sessions and reaping"); CephFS's
  // session_autoclose default.
  int64_t client_lease_ms = 300000;
  // Pins one reap operation drops at most (it is one group commit); more wait for the next round.
  uint32_t reap_max_pins = 100000;
  // Multipart uploads initiated this long ago are aborted (0 = never).
  int64_t multipart_expiry_ms = 7ll * 24 * 3600 * 1000;
  bool sync = true;
  // Test hook: the clock apply sees (milliseconds since the epoch). Null = the system clock.
  std::function<int64_t()> clock;

  // Metadata HA (docs/metadata-ha.md). member_id 0 = a metanode running alone. Otherwise this
  // member's id, its service address, and the group ("1=HOST:PORT,…"; required at the first
  // start, checked against the stored configuration later). The Raft log lives in
  // data_dir/raft.
  uint64_t member_id = 0;
  std::string member_address;
  std::string bind_host;  // where Raft listens (default: member_address's host)
  // The key sealing S3 secrets (default data_dir/secret.key). Members of one group must share
  // it: a new leader unseals what another sealed.
  std::string secret_key_file;
  std::string peers;
  unsigned election_timeout_ms = 1000;
  unsigned heartbeat_ms = 100;
  unsigned snapshot_threshold = 4096;

  // Warm-ups (docs/locality.md): planning, release and trash intervals.
  WarmupOptions warmups;
};

class MetaCore {
 public:
  static Result<std::unique_ptr<MetaCore>> Open(MetaCoreOptions options);
  ~MetaCore();

  // Applies one mutating operation (fills in time and lease) and returns its durable reply.
  OpReply Mutate(Operation op);
  // Mutate() without waiting: `done` runs on the committer thread (must not block).
  void MutateAsync(Operation op, std::function<void(OpReply)> done);
  // Mutate() and unpack: the reply, or its error.
  Result<OpReply> Run(Operation op);

  // A consistent read view of committed local state (no leadership check: housekeeping, tests).
  std::unique_ptr<Txn> Snapshot() { return std::make_unique<Txn>(*store_); }
  // The view a client read gets: linearizable (NotLeader on a follower of the metadata group).
  Result<std::unique_ptr<Txn>> ReadView();
  // Whether this member leads the metadata group (always, alone) and has taken over.
  bool IsLeader() const;

  // Access keys: generates id and secret when empty, seals the secret before it is queued.
  Result<AccessKey> KeyCreate(const KeyCreateRequest& req);
  Result<AccessKey> KeyGetSecret(const std::string& access_key);

  // Datanode liveness (in memory; state changes go through operations).
  Result<HeartbeatReply> Heartbeat(const HeartbeatRequest& req);
  Result<ClusterMap> GetClusterMap(uint64_t known_epoch);
  Result<ClusterStatusReply> ClusterStatus();

  // Repair on report (corruption.cpp, docs/maintenance.md): records a report durably (one
  // operation; a copy already recorded only counts one more report).
  Status ReportCorruption(const ReportCorruptionRequest& req);
  // The holder settled a suspect copy: drops its record (unless reported again meanwhile).
  Status ResolveCorruption(const ResolveCorruptionRequest& req);
  // The suspect copies `node_id` holds (sent with its heartbeat reply), at most a few hundred.
  std::vector<SuspectCopy> SuspectCopiesOf(uint32_t node_id);
  // Housekeeping: resolves the records of nodes that are out (their PGs were remapped).
  void SettleSuspects();

  // The data path's last hour from the datanodes' heartbeats (docs/dashboard.md): the leader's
  // memory, so NotLeader on a follower.
  Result<IoHistoryReply> GetIoHistory(const IoHistoryRequest& req);
  // This member's admin HTTP address, reported in GroupStatus (set once it is bound).
  void SetAdminAddress(std::string address);

  // The metadata group (docs/metadata-ha.md): this member's view, membership changes.
  Result<MetaGroupStatus> GroupStatus();
  Status AddMember(uint64_t id, const std::string& address);
  Status RemoveMember(uint64_t id);
  // Streams a RocksDB checkpoint once this member has applied `min_applied_index` (a member
  // that fell behind the leader's log installs it). `write` returns false to stop.
  Status StreamCheckpoint(const FetchCheckpointRequest& req,
                          const std::function<bool(const CheckpointChunk&)>& write);

  Result<BackupReply> Backup(const std::string& dir);
  Result<CheckSlicesReply> CheckSlices(const CheckSlicesRequest& req);
  Result<PgBlocksReply> PgBlocks(const PgBlocksRequest& req);
  Result<CompactionCandidatesReply> CompactionCandidates(uint32_t limit);
  // Warm-ups (warmups.h, docs/locality.md): a datanode reports the warm copies it made.
  Status WarmDone(const WarmDoneRequest& req) { return warmups_->Done(req); }

  // Renews `client_id`'s session for a lease. PreconditionFailed ("session expired") when the
  // session was reaped: the client must start a new one (a new client id).
  Result<KeepAliveReply> KeepAlive(uint64_t client_id);
  // Reaps the sessions whose lease ran out: one operation drops all their pins (housekeeping).
  void ReapSessions();
  // Aborts multipart uploads older than multipart_expiry_ms (housekeeping).
  void ExpireUploads();
  struct SessionCounts {
    uint64_t live = 0, reaped = 0, multipart_expired = 0;
  };
  SessionCounts session_counts();

  // One round of housekeeping at the current clock: reap expired intents, mark silent nodes down
  // (and out), collect garbage.
  void Housekeep();
  // Deletes the blocks of slices unreferenced for the grace period on every up datanode, then
  // drops their records (collector.cpp).
  void CollectGarbage();
  // Completes the PG moves whose filling members finished a repair pass at or after the move's
  // epoch: one operation, one new map epoch (docs/maintenance.md "PG moves").
  void CompleteReadyMoves();

  // Blocked lock requests (leader only, in memory): woken by Lock operations and session reaps.
  LockWaiters& lock_waiters() { return lock_waiters_; }
  ChangeFeed& changes() { return committer_->feed(); }

  int64_t NowMs() const;
  Store& store() { return *store_; }
  Committer& committer() { return *committer_; }
  const MetaCoreOptions& options() const { return options_; }

 private:
  explicit MetaCore(MetaCoreOptions options) : options_(std::move(options)) {}
  void HousekeepingLoop();
  // Runs once on the housekeeping thread each time this member takes over as leader: the
  // idempotent bootstrap operation, fresh leases for every session and datanode.
  Status TakeOver();
  // Every client holding pins gets a fresh lease (a metanode restart never reaps a live client).
  Status LoadSessions();
  void TouchSession(const Operation& op);
  Status DeleteSlicesOn(const NodeInfo& node, const std::vector<uint64_t>& ids);
  // Bad copies and the PGs holding them, and the reports ever received (corruption.cpp).
  Status AddCorruptionStatus(Txn& snap, ClusterStatusReply* reply);

  struct Liveness {
    int64_t last_ms = 0;
    uint64_t capacity = 0, used = 0;
    bool healthy = true;
    uint64_t repair_pending = 0;
    uint64_t repair_epoch = 0;
    std::optional<ScrubProgress> scrub;
  };

  MetaCoreOptions options_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<PgMapper> mapper_;
  std::unique_ptr<Applier> applier_;
  std::unique_ptr<Committer> committer_;
  std::unique_ptr<WarmupDriver> warmups_;
  std::optional<SecretBox> secrets_;
  std::mutex mu_;
  std::map<uint32_t, Liveness> liveness_;
  std::map<std::string, std::unique_ptr<DataControl::Stub>> control_stubs_;
  std::map<uint64_t, int64_t> sessions_;  // client id -> lease deadline (ms)
  uint64_t sessions_reaped_ = 0;
  uint64_t multipart_expired_ = 0;
  IoHistory io_history_;
  std::string admin_address_;   // guarded by mu_
  PassSummary gc_summary_;      // housekeeping thread only
  int64_t last_tombstone_prune_ms_ = 0;
  int64_t last_upload_scan_ms_ = 0;
  bool stopping_ = false;
  bool leadership_changed_ = false;
  bool took_over_ = false;  // housekeeping thread only
  std::condition_variable stop_cv_;
  std::thread housekeeper_;
  LockWaiters lock_waiters_;
};

}  // namespace granary::metanode
