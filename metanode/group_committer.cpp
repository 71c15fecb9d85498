#include "metanode/group_committer.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "common/log.h"
#include "common/net.h"
#include "common/rpc_status.h"

namespace granary::metanode {

namespace {

int64_t NowSteadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The change feed's numbering is the log's, the same on every member of one cluster.
uint64_t FeedEpoch(const std::string& cluster_id) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a: stable across builds, unlike std::hash
  for (unsigned char c : cluster_id) h = (h ^ c) * 1099511628211ull;
  return h | 1;
}

// Asks the other members whether a group already runs (a member's first start joins it rather
// than bootstrapping a second history). Sets `leader` when one is known.
bool GroupAlreadyServes(const GroupCommitterOptions& o, std::string* leader) {
  bool found = false;
  // A group whose leader is being elected answers without one: ask again for a while.
  for (int round = 0; round < 10; ++round) {
    for (const replication::Member& m : o.peers) {
      if (m.id == o.id) continue;
      auto stub =
          MetaGroup::NewStub(grpc::CreateChannel(m.address, grpc::InsecureChannelCredentials()));
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(1));
      MetaGroupStatus status;
      // A group that ever elected a leader has committed past its bootstrap configuration
      // (index 1): the new leader's barrier is index 2.
      if (!stub->Status(&ctx, Empty(), &status).ok() || !status.replicated() ||
          (status.leader_id() == 0 && status.commit_index() < 2)) {
        continue;
      }
      found = true;
      if (status.leader_id() != 0 && !status.leader_address().empty()) {
        *leader = status.leader_address();
        GLOG_INFO("event=meta_group_found peer={} leader={} applied={}", m.address,
                  status.leader_address(), status.applied_index());
        return true;
      }
    }
    if (!found) return false;
    std::this_thread::sleep_for(std::chrono::seconds(1));  // bounded: 10 rounds
  }
  return found;
}

