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
  client->address_ = (*addresses)[0].ToString();
  client->client_id_ = RandomClientId();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  // Reconnect quickly after a metanode restart (gRPC's default backoff grows to 2 minutes).
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  // One connection per MetaClient rather than one shared by every client of the process.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto channel =
      grpc::CreateCustomChannel(client->address_, grpc::InsecureChannelCredentials(), args);
  client->ns_ = Namespace::NewStub(channel);
  client->data_ = DataMap::NewStub(channel);
  client->admin_ = Admin::NewStub(channel);
  client->cluster_ = Cluster::NewStub(channel);
  return client;
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
  grpc::ClientContext ctx;
  // Short and without retries: the loop tries again soon, and shutdown must not wait for it.
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  {
    std::lock_guard lock(keep_alive_mu_);
    if (keep_alive_stop_) return Unavailable("meta client shutting down");
    keep_alive_call_ = &ctx;
  }
  KeepAliveReply reply;
  grpc::Status rpc = ns_->KeepAlive(&ctx, req, &reply);
  {
    std::lock_guard lock(keep_alive_mu_);
    keep_alive_call_ = nullptr;
    // A metanode from before sessions: there is nothing to renew.
    keep_alive_unsupported_ = rpc.error_code() == grpc::StatusCode::UNIMPLEMENTED;
  }
  Status status = FromGrpcStatus(rpc);
  if (!status.ok()) return status.WithContext(fmt::format("keepalive on metanode {}", address_));
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

template <typename Stub, typename Req, typename Reply>
Status MetaClient::Call(const char* what, Stub& stub,
                        grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Reply*),
                        const Req& req, Reply* reply) {
  const auto deadline = std::chrono::system_clock::now() + options_.deadline;
  auto backoff = options_.initial_backoff;
  for (;;) {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline);
    // Wait for the channel to (re)connect instead of failing fast while the metanode restarts.
    ctx.set_wait_for_ready(true);
    Status status = FromGrpcStatus((stub.*method)(&ctx, req, reply));
    if (status.ok()) return status;
    // Retry only what may not have happened or whose effect the OpId makes idempotent.
    if (status.code() != Code::UNAVAILABLE ||
        std::chrono::system_clock::now() + backoff >= deadline) {
      return status.WithContext(fmt::format("{} on metanode {}", what, address_));
    }
    // Back-off between attempts of a failed call (not synchronisation).
    std::this_thread::sleep_for(backoff);
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::seconds(1));
  }
}

// ---------------------------------------------------------------- namespace

Result<InodeAttr> MetaClient::Lookup(uint64_t parent, std::string_view name) {
  LookupRequest req;
  req.set_parent(parent);
  req.set_name(std::string(name));
  EntryReply reply;
  GRANARY_TRY(Call("lookup", *ns_, &Namespace::Stub::Lookup, req, &reply));
  return std::move(*reply.mutable_attr());
}

Result<InodeAttr> MetaClient::GetAttr(uint64_t ino) {
  GetAttrRequest req;
  req.set_ino(ino);
  AttrReply reply;
  GRANARY_TRY(Call("getattr", *ns_, &Namespace::Stub::GetAttr, req, &reply));
  return std::move(*reply.mutable_attr());
}

Result<InodeAttr> MetaClient::SetAttr(SetAttrRequest req) {
  if (!req.has_op()) *req.mutable_op() = NextOpId();
  AttrReply reply;
  GRANARY_TRY(Call("setattr", *ns_, &Namespace::Stub::SetAttr, req, &reply));
  return std::move(*reply.mutable_attr());
}

Result<InodeAttr> MetaClient::Mkdir(uint64_t parent, std::string_view name, uint32_t mode,
                                    uint32_t uid, uint32_t gid) {
  MkdirRequest req;
  *req.mutable_op() = NextOpId();
  req.set_parent(parent);
  req.set_name(std::string(name));
  req.set_mode(mode);
  req.set_uid(uid);
  req.set_gid(gid);
  EntryReply reply;
  GRANARY_TRY(Call("mkdir", *ns_, &Namespace::Stub::Mkdir, req, &reply));
  return std::move(*reply.mutable_attr());
}

Result<InodeAttr> MetaClient::Create(CreateRequest req) {
  if (!req.has_op()) *req.mutable_op() = NextOpId();
  EntryReply reply;
  GRANARY_TRY(Call("create", *ns_, &Namespace::Stub::Create, req, &reply));
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
  return Call("unlink", *ns_, &Namespace::Stub::Unlink, req, &reply);
}

