#include "client/meta_client.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include <random>
#include <thread>

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

template <typename Stub, typename Req, typename Reply>
Status MetaClient::Call(const char* what, std::unique_ptr<Stub> Endpoint::*stub,
                        grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Reply*),
                        const Req& req, Reply* reply) {
  return Invoke(what, [&](Endpoint& e, grpc::ClientContext& ctx) {
    return ((*(e.*stub)).*method)(&ctx, req, reply);
  });
}

// Copying or walking a namespace (a snapshot, a clone, a snapshot's deletion or listing) takes
// time in proportion to the namespace: a silent leader is waited on for longer than usual.
template <typename Req, typename Reply>
Status MetaClient::CallLong(const char* what,
                            grpc::Status (Admin::Stub::*method)(grpc::ClientContext*, const Req&,
                                                                Reply*),
                            const Req& req, Reply* reply, std::chrono::milliseconds budget) {
  constexpr std::chrono::milliseconds kNamespaceCopy = std::chrono::minutes(5);
  const auto total = budget.count() > 0 ? budget : std::max(options_.deadline, kNamespaceCopy);
  const auto attempt = budget.count() > 0 ? budget : kNamespaceCopy;
  return Invoke(
      what,
      [&](Endpoint& e, grpc::ClientContext& ctx) { return ((*e.admin).*method)(&ctx, req, reply); },
      total, attempt);
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

// ---------------------------------------------------------------- admin

Result<PoolSpec> MetaClient::PoolCreate(const PoolSpec& spec) {
  PoolCreateRequest req;
  *req.mutable_op() = NextOpId();
  *req.mutable_spec() = spec;
  PoolReply reply;
  GRANARY_TRY(Call("pool create", &Endpoint::admin, &Admin::Stub::PoolCreate, req, &reply));
  return std::move(*reply.mutable_pool());
}

Result<std::vector<PoolSpec>> MetaClient::PoolList() {
  PoolListReply reply;
  GRANARY_TRY(Call("pool list", &Endpoint::admin, &Admin::Stub::PoolList, Empty(), &reply));
  return std::vector<PoolSpec>(reply.pools().begin(), reply.pools().end());
}

Result<Volume> MetaClient::VolumeCreate(std::string_view name, std::string_view pool,
                                        uint64_t quota_bytes, uint64_t quota_inodes) {
  VolumeCreateRequest req;
  *req.mutable_op() = NextOpId();
  req.set_name(std::string(name));
  req.set_pool(std::string(pool));
  req.set_quota_bytes(quota_bytes);
  req.set_quota_inodes(quota_inodes);
  VolumeReply reply;
  GRANARY_TRY(Call("volume create", &Endpoint::admin, &Admin::Stub::VolumeCreate, req, &reply));
  return std::move(*reply.mutable_volume());
}

Result<Volume> MetaClient::VolumeCreate(VolumeCreateRequest req) {
  if (!req.has_op()) *req.mutable_op() = NextOpId();
  VolumeReply reply;
  GRANARY_TRY(CallLong("volume create", &Admin::Stub::VolumeCreate, req, &reply));
  return std::move(*reply.mutable_volume());
}

Result<Volume> MetaClient::SnapshotCreate(std::string_view volume, std::string_view name) {
  SnapshotCreateRequest req;
  *req.mutable_op() = NextOpId();
  req.set_volume(std::string(volume));
  req.set_name(std::string(name));
  VolumeReply reply;
  GRANARY_TRY(CallLong("snapshot create", &Admin::Stub::SnapshotCreate, req, &reply));
  return std::move(*reply.mutable_volume());
}

Result<std::vector<Volume>> MetaClient::SnapshotList(std::string_view volume) {
  SnapshotListRequest req;
  req.set_volume(std::string(volume));
  VolumeListReply reply;
  // O(namespace): each snapshot's exclusive bytes are counted by walking it.
  GRANARY_TRY(CallLong("snapshot list", &Admin::Stub::SnapshotList, req, &reply));
  return std::vector<Volume>(reply.volumes().begin(), reply.volumes().end());
}

Status MetaClient::SnapshotDelete(std::string_view volume, std::string_view name) {
  SnapshotDeleteRequest req;
  *req.mutable_op() = NextOpId();
  req.set_volume(std::string(volume));
  req.set_name(std::string(name));
  Empty reply;
  return CallLong("snapshot delete", &Admin::Stub::SnapshotDelete, req, &reply);
}

Result<VolumeLocalityReply> MetaClient::VolumeLocality(std::string_view volume,
                                                       std::string_view path,
                                                       std::chrono::milliseconds budget) {
  VolumeLocalityRequest req;
  req.set_volume(std::string(volume));
  req.set_path(std::string(path));
  VolumeLocalityReply reply;
  GRANARY_TRY(CallLong("volume locality", &Admin::Stub::VolumeLocality, req, &reply, budget));
  return reply;
}

Result<Warmup> MetaClient::WarmupCreate(std::string_view name, std::string_view volume,
                                        std::string_view path,
                                        const std::vector<std::string>& hosts,
                                        std::chrono::milliseconds budget) {
  WarmupCreateRequest req;
  *req.mutable_op() = NextOpId();
  req.set_name(std::string(name));
  req.set_volume(std::string(volume));
  req.set_path(std::string(path));
  for (const std::string& h : hosts) req.add_hosts(h);
  WarmupReply reply;
  GRANARY_TRY(CallLong("warmup create", &Admin::Stub::WarmupCreate, req, &reply, budget));
  return std::move(*reply.mutable_warmup());
}

Result<std::vector<Warmup>> MetaClient::WarmupList(std::string_view name,
                                                   std::chrono::milliseconds budget) {
  WarmupListRequest req;
  req.set_name(std::string(name));
  WarmupListReply reply;
  GRANARY_TRY(CallLong("warmup list", &Admin::Stub::WarmupList, req, &reply, budget));
  return std::vector<Warmup>(reply.warmups().begin(), reply.warmups().end());
}

Status MetaClient::WarmupDelete(std::string_view name, std::chrono::milliseconds budget) {
  WarmupDeleteRequest req;
  *req.mutable_op() = NextOpId();
  req.set_name(std::string(name));
  Empty reply;
  return CallLong("warmup delete", &Admin::Stub::WarmupDelete, req, &reply, budget);
}

Result<Volume> MetaClient::VolumeGet(std::string_view name) {
  VolumeGetRequest req;
  req.set_name(std::string(name));
  VolumeReply reply;
  GRANARY_TRY(Call("volume get", &Endpoint::admin, &Admin::Stub::VolumeGet, req, &reply));
  return std::move(*reply.mutable_volume());
}

Result<Volume> MetaClient::VolumeGetById(uint64_t id) {
  VolumeGetRequest req;
  req.set_id(id);
  VolumeReply reply;
  GRANARY_TRY(Call("volume get", &Endpoint::admin, &Admin::Stub::VolumeGet, req, &reply));
  return std::move(*reply.mutable_volume());
}

Result<std::vector<Volume>> MetaClient::VolumeList() {
  VolumeListReply reply;
  GRANARY_TRY(Call("volume list", &Endpoint::admin, &Admin::Stub::VolumeList, Empty(), &reply));
  return std::vector<Volume>(reply.volumes().begin(), reply.volumes().end());
}

Status MetaClient::VolumeDelete(std::string_view name) {
  VolumeDeleteRequest req;
  *req.mutable_op() = NextOpId();
  req.set_name(std::string(name));
  Empty reply;
  return Call("volume delete", &Endpoint::admin, &Admin::Stub::VolumeDelete, req, &reply);
}

Result<Volume> MetaClient::VolumeSetQuota(std::string_view name, uint64_t quota_bytes,
                                          uint64_t quota_inodes) {
  VolumeSetQuotaRequest req;
  *req.mutable_op() = NextOpId();
  req.set_name(std::string(name));
  req.set_quota_bytes(quota_bytes);
  req.set_quota_inodes(quota_inodes);
  VolumeReply reply;
  GRANARY_TRY(
      Call("volume set-quota", &Endpoint::admin, &Admin::Stub::VolumeSetQuota, req, &reply));
  return std::move(*reply.mutable_volume());
}

Result<AccessKey> MetaClient::KeyCreate(std::string_view name, std::string_view access_key,
                                        std::string_view secret_key) {
  KeyCreateRequest req;
  *req.mutable_op() = NextOpId();
  req.set_name(std::string(name));
  req.set_access_key(std::string(access_key));
  req.set_secret_key(std::string(secret_key));
  KeyReply reply;
  GRANARY_TRY(Call("key create", &Endpoint::admin, &Admin::Stub::KeyCreate, req, &reply));
  return std::move(*reply.mutable_key());
}

Result<AccessKey> MetaClient::KeyGetSecret(std::string_view access_key) {
  KeyGetRequest req;
  req.set_access_key(std::string(access_key));
  KeyReply reply;
  GRANARY_TRY(Call("key get", &Endpoint::admin, &Admin::Stub::KeyGetSecret, req, &reply));
  return std::move(*reply.mutable_key());
}

Result<std::vector<AccessKey>> MetaClient::KeyList() {
  KeyListReply reply;
  GRANARY_TRY(Call("key list", &Endpoint::admin, &Admin::Stub::KeyList, Empty(), &reply));
  return std::vector<AccessKey>(reply.keys().begin(), reply.keys().end());
}

Status MetaClient::KeyDelete(std::string_view access_key) {
  KeyDeleteRequest req;
  *req.mutable_op() = NextOpId();
  req.set_access_key(std::string(access_key));
  Empty reply;
  return Call("key delete", &Endpoint::admin, &Admin::Stub::KeyDelete, req, &reply);
}

Result<Bucket> MetaClient::BucketCreate(std::string_view name, std::string_view owner,
                                        std::string_view volume, std::string_view pool) {
  BucketCreateRequest req;
  req.set_name(std::string(name));
  req.set_owner(std::string(owner));
  req.set_volume(std::string(volume));
  req.set_pool(std::string(pool));
  return BucketCreate(std::move(req));
}

Result<Bucket> MetaClient::BucketCreate(BucketCreateRequest req) {
  if (!req.has_op()) *req.mutable_op() = NextOpId();
  BucketReply reply;
  GRANARY_TRY(Call("bucket create", &Endpoint::admin, &Admin::Stub::BucketCreate, req, &reply));
  return std::move(*reply.mutable_bucket());
}

Result<Bucket> MetaClient::BucketGet(std::string_view name) {
  BucketGetRequest req;
  req.set_name(std::string(name));
  BucketReply reply;
  GRANARY_TRY(Call("bucket get", &Endpoint::admin, &Admin::Stub::BucketGet, req, &reply));
  return std::move(*reply.mutable_bucket());
}

Result<std::vector<Bucket>> MetaClient::BucketList() {
  BucketListReply reply;
  GRANARY_TRY(Call("bucket list", &Endpoint::admin, &Admin::Stub::BucketList, Empty(), &reply));
  return std::vector<Bucket>(reply.buckets().begin(), reply.buckets().end());
}

Status MetaClient::BucketDelete(std::string_view name) {
  BucketDeleteRequest req;
  *req.mutable_op() = NextOpId();
  req.set_name(std::string(name));
  Empty reply;
  return Call("bucket delete", &Endpoint::admin, &Admin::Stub::BucketDelete, req, &reply);
}

Result<Bucket> MetaClient::BucketGrant(std::string_view name, std::string_view access_key,
                                       Access access) {
  BucketGrantRequest req;
  *req.mutable_op() = NextOpId();
  req.set_name(std::string(name));
  req.set_access_key(std::string(access_key));
  req.set_access(access);
  BucketReply reply;
  GRANARY_TRY(Call("bucket grant", &Endpoint::admin, &Admin::Stub::BucketGrant, req, &reply));
  return std::move(*reply.mutable_bucket());
}

Result<BackupReply> MetaClient::Backup(std::string_view dir) {
  BackupRequest req;
  req.set_dir(std::string(dir));
  BackupReply reply;
  GRANARY_TRY(Call("backup", &Endpoint::admin, &Admin::Stub::Backup, req, &reply));
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