Status SyncPath(const std::string& path, bool directory) {
  int fd = open(path.c_str(), (directory ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
  if (fd < 0) return Internal(fmt::format("open {}: {}", path, strerror(errno)));
  int rc = fsync(fd);
  close(fd);
  if (rc != 0) return Internal(fmt::format("fsync {}: {}", path, strerror(errno)));
  return Status::Ok();
}

}  // namespace

GroupCommitter::GroupCommitter(Store& store, const Applier& applier, GroupCommitterOptions options)
    : store_(store), applier_(applier), options_(std::move(options)) {
  MetricsRegistry& m = Metrics();
  term_ = &m.GetGauge("granary_meta_raft_term", "Current Raft term of this metadata member");
  role_ = &m.GetGauge("granary_meta_raft_role",
                      "This member's role: 0 down, 1 follower, 2 candidate, 3 leader");
  leader_changes_ = &m.GetCounter("granary_meta_raft_leader_changes_total",
                                  "Leaders this member has seen elected");
  snapshots_installed_ = &m.GetCounter("granary_meta_raft_snapshots_installed_total",
                                       "Snapshots installed from the leader (checkpoint fetched)");
  snapshots_taken_ = &m.GetCounter("granary_meta_raft_snapshots_taken_total",
                                   "Snapshots taken here (log truncated behind them)");
  commit_index_ = &m.GetGauge("granary_meta_raft_commit_index", "Raft commit index known here");
  applied_gauge_ =
      &m.GetGauge("granary_meta_raft_applied_index", "Raft log index applied to this member's db");
  proposal_seconds_ = &m.GetHistogram("granary_meta_raft_proposal_seconds",
                                      "Time from proposal to applied on the leader");
}

Result<std::unique_ptr<GroupCommitter>> GroupCommitter::Start(Store& store, const Applier& applier,
                                                              GroupCommitterOptions options) {
  std::unique_ptr<GroupCommitter> c(new GroupCommitter(store, applier, std::move(options)));
  GRANARY_TRY(c->LoadLocalState());
  const GroupCommitterOptions& o = c->options_;
  replication::GroupOptions g;
  g.dir = o.raft_dir;
  g.id = o.id;
  g.address = o.address;
  g.bind_host = o.bind_host;
  g.election_timeout_ms = o.election_timeout_ms;
  g.heartbeat_ms = o.heartbeat_ms;
  g.snapshot_threshold = o.snapshot_threshold;
  g.snapshot_trailing = o.snapshot_trailing;
  std::error_code ec;
  const bool has_log = std::filesystem::exists(o.raft_dir + "/metadata1", ec) ||
                       std::filesystem::exists(o.raft_dir + "/metadata2", ec);
  GRANARY_TRY(CheckMemberId(o.raft_dir, o.id));
  if (!has_log) {
    if (o.peers.empty()) {
      return InvalidArgument(
          fmt::format("{} holds no metadata group yet: the first start needs --peers", o.raft_dir));
    }
    std::string leader;
    if (GroupAlreadyServes(o, &leader)) {
      // Joining: start from the leader's state, so this member never replays the log over a
      // database that lacks what came before it (a group grown from one member).
      if (!leader.empty()) {
        const std::string incoming = store.path() + ".incoming";
        std::filesystem::remove_all(incoming, ec);
        GRANARY_TRY(c->FetchCheckpoint(leader, 0, incoming));
        GRANARY_TRY(store.Replace(incoming));
        GRANARY_TRY(c->LoadLocalState());
      }
    } else if (c->applied_.load() > 0) {
      return Status(Code::PRECONDITION_FAILED,
                    fmt::format("the metadata store was written by a group member (applied index "
                                "{}) but its Raft log {} is gone and no member of the group "
                                "answers: start the others, or wipe this data dir to rejoin",
                                c->applied_.load(), o.raft_dir));
    } else {
      std::string pool;
      auto used = Txn(store).Get(Cf::kSystem, kDefaultPoolKey, &pool);
      GRANARY_TRY(used);
      if (*used && o.peers.size() > 1) {
        return Status(Code::PRECONDITION_FAILED,
                      fmt::format("{} holds the metadata of a metanode that ran alone: start it "
                                  "as a group of one (--peers with only member {}) and add the "
                                  "others with `granary admin meta add`",
                                  store.path(), o.id));
      }
      g.bootstrap = o.peers;
    }
  }
  auto group = replication::RaftGroup::Start(g, *c);
  GRANARY_TRY(group);
  c->group_ = std::move(*group);
  if (has_log && !o.peers.empty()) {
    auto view = c->group_->View();
    GRANARY_TRY(view);
    std::vector<replication::Member> stored;
    for (const auto& m : view->members) stored.push_back(m.member);
    std::sort(stored.begin(), stored.end(),
              [](const auto& a, const auto& b) { return a.id < b.id; });
    Status agrees = PeersAgree(o.peers, stored, o.id);
    if (!agrees.ok()) {
      c->group_->Stop();
      return agrees;
    }
    if (stored != o.peers) {
      // Members added or removed since (`admin meta add|remove`, an operator scaling the
      // group): the stored configuration is the truth.
      GLOG_INFO("event=meta_peers_differ flag={} stored={}", replication::FormatMembers(o.peers),
                replication::FormatMembers(stored));
    }
  }
  return c;
}

Status GroupCommitter::PeersAgree(const std::vector<replication::Member>& flag,
                                  const std::vector<replication::Member>& stored, uint64_t self) {
  if (stored.empty()) return Status::Ok();
  bool self_stored = false;
  bool contradicts = false;
  for (const auto& s : stored) {
    self_stored = self_stored || s.id == self;
    for (const auto& f : flag)
      contradicts = contradicts || (f.id == s.id && f.address != s.address);
  }
  if (!contradicts && self_stored) return Status::Ok();
  return InvalidArgument(fmt::format(
      "--peers {} does not match the group's stored configuration {}{}: start without --peers, "
      "or with the stored members; change membership with `granary admin meta add|remove`",
      replication::FormatMembers(flag), replication::FormatMembers(stored),
      self_stored ? "" : fmt::format(" (member {} was removed from it)", self)));
}

Status GroupCommitter::CheckMemberId(const std::string& raft_dir, uint64_t id) {
  // The data dir remembers whose it is: another member's dir (a copy, a mixed-up volume) would
  // otherwise answer for it with that member's log.
  const std::string path = raft_dir + "/member.id";
  std::ifstream in(path);
  uint64_t stored = 0;
  if (in >> stored) {
    if (stored != id) {
      return InvalidArgument(
          fmt::format("{} belongs to metadata group member {}, not --id {}", raft_dir, stored, id));
    }
    return Status::Ok();
  }
  std::error_code ec;
  std::filesystem::create_directories(raft_dir, ec);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << id << "\n";
    if (!out) return Internal("write " + tmp);
  }
  GRANARY_TRY(SyncPath(tmp, false));
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return Internal(fmt::format("rename {}: {}", tmp, strerror(errno)));
  }
  return SyncPath(raft_dir, true);
}

