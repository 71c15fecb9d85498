#include "csi/node_service.h"

#include <fmt/format.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "client/meta_client.h"
#include "common/log.h"
#include "csi/mounts.h"
#include "csi/service_util.h"

namespace granary::csi::internal {
namespace {

using AccessMode = v1::VolumeCapability::AccessMode;

// ----------------------------------------------------------------- node
// What the plugin records per staged volume, so a restarted plugin knows what it owns.
struct StageRecord {
  std::string volume;
  std::string staging;
};

class NodeService final : public NodePlugin {
 public:
  NodeService(const DriverOptions& o, client::MetaClient* meta) : o_(o), meta_(meta) {
    Labels labels = NodeLabels(o);
    labels_text_ = FormatLabels(labels);
    launcher_ = ResolveLauncher(o.mount_launcher);
    for (const char* key : {"zone", "rack", "host", "gpu"}) {
      if (auto it = labels.find(key); it != labels.end()) {
        topology_[std::string(kTopologyPrefix) + key] = it->second;
      }
    }
  }

  // Reports each staged volume the state dir records and restages one whose mount is gone.
  void Rediscover() override {
    std::error_code ec;
    std::filesystem::create_directories(o_.state_dir, ec);
    // A log or socket without a record was left by a plugin killed while it unstaged.
    for (const auto& entry : std::filesystem::directory_iterator(o_.state_dir, ec)) {
      const auto& p = entry.path();
      if (p.extension() != ".log" && p.extension() != ".sock") continue;
      std::filesystem::path record = p;
      record.replace_extension(".stage");
      std::error_code ignored;
      if (!std::filesystem::exists(record, ignored)) std::filesystem::remove(p, ignored);
    }
    for (const auto& entry : std::filesystem::directory_iterator(o_.state_dir, ec)) {
      if (entry.path().extension() != ".stage") continue;
      auto rec = ReadRecord(entry.path());
      if (!rec) continue;
      auto mount = FindMount(rec->staging);
      struct statvfs sv;
      bool healthy = mount && statvfs(rec->staging.c_str(), &sv) == 0;
      if (healthy) {
        GLOG_INFO("event=rediscovered volume={} staging={} state=healthy", rec->volume,
                  rec->staging);
        continue;
      }
      if (mount) (void)Unmount(rec->staging);  // the daemon died: its mount only errors now
      Status s = Stage(rec->volume, rec->staging);
      GLOG_INFO("event=rediscovered volume={} staging={} state={} {}", rec->volume, rec->staging,
                s.ok() ? "restaged" : "broken", s.ok() ? "" : s.ToString());
    }
  }

  grpc::Status NodeStageVolume(grpc::ServerContext*, const v1::NodeStageVolumeRequest* req,
                               v1::NodeStageVolumeResponse*) override {
    if (req->volume_id().empty()) return Invalid("volume_id is required");
    if (req->staging_target_path().empty()) return Invalid("staging_target_path is required");
    if (!req->has_volume_capability()) return Invalid("volume_capability is required");
    if (auto s = CheckCapability(req->volume_capability()); !s.ok()) return s;
    std::lock_guard lock(mu_);
    auto mounted = FindMount(req->staging_target_path());
    if (mounted) {
      auto rec = ReadRecord(RecordPath(req->volume_id()));
      if (rec && rec->staging == req->staging_target_path()) return grpc::Status::OK;
      return Err(grpc::StatusCode::ALREADY_EXISTS,
                 fmt::format("{} already has a mount that is not volume {}",
                             req->staging_target_path(), req->volume_id()));
    }
    auto vol = meta_->VolumeGet(req->volume_id());
    if (!vol.ok()) return FromStatus(vol.status(), "get volume " + req->volume_id());
    Status s = Stage(req->volume_id(), req->staging_target_path());
    if (!s.ok()) return FromStatus(s, "stage " + req->volume_id());
    return grpc::Status::OK;
  }

