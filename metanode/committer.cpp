#include "metanode/committer.h"

#include <chrono>
#include <random>

#include "common/log.h"

namespace granary::metanode {

OpReply ErrorReply(const Status& status) {
  OpReply reply;
  reply.set_format(kFormat);
  reply.set_code(status.code());
  reply.set_message(status.message());
  return reply;
}

Committer::Committer() {
  MetricsRegistry& m = Metrics();
  ops_ = &m.GetCounter("granary_meta_ops_total", "Operations applied by the metanode");
  syncs_ = &m.GetCounter("granary_meta_syncs_total",
                         "Synced RocksDB writes (one per group commit); ops/syncs = ops per sync");
  deduplicated_ = &m.GetCounter("granary_meta_dedup_hits_total",
                                "Retried operations answered from the stored reply");
  last_batch_ = &m.GetGauge("granary_meta_last_batch_ops", "Operations in the last group commit");
  ops_per_sync_ = &m.GetGauge("granary_meta_ops_per_sync",
                              "Mean operations per synced write since start (group commit)");
  batch_seconds_ = &m.GetHistogram("granary_meta_group_commit_seconds",
                                   "Apply plus synced write time of one group commit");
}

OpReply Committer::Submit(Operation op) {
  std::promise<OpReply> promise;
  auto future = promise.get_future();
  SubmitAsync(std::move(op), [&promise](OpReply reply) { promise.set_value(std::move(reply)); });
  return future.get();
}

Result<GroupState> Committer::State() {
  GroupState s;  // alone: the leader of a group of one, id 0
  s.members.push_back({});
  return s;
}

void Committer::AddMember(uint64_t, const std::string&, std::function<void(Status)> done) {
  done(Status(Code::PRECONDITION_FAILED,
              "this metanode runs alone (no --peers): restart it with --id 1 --peers "
              "1=HOST:PORT to make it the first member of a group"));
}

void Committer::RemoveMember(uint64_t id, std::function<void(Status)> done) {
  AddMember(id, "", std::move(done));
}

namespace {

// What the feed reports of one operation's writes: each inode and each name once.
void NoteChanges(uint64_t client, const std::vector<std::pair<Cf, std::string>>& writes,
                 std::vector<FeedChange>* changes) {
  const size_t first = changes->size();
  for (const auto& [cf, key] : writes) {
    if (key.size() < 8) continue;
    FeedChange c;
    c.client = client;
    if (cf == Cf::kInodes) {
      c.change.set_ino(ReadU64(key));
    } else {
      c.change.set_parent(ReadU64(key));
      c.change.set_name(key.substr(8));
    }
    bool seen = false;
    for (size_t j = first; j < changes->size() && !seen; ++j) {
      const Change& o = (*changes)[j].change;
      seen = o.ino() == c.change.ino() && o.parent() == c.change.parent() &&
             o.name() == c.change.name();
    }
    if (!seen) changes->push_back(std::move(c));
  }
}

}  // namespace

std::vector<OpReply> Committer::ApplyBatch(Store& store, const Applier& applier,
                                           const std::vector<const Operation*>& ops,
                                           rocksdb::WriteBatchWithIndex& wb,
                                           std::vector<FeedChange>* changes) {
  Txn txn(store, &wb);
  std::vector<std::pair<Cf, std::string>> writes;
  txn.NoteWrites(&writes);
  std::vector<OpReply> replies(ops.size());
  uint64_t dedup_hits = 0;
  for (size_t i = 0; i < ops.size(); ++i) {
    const Operation& op = *ops[i];
    const bool has_id = op.id().client_id() != 0;
    std::string dedup_key;
    if (has_id) {
      dedup_key = DedupKey(op.id().client_id(), op.id().seq());
      DedupRecord seen;
      auto found = txn.GetRecord(Cf::kSystem, dedup_key, &seen);
      if (!found.ok()) {
        replies[i] = ErrorReply(found.status());
        continue;
      }
      if (*found) {
        replies[i] = seen.reply();
        ++dedup_hits;
        continue;
      }
    }
    wb.SetSavePoint();
    writes.clear();
    replies[i] = applier.Apply(txn, op);
    if (replies[i].code() != Code::OK) {
      wb.RollbackToSavePoint().PermitUncheckedError();
    } else {
      wb.PopSavePoint().PermitUncheckedError();
      NoteChanges(op.id().client_id(), writes, changes);
    }
    if (has_id) {
      DedupRecord record;
      record.set_format(kFormat);
      record.set_applied_ms(op.now_ms());
      *record.mutable_reply() = replies[i];
      txn.PutRecord(Cf::kSystem, dedup_key, record);
      txn.Put(Cf::kSystem, DedupTimeKey(op.now_ms(), op.id().client_id(), op.id().seq()), "");
    }
  }
  deduplicated_->Add(dedup_hits);
  return replies;
}

void Committer::RecordBatch(size_t ops, double seconds) {
  local_ops_ += ops;
  local_syncs_ += 1;
  ops_->Add(ops);
  syncs_->Add(1);
  last_batch_->Set(static_cast<int64_t>(ops));
  ops_per_sync_->Set(static_cast<int64_t>(local_ops_.load() / local_syncs_.load()));
  batch_seconds_->Observe(seconds);
}

LocalCommitter::LocalCommitter(Store& store, const Applier& applier, CommitterOptions options)
    : store_(store), applier_(applier), options_(options) {
  // A lone metanode's numbering lasts one run: clients of an earlier run reset.
  feed_.Start(std::random_device{}() | (uint64_t{std::random_device{}()} << 32), 1);
  thread_ = std::thread([this] { Run(); });
}

LocalCommitter::~LocalCommitter() { Stop(); }

void LocalCommitter::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  work_cv_.notify_all();
  space_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LocalCommitter::SubmitAsync(Operation op, std::function<void(OpReply)> done) {
  auto* pending = new Pending{std::move(op), std::move(done)};
  {
    std::unique_lock lock(mu_);
    space_cv_.wait(lock, [&] { return stopping_ || queue_.size() < options_.max_queue; });
    if (!stopping_) {
      queue_.push_back(pending);
      pending = nullptr;
    }
  }
  if (pending != nullptr) {
    pending->done(ErrorReply(Unavailable("metanode is stopping")));
    delete pending;
    return;
  }
  work_cv_.notify_one();
}

void LocalCommitter::Run() {
  std::vector<Pending*> batch;
  for (;;) {
    batch.clear();
    {
      std::unique_lock lock(mu_);
      work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) {
        for (Pending* p : queue_) {
          p->done(ErrorReply(Unavailable("metanode is stopping")));
          delete p;
        }
        queue_.clear();
        return;
      }
      while (!queue_.empty() && batch.size() < options_.max_batch) {
        batch.push_back(queue_.front());
        queue_.pop_front();
      }
    }
    space_cv_.notify_all();
    CommitBatch(batch);
  }
}

