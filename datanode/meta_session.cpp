#include "datanode/meta_session.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "common/log.h"
#include "common/rpc_status.h"

namespace granary::datanode {
namespace {

Result<std::string> ReadOrCreateUuid(const std::string& dir) {
  std::string path = dir + "/node.uuid";
  {
    std::ifstream in(path);
    std::string uuid;
    if (in && std::getline(in, uuid) && !uuid.empty()) return uuid;
  }
  std::ifstream rnd("/proc/sys/kernel/random/uuid");
  std::string uuid;
  if (!rnd || !std::getline(rnd, uuid) || uuid.empty()) {
    return Internal("create node uuid: /proc/sys/kernel/random/uuid unreadable");
  }
  // tmp + fsync + rename: a crash never leaves an empty uuid that would re-register us anew.
  std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) return Internal(fmt::format("create {}: {}", tmp, strerrordesc_np(errno)));
  std::string line = uuid + "\n";
  bool ok =
      write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) && fsync(fd) == 0;
  close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    return Internal(fmt::format("write {}: {}", path, strerrordesc_np(errno)));
  }
  return uuid;
}

}  // namespace

Result<std::unique_ptr<MetaSession>> MetaSession::Create(MetaSessionOptions options,
                                                         BlockStore* store,
                                                         std::function<bool()> healthy) {
  if (options.meta.empty()) return InvalidArgument("datanode: no --meta address");
  std::unique_ptr<MetaSession> s(new MetaSession(std::move(options), store, std::move(healthy)));
  auto uuid = ReadOrCreateUuid(s->options_.data_dir);
  if (!uuid.ok()) return uuid.status();
  s->uuid_ = *uuid;
  return s;
}

MetaSession::MetaSession(MetaSessionOptions options, BlockStore* store,
                         std::function<bool()> healthy)
    : options_(std::move(options)), store_(store), healthy_(std::move(healthy)) {
  epochs_ = std::make_unique<ClusterMapEpochs>([this](uint64_t known) { return FetchMap(known); });
}

MetaSession::~MetaSession() { Stop(); }

uint32_t MetaSession::node_id() const {
  std::lock_guard lock(mu_);
  return node_id_;
}

std::shared_ptr<Cluster::Stub> MetaSession::Stub() {
  std::lock_guard lock(mu_);
  if (!stub_) {
    const std::string address = target_.empty() ? options_.meta[meta_index_].ToString() : target_;
    stub_ = Cluster::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  }
  return stub_;
}

void MetaSession::NextMeta() {
  std::lock_guard lock(mu_);
  meta_index_ = (meta_index_ + 1) % options_.meta.size();
  target_.clear();
  stub_.reset();
}

void MetaSession::Follow(const Status& not_leader) {
  const std::string leader = LeaderHint(not_leader);
  if (leader.empty()) {
    NextMeta();
    return;
  }
  std::lock_guard lock(mu_);
  target_ = leader;
  stub_.reset();
}

template <typename Reply, typename Request>
Result<Reply> MetaSession::Call(grpc::Status (Cluster::Stub::*method)(grpc::ClientContext*,
                                                                      const Request&, Reply*),
                                const Request& req, const char* what) {
  Status last;
  for (size_t attempt = 0; attempt < options_.meta.size() + 2; ++attempt) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + options_.rpc_timeout);
    Reply reply;
    // Our own reference: another thread may drop the session's stub (NextMeta, Follow) while
    // this call is still on it.
    const std::shared_ptr<Cluster::Stub> stub = Stub();
    Status st = FromGrpcStatus(((*stub).*method)(&ctx, req, &reply));
    if (st.ok()) return reply;
    last = st.WithContext(what);
    if (st.code() == Code::NOT_LEADER) {
      Follow(st);
    } else if (st.code() == Code::UNAVAILABLE && options_.meta.size() > 1) {
      NextMeta();
    } else {
      break;
    }
  }
  return last;
}

Status MetaSession::RegisterOnce() {
  RegisterRequest req;
  req.set_uuid(uuid_);
  req.set_address(options_.address);
  req.set_data_address(options_.data_address);
  for (const auto& [k, v] : options_.labels) (*req.mutable_labels())[k] = v;
  Capacity cap = store_->capacity();
  req.set_capacity_bytes(cap.capacity_bytes);
  req.set_used_bytes(cap.used_bytes);
  auto registered = Call(&Cluster::Stub::Register, req, "register with metanode");
  GRANARY_TRY(registered);
  const RegisterReply& reply = *registered;
  {
    std::lock_guard lock(mu_);
    node_id_ = reply.node_id();
  }
  GLOG_INFO("event=datanode_registered node_id={} uuid={} data={}", reply.node_id(), uuid_,
            options_.data_address);
  if (reply.map_epoch() > epochs_->map_epoch()) return epochs_->Refresh();
  return Status::Ok();
}

