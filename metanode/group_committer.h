// GroupCommitter: the Committer of a metanode that is a member of the metadata Raft group
// (docs/metadata-ha.md). Operations travel through the replicated log (replication/raft_group.h)
// and every member applies them through the same Applier into its own RocksDB, with the log
// index in the same batch. Raft snapshots are small descriptions of the database; a member
// behind the leader's log fetches a RocksDB checkpoint from the leader instead.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "granary/meta.grpc.pb.h"
#include "metanode/committer.h"
#include "replication/raft_group.h"

namespace granary::metanode {

struct GroupCommitterOptions {
  std::string raft_dir;  // the Raft log
  uint64_t id = 0;
  std::string address;  // this member's service address (one of `peers`)
  std::string bind_host;
  // The group as given on the command line: forms the group at its first start; later starts
  // must agree with the stored configuration (or pass none).
  std::vector<replication::Member> peers;
  unsigned election_timeout_ms = 1000;
  unsigned heartbeat_ms = 100;
  unsigned snapshot_threshold = 4096;
  unsigned snapshot_trailing = 1024;
  // How long a read waits for the leader to renew its lease before answering Unavailable.
  std::chrono::milliseconds read_wait{2000};
};

class GroupCommitter final : public Committer, private replication::StateMachine {
 public:
  // Joins or forms the group: on a member's first start, peers already serving a group mean
  // "join" (wait to be caught up); otherwise the members named in `peers` bootstrap together.
  static Result<std::unique_ptr<GroupCommitter>> Start(Store& store, const Applier& applier,
                                                       GroupCommitterOptions options);
  ~GroupCommitter() override;

  void SubmitAsync(Operation op, std::function<void(OpReply)> done) override;
  void Stop() override;
  Status ReadFence() override;
  bool IsLeader() const override;
  void OnLeadership(std::function<void(bool)> fn) override;
  Result<GroupState> State() override;
  void AddMember(uint64_t id, const std::string& address,
                 std::function<void(Status)> done) override;
  void RemoveMember(uint64_t id, std::function<void(Status)> done) override;

  replication::GroupCounters counters() const { return group_->counters(); }

 private:
  GroupCommitter(Store& store, const Applier& applier, GroupCommitterOptions options);

  // replication::StateMachine (the group's loop thread).
  Result<std::vector<std::shared_ptr<void>>> Apply(
      uint64_t index, const std::vector<std::string_view>& commands) override;
  uint64_t applied_index() const override { return applied_.load(); }
  Result<std::string> Snapshot() override;
  Status Restore(std::string_view snapshot, const std::string& leader) override;
  void LeadershipChanged(bool leader) override;

  Status LoadLocalState();
  // Refuses a --peers that gives a stored member another address, or a member that was removed.
  static Status PeersAgree(const std::vector<replication::Member>& flag,
                           const std::vector<replication::Member>& stored, uint64_t self);
  static Status CheckMemberId(const std::string& raft_dir, uint64_t id);
  Status FetchCheckpoint(const std::string& leader, uint64_t min_applied,
                         const std::string& dir);

  Store& store_;
  const Applier& applier_;
  GroupCommitterOptions options_;
  std::unique_ptr<replication::RaftGroup> group_;
  std::atomic<uint64_t> applied_{0};
  std::string cluster_id_;  // loop thread (and start)
  std::atomic<bool> leading_{false};
  // Back-pressure: operations proposed and not yet answered; SubmitAsync waits above the limit.
  std::mutex pending_mu_;
  std::condition_variable pending_cv_;
  size_t pending_ = 0;
  std::mutex leadership_mu_;
  std::function<void(bool)> on_leadership_;
  Gauge* term_;
  Gauge* role_;
  Counter* leader_changes_;
  Counter* snapshots_installed_;
  Counter* snapshots_taken_;
  std::mutex metrics_mu_;
  replication::GroupCounters published_;  // what the counters above already hold
  Gauge* commit_index_;
  Gauge* applied_gauge_;
  Histogram* proposal_seconds_;
};

}  // namespace granary::metanode