Status MetaClient::Rmdir(uint64_t parent, std::string_view name) {
  RmdirRequest req;
  *req.mutable_op() = NextOpId();
  req.set_parent(parent);
  req.set_name(std::string(name));
  Empty reply;
  return Call("rmdir", *ns_, &Namespace::Stub::Rmdir, req, &reply);
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
  GRANARY_TRY(Call("rename", *ns_, &Namespace::Stub::Rename, req, &reply));
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
  GRANARY_TRY(Call("readdir", *ns_, &Namespace::Stub::ReadDir, req, &reply));
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
  GRANARY_TRY(Call("symlink", *ns_, &Namespace::Stub::Symlink, req, &reply));
  return std::move(*reply.mutable_attr());
}

Result<std::string> MetaClient::ReadLink(uint64_t ino) {
  ReadLinkRequest req;
  req.set_ino(ino);
  ReadLinkReply reply;
  GRANARY_TRY(Call("readlink", *ns_, &Namespace::Stub::ReadLink, req, &reply));
  return std::move(*reply.mutable_target());
}

Result<InodeAttr> MetaClient::Link(uint64_t ino, uint64_t new_parent, std::string_view new_name) {
  LinkRequest req;
  *req.mutable_op() = NextOpId();
  req.set_ino(ino);
  req.set_new_parent(new_parent);
  req.set_new_name(std::string(new_name));
  EntryReply reply;
  GRANARY_TRY(Call("link", *ns_, &Namespace::Stub::Link, req, &reply));
  return std::move(*reply.mutable_attr());
}

Status MetaClient::SetXattr(uint64_t ino, std::string_view name, std::string_view value,
                            SetXattrRequest::Mode mode) {
  SetXattrRequest req;
  *req.mutable_op() = NextOpId();
  req.set_ino(ino);
  req.set_name(std::string(name));
  req.set_value(std::string(value));
  req.set_mode(mode);
  Empty reply;
  return Call("setxattr", *ns_, &Namespace::Stub::SetXattr, req, &reply);
}

Result<std::string> MetaClient::GetXattr(uint64_t ino, std::string_view name) {
  GetXattrRequest req;
  req.set_ino(ino);
  req.set_name(std::string(name));
  GetXattrReply reply;
  GRANARY_TRY(Call("getxattr", *ns_, &Namespace::Stub::GetXattr, req, &reply));
  return std::move(*reply.mutable_value());
}

Result<std::vector<std::string>> MetaClient::ListXattr(uint64_t ino) {
  ListXattrRequest req;
  req.set_ino(ino);
  ListXattrReply reply;
  GRANARY_TRY(Call("listxattr", *ns_, &Namespace::Stub::ListXattr, req, &reply));
  return std::vector<std::string>(reply.names().begin(), reply.names().end());
}

Status MetaClient::RemoveXattr(uint64_t ino, std::string_view name) {
  RemoveXattrRequest req;
  *req.mutable_op() = NextOpId();
  req.set_ino(ino);
  req.set_name(std::string(name));
  Empty reply;
  return Call("removexattr", *ns_, &Namespace::Stub::RemoveXattr, req, &reply);
}

Result<StatFsReply> MetaClient::StatFs(uint64_t ino) {
  StatFsRequest req;
  req.set_ino(ino);
  StatFsReply reply;
  GRANARY_TRY(Call("statfs", *ns_, &Namespace::Stub::StatFs, req, &reply));
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
  GRANARY_TRY(Call("fallocate", *ns_, &Namespace::Stub::Fallocate, req, &reply));
  return std::move(*reply.mutable_attr());
}

Result<InodeAttr> MetaClient::Open(uint64_t ino, uint64_t owner) {
  OpenRequest req;
  *req.mutable_op() = NextOpId();
  req.set_ino(ino);
  req.set_handle_owner(owner);
  AttrReply reply;
  GRANARY_TRY(Call("open", *ns_, &Namespace::Stub::Open, req, &reply));
  return std::move(*reply.mutable_attr());
}

Status MetaClient::Release(uint64_t ino, uint64_t owner) {
  ReleaseRequest req;
  *req.mutable_op() = NextOpId();
  req.set_ino(ino);
  req.set_handle_owner(owner);
  Empty reply;
  return Call("release", *ns_, &Namespace::Stub::Release, req, &reply);
}

// ---------------------------------------------------------------- slice maps

Result<AllocateReply> MetaClient::Allocate(uint64_t ino, uint32_t slice_count, uint64_t bytes) {
  AllocateRequest req;
  *req.mutable_op() = NextOpId();
  req.set_ino(ino);
  req.set_slice_count(slice_count);
  req.set_bytes(bytes);
  AllocateReply reply;
  GRANARY_TRY(Call("allocate", *data_, &DataMap::Stub::Allocate, req, &reply));
  return reply;
}