  grpc::Status NodeUnstageVolume(grpc::ServerContext*, const v1::NodeUnstageVolumeRequest* req,
                                 v1::NodeUnstageVolumeResponse*) override {
    if (req->volume_id().empty()) return Invalid("volume_id is required");
    if (req->staging_target_path().empty()) return Invalid("staging_target_path is required");
    std::lock_guard lock(mu_);
    Status s = StopMountDaemon(req->staging_target_path());
    if (!s.ok()) return FromStatus(s, "unstage " + req->volume_id());
    std::error_code ec;
    RemoveVolumeFiles(req->volume_id());
    std::filesystem::remove(req->staging_target_path(), ec);  // only when empty, as it should be
    GLOG_INFO("event=unstaged volume={} staging={}", req->volume_id(), req->staging_target_path());
    return grpc::Status::OK;
  }

  grpc::Status NodePublishVolume(grpc::ServerContext*, const v1::NodePublishVolumeRequest* req,
                                 v1::NodePublishVolumeResponse*) override {
    if (req->volume_id().empty()) return Invalid("volume_id is required");
    if (req->staging_target_path().empty()) return Invalid("staging_target_path is required");
    if (req->target_path().empty()) return Invalid("target_path is required");
    if (!req->has_volume_capability()) return Invalid("volume_capability is required");
    if (auto s = CheckCapability(req->volume_capability()); !s.ok()) return s;
    std::lock_guard lock(mu_);
    auto staged = FindMount(req->staging_target_path());
    if (!staged) {
      return Err(grpc::StatusCode::FAILED_PRECONDITION,
                 fmt::format("volume {} is not staged at {}", req->volume_id(),
                             req->staging_target_path()));
    }
    bool read_only =
        req->readonly() ||
        req->volume_capability().access_mode().mode() == AccessMode::MULTI_NODE_READER_ONLY ||
        req->volume_capability().access_mode().mode() == AccessMode::SINGLE_NODE_READER_ONLY;
    // A sub-path of the volume (volume_context `subdir`, e.g. set on a static PV) is published
    // instead of its root; it must exist and stay inside the volume.
    std::string source = req->staging_target_path();
    std::string root = staged->root;
    if (auto it = req->volume_context().find("subdir"); it != req->volume_context().end()) {
      std::filesystem::path sub = std::filesystem::path(it->second).lexically_normal();
      if (sub.is_absolute() || sub.empty() || *sub.begin() == "..") {
        return Invalid(
            fmt::format("volume_context.subdir {} must be relative to the volume", it->second));
      }
      std::error_code ec;
      source = (std::filesystem::path(source) / sub).string();
      if (!std::filesystem::is_directory(source, ec)) {
        return Err(grpc::StatusCode::NOT_FOUND,
                   fmt::format("volume {} has no directory {}", req->volume_id(), it->second));
      }
      root = (std::filesystem::path(root) / sub).lexically_normal().string();
    }
    if (auto target = FindMount(req->target_path())) {
      if (target->device == staged->device && target->root == root &&
          target->read_only == read_only) {
        return grpc::Status::OK;
      }
      return Err(
          grpc::StatusCode::ALREADY_EXISTS,
          fmt::format("{} is already published with another volume or mode", req->target_path()));
    }
    Status s = BindMount(source, req->target_path(), read_only);
    if (!s.ok()) return FromStatus(s, "publish " + req->volume_id());
    GLOG_INFO("event=published volume={} target={} read_only={}", req->volume_id(),
              req->target_path(), read_only);
    return grpc::Status::OK;
  }