void LocalCommitter::CommitBatch(std::vector<Pending*>& batch) {
  auto start = std::chrono::steady_clock::now();
  rocksdb::WriteBatchWithIndex wb(rocksdb::BytewiseComparator(), 0, /*overwrite_key=*/true);
  std::vector<const Operation*> ops;
  ops.reserve(batch.size());
  for (Pending* p : batch) ops.push_back(&p->op);
  std::vector<FeedChange> changes;
  std::vector<OpReply> replies = ApplyBatch(store_, applier_, ops, wb, &changes);
  Status written = store_.Write(wb.GetWriteBatch(), options_.sync);
  if (written.ok()) feed_.Append(++position_, std::move(changes));
  if (!written.ok()) {
    // The batch's fate on disk is unknown to nobody but RocksDB: the callers retry with the
    // same OpIds, and the dedup records tell them the truth after recovery.
    GLOG_ERROR("event=group_commit_failed ops={} error=\"{}\"", batch.size(), written.ToString());
    for (auto& r : replies)
      r = ErrorReply(Unavailable("metadata write failed: " + written.message()));
  }
  RecordBatch(batch.size(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  for (size_t i = 0; i < batch.size(); ++i) {
    batch[i]->done(std::move(replies[i]));
    delete batch[i];
  }
}

}  // namespace granary::metanode
