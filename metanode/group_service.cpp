// The metadata group as clients and other members see it (docs/metadata-ha.md): member status,
// membership changes, and the checkpoint a member that fell behind the leader's log installs.
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <thread>

#include "common/log.h"
#include "metanode/meta_core.h"
#include "metanode/service.h"
#include "metanode/service_util.h"

namespace granary::metanode {

Result<MetaGroupStatus> MetaCore::GroupStatus() {
  auto state = committer_->State();
  GRANARY_TRY(state);
  MetaGroupStatus out;
  out.set_replicated(options_.member_id != 0);
  out.set_id(state->id);
  out.set_address(options_.member_address);
  out.set_role(state->role);
  out.set_term(state->term);
  out.set_leader_id(state->leader_id);
  out.set_leader_address(state->leader_address);
  out.set_commit_index(state->commit_index);
  out.set_applied_index(state->applied_index);
  out.set_snapshot_index(state->snapshot_index);
  for (const GroupMember& m : state->members) {
    MetaMember& mm = *out.add_members();
    mm.set_id(m.id);
    mm.set_address(m.address.empty() ? options_.member_address : m.address);
    mm.set_voter(m.voter);
    mm.set_match_index(m.match_index);
  }
  GroupRecord group;
  auto named = Snapshot()->GetRecord(Cf::kSystem, kGroupKey, &group);
  if (named.ok() && *named) out.set_cluster_id(group.cluster_id());
  {
    std::lock_guard lock(mu_);
    out.set_admin_address(admin_address_);
  }
  return out;
}

namespace {
Status Await(const std::function<void(std::function<void(Status)>)>& start) {
  auto promise = std::make_shared<std::promise<Status>>();
  auto future = promise->get_future();
  start([promise](Status s) { promise->set_value(std::move(s)); });
  // A member being added catches up before it becomes a voter: give it time.
  if (future.wait_for(std::chrono::minutes(5)) != std::future_status::ready) {
    return Unavailable("membership change did not finish within 5 minutes");
  }
  return future.get();
}
}  // namespace

Status MetaCore::AddMember(uint64_t id, const std::string& address) {
  if (id == 0) return InvalidArgument("member id must be >= 1");
  GLOG_INFO("event=meta_member_add id={} address={}", id, address);
  return Await([&](auto done) { committer_->AddMember(id, address, std::move(done)); });
}

Status MetaCore::RemoveMember(uint64_t id) {
  GLOG_INFO("event=meta_member_remove id={}", id);
  return Await([&](auto done) { committer_->RemoveMember(id, std::move(done)); });
}

Status MetaCore::StreamCheckpoint(const FetchCheckpointRequest& req,
                                  const std::function<bool(const CheckpointChunk&)>& write) {
  if (options_.in_memory) return InvalidArgument("an in-memory metanode has no checkpoint");
  // A new leader may not have applied all it committed yet: wait, bounded.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  uint64_t applied = 0;
  for (;;) {
    auto state = committer_->State();
    GRANARY_TRY(state);
    applied = state->applied_index;
    if (applied >= req.min_applied_index()) break;
    if (std::chrono::steady_clock::now() > deadline) {
      return Unavailable(fmt::format("this member applied up to {}, {} was asked for", applied,
                                     req.min_applied_index()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // bounded by the deadline
  }
  GroupRecord group;
  auto named = Snapshot()->GetRecord(Cf::kSystem, kGroupKey, &group);
  GRANARY_TRY(named);
  if (*named && !req.cluster_id().empty() && group.cluster_id() != req.cluster_id()) {
    return Status(Code::PRECONDITION_FAILED,
                  fmt::format("this member belongs to cluster {}, the asking one to {}",
                              group.cluster_id(), req.cluster_id()));
  }
  namespace fs = std::filesystem;
  const std::string dir =
      fmt::format("{}/checkpoints/fetch-{}-{}", options_.data_dir, NowMs(), RandomToken(6, "abcdefghijklmnopqrstuvwxyz0123456789"));
  std::error_code ec;
  fs::create_directories(options_.data_dir + "/checkpoints", ec);
  auto sequence = store_->Checkpoint(dir);
  GRANARY_TRY(sequence);
  struct Cleanup {
    std::string dir;
    ~Cleanup() {
      std::error_code e;
      fs::remove_all(dir, e);
    }
  } cleanup{dir};
  GLOG_INFO("event=meta_checkpoint_serving dir={} applied>={}", dir, applied);
  std::vector<char> buffer(1 << 20);
  bool first = true;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    if (!in) return Internal(fmt::format("read {}", entry.path().string()));
    uint64_t offset = 0;
    do {
      in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
      CheckpointChunk chunk;
      chunk.set_file(entry.path().filename().string());
      chunk.set_offset(offset);
      chunk.set_data(buffer.data(), static_cast<size_t>(in.gcount()));
      if (first) chunk.set_applied_index(applied);
      first = false;
      offset += static_cast<uint64_t>(in.gcount());
      if (!write(chunk)) return Unavailable("checkpoint receiver went away");
    } while (in.gcount() > 0 && !in.eof());
  }
  return Status::Ok();
}

namespace {

class MetaGroupService final : public MetaGroup::Service {
 public:
  explicit MetaGroupService(MetaCore& core) : core_(core) {}
  grpc::Status Status(grpc::ServerContext*, const Empty*, MetaGroupStatus* out) override {
    return Answer(core_.GroupStatus(), [&](MetaGroupStatus& s) { *out = std::move(s); });
  }
  grpc::Status AddMember(grpc::ServerContext*, const MetaMemberRequest* req,
                         MetaGroupStatus* out) override {
    granary::Status s = core_.AddMember(req->id(), req->address());
    if (!s.ok()) return ToGrpcStatus(s);
    return Status(nullptr, nullptr, out);
  }
  grpc::Status RemoveMember(grpc::ServerContext*, const MetaMemberRequest* req,
                            MetaGroupStatus* out) override {
    granary::Status s = core_.RemoveMember(req->id());
    if (!s.ok()) return ToGrpcStatus(s);
    return Status(nullptr, nullptr, out);
  }
  grpc::Status FetchCheckpoint(grpc::ServerContext*, const FetchCheckpointRequest* req,
                               grpc::ServerWriter<CheckpointChunk>* writer) override {
    return ToGrpcStatus(core_.StreamCheckpoint(
        *req, [writer](const CheckpointChunk& chunk) { return writer->Write(chunk); }));
  }

 private:
  MetaCore& core_;
};

}  // namespace

std::unique_ptr<grpc::Service> MakeGroupService(MetaCore& core) {
  return std::make_unique<MetaGroupService>(core);
}

}  // namespace granary::metanode