GroupCommitter::~GroupCommitter() { Stop(); }

Status GroupCommitter::LoadLocalState() {
  Txn view(store_);
  AppliedRecord applied;
  auto found = view.GetRecord(Cf::kSystem, kAppliedKey, &applied);
  GRANARY_TRY(found);
  applied_ = *found ? applied.index() : 0;
  GroupRecord group;
  auto named = view.GetRecord(Cf::kSystem, kGroupKey, &group);
  GRANARY_TRY(named);
  cluster_id_ = *named ? group.cluster_id() : "";
  feed_.Start(FeedEpoch(cluster_id_), applied_.load() + 1);
  return Status::Ok();
}

void GroupCommitter::Stop() {
  if (group_) group_->Stop();
}

void GroupCommitter::SubmitAsync(Operation op, std::function<void(OpReply)> done) {
  const int64_t start = NowSteadyNs();
  {
    std::unique_lock lock(pending_mu_);
    pending_cv_.wait(lock, [&] { return pending_ < CommitterOptions().max_queue; });
    ++pending_;
  }
  group_->Propose(op.SerializeAsString(),
                  [this, start, done = std::move(done)](Status s, std::shared_ptr<void> result) {
                    {
                      std::lock_guard lock(pending_mu_);
                      --pending_;
                    }
                    pending_cv_.notify_one();
                    if (!s.ok()) {
                      done(ErrorReply(s));
                      return;
                    }
                    proposal_seconds_->Observe((NowSteadyNs() - start) / 1e9);
                    if (!result) {
                      done(ErrorReply(Internal("applied without a reply")));
                      return;
                    }
                    done(std::move(*std::static_pointer_cast<OpReply>(result)));
                  });
}

Status GroupCommitter::ReadFence() { return group_->ReadFence(options_.read_wait); }

bool GroupCommitter::IsLeader() const { return leading_.load() && group_->is_leader(); }

void GroupCommitter::OnLeadership(std::function<void(bool)> fn) {
  std::lock_guard lock(leadership_mu_);
  on_leadership_ = std::move(fn);
}

void GroupCommitter::LeadershipChanged(bool leader) {
  leading_ = leader;
  std::lock_guard lock(leadership_mu_);
  if (on_leadership_) on_leadership_(leader);
}