Status MetaClient::Abandon(uint64_t intent_id) {
  AbandonRequest req;
  *req.mutable_op() = NextOpId();
  req.set_intent_id(intent_id);
  Empty reply;
  return Call("abandon", *data_, &DataMap::Stub::Abandon, req, &reply);
}

Result<InodeAttr> MetaClient::Commit(CommitRequest req) {
  if (!req.has_op()) *req.mutable_op() = NextOpId();
  AttrReply reply;
  GRANARY_TRY(Call("commit", *data_, &DataMap::Stub::Commit, req, &reply));
  return std::move(*reply.mutable_attr());
}

Result<ReadMapReply> MetaClient::ReadMap(uint64_t ino, uint64_t offset, uint64_t length) {
  ReadMapRequest req;
  req.set_ino(ino);
  req.set_offset(offset);
  req.set_length(length);
  ReadMapReply reply;
  GRANARY_TRY(Call("readmap", *data_, &DataMap::Stub::ReadMap, req, &reply));
  return reply;
}

// ---------------------------------------------------------------- admin

Result<PoolSpec> MetaClient::PoolCreate(const PoolSpec& spec) {
  PoolCreateRequest req;
  *req.mutable_op() = NextOpId();
  *req.mutable_spec() = spec;
  PoolReply reply;
  GRANARY_TRY(Call("pool create", *admin_, &Admin::Stub::PoolCreate, req, &reply));
  return std::move(*reply.mutable_pool());
}

Result<std::vector<PoolSpec>> MetaClient::PoolList() {
  PoolListReply reply;
  GRANARY_TRY(Call("pool list", *admin_, &Admin::Stub::PoolList, Empty(), &reply));
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
  GRANARY_TRY(Call("volume create", *admin_, &Admin::Stub::VolumeCreate, req, &reply));
  return std::move(*reply.mutable_volume());
}

Result<Volume> MetaClient::VolumeGet(std::string_view name) {
  VolumeGetRequest req;
  req.set_name(std::string(name));
  VolumeReply reply;
  GRANARY_TRY(Call("volume get", *admin_, &Admin::Stub::VolumeGet, req, &reply));
  return std::move(*reply.mutable_volume());
}

Result<Volume> MetaClient::VolumeGetById(uint64_t id) {
  VolumeGetRequest req;
  req.set_id(id);
  VolumeReply reply;
  GRANARY_TRY(Call("volume get", *admin_, &Admin::Stub::VolumeGet, req, &reply));
  return std::move(*reply.mutable_volume());
}

Result<std::vector<Volume>> MetaClient::VolumeList() {
  VolumeListReply reply;
  GRANARY_TRY(Call("volume list", *admin_, &Admin::Stub::VolumeList, Empty(), &reply));
  return std::vector<Volume>(reply.volumes().begin(), reply.volumes().end());
}

Status MetaClient::VolumeDelete(std::string_view name) {
  VolumeDeleteRequest req;
  *req.mutable_op() = NextOpId();
  req.set_name(std::string(name));
  Empty reply;
  return Call("volume delete", *admin_, &Admin::Stub::VolumeDelete, req, &reply);
}

Result<Volume> MetaClient::VolumeSetQuota(std::string_view name, uint64_t quota_bytes,
                                          uint64_t quota_inodes) {
  VolumeSetQuotaRequest req;
  *req.mutable_op() = NextOpId();
  req.set_name(std::string(name));
  req.set_quota_bytes(quota_bytes);
  req.set_quota_inodes(quota_inodes);
  VolumeReply reply;
  GRANARY_TRY(Call("volume set-quota", *admin_, &Admin::Stub::VolumeSetQuota, req, &reply));
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
  GRANARY_TRY(Call("key create", *admin_, &Admin::Stub::KeyCreate, req, &reply));
  return std::move(*reply.mutable_key());
}

Result<AccessKey> MetaClient::KeyGetSecret(std::string_view access_key) {
  KeyGetRequest req;
  req.set_access_key(std::string(access_key));
  KeyReply reply;
  GRANARY_TRY(Call("key get", *admin_, &Admin::Stub::KeyGetSecret, req, &reply));
  return std::move(*reply.mutable_key());
}

Result<std::vector<AccessKey>> MetaClient::KeyList() {
  KeyListReply reply;
  GRANARY_TRY(Call("key list", *admin_, &Admin::Stub::KeyList, Empty(), &reply));
  return std::vector<AccessKey>(reply.keys().begin(), reply.keys().end());
}