  grpc::Status NodeUnpublishVolume(grpc::ServerContext*, const v1::NodeUnpublishVolumeRequest* req,
                                   v1::NodeUnpublishVolumeResponse*) override {
    if (req->volume_id().empty()) return Invalid("volume_id is required");
    if (req->target_path().empty()) return Invalid("target_path is required");
    std::lock_guard lock(mu_);
    Status s = Unmount(req->target_path());
    if (!s.ok()) return FromStatus(s, "unpublish " + req->volume_id());
    std::error_code ec;
    std::filesystem::remove(req->target_path(), ec);
    GLOG_INFO("event=unpublished volume={} target={}", req->volume_id(), req->target_path());
    return grpc::Status::OK;
  }

  grpc::Status NodeGetVolumeStats(grpc::ServerContext*, const v1::NodeGetVolumeStatsRequest* req,
                                  v1::NodeGetVolumeStatsResponse* reply) override {
    if (req->volume_id().empty()) return Invalid("volume_id is required");
    if (req->volume_path().empty()) return Invalid("volume_path is required");
    std::error_code ec;
    bool mounted = FindMount(req->volume_path()).has_value();
    if (!mounted && !std::filesystem::exists(req->volume_path(), ec)) {
      return Err(grpc::StatusCode::NOT_FOUND,
                 fmt::format("volume_path {} does not exist", req->volume_path()));
    }
    auto* cond = reply->mutable_volume_condition();
    struct statvfs sv;
    if (!mounted) {
      cond->set_abnormal(true);
      cond->set_message(fmt::format("{} is not mounted", req->volume_path()));
      return grpc::Status::OK;
    }
    if (statvfs(req->volume_path().c_str(), &sv) != 0) {
      cond->set_abnormal(true);
      cond->set_message(fmt::format("statfs {}: {} (the mount daemon is gone?)", req->volume_path(),
                                    std::strerror(errno)));
      return grpc::Status::OK;
    }
    auto bytes = reply->add_usage();
    bytes->set_unit(v1::VolumeUsage::BYTES);
    bytes->set_total(static_cast<int64_t>(sv.f_blocks * sv.f_frsize));
    bytes->set_available(static_cast<int64_t>(sv.f_bavail * sv.f_frsize));
    bytes->set_used(static_cast<int64_t>((sv.f_blocks - sv.f_bfree) * sv.f_frsize));
    auto inodes = reply->add_usage();
    inodes->set_unit(v1::VolumeUsage::INODES);
    inodes->set_total(static_cast<int64_t>(sv.f_files));
    inodes->set_available(static_cast<int64_t>(sv.f_favail));
    inodes->set_used(static_cast<int64_t>(sv.f_files - sv.f_ffree));
    cond->set_abnormal(false);
    cond->set_message("healthy");
    return grpc::Status::OK;
  }

  grpc::Status NodeExpandVolume(grpc::ServerContext*, const v1::NodeExpandVolumeRequest* req,
                                v1::NodeExpandVolumeResponse* reply) override {
    if (req->volume_id().empty()) return Invalid("volume_id is required");
    if (req->volume_path().empty()) return Invalid("volume_path is required");
    if (req->has_volume_capability()) {
      if (auto s = CheckCapability(req->volume_capability()); !s.ok()) return s;
    }
    std::error_code ec;
    if (!std::filesystem::exists(req->volume_path(), ec)) {
      return Err(grpc::StatusCode::NOT_FOUND,
                 fmt::format("volume_path {} does not exist", req->volume_path()));
    }
    // The quota lives on the metanode and the mount's statfs reads it: report it, grow nothing.
    auto vol = meta_->VolumeGet(req->volume_id());
    if (!vol.ok()) return FromStatus(vol.status(), "get volume " + req->volume_id());
    reply->set_capacity_bytes(static_cast<int64_t>(vol->quota_bytes()));
    return grpc::Status::OK;
  }

  grpc::Status NodeGetCapabilities(grpc::ServerContext*, const v1::NodeGetCapabilitiesRequest*,
                                   v1::NodeGetCapabilitiesResponse* reply) override {
    using T = v1::NodeServiceCapability::RPC;
    for (auto t : {T::STAGE_UNSTAGE_VOLUME, T::GET_VOLUME_STATS, T::EXPAND_VOLUME,
                   T::VOLUME_CONDITION, T::SINGLE_NODE_MULTI_WRITER}) {
      reply->add_capabilities()->mutable_rpc()->set_type(t);
    }
    return grpc::Status::OK;
  }