Result<GroupState> GroupCommitter::State() {
  auto view = group_->View();
  GRANARY_TRY(view);
  GroupState s;
  s.id = view->id;
  s.role = std::string(replication::RoleName(view->role));
  s.term = view->term;
  s.leader_id = view->leader_id;
  s.leader_address = view->leader_address;
  s.commit_index = view->commit_index;
  s.applied_index = view->applied_index;
  s.snapshot_index = view->snapshot_index;
  for (const auto& m : view->members) {
    s.members.push_back({m.member.id, m.member.address, m.voter, m.match_index});
  }
  term_->Set(static_cast<int64_t>(s.term));
  commit_index_->Set(static_cast<int64_t>(s.commit_index));
  role_->Set(static_cast<int64_t>(view->role));
  std::lock_guard lock(metrics_mu_);
  const replication::GroupCounters now = group_->counters();
  leader_changes_->Add(now.leader_changes - published_.leader_changes);
  snapshots_installed_->Add(now.snapshots_installed - published_.snapshots_installed);
  snapshots_taken_->Add(now.snapshots_taken - published_.snapshots_taken);
  published_ = now;
  return s;
}

void GroupCommitter::AddMember(uint64_t id, const std::string& address,
                               std::function<void(Status)> done) {
  auto hp = ParseHostPort(address);
  if (!hp.ok() || hp->port == 0 || hp->port == 0xffff) {
    done(InvalidArgument(fmt::format("member address '{}': expected HOST:PORT", address)));
    return;
  }
  group_->AddMember({id, hp->ToString()}, std::move(done));
}

void GroupCommitter::RemoveMember(uint64_t id, std::function<void(Status)> done) {
  group_->RemoveMember(id, std::move(done));
}