Status MetaClient::KeyDelete(std::string_view access_key) {
  KeyDeleteRequest req;
  *req.mutable_op() = NextOpId();
  req.set_access_key(std::string(access_key));
  Empty reply;
  return Call("key delete", *admin_, &Admin::Stub::KeyDelete, req, &reply);
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
  GRANARY_TRY(Call("bucket create", *admin_, &Admin::Stub::BucketCreate, req, &reply));
  return std::move(*reply.mutable_bucket());
}

Result<Bucket> MetaClient::BucketGet(std::string_view name) {
  BucketGetRequest req;
  req.set_name(std::string(name));
  BucketReply reply;
  GRANARY_TRY(Call("bucket get", *admin_, &Admin::Stub::BucketGet, req, &reply));
  return std::move(*reply.mutable_bucket());
}

Result<std::vector<Bucket>> MetaClient::BucketList() {
  BucketListReply reply;
  GRANARY_TRY(Call("bucket list", *admin_, &Admin::Stub::BucketList, Empty(), &reply));
  return std::vector<Bucket>(reply.buckets().begin(), reply.buckets().end());
}

Status MetaClient::BucketDelete(std::string_view name) {
  BucketDeleteRequest req;
  *req.mutable_op() = NextOpId();
  req.set_name(std::string(name));
  Empty reply;
  return Call("bucket delete", *admin_, &Admin::Stub::BucketDelete, req, &reply);
}

Result<Bucket> MetaClient::BucketGrant(std::string_view name, std::string_view access_key,
                                       Access access) {
  BucketGrantRequest req;
  *req.mutable_op() = NextOpId();
  req.set_name(std::string(name));
  req.set_access_key(std::string(access_key));
  req.set_access(access);
  BucketReply reply;
  GRANARY_TRY(Call("bucket grant", *admin_, &Admin::Stub::BucketGrant, req, &reply));
  return std::move(*reply.mutable_bucket());
}

Result<BackupReply> MetaClient::Backup(std::string_view dir) {
  BackupRequest req;
  req.set_dir(std::string(dir));
  BackupReply reply;
  GRANARY_TRY(Call("backup", *admin_, &Admin::Stub::Backup, req, &reply));
  return reply;
}

// ---------------------------------------------------------------- cluster

Result<RegisterReply> MetaClient::Register(const RegisterRequest& req) {
  RegisterReply reply;
  GRANARY_TRY(Call("register", *cluster_, &Cluster::Stub::Register, req, &reply));
  return reply;
}

Result<HeartbeatReply> MetaClient::Heartbeat(const HeartbeatRequest& req) {
  HeartbeatReply reply;
  GRANARY_TRY(Call("heartbeat", *cluster_, &Cluster::Stub::Heartbeat, req, &reply));
  return reply;
}

Result<ClusterMap> MetaClient::GetClusterMap(uint64_t known_epoch) {
  GetClusterMapRequest req;
  req.set_known_epoch(known_epoch);
  ClusterMap reply;
  GRANARY_TRY(Call("cluster map", *cluster_, &Cluster::Stub::GetClusterMap, req, &reply));
  return reply;
}

Status MetaClient::ReportCorruption(const ReportCorruptionRequest& req) {
  Empty reply;
  return Call("report corruption", *cluster_, &Cluster::Stub::ReportCorruption, req, &reply);
}

Result<CompactionCandidatesReply> MetaClient::CompactionCandidates(uint32_t limit) {
  CompactionCandidatesRequest req;
  req.set_limit(limit);
  CompactionCandidatesReply reply;
  GRANARY_TRY(
      Call("compaction candidates", *cluster_, &Cluster::Stub::CompactionCandidates, req, &reply));
  return reply;
}

Result<CheckSlicesReply> MetaClient::CheckSlices(const CheckSlicesRequest& req) {
  CheckSlicesReply reply;
  GRANARY_TRY(Call("check slices", *cluster_, &Cluster::Stub::CheckSlices, req, &reply));
  return reply;
}

Result<PgBlocksReply> MetaClient::PgBlocks(const PgBlocksRequest& req) {
  PgBlocksReply reply;
  GRANARY_TRY(Call("PG blocks", *cluster_, &Cluster::Stub::PgBlocks, req, &reply));
  return reply;
}

Status MetaClient::CompactionDone(uint64_t ino, uint64_t range_index) {
  CompactionDoneRequest req;
  *req.mutable_op() = NextOpId();
  req.set_ino(ino);
  req.set_range_index(range_index);
  Empty reply;
  return Call("compaction done", *cluster_, &Cluster::Stub::CompactionDone, req, &reply);
}

Result<ClusterStatusReply> MetaClient::ClusterStatus() {
  ClusterStatusReply reply;
  GRANARY_TRY(Call("cluster status", *cluster_, &Cluster::Stub::Status, Empty(), &reply));
  return reply;
}

}  // namespace granary::client
