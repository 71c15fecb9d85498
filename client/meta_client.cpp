#include "client/meta_client.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include <random>
#include <thread>

#include "client/meta_client_call.h"
#include "common/log.h"
#include "common/net.h"
#include "common/rpc_status.h"

namespace granary::client {

namespace {
uint64_t RandomClientId() {
  std::random_device rd;
  uint64_t id = 0;
  while (id == 0) id = (uint64_t{rd()} << 32) ^ rd();  // 0 means "no OpId"
  return id;
}
}  // namespace

Result<std::unique_ptr<MetaClient>> MetaClient::Connect(MetaClientOptions options) {
  auto addresses = ParseHostPortList(options.address);
  GRANARY_TRY(addresses);
  if (addresses->empty()) return InvalidArgument("no metanode address");
  auto client = std::make_unique<MetaClient>();
  client->options_ = options;
  for (const HostPort& a : *addresses) client->configured_.push_back(a.ToString());
  client->client_id_ = RandomClientId();
  client->current_ = &client->EndpointFor(client->configured_.front());
  return client;
}

MetaClient::Endpoint& MetaClient::EndpointFor(const std::string& address) {
  std::lock_guard lock(endpoints_mu_);
  for (auto& e : endpoints_) {
    if (e->address == address) return *e;
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  // Reconnect quickly after a metanode restart (gRPC's default backoff grows to 2 minutes).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  // One connection per MetaClient rather than one shared by every client of the process.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto e = std::make_unique<Endpoint>();
  e->address = address;
  e->channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  e->ns = Namespace::NewStub(e->channel);
  e->data = DataMap::NewStub(e->channel);
  e->admin = Admin::NewStub(e->channel);
  e->cluster = Cluster::NewStub(e->channel);
  e->group = MetaGroup::NewStub(e->channel);
  endpoints_.push_back(std::move(e));
  return *endpoints_.back();
}

MetaClient::Endpoint& MetaClient::Current() {
  std::lock_guard lock(endpoints_mu_);
  return *current_;
}

std::string MetaClient::address() const {
  std::lock_guard lock(endpoints_mu_);
  return current_->address;
}

MetaClient::Endpoint* MetaClient::Next(Endpoint* after) {
  // The configured member after `after` (a leader learned from a hint may not be in the list).
  size_t i = 0;
  for (; i < configured_.size(); ++i) {
    if (configured_[i] == after->address) break;
  }
  return &EndpointFor(configured_[(i + 1) % configured_.size()]);
}

MetaClient::~MetaClient() {
  {
    std::lock_guard lock(keep_alive_mu_);
    keep_alive_stop_ = true;
    if (keep_alive_call_) keep_alive_call_->TryCancel();
  }
  keep_alive_cv_.notify_all();
  if (keep_alive_thread_.joinable()) keep_alive_thread_.join();
}

OpId MetaClient::NextOpId() {
  if (options_.keep_alive) {
    std::call_once(keep_alive_started_,
                   [this] { keep_alive_thread_ = std::thread([this] { KeepAliveLoop(); }); });
  }
  OpId id;
  id.set_client_id(client_id());
  id.set_seq(seq_.fetch_add(1, std::memory_order_relaxed) + 1);
  return id;
}

Result<KeepAliveReply> MetaClient::KeepAlive() {
  KeepAliveRequest req;
  req.set_client_id(client_id());
  KeepAliveReply reply;
  // Short: the loop tries again soon, and shutdown must not wait for it (the call in flight is
  // cancelled by the destructor).
  Status status = Invoke(
      "keepalive",
      [&](Endpoint& e, grpc::ClientContext& ctx) {
        {
          std::lock_guard lock(keep_alive_mu_);
          if (keep_alive_stop_) return grpc::Status(grpc::StatusCode::CANCELLED, "shutting down");
          keep_alive_call_ = &ctx;
        }
        grpc::Status rpc = e.ns->KeepAlive(&ctx, req, &reply);
        std::lock_guard lock(keep_alive_mu_);
        keep_alive_call_ = nullptr;
        // A metanode from before sessions: there is nothing to renew.
        keep_alive_unsupported_ = rpc.error_code() == grpc::StatusCode::UNIMPLEMENTED;
        return rpc;
      },
      std::chrono::seconds(5));
  if (!status.ok()) return status;
  return reply;
}

void MetaClient::KeepAliveLoop() {
  std::chrono::milliseconds wait{0};
  std::unique_lock lock(keep_alive_mu_);
  while (!keep_alive_cv_.wait_for(lock, wait, [this] { return keep_alive_stop_; })) {
    lock.unlock();
    auto renewed = KeepAlive();
    lock.lock();
    if (renewed.ok()) {
      wait = std::chrono::milliseconds(std::max<int64_t>(renewed->lease_ms() / 3, 10));
      continue;
    }
    const Code code = renewed.status().code();
    if (code == Code::PRECONDITION_FAILED) {
      // Reaped: pins this client held are gone (an open file that was unlinked may have been
      // freed). A new client id is a new session; the old one is never revived.
      const uint64_t old_id = client_id();
      client_id_.store(RandomClientId(), std::memory_order_relaxed);
      GLOG_WARN("event=session_expired client={:016x} new_client={:016x} error=\"{}\"", old_id,
                client_id(), renewed.status().ToString());
      wait = std::chrono::milliseconds(0);
    } else if (keep_alive_unsupported_) {
      return;
    } else {
      wait = std::chrono::seconds(1);  // metanode unreachable: try again soon
    }
  }
}

namespace {
constexpr std::chrono::milliseconds kLoneAttempt = std::chrono::seconds(10);
}  // namespace

Status MetaClient::Invoke(const char* what, const Attempt& attempt,
                          std::chrono::milliseconds budget,
                          std::chrono::milliseconds attempt_timeout) {
  if (budget.count() == 0) budget = options_.deadline;
  if (attempt_timeout.count() == 0) attempt_timeout = options_.attempt_timeout;
  const auto deadline = std::chrono::system_clock::now() + budget;
  const bool several = configured_.size() > 1;
  // In a group a retry is cheap (another member, or the one a follower names) and an election
  // takes about one election timeout: wait at most a quarter second between rounds.
  const std::chrono::milliseconds max_backoff =
      several ? std::chrono::milliseconds(250) : std::chrono::milliseconds(1000);
  auto backoff = options_.initial_backoff;
  int hops = 0;  // leader hints followed without success: a group still settling
  for (;;) {
    Endpoint& e = Current();
    grpc::ClientContext ctx;
    // Alone, the one address may still be a member of a group (a deposed leader that was
    // paused): an attempt that hears nothing for long is sent again (the OpId makes that safe),
    // so one request lost on its way through a failover does not use up the whole deadline.
    const auto patience = several ? attempt_timeout : std::max(attempt_timeout, kLoneAttempt);
    const auto attempt_deadline = std::min(deadline, std::chrono::system_clock::now() + patience);
    ctx.set_deadline(attempt_deadline);
    // Alone, wait for the metanode to come back; in a group, move on to another member.
    ctx.set_wait_for_ready(!several);
    Status status = FromGrpcStatus(attempt(e, ctx));
    if (status.ok()) return status;
    const Code code = status.code();
    // Retry only what may not have happened or whose effect the OpId makes idempotent.
    if (code != Code::UNAVAILABLE && code != Code::NOT_LEADER) {
      return status.WithContext(fmt::format("{} on metanode {}", what, e.address));
    }
    Endpoint* next = nullptr;
    const std::string hint = LeaderHint(status);
    if (!hint.empty() && hint != e.address && hops < 3) {
      next = &EndpointFor(hint);
      ++hops;
    } else if (several) {
      next = Next(&e);
      hops = 0;
    }
    if (next != nullptr) {
      std::lock_guard lock(endpoints_mu_);
      if (current_ == &e) current_ = next;
    }
    if (next != nullptr && hops > 0) continue;  // straight to the named leader
    if (std::chrono::system_clock::now() + backoff >= deadline) {
      return status.WithContext(fmt::format("{} on metanode {}", what, e.address));
    }
    // Back-off between attempts of a failed call (not synchronisation).
    std::this_thread::sleep_for(backoff);
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, max_backoff);
  }
}

// ---------------------------------------------------------------- namespace

Result<InodeAttr> MetaClient::Lookup(uint64_t parent, std::string_view name) {
  LookupRequest req;
  req.set_parent(parent);
  req.set_name(std::string(name));
  EntryReply reply;
  GRANARY_TRY(Call("lookup", &Endpoint::ns, &Namespace::Stub::Lookup, req, &reply));
  return std::move(*reply.mutable_attr());
}

Result<InodeAttr> MetaClient::GetAttr(uint64_t ino) {
  GetAttrRequest req;
  req.set_ino(ino);
  AttrReply reply;
  GRANARY_TRY(Call("getattr", &Endpoint::ns, &Namespace::Stub::GetAttr, req, &reply));
  return std::move(*reply.mutable_attr());
}

Result<InodeAttr> MetaClient::SetAttr(SetAttrRequest req) {
  if (!req.has_op()) *req.mutable_op() = NextOpId();
  AttrReply reply;
  GRANARY_TRY(Call("setattr", &Endpoint::ns, &Namespace::Stub::SetAttr, req, &reply));
  return std::move(*reply.mutable_attr());
}

Result<InodeAttr> MetaClient::Mkdir(uint64_t parent, std::string_view name, uint32_t mode,
                                    uint32_t uid, uint32_t gid) {
  MkdirRequest req;
  req.set_parent(parent);
  req.set_name(std::string(name));
  req.set_mode(mode);
  req.set_uid(uid);
  req.set_gid(gid);
  return Mkdir(std::move(req));
}

Result<InodeAttr> MetaClient::Mkdir(MkdirRequest req) {
  if (!req.has_op()) *req.mutable_op() = NextOpId();
  EntryReply reply;
  GRANARY_TRY(Call("mkdir", &Endpoint::ns, &Namespace::Stub::Mkdir, req, &reply));
  return std::move(*reply.mutable_attr());
}

Result<InodeAttr> MetaClient::Create(CreateRequest req) {
  if (!req.has_op()) *req.mutable_op() = NextOpId();
  EntryReply reply;
  GRANARY_TRY(Call("create", &Endpoint::ns, &Namespace::Stub::Create, req, &reply));
  return std::move(*reply.mutable_attr());
}

Result<InodeAttr> MetaClient::Create(uint64_t parent, std::string_view name, uint32_t mode,
                                     bool exclusive) {
  CreateRequest req;
  req.set_parent(parent);
  req.set_name(std::string(name));
  req.set_mode(mode);
  req.set_exclusive(exclusive);
  return Create(std::move(req));
}

Status MetaClient::Unlink(uint64_t parent, std::string_view name) {
  UnlinkRequest req;
  *req.mutable_op() = NextOpId();
  req.set_parent(parent);
  req.set_name(std::string(name));
  Empty reply;
  return Call("unlink", &Endpoint::ns, &Namespace::Stub::Unlink, req, &reply);
}

Status MetaClient::Rmdir(uint64_t parent, std::string_view name) {
  RmdirRequest req;
  *req.mutable_op() = NextOpId();
  req.set_parent(parent);
  req.set_name(std::string(name));
  Empty reply;
  return Call("rmdir", &Endpoint::ns, &Namespace::Stub::Rmdir, req, &reply);
}

Result<RenameReply> MetaClient::Rename(uint64_t parent, std::string_view name, uint64_t new_parent,
                                       std::string_view new_name, RenameFlags flags) {
  RenameRequest req;
  *req.mutable_op() = NextOpId();
  req.set_parent(parent);
  req.set_name(std::string(name));
  req.set_new_parent(new_parent);
  req.set_new_name(std::string(new_name));
  req.set_flags(flags);
  RenameReply reply;
  GRANARY_TRY(Call("rename", &Endpoint::ns, &Namespace::Stub::Rename, req, &reply));
  return reply;
}

Result<ReadDirReply> MetaClient::ReadDir(uint64_t ino, std::string_view after, uint32_t limit,
                                         bool plus) {
  ReadDirRequest req;
  req.set_ino(ino);
  req.set_after(std::string(after));
  req.set_limit(limit);
  req.set_plus(plus);
  ReadDirReply reply;
  GRANARY_TRY(Call("readdir", &Endpoint::ns, &Namespace::Stub::ReadDir, req, &reply));
  return reply;
}

Result<InodeAttr> MetaClient::Symlink(uint64_t parent, std::string_view name,
                                      std::string_view target, uint32_t uid, uint32_t gid) {
  SymlinkRequest req;
  *req.mutable_op() = NextOpId();
  req.set_parent(parent);
  req.set_name(std::string(name));
  req.set_target(std::string(target));
  req.set_uid(uid);
  req.set_gid(gid);
  EntryReply reply;
  GRANARY_TRY(Call("symlink", &Endpoint::ns, &Namespace::Stub::Symlink, req, &reply));
  return std::move(*reply.mutable_attr());
}

Result<std::string> MetaClient::ReadLink(uint64_t ino) {
  ReadLinkRequest req;
  req.set_ino(ino);
  ReadLinkReply reply;
  GRANARY_TRY(Call("readlink", &Endpoint::ns, &Namespace::Stub::ReadLink, req, &reply));
  return std::move(*reply.mutable_target());
}

Result<InodeAttr> MetaClient::Link(uint64_t ino, uint64_t new_parent, std::string_view new_name) {
  LinkRequest req;
  *req.mutable_op() = NextOpId();
  req.set_ino(ino);
  req.set_new_parent(new_parent);
  req.set_new_name(std::string(new_name));
  EntryReply reply;
  GRANARY_TRY(Call("link", &Endpoint::ns, &Namespace::Stub::Link, req, &reply));
  return std::move(*reply.mutable_attr());
}

Status MetaClient::SetXattr(uint64_t ino, std::string_view name, std::string_view value,
                            SetXattrRequest::Mode mode) {
  SetXattrRequest req;
  req.set_ino(ino);
  req.set_name(std::string(name));
  req.set_value(std::string(value));
  req.set_mode(mode);
  return SetXattr(std::move(req));
}

Status MetaClient::SetXattr(SetXattrRequest req) {
  if (!req.has_op()) *req.mutable_op() = NextOpId();
  Empty reply;
  return Call("setxattr", &Endpoint::ns, &Namespace::Stub::SetXattr, req, &reply);
}

Result<std::string> MetaClient::GetXattr(uint64_t ino, std::string_view name) {
  GetXattrRequest req;
  req.set_ino(ino);
  req.set_name(std::string(name));
  GetXattrReply reply;
  GRANARY_TRY(Call("getxattr", &Endpoint::ns, &Namespace::Stub::GetXattr, req, &reply));
  return std::move(*reply.mutable_value());
}

Result<std::vector<std::string>> MetaClient::ListXattr(uint64_t ino) {
  ListXattrRequest req;
  req.set_ino(ino);
  ListXattrReply reply;
  GRANARY_TRY(Call("listxattr", &Endpoint::ns, &Namespace::Stub::ListXattr, req, &reply));
  return std::vector<std::string>(reply.names().begin(), reply.names().end());
}

Status MetaClient::RemoveXattr(uint64_t ino, std::string_view name) {
  RemoveXattrRequest req;
  *req.mutable_op() = NextOpId();
  req.set_ino(ino);
  req.set_name(std::string(name));
  Empty reply;
  return Call("removexattr", &Endpoint::ns, &Namespace::Stub::RemoveXattr, req, &reply);
}

Result<StatFsReply> MetaClient::StatFs(uint64_t ino) {
  StatFsRequest req;
  req.set_ino(ino);
  StatFsReply reply;
  GRANARY_TRY(Call("statfs", &Endpoint::ns, &Namespace::Stub::StatFs, req, &reply));
  return reply;
}

Result<InodeAttr> MetaClient::Fallocate(uint64_t ino, uint64_t offset, uint64_t length,
                                        uint32_t mode) {
  FallocateRequest req;
  *req.mutable_op() = NextOpId();
  req.set_ino(ino);
  req.set_offset(offset);
  req.set_length(length);
  req.set_mode(mode);
  AttrReply reply;
  GRANARY_TRY(Call("fallocate", &Endpoint::ns, &Namespace::Stub::Fallocate, req, &reply));
  return std::move(*reply.mutable_attr());
}

Result<InodeAttr> MetaClient::Open(uint64_t ino, uint64_t owner) {
  OpenRequest req;
  *req.mutable_op() = NextOpId();
  req.set_ino(ino);
  req.set_handle_owner(owner);
  AttrReply reply;
  GRANARY_TRY(Call("open", &Endpoint::ns, &Namespace::Stub::Open, req, &reply));
  return std::move(*reply.mutable_attr());
}

void CallCanceller::Cancel() {
  std::lock_guard lock(mu_);
  cancelled_ = true;
  if (call_ != nullptr) call_->TryCancel();
}

bool CallCanceller::cancelled() {
  std::lock_guard lock(mu_);
  return cancelled_;
}

Result<LockReply> MetaClient::Lock(LockRequest req) {
  if (!req.has_op()) *req.mutable_op() = NextOpId();
  LockReply reply;
  GRANARY_TRY(Call("lock", &Endpoint::ns, &Namespace::Stub::Lock, req, &reply));
  return reply;
}

Result<GetLockReply> MetaClient::GetLock(const GetLockRequest& req) {
  GetLockReply reply;
  GRANARY_TRY(Call("getlk", &Endpoint::ns, &Namespace::Stub::GetLock, req, &reply));
  return reply;
}

Result<LockWaitReply> MetaClient::LockWait(const LockWaitRequest& req, CallCanceller* cancel) {
  LockWaitReply reply;
  const auto wait = std::chrono::milliseconds(req.timeout_ms());
  Status s = Invoke(
      "lock wait",
      [&](Endpoint& e, grpc::ClientContext& ctx) {
        if (cancel != nullptr) {
          std::lock_guard lock(cancel->mu_);
          if (cancel->cancelled_) return grpc::Status(grpc::StatusCode::ABORTED, "interrupted");
          cancel->call_ = &ctx;
        }
        grpc::Status rpc = e.ns->LockWait(&ctx, req, &reply);
        if (cancel != nullptr) {
          std::lock_guard lock(cancel->mu_);
          cancel->call_ = nullptr;
          // Not retried: the waiter was interrupted.
          if (cancel->cancelled_) return grpc::Status(grpc::StatusCode::ABORTED, "interrupted");
        }
        return rpc;
      },
      options_.deadline + wait, options_.attempt_timeout + wait);
  GRANARY_TRY(s);
  return reply;
}

Result<ListLocksReply> MetaClient::ListLocks(uint64_t holder) {
  ListLocksRequest req;
  req.set_holder(holder);
  ListLocksReply reply;
  GRANARY_TRY(Call("list locks", &Endpoint::ns, &Namespace::Stub::ListLocks, req, &reply));
  return reply;
}

Status MetaClient::Release(uint64_t ino, uint64_t owner) {
  ReleaseRequest req;
  *req.mutable_op() = NextOpId();
  req.set_ino(ino);
  req.set_handle_owner(owner);
  Empty reply;
  return Call("release", &Endpoint::ns, &Namespace::Stub::Release, req, &reply);
}

Result<BatchReply> MetaClient::Batch(BatchRequest req) {
  for (BatchOp& b : *req.mutable_ops()) {
    OpId* id = nullptr;
    switch (b.op_case()) {
      case BatchOp::kCreate:
        id = b.mutable_create()->mutable_op();
        break;
      case BatchOp::kMkdir:
        id = b.mutable_mkdir()->mutable_op();
        break;
      case BatchOp::kUnlink:
        id = b.mutable_unlink()->mutable_op();
        break;
      case BatchOp::kRmdir:
        id = b.mutable_rmdir()->mutable_op();
        break;
      case BatchOp::kSetattr:
        id = b.mutable_setattr()->mutable_op();
        break;
      case BatchOp::kRelease:
        id = b.mutable_release()->mutable_op();
        break;
      case BatchOp::kSymlink:
        id = b.mutable_symlink()->mutable_op();
        break;
      case BatchOp::kLink:
        id = b.mutable_link()->mutable_op();
        break;
      case BatchOp::kRename:
        id = b.mutable_rename()->mutable_op();
        break;
      case BatchOp::OP_NOT_SET:
        break;
    }
    if (id != nullptr && id->client_id() == 0) *id = NextOpId();
  }
  BatchReply reply;
  GRANARY_TRY(Call("batch", &Endpoint::ns, &Namespace::Stub::Batch, req, &reply));
  return reply;
}

Result<ChangesReply> MetaClient::Changes(ChangesRequest req) {
  req.set_client_id(client_id());
  ChangesReply reply;
  const auto wait = std::chrono::milliseconds(req.timeout_ms());
  GRANARY_TRY(Invoke(
      "changes",
      [&](Endpoint& e, grpc::ClientContext& ctx) { return e.ns->Changes(&ctx, req, &reply); },
      options_.deadline + wait, options_.attempt_timeout + wait));
  return reply;
}

// ---------------------------------------------------------------- slice maps

Result<AllocateReply> MetaClient::Allocate(uint64_t ino, uint32_t slice_count, uint64_t bytes) {
  AllocateRequest req;
  *req.mutable_op() = NextOpId();
  req.set_ino(ino);
  req.set_slice_count(slice_count);
  req.set_bytes(bytes);
  AllocateReply reply;
  GRANARY_TRY(Call("allocate", &Endpoint::data, &DataMap::Stub::Allocate, req, &reply));
  return reply;
}

Status MetaClient::Abandon(uint64_t intent_id) {
  AbandonRequest req;
  *req.mutable_op() = NextOpId();
  req.set_intent_id(intent_id);
  Empty reply;
  return Call("abandon", &Endpoint::data, &DataMap::Stub::Abandon, req, &reply);
}

Result<InodeAttr> MetaClient::Commit(CommitRequest req) {
  if (!req.has_op()) *req.mutable_op() = NextOpId();
  AttrReply reply;
  GRANARY_TRY(Call("commit", &Endpoint::data, &DataMap::Stub::Commit, req, &reply));
  return std::move(*reply.mutable_attr());
}

Result<ReadMapReply> MetaClient::ReadMap(uint64_t ino, uint64_t offset, uint64_t length) {
  ReadMapRequest req;
  req.set_ino(ino);
  req.set_offset(offset);
  req.set_length(length);
  ReadMapReply reply;
  GRANARY_TRY(Call("readmap", &Endpoint::data, &DataMap::Stub::ReadMap, req, &reply));
  return reply;
}

// ---------------------------------------------------------------- cluster

Result<RegisterReply> MetaClient::Register(const RegisterRequest& req) {
  RegisterReply reply;
  GRANARY_TRY(Call("register", &Endpoint::cluster, &Cluster::Stub::Register, req, &reply));
  return reply;
}

Result<HeartbeatReply> MetaClient::Heartbeat(const HeartbeatRequest& req) {
  HeartbeatReply reply;
  GRANARY_TRY(Call("heartbeat", &Endpoint::cluster, &Cluster::Stub::Heartbeat, req, &reply));
  return reply;
}

Result<ClusterMap> MetaClient::GetClusterMap(uint64_t known_epoch) {
  GetClusterMapRequest req;
  req.set_known_epoch(known_epoch);
  ClusterMap reply;
  GRANARY_TRY(Call("cluster map", &Endpoint::cluster, &Cluster::Stub::GetClusterMap, req, &reply));
  return reply;
}

Status MetaClient::ReportCorruption(const ReportCorruptionRequest& req) {
  Empty reply;
  return Call("report corruption", &Endpoint::cluster, &Cluster::Stub::ReportCorruption, req,
              &reply);
}

Result<CompactionCandidatesReply> MetaClient::CompactionCandidates(uint32_t limit) {
  CompactionCandidatesRequest req;
  req.set_limit(limit);
  CompactionCandidatesReply reply;
  GRANARY_TRY(Call("compaction candidates", &Endpoint::cluster,
                   &Cluster::Stub::CompactionCandidates, req, &reply));
  return reply;
}

Status MetaClient::WarmDone(const WarmDoneRequest& req) {
  Empty reply;
  return Call("warm done", &Endpoint::cluster, &Cluster::Stub::WarmDone, req, &reply);
}

Result<CheckSlicesReply> MetaClient::CheckSlices(const CheckSlicesRequest& req) {
  CheckSlicesReply reply;
  GRANARY_TRY(Call("check slices", &Endpoint::cluster, &Cluster::Stub::CheckSlices, req, &reply));
  return reply;
}

Result<PgBlocksReply> MetaClient::PgBlocks(const PgBlocksRequest& req) {
  PgBlocksReply reply;
  GRANARY_TRY(Call("PG blocks", &Endpoint::cluster, &Cluster::Stub::PgBlocks, req, &reply));
  return reply;
}

Status MetaClient::CompactionDone(uint64_t ino, uint64_t range_index) {
  CompactionDoneRequest req;
  *req.mutable_op() = NextOpId();
  req.set_ino(ino);
  req.set_range_index(range_index);
  Empty reply;
  return Call("compaction done", &Endpoint::cluster, &Cluster::Stub::CompactionDone, req, &reply);
}

Result<ClusterStatusReply> MetaClient::ClusterStatus() {
  ClusterStatusReply reply;
  GRANARY_TRY(Call("cluster status", &Endpoint::cluster, &Cluster::Stub::Status, Empty(), &reply));
  return reply;
}

}  // namespace granary::client