Status MetaSession::HeartbeatOnce() {
  HeartbeatRequest req;
  req.set_node_id(node_id());
  Capacity cap = store_->capacity();
  req.set_capacity_bytes(cap.capacity_bytes);
  req.set_used_bytes(cap.used_bytes);
  req.set_healthy(healthy_ ? healthy_() : true);
  req.set_known_epoch(epochs_->map_epoch());
  std::function<std::pair<uint64_t, uint64_t>()> progress;
  std::function<void(HeartbeatRequest*)> fill;
  std::function<void(const HeartbeatReply&)> on_reply;
  {
    std::lock_guard lock(mu_);
    progress = repair_progress_;
    fill = heartbeat_fill_;
    on_reply = heartbeat_reply_;
  }
  if (progress) {
    auto [pending, epoch] = progress();
    req.set_repair_pending(pending);
    req.set_repair_epoch(epoch);
  }
  if (fill) fill(&req);
  auto beat = Call(&Cluster::Stub::Heartbeat, req, "heartbeat to metanode");
  GRANARY_TRY(beat);
  const HeartbeatReply& reply = *beat;
  if (on_reply) on_reply(reply);
  if (reply.map_epoch() > epochs_->map_epoch()) return epochs_->Refresh();
  return Status::Ok();
}

void MetaSession::SetRepairProgress(std::function<std::pair<uint64_t, uint64_t>()> progress) {
  std::lock_guard lock(mu_);
  repair_progress_ = std::move(progress);
}

void MetaSession::SetHeartbeatHooks(std::function<void(HeartbeatRequest*)> fill,
                                    std::function<void(const HeartbeatReply&)> on_reply) {
  std::lock_guard lock(mu_);
  heartbeat_fill_ = std::move(fill);
  heartbeat_reply_ = std::move(on_reply);
}

Result<PgBlocksReply> MetaSession::PgBlocks(const PgBlocksRequest& req) {
  return Call(&Cluster::Stub::PgBlocks, req, "list PG blocks");
}

Result<CheckSlicesReply> MetaSession::CheckSlices(const CheckSlicesRequest& req) {
  return Call(&Cluster::Stub::CheckSlices, req, "check slices");
}

Result<ClusterStatusReply> MetaSession::ClusterStatus() {
  return Call(&Cluster::Stub::Status, Empty(), "cluster status");
}

Status MetaSession::ReportCorruption(const ReportCorruptionRequest& req) {
  auto r = Call(&Cluster::Stub::ReportCorruption, req, "report corruption");
  return r.ok() ? Status::Ok() : r.status();
}

Status MetaSession::ResolveCorruption(const ResolveCorruptionRequest& req) {
  auto r = Call(&Cluster::Stub::ResolveCorruption, req, "resolve suspect copy");
  return r.ok() ? Status::Ok() : r.status();
}

Status MetaSession::WarmDone(const WarmDoneRequest& req) {
  auto r = Call(&Cluster::Stub::WarmDone, req, "warm done");
  return r.ok() ? Status::Ok() : r.status();
}

Result<ClusterMap> MetaSession::FetchMap(uint64_t known_epoch) {
  GetClusterMapRequest req;
  req.set_known_epoch(known_epoch);
  return Call(&Cluster::Stub::GetClusterMap, req, "get cluster map");
}

void MetaSession::SetAddresses(std::string control, std::string data) {
  std::lock_guard lock(mu_);
  options_.address = std::move(control);
  options_.data_address = std::move(data);
}

void MetaSession::Start() {
  Status st = RegisterOnce();
  if (st.ok()) st = epochs_->Refresh();
  // At once rather than one interval later: the reply names the copies this node must not
  // serve (docs/maintenance.md "Repair on report"), which a restart forgot.
  if (st.ok()) st = HeartbeatOnce();
  if (!st.ok()) {
    // Keep serving: the loop below retries, and requests refresh the map on demand.
    GLOG_WARN("event=metanode_unreachable error=\"{}\"", st.ToString());
  }
  thread_ = std::thread([this] { Loop(); });
}

void MetaSession::Loop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    // A timer, not a synchronisation: heartbeats are periodic by nature.
    stop_cv_.wait_for(lock, options_.heartbeat_interval);
    if (stopping_) break;
    bool registered = node_id_ != 0;
    lock.unlock();
    Status st = registered ? HeartbeatOnce() : RegisterOnce();
    if (st.code() == Code::NOT_FOUND) {
      std::lock_guard relock(mu_);
      node_id_ = 0;  // the metanode forgot us: register again next round
    }
    if (!st.ok()) GLOG_WARN("event=heartbeat_failed error=\"{}\"", st.ToString());
    lock.lock();
  }
}

void MetaSession::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace granary::datanode