Result<std::vector<std::shared_ptr<void>>> GroupCommitter::Apply(
    uint64_t index, const std::vector<std::string_view>& commands) {
  const auto start = std::chrono::steady_clock::now();
  std::vector<Operation> ops(commands.size());
  std::vector<const Operation*> valid;
  std::vector<bool> parsed(commands.size(), false);
  for (size_t i = 0; i < commands.size(); ++i) {
    parsed[i] = ops[i].ParseFromArray(commands[i].data(), static_cast<int>(commands[i].size()));
    if (parsed[i]) valid.push_back(&ops[i]);
  }
  rocksdb::WriteBatchWithIndex wb(rocksdb::BytewiseComparator(), 0, /*overwrite_key=*/true);
  std::vector<FeedChange> changes;
  std::vector<OpReply> replies = ApplyBatch(store_, applier_, valid, wb, &changes);
  AppliedRecord applied;
  applied.set_format(kFormat);
  applied.set_index(index);
  wb.Put(store_.cf(Cf::kSystem), rocksdb::Slice(kAppliedKey.data(), kAppliedKey.size()),
         applied.SerializeAsString())
      .PermitUncheckedError();
  // Not synced: the Raft log is the durable copy. After a crash the database may be behind its
  // log; those entries are applied again (snapshots sync first, so the log never lacks them).
  GRANARY_TRY(store_.Write(wb.GetWriteBatch(), /*sync=*/false));
  applied_ = index;
  applied_gauge_->Set(static_cast<int64_t>(index));
  feed_.Append(index, std::move(changes));
  if (cluster_id_.empty()) {
    for (const Operation* op : valid) {
      if (op->has_bootstrap() && !op->bootstrap().cluster_id().empty()) {
        GroupRecord group;
        Txn view(store_);
        if (auto named = view.GetRecord(Cf::kSystem, kGroupKey, &group); named.ok() && *named) {
          cluster_id_ = group.cluster_id();
          feed_.Start(FeedEpoch(cluster_id_), index + 1);
        }
      }
    }
  }
  RecordBatch(valid.size(),
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  std::vector<std::shared_ptr<void>> out(commands.size());
  size_t next = 0;
  for (size_t i = 0; i < commands.size(); ++i) {
    out[i] = std::make_shared<OpReply>(
        parsed[i] ? std::move(replies[next++])
                  : ErrorReply(Internal(
                        fmt::format("log entry {} holds an unreadable operation", index))));
  }
  return out;
}

Result<std::string> GroupCommitter::Snapshot() {
  GRANARY_TRY(store_.SyncWal());
  GroupSnapshot snap;
  snap.set_format(kFormat);
  snap.set_applied_index(applied_.load());
  snap.set_cluster_id(cluster_id_);
  return snap.SerializeAsString();
}

Status GroupCommitter::Restore(std::string_view data, const std::string& leader) {
  GroupSnapshot snap;
  if (!snap.ParseFromArray(data.data(), static_cast<int>(data.size()))) {
    return Corrupt("unreadable metadata group snapshot");
  }
  if (!cluster_id_.empty() && !snap.cluster_id().empty() && snap.cluster_id() != cluster_id_) {
    return Status(Code::PRECONDITION_FAILED,
                  fmt::format("this data dir belongs to cluster {}, the group's snapshot to "
                              "cluster {}: refusing to mix them",
                              cluster_id_, snap.cluster_id()));
  }
  if (applied_.load() >= snap.applied_index()) return Status::Ok();
  if (leader.empty()) {
    return Status(Code::PRECONDITION_FAILED,
                  fmt::format("the metadata store is at log index {}, behind the group's "
                              "snapshot at {}, and no leader is known to copy from",
                              applied_.load(), snap.applied_index()));
  }
  const std::string incoming = store_.path() + ".incoming";
  std::error_code ec;
  std::filesystem::remove_all(incoming, ec);
  GRANARY_TRY(FetchCheckpoint(leader, snap.applied_index(), incoming));
  GRANARY_TRY(store_.Replace(incoming));
  GRANARY_TRY(LoadLocalState());
  applied_gauge_->Set(static_cast<int64_t>(applied_.load()));
  GLOG_INFO("event=meta_checkpoint_installed from={} applied={} snapshot={}", leader,
            applied_.load(), snap.applied_index());
  if (applied_.load() < snap.applied_index()) {
    return Unavailable(fmt::format("checkpoint from {} is at {}, behind the snapshot at {}", leader,
                                   applied_.load(), snap.applied_index()));
  }
  return Status::Ok();
}

Status GroupCommitter::FetchCheckpoint(const std::string& leader, uint64_t min_applied,
                                       const std::string& dir) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  auto stub = MetaGroup::NewStub(
      grpc::CreateCustomChannel(leader, grpc::InsecureChannelCredentials(), args));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(10));
  FetchCheckpointRequest req;
  req.set_min_applied_index(min_applied);
  req.set_cluster_id(cluster_id_);
  auto reader = stub->FetchCheckpoint(&ctx, req);
  std::filesystem::create_directories(dir);
  CheckpointChunk chunk;
  std::string open_name;
  std::ofstream out;
  std::vector<std::string> files;
  uint64_t bytes = 0;
  while (reader->Read(&chunk)) {
    const std::string& name = chunk.file();
    if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
      ctx.TryCancel();
      reader->Finish().ok();
      return Corrupt(fmt::format("checkpoint from {} names file '{}'", leader, name));
    }
    if (name != open_name) {
      if (out.is_open()) out.close();
      out.open(dir + "/" + name, std::ios::binary | std::ios::trunc);
      if (!out) return Internal(fmt::format("create {}/{}", dir, name));
      open_name = name;
      files.push_back(name);
    }
    out.write(chunk.data().data(), static_cast<std::streamsize>(chunk.data().size()));
    bytes += chunk.data().size();
  }
  if (out.is_open()) out.close();
  Status finished = FromGrpcStatus(reader->Finish());
  if (!finished.ok()) return finished.WithContext("fetch checkpoint from " + leader);
  for (const std::string& f : files) GRANARY_TRY(SyncPath(dir + "/" + f, false));
  GRANARY_TRY(SyncPath(dir, true));
  GLOG_INFO("event=meta_checkpoint_fetched from={} files={} bytes={}", leader, files.size(), bytes);
  return Status::Ok();
}

}  // namespace granary::metanode