namespace granary::client {

Result<MetaGroupStatus> MetaClient::GroupStatus(std::string_view address) {
  MetaGroupStatus reply;
  if (address.empty()) {
    GRANARY_TRY(
        Call("metadata group status", &Endpoint::group, &MetaGroup::Stub::Status, Empty(), &reply));
    return reply;
  }
  Endpoint& e = EndpointFor(std::string(address));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + options_.attempt_timeout);
  Status s = FromGrpcStatus(e.group->Status(&ctx, Empty(), &reply));
  if (!s.ok()) return s.WithContext(fmt::format("metadata group status of {}", address));
  return reply;
}

Status MetaClient::AddMember(uint64_t id, std::string_view address) {
  MetaMemberRequest req;
  req.set_id(id);
  req.set_address(std::string(address));
  MetaGroupStatus reply;
  // The new member catches up before it becomes a voter: one attempt may take minutes.
  const auto slow = std::chrono::minutes(5);
  return Invoke(
      "add metadata member",
      [&](Endpoint& e, grpc::ClientContext& ctx) { return e.group->AddMember(&ctx, req, &reply); },
      slow, slow);
}

Status MetaClient::RemoveMember(uint64_t id) {
  MetaMemberRequest req;
  req.set_id(id);
  MetaGroupStatus reply;
  return Call("remove metadata member", &Endpoint::group, &MetaGroup::Stub::RemoveMember, req,
              &reply);
}

}  // namespace granary::client
