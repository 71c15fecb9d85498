// How operations become durable state (DESIGN §3). Two implementations of one interface:
// - LocalCommitter (group commit on one node): operations queue; one thread applies a whole
//   queue's worth into one WriteBatchWithIndex and makes it durable with a single synced write,
//   then answers every caller.
// - GroupCommitter (group_committer.h): the same batches travel through the metadata Raft group
//   and every member applies them (docs/metadata-ha.md).
// Each operation's (client id, seq) reply is stored in the same batch as its effects, so a retry
// returns the first answer.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "metanode/apply.h"
#include "metanode/change_feed.h"
#include "metanode/store.h"

namespace granary::metanode {

struct CommitterOptions {
  size_t max_batch = 1024;   // operations per synced write
  size_t max_queue = 16384;  // back-pressure: Submit blocks while this many wait
  bool sync = true;          // false only for tests that do not need durability
};

// The metadata group as MetaCore sees it: one member, whether alone or replicated.
struct GroupMember {
  uint64_t id = 0;
  std::string address;
  bool voter = true;
  uint64_t match_index = 0;
};
struct GroupState {
  uint64_t id = 0;
  std::string role = "leader";  // leader|follower|candidate|down
  uint64_t term = 0;
  uint64_t leader_id = 0;
  std::string leader_address;
  uint64_t commit_index = 0;
  uint64_t applied_index = 0;
  uint64_t snapshot_index = 0;
  std::vector<GroupMember> members;
};

class Committer {
 public:
  virtual ~Committer() = default;

  // Applies `op` and returns its reply once durable (or the stored reply of an earlier attempt
  // with the same OpId). Unavailable after Stop(), NotLeader on a follower.
  OpReply Submit(Operation op);
  // The same without waiting: `done` runs once the reply is durable (it must not block). Blocks
  // only while the queue is full (back-pressure).
  virtual void SubmitAsync(Operation op, std::function<void(OpReply)> done) = 0;
  // Answers everything queued with Unavailable and stops.
  virtual void Stop() = 0;

  // Ok when a read of committed local state is linearizable now (always for a single node);
  // NotLeader on a follower, Unavailable when the leader lost its majority.
  virtual Status ReadFence() { return Status::Ok(); }
  // Whether this member proposes and runs time-driven housekeeping.
  virtual bool IsLeader() const { return true; }
  // `fn(true)` once this member leads and has applied everything committed before, `fn(false)`
  // when it stops leading. A single node leads from the start (fn(true) is called at once).
  virtual void OnLeadership(std::function<void(bool)> fn) { fn(true); }
  virtual Result<GroupState> State();
  virtual void AddMember(uint64_t id, const std::string& address, std::function<void(Status)> done);
  virtual void RemoveMember(uint64_t id, std::function<void(Status)> done);

  // Totals since start, for the benchmark and /metrics.
  uint64_t ops() const { return local_ops_.load(); }
  uint64_t syncs() const { return local_syncs_.load(); }

  // The names and inodes written by applied operations (change_feed.h).
  ChangeFeed& feed() { return feed_; }

 protected:
  Committer();
  // Applies `ops` in order into `wb` (dedup, save points, stored replies) and records metrics.
  // What the applied operations wrote is left in `changes` for the feed, to be appended once
  // the batch is durable.
  std::vector<OpReply> ApplyBatch(Store& store, const Applier& applier,
                                  const std::vector<const Operation*>& ops,
                                  rocksdb::WriteBatchWithIndex& wb,
                                  std::vector<FeedChange>* changes);
  void RecordBatch(size_t ops, double seconds);

  std::atomic<uint64_t> local_ops_{0}, local_syncs_{0};
  Counter* ops_;
  Counter* syncs_;
  Counter* deduplicated_;
  Gauge* last_batch_;
  Gauge* ops_per_sync_;
  Histogram* batch_seconds_;
  ChangeFeed feed_;
};

class LocalCommitter final : public Committer {
 public:
  LocalCommitter(Store& store, const Applier& applier, CommitterOptions options = {});
  ~LocalCommitter() override;  // Stop()

  void SubmitAsync(Operation op, std::function<void(OpReply)> done) override;
  void Stop() override;

 private:
  struct Pending {
    Operation op;
    std::function<void(OpReply)> done;
  };
  void Run();
  void CommitBatch(std::vector<Pending*>& batch);

  Store& store_;
  const Applier& applier_;
  CommitterOptions options_;
  std::mutex mu_;
  std::condition_variable work_cv_, space_cv_;
  std::deque<Pending*> queue_;
  uint64_t position_ = 0;  // batches committed (the change feed's numbering)
  bool stopping_ = false;
  std::thread thread_;
};

OpReply ErrorReply(const Status& status);

}  // namespace granary::metanode