  grpc::Status NodeGetInfo(grpc::ServerContext*, const v1::NodeGetInfoRequest*,
                           v1::NodeGetInfoResponse* reply) override {
    reply->set_node_id(o_.node_id);
    auto* segs = reply->mutable_accessible_topology()->mutable_segments();
    for (const auto& [k, v] : topology_) (*segs)[k] = v;
    return grpc::Status::OK;
  }

  // A deleted volume leaves nothing in the state dir of this node (an `all`-mode plugin: in a
  // cluster the controller runs elsewhere and the node's unstage has already cleaned up).
  void ForgetVolume(const std::string& volume) override {
    std::lock_guard lock(mu_);
    std::error_code ec;
    if (!std::filesystem::exists(RecordPath(volume), ec)) RemoveVolumeFiles(volume);
  }

 private:
  // The stage record, the mount's log and its control socket: per volume, never kept after the
  // volume is unstaged (the log's last line is in any failed stage's error message).
  void RemoveVolumeFiles(const std::string& volume) {
    std::string base = RecordPath(volume);
    base.resize(base.size() - std::string(".stage").size());
    std::error_code ec;
    for (const char* ext : {".stage", ".stage.tmp", ".log", ".sock"})
      std::filesystem::remove(base + ext, ec);
  }

  std::string RecordPath(const std::string& volume) const {
    std::string safe;
    for (unsigned char c : volume) {
      if (std::isalnum(c) || c == '-' || c == '_' || c == '.') {
        safe.push_back(static_cast<char>(c));
      } else {
        safe += fmt::format("%{:02x}", c);
      }
    }
    return o_.state_dir + "/" + safe + ".stage";
  }

  static std::optional<StageRecord> ReadRecord(const std::filesystem::path& path) {
    std::ifstream in(path);
    StageRecord rec;
    if (!std::getline(in, rec.volume) || !std::getline(in, rec.staging)) return std::nullopt;
    return rec;
  }

  Status Stage(const std::string& volume, const std::string& staging) {
    std::error_code ec;
    std::filesystem::create_directories(staging, ec);
    std::filesystem::create_directories(o_.state_dir, ec);
    std::string record = RecordPath(volume);
    {
      // Written before the mount so a plugin killed mid-stage still finds what it started.
      std::ofstream out(record + ".tmp", std::ios::trunc);
      out << volume << "\n" << staging << "\n";
    }
    std::filesystem::rename(record + ".tmp", record, ec);
    DaemonSpec spec;
    spec.binary = o_.granary_binary;
    spec.meta = o_.meta;
    spec.volume = volume;
    spec.labels = labels_text_;
    spec.mountpoint = staging;
    spec.log_file = record.substr(0, record.size() - 6) + ".log";
    spec.control_socket = record.substr(0, record.size() - 6) + ".sock";
    spec.launcher = launcher_;
    Status s = StartMountDaemon(spec);
    if (!s.ok()) {
      RemoveVolumeFiles(volume);
      return s;
    }
    GLOG_INFO("event=staged volume={} staging={} labels={}", volume, staging, labels_text_);
    return Status::Ok();
  }

  DriverOptions o_;
  client::MetaClient* meta_;
  std::string labels_text_;
  std::vector<std::string> launcher_;
  std::map<std::string, std::string> topology_;
  std::mutex mu_;  // stage/publish steps of one node are serialised: they are rare and slow
};

}  // namespace

std::unique_ptr<NodePlugin> MakeNodePlugin(const DriverOptions& o, client::MetaClient* meta) {
  return std::make_unique<NodeService>(o, meta);
}

}  // namespace granary::csi::internal
