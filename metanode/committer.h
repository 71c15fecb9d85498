// Group commit (DESIGN §3): operations queue; one thread applies a whole queue's worth into one
// WriteBatchWithIndex and makes it durable with a single synced write, then answers every caller.
// Each operation's (client id, seq) reply is stored in the same batch, so a retry returns the
// first answer.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include "common/metrics.h"
#include "metanode/apply.h"
#include "metanode/store.h"

namespace granary::metanode {

struct CommitterOptions {
  size_t max_batch = 1024;   // operations per synced write
  size_t max_queue = 16384;  // back-pressure: Submit blocks while this many wait
  bool sync = true;          // false only for tests that do not need durability
};

class Committer {
 public:
  Committer(Store& store, const Applier& applier, CommitterOptions options = {});
  ~Committer();  // Stop()

  // Applies `op` in the next group commit and returns its reply once durable (or the stored
  // reply of an earlier attempt with the same OpId). Unavailable after Stop().
  OpReply Submit(Operation op);
  // The same without waiting: `done` runs on the committer thread once the reply is durable
  // (it must not block). Blocks only while the queue is full (back-pressure).
  void SubmitAsync(Operation op, std::function<void(OpReply)> done);

  // Answers everything queued with Unavailable and joins the thread.
  void Stop();

  // Totals since start, for the benchmark and /metrics.
  uint64_t ops() const { return local_ops_.load(); }
  uint64_t syncs() const { return local_syncs_.load(); }

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
  bool stopping_ = false;
  std::atomic<uint64_t> local_ops_{0}, local_syncs_{0};
  Counter* ops_;
  Counter* syncs_;
  Counter* deduplicated_;
  Gauge* last_batch_;
  Gauge* ops_per_sync_;
  Histogram* batch_seconds_;
  std::thread thread_;
};

OpReply ErrorReply(const Status& status);

}  // namespace granary::metanode
