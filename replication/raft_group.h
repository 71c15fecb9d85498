// RaftGroup: one member of a Raft group (canonical raft, libraft-dev, over its libuv back end)
// replicating opaque commands into a StateMachine. It knows nothing of the metanode: the
// metanode's operations, snapshots and checkpoints plug in through StateMachine
// (docs/metadata-ha.md).
//
// Contract:
// - Members are named by id and *service address* (HOST:PORT of the member's gRPC server); Raft
//   itself talks on PORT+1 of the same host. Host names are resolved at every connection, so a
//   Kubernetes pod that comes back with a new IP is found again.
// - Propose() appends a command on the leader; `done` runs once the command is committed and
//   applied locally (with what StateMachine::Apply returned), or with NotLeader/Unavailable when
//   this member is not (or stopped being) the leader. A failed proposal may still commit later
//   through the next leader: callers make commands idempotent (the metanode's OpIds).
// - ReadFence() says whether local state may serve a linearizable read *now*: this member is the
//   leader, has applied everything committed before its term, and holds a lease — a majority
//   acknowledged one of its entries less than election_timeout × (1 - clock_drift) ago, and a
//   follower that heard from a leader never votes before its election timeout has run out.
// - Every StateMachine call and every callback runs on the group's one loop thread: they must
//   not block on the group (no Propose-and-wait inside them).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace granary::replication {

struct Member {
  uint64_t id = 0;
  std::string address;  // service address HOST:PORT; Raft listens on PORT+1
  bool operator==(const Member&) const = default;
};

// "1=HOST:PORT,2=HOST:PORT" <-> members (ids 1..2^32, addresses HOST:PORT).
Result<std::vector<Member>> ParseMembers(std::string_view text);
std::string FormatMembers(const std::vector<Member>& members);
// The address Raft uses for a service address: same host, port + 1.
Result<std::string> RaftAddressOf(std::string_view service_address);

class StateMachine {
 public:
  virtual ~StateMachine() = default;
  // Applies the commands of the committed entry at log `index`, on every member in log order.
  // Indexes at or below applied_index() are replays after a restart and must be skipped. One
  // result per command goes to its proposer's callback (ignored elsewhere). An error (a failed
  // disk write) leaves the entry unapplied; it is applied again when the next entry commits.
  virtual Result<std::vector<std::shared_ptr<void>>> Apply(
      uint64_t index, const std::vector<std::string_view>& commands) = 0;
  // The last index reflected in local state.
  virtual uint64_t applied_index() const = 0;
  // Makes everything applied durable and describes it (small: the log before it is dropped,
  // and a member that needs it fetches state out of band in Restore).
  virtual Result<std::string> Snapshot() = 0;
  // Brings local state to at least `snapshot`. `leader` is the service address of the member
  // that sent it (empty when loading at start).
  virtual Status Restore(std::string_view snapshot, const std::string& leader) = 0;
  // true once this member is leader and has applied everything committed before its term;
  // false when it stops being leader.
  virtual void LeadershipChanged(bool leader) = 0;
};

struct GroupOptions {
  std::string dir;  // Raft log and snapshot metadata (created if missing)
  uint64_t id = 0;
  std::string address;    // this member's service address
  std::string bind_host;  // where Raft listens (default: the address's host)
  // The configuration of the group's first start. Used only when `dir` holds no log yet.
  std::vector<Member> bootstrap;
  unsigned election_timeout_ms = 1000;
  unsigned heartbeat_ms = 100;
  unsigned snapshot_threshold = 4096;  // entries between snapshots
  unsigned snapshot_trailing = 1024;   // entries kept behind a snapshot for slow followers
  // Fraction of the election timeout a clock may drift within one lease (lease = timeout ×
  // (1 - drift)).
  double clock_drift = 0.1;
  // Proposals in flight at once; more wait in the caller's queue (and form bigger batches).
  unsigned max_inflight = 2;
};

enum class Role { kUnavailable, kFollower, kCandidate, kLeader };
std::string_view RoleName(Role role);

struct MemberView {
  Member member;
  bool voter = false;
  uint64_t match_index = 0;  // leader's view: highest index known replicated there
};

struct GroupView {
  uint64_t id = 0;
  Role role = Role::kUnavailable;
  uint64_t term = 0;
  uint64_t leader_id = 0;
  std::string leader_address;  // service address, empty when unknown
  uint64_t commit_index = 0;
  uint64_t applied_index = 0;
  uint64_t last_index = 0;
  uint64_t snapshot_index = 0;
  std::vector<MemberView> members;  // the configuration in force
};

struct GroupCounters {
  uint64_t leader_changes = 0;
  uint64_t snapshots_taken = 0;
  uint64_t snapshots_installed = 0;
};

class RaftGroup {
 public:
  // Opens the log under options.dir (bootstrapping it when empty and options.bootstrap is
  // given), starts the loop thread and joins the group. A member that was running before waits
  // one election timeout before it starts, so it cannot vote a live leader's lease away.
  static Result<std::unique_ptr<RaftGroup>> Start(GroupOptions options, StateMachine& fsm);
  ~RaftGroup();  // Stop()

  // `done` runs on the loop thread, or on the caller's thread when refused at once (not the
  // leader). Commands queued while earlier ones are in flight travel in one log entry.
  using ProposeDone = std::function<void(Status, std::shared_ptr<void>)>;
  void Propose(std::string command, ProposeDone done);
  // Ok when a read of local state is linearizable now; waits up to `wait` for the lease to be
  // renewed; NotLeader (message names the leader) or Unavailable otherwise.
  Status ReadFence(std::chrono::milliseconds wait);
  bool is_leader() const;
  // The leader's service address ("" when unknown or this member).
  std::string leader_address() const;
  uint64_t id() const;

  // A consistent view taken on the loop thread.
  Result<GroupView> View();
  GroupCounters counters() const;

  // Membership changes (leader only; one at a time). Add brings the member in as a spare,
  // lets it catch up and makes it a voter.
  void AddMember(Member member, std::function<void(Status)> done);
  void RemoveMember(uint64_t id, std::function<void(Status)> done);
  void TransferLeadership(uint64_t to, std::function<void(Status)> done);

  // Leaves the loop; pending proposals get Unavailable. Idempotent.
  void Stop();

  struct Impl;

 private:
  explicit RaftGroup(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace granary::replication
