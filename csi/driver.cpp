#include "csi/driver.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>

#include "client/meta_client.h"
#include "common/config.h"
#include "common/error_table.h"
#include "common/log.h"
#include "common/topology.h"
#include "common/version.h"
#include "csi/mounts.h"
#include "csi/node_service.h"
#include "csi/service_util.h"
#include "csi/v1/csi.grpc.pb.h"

namespace granary::csi {
namespace {

namespace v1 = ::csi::v1;
using internal::CheckCapabilities;
using internal::MultiNode;
using internal::CheckCapability;
using internal::Err;
using internal::FromStatus;
using internal::Invalid;
using internal::MakeNodePlugin;
using internal::NodePlugin;
using internal::ZoneKey;

// Removes everything below directory `dir` (the metanode deletes only empty volumes; a deleted
// PV takes its data with it). Depth-first with an explicit stack: trees can be deep.
Status EmptyDirectory(client::MetaClient& meta, uint64_t dir) {
  struct Frame {
    uint64_t parent;  // 0 for the root
    std::string name;
    uint64_t ino;
    bool listed = false;
  };
  std::vector<Frame> stack{{0, "", dir}};
  while (!stack.empty()) {
    Frame& top = stack.back();
    if (!top.listed) {
      top.listed = true;
      uint64_t ino = top.ino;
      std::string after;
      for (;;) {
        auto page = meta.ReadDir(ino, after, 1024);
        if (!page.ok()) return page.status();
        for (const auto& e : page->entries()) {
          after = e.name();
          if (e.name() == "." || e.name() == "..") continue;
          if (e.type() == DIRECTORY) {
            stack.push_back({ino, e.name(), e.ino()});
          } else {
            Status s = meta.Unlink(ino, e.name());
            if (!s.ok() && s.code() != Code::NOT_FOUND) return s;
          }
        }
        if (page->eof() || page->entries().empty()) break;
      }
      continue;  // children pushed above are emptied first
    }
    Frame done = top;
    stack.pop_back();
    if (done.parent != 0) {
      Status s = meta.Rmdir(done.parent, done.name);
      if (!s.ok() && s.code() != Code::NOT_FOUND) return s;
    }
  }
  return Status::Ok();
}

// ----------------------------------------------------------------- identity
class IdentityService final : public v1::Identity::Service {
 public:
  IdentityService(client::MetaClient* probe, bool controller)
      : probe_(probe), controller_(controller) {}

  grpc::Status GetPluginInfo(grpc::ServerContext*, const v1::GetPluginInfoRequest*,
                             v1::GetPluginInfoResponse* reply) override {
    reply->set_name(kDriverName);
    reply->set_vendor_version(kVersion);
    return grpc::Status::OK;
  }

  grpc::Status GetPluginCapabilities(grpc::ServerContext*, const v1::GetPluginCapabilitiesRequest*,
                                     v1::GetPluginCapabilitiesResponse* reply) override {
    if (controller_) {
      reply->add_capabilities()->mutable_service()->set_type(
          v1::PluginCapability::Service::CONTROLLER_SERVICE);
    }
    reply->add_capabilities()->mutable_service()->set_type(
        v1::PluginCapability::Service::VOLUME_ACCESSIBILITY_CONSTRAINTS);
    reply->add_capabilities()->mutable_volume_expansion()->set_type(
        v1::PluginCapability::VolumeExpansion::ONLINE);
    return grpc::Status::OK;
  }

  grpc::Status Probe(grpc::ServerContext*, const v1::ProbeRequest*,
                     v1::ProbeResponse* reply) override {
    // CSI spec: a live plugin that cannot serve yet answers ready=false. An error here makes
    // csi-provisioner and csi-resizer exit, so every install crash-looped them until the
    // metanode came up.
    auto st = probe_->ClusterStatus();
    bool ready = st.ok();
    if (ready_.exchange(ready) != ready) {
      GLOG_INFO("event=probe ready={} meta={} {}", ready, probe_->address(),
                ready ? "" : st.status().ToString());
    }
    reply->mutable_ready()->set_value(ready);
    return grpc::Status::OK;
  }

 private:
  client::MetaClient* probe_;
  bool controller_;
  std::atomic<bool> ready_{true};  // the last answer, to log only changes
};

// ----------------------------------------------------------------- controller
class ControllerService final : public v1::Controller::Service {
 public:
  explicit ControllerService(client::MetaClient* meta) : meta_(meta) {}

  grpc::Status CreateVolume(grpc::ServerContext*, const v1::CreateVolumeRequest* req,
                            v1::CreateVolumeResponse* reply) override {
    if (req->name().empty()) return Invalid("name is required");
    if (auto s = CheckCapabilities(req->volume_capabilities()); !s.ok()) return s;
    int64_t required = req->capacity_range().required_bytes();
    int64_t limit = req->capacity_range().limit_bytes();
    if (required < 0 || limit < 0) return Invalid("capacity_range: bytes must not be negative");
    if (limit > 0 && required > limit) {
      return Err(grpc::StatusCode::OUT_OF_RANGE,
                 fmt::format("capacity_range: required {} exceeds limit {}", required, limit));
    }
    std::string pool, locality = "none";
    for (const auto& [k, v] : req->parameters()) {
      if (k == "pool") {
        pool = v;
      } else if (k == "locality") {
        if (v != "none" && v != "zone") {
          return Invalid(fmt::format("parameters.locality: {} is not none|zone", v));
        }
        locality = v;
      } else if (k.rfind("csi.storage.k8s.io/", 0) != 0) {
        return Invalid(fmt::format("parameters: unknown key {} (pool, locality)", k));
      }
    }
    uint32_t pool_id = 0;
    if (!pool.empty()) {
      auto pools = meta_->PoolList();
      if (!pools.ok()) return FromStatus(pools.status(), "list pools");
      auto it = std::find_if(pools->begin(), pools->end(),
                             [&](const PoolSpec& p) { return p.name() == pool; });
      if (it == pools->end()) return Invalid(fmt::format("parameters.pool: no pool {}", pool));
      pool_id = it->id();
    }
    uint64_t quota = static_cast<uint64_t>(required > 0 ? required : limit);

    // A clone (docs/snapshots.md): from a snapshot (id VOLUME@NAME) or a live volume, in the
    // source's pool, at least as large as the source (CSI spec, CreateVolume errors).
    VolumeCreateRequest clone;
    if (req->has_volume_content_source()) {
      const auto& src = req->volume_content_source();
      std::string source;
      if (src.has_snapshot()) {
        source = src.snapshot().snapshot_id();
        clone.set_from_snapshot(source);
      } else if (src.has_volume()) {
        source = src.volume().volume_id();
        clone.set_from_volume(source);
      } else {
        return Invalid("volume_content_source: neither a snapshot nor a volume");
      }
      auto from = meta_->VolumeGet(source);
      if (!from.ok() && from.status().code() == Code::NOT_FOUND) {
        return Err(grpc::StatusCode::NOT_FOUND,
                   fmt::format("volume_content_source: {} {} does not exist",
                               src.has_snapshot() ? "snapshot" : "volume", source));
      }
      if (!from.ok()) return FromStatus(from.status(), "get " + source);
      if (src.has_snapshot() != from->read_only()) {
        return Err(grpc::StatusCode::NOT_FOUND,
                   fmt::format("volume_content_source: {} is not a {}", source,
                               src.has_snapshot() ? "snapshot" : "volume"));
      }
      if (!pool.empty() && from->pool_id() != pool_id) {
        return Invalid(
            fmt::format("volume_content_source: {} is in another pool than {}", source, pool));
      }
      // The source's size: its quota (a volume), else what it holds.
      const uint64_t source_size = from->quota_bytes() ? from->quota_bytes() : from->used_bytes();
      if (limit > 0 && static_cast<uint64_t>(limit) < source_size) {
        return Err(grpc::StatusCode::OUT_OF_RANGE,
                   fmt::format("capacity_range: limit {} is smaller than the source {} ({} bytes)",
                               limit, source, source_size));
      }
      quota = std::max<uint64_t>(quota, source_size);
      *reply->mutable_volume()->mutable_content_source() = src;
    }

    std::lock_guard lock(create_mu_);  // one create per name at a time: idempotency check + create
    auto existing = meta_->VolumeGet(req->name());
    Volume vol;
    if (existing.ok()) {
      vol = *existing;
      bool size_ok = required == 0 && limit == 0
                         ? true
                         : vol.quota_bytes() != 0 &&
                               vol.quota_bytes() >= static_cast<uint64_t>(required) &&
                               (limit == 0 || vol.quota_bytes() <= static_cast<uint64_t>(limit));
      if (!size_ok || (!pool.empty() && vol.pool_id() != pool_id)) {
        return Err(grpc::StatusCode::ALREADY_EXISTS,
                   fmt::format("volume {} exists with quota {} in pool id {}, incompatible with "
                               "this request",
                               req->name(), vol.quota_bytes(), vol.pool_id()));
      }
    } else if (existing.status().code() == Code::NOT_FOUND) {
      clone.set_name(req->name());
      clone.set_pool(pool);
      clone.set_quota_bytes(quota);
      auto created = meta_->VolumeCreate(clone);
      if (!created.ok()) return FromStatus(created.status(), "create volume " + req->name());
      vol = *created;
      GLOG_INFO("event=volume_created volume={} quota={} pool={} from={}", req->name(), quota, pool,
                clone.from_snapshot() + clone.from_volume());
    } else {
      return FromStatus(existing.status(), "get volume " + req->name());
    }

    auto* out = reply->mutable_volume();
    out->set_volume_id(vol.name());
    out->set_capacity_bytes(static_cast<int64_t>(vol.quota_bytes()));
    (*out->mutable_volume_context())["pool"] = pool;
    (*out->mutable_volume_context())["locality"] = locality;
    // Multi-node volumes serve every zone: at most narrowed to the zones the CO requires.
    // Single-node volumes with zone locality are pinned where the CO prefers them.
    bool multi = std::any_of(req->volume_capabilities().begin(), req->volume_capabilities().end(),
                             MultiNode);
    const auto& ar = req->accessibility_requirements();
    std::set<std::string> zones;
    if (multi || locality == "none") {
      for (const auto& t : ar.requisite()) {
        if (auto it = t.segments().find(ZoneKey()); it != t.segments().end())
          zones.insert(it->second);
      }
    } else {
      for (const auto* list : {&ar.preferred(), &ar.requisite()}) {
        for (const auto& t : *list) {
          if (auto it = t.segments().find(ZoneKey()); it != t.segments().end() && zones.empty()) {
            zones.insert(it->second);
          }
        }
      }
    }
    for (const auto& z : zones) {
      (*out->add_accessible_topology()->mutable_segments())[ZoneKey()] = z;
    }
    return grpc::Status::OK;
  }

  grpc::Status DeleteVolume(grpc::ServerContext*, const v1::DeleteVolumeRequest* req,
                            v1::DeleteVolumeResponse*) override {
    if (req->volume_id().empty()) return Invalid("volume_id is required");
    auto vol = meta_->VolumeGet(req->volume_id());
    if (!vol.ok() && vol.status().code() == Code::NOT_FOUND) {
      if (on_deleted_) on_deleted_(req->volume_id());
      return grpc::Status::OK;
    }
    if (!vol.ok()) return FromStatus(vol.status(), "get volume " + req->volume_id());
    if (vol->read_only()) return grpc::Status::OK;  // a snapshot is never a CSI volume
    if (Status s = EmptyDirectory(*meta_, vol->root_ino()); !s.ok()) {
      return FromStatus(s, "empty volume " + req->volume_id());
    }
    Status s = meta_->VolumeDelete(req->volume_id());
    if (!s.ok() && s.code() != Code::NOT_FOUND) {
      return FromStatus(s, "delete volume " + req->volume_id());
    }
    GLOG_INFO("event=volume_deleted volume={}", req->volume_id());
    if (on_deleted_) on_deleted_(req->volume_id());
    return grpc::Status::OK;
  }

  // Called after a volume is deleted (the node side of an `all`-mode plugin drops its files).
  void OnDeleted(std::function<void(const std::string&)> f) { on_deleted_ = std::move(f); }

  grpc::Status ValidateVolumeCapabilities(grpc::ServerContext*,
                                          const v1::ValidateVolumeCapabilitiesRequest* req,
                                          v1::ValidateVolumeCapabilitiesResponse* reply) override {
    if (req->volume_id().empty()) return Invalid("volume_id is required");
    if (req->volume_capabilities().empty()) return Invalid("volume_capabilities are required");
    auto vol = meta_->VolumeGet(req->volume_id());
    if (!vol.ok()) return FromStatus(vol.status(), "get volume " + req->volume_id());
    if (auto s = CheckCapabilities(req->volume_capabilities()); !s.ok()) {
      reply->set_message(s.error_message());
      return grpc::Status::OK;
    }
    auto* c = reply->mutable_confirmed();
    *c->mutable_volume_context() = req->volume_context();
    *c->mutable_volume_capabilities() = req->volume_capabilities();
    *c->mutable_parameters() = req->parameters();
    return grpc::Status::OK;
  }

  grpc::Status ListVolumes(grpc::ServerContext*, const v1::ListVolumesRequest* req,
                           v1::ListVolumesResponse* reply) override {
    if (req->max_entries() < 0) return Invalid("max_entries must not be negative");
    auto vols = meta_->VolumeList();
    if (!vols.ok()) return FromStatus(vols.status(), "list volumes");
    // Snapshots are listed by ListSnapshots, not as volumes.
    std::erase_if(*vols, [](const Volume& v) { return v.read_only(); });
    std::sort(vols->begin(), vols->end(),
              [](const Volume& a, const Volume& b) { return a.name() < b.name(); });
    // The token is the last name returned: stable when volumes come and go between pages.
    auto begin = vols->begin();
    if (!req->starting_token().empty()) {
      const std::string& token = req->starting_token();
      if (token.size() < 2 || token[0] != 'n' || token[1] != ':') {
        return Err(grpc::StatusCode::ABORTED, "starting_token: not a token this plugin issued");
      }
      std::string after = token.substr(2);
      begin = std::upper_bound(vols->begin(), vols->end(), after,
                               [](const std::string& n, const Volume& v) { return n < v.name(); });
    }
    size_t max = req->max_entries() == 0 ? SIZE_MAX : static_cast<size_t>(req->max_entries());
    for (auto it = begin; it != vols->end(); ++it) {
      if (static_cast<size_t>(reply->entries_size()) == max) {
        reply->set_next_token("n:" + std::prev(it)->name());
        break;
      }
      auto* v = reply->add_entries()->mutable_volume();
      v->set_volume_id(it->name());
      v->set_capacity_bytes(static_cast<int64_t>(it->quota_bytes()));
    }
    return grpc::Status::OK;
  }

  grpc::Status GetCapacity(grpc::ServerContext*, const v1::GetCapacityRequest* req,
                           v1::GetCapacityResponse* reply) override {
    for (const auto& c : req->volume_capabilities()) {
      if (auto s = CheckCapability(c); !s.ok()) return s;
    }
    auto pools = meta_->PoolList();
    if (!pools.ok()) return FromStatus(pools.status(), "list pools");
    const PoolSpec* pool = pools->empty() ? nullptr : &pools->front();
    if (auto it = req->parameters().find("pool"); it != req->parameters().end()) {
      pool = nullptr;
      for (const auto& p : *pools) {
        if (p.name() == it->second) pool = &p;
      }
      if (pool == nullptr) return Invalid(fmt::format("parameters.pool: no pool {}", it->second));
    }
    auto status = meta_->ClusterStatus();
    if (!status.ok()) return FromStatus(status.status(), "cluster status");
    std::string zone;
    if (auto it = req->accessible_topology().segments().find(ZoneKey());
        it != req->accessible_topology().segments().end()) {
      zone = it->second;
    }
    uint64_t free_raw = 0;
    for (const auto& n : status->nodes()) {
      if (n.state() != UP) continue;
      if (!zone.empty()) {
        auto it = n.labels().find("zone");
        if (it == n.labels().end() || it->second != zone) continue;
      }
      if (pool != nullptr) {
        bool selected = true;
        for (const auto& [k, v] : pool->node_selector()) {
          auto it = n.labels().find(k);
          if (it == n.labels().end() || it->second != v) selected = false;
        }
        if (!selected) continue;
      }
      if (n.capacity_bytes() > n.used_bytes()) free_raw += n.capacity_bytes() - n.used_bytes();
    }
    // Raw free space shrinks by the pool's redundancy overhead.
    uint64_t usable = free_raw;
    if (pool != nullptr) {
      if (pool->data_chunks() > 0) {
        usable = free_raw / (pool->data_chunks() + pool->coding_chunks()) * pool->data_chunks();
      } else if (pool->replicas() > 0) {
        usable = free_raw / pool->replicas();
      }
    }
    reply->set_available_capacity(static_cast<int64_t>(usable));
    return grpc::Status::OK;
  }

  grpc::Status ControllerGetCapabilities(grpc::ServerContext*,
                                         const v1::ControllerGetCapabilitiesRequest*,
                                         v1::ControllerGetCapabilitiesResponse* reply) override {
    using T = v1::ControllerServiceCapability::RPC;
    for (auto t : {T::CREATE_DELETE_VOLUME, T::LIST_VOLUMES, T::GET_CAPACITY, T::EXPAND_VOLUME,
                   T::SINGLE_NODE_MULTI_WRITER, T::CREATE_DELETE_SNAPSHOT, T::LIST_SNAPSHOTS,
                   T::CLONE_VOLUME}) {
      reply->add_capabilities()->mutable_rpc()->set_type(t);
    }
    return grpc::Status::OK;
  }

  // ---- snapshots (docs/snapshots.md): snapshot id = VOLUME@NAME, NAME = the CO's name.
  grpc::Status CreateSnapshot(grpc::ServerContext*, const v1::CreateSnapshotRequest* req,
                              v1::CreateSnapshotResponse* reply) override {
    if (req->name().empty()) return Invalid("name is required");
    if (req->source_volume_id().empty()) return Invalid("source_volume_id is required");
    if (req->name().find('@') != std::string::npos) return Invalid("name must not contain '@'");
    std::lock_guard lock(create_mu_);
    // Names are unique across sources (CSI spec): the same name on another volume is taken.
    auto all = Snapshots();
    if (!all.ok()) return FromStatus(all.status(), "list snapshots");
    for (const Volume& s : *all) {
      if (s.snapshot_name() != req->name()) continue;
      if (s.name() != req->source_volume_id() + "@" + req->name()) {
        return Err(
            grpc::StatusCode::ALREADY_EXISTS,
            fmt::format("snapshot {} exists for another source ({})", req->name(), s.name()));
      }
      FillSnapshot(s, req->source_volume_id(), reply->mutable_snapshot());
      return grpc::Status::OK;
    }
    auto created = meta_->SnapshotCreate(req->source_volume_id(), req->name());
    if (!created.ok() && created.status().code() == Code::NOT_FOUND) {
      return Err(grpc::StatusCode::NOT_FOUND,
                 fmt::format("source volume {} does not exist", req->source_volume_id()));
    }
    if (!created.ok()) return FromStatus(created.status(), "create snapshot " + req->name());
    GLOG_INFO("event=snapshot_created snapshot={} inodes={} bytes={}", created->name(),
              created->used_inodes(), created->used_bytes());
    FillSnapshot(*created, req->source_volume_id(), reply->mutable_snapshot());
    return grpc::Status::OK;
  }

  grpc::Status DeleteSnapshot(grpc::ServerContext*, const v1::DeleteSnapshotRequest* req,
                              v1::DeleteSnapshotResponse*) override {
    if (req->snapshot_id().empty()) return Invalid("snapshot_id is required");
    const size_t at = req->snapshot_id().find('@');
    if (at == std::string::npos) return grpc::Status::OK;  // not one of ours: nothing to delete
    Status s =
        meta_->SnapshotDelete(req->snapshot_id().substr(0, at), req->snapshot_id().substr(at + 1));
    if (!s.ok() && s.code() != Code::NOT_FOUND) {
      return FromStatus(s, "delete snapshot " + req->snapshot_id());
    }
    GLOG_INFO("event=snapshot_deleted snapshot={}", req->snapshot_id());
    return grpc::Status::OK;
  }

  grpc::Status ListSnapshots(grpc::ServerContext*, const v1::ListSnapshotsRequest* req,
                             v1::ListSnapshotsResponse* reply) override {
    if (req->max_entries() < 0) return Invalid("max_entries must not be negative");
    auto snaps = Snapshots();
    if (!snaps.ok()) return FromStatus(snaps.status(), "list snapshots");
    std::vector<std::pair<Volume, std::string>> rows;
    for (const Volume& s : *snaps) {
      // The source's name is the snapshot id's prefix, even after the source is gone.
      std::string source = s.name().substr(0, s.name().rfind('@'));
      if (!req->snapshot_id().empty() && s.name() != req->snapshot_id()) continue;
      if (!req->source_volume_id().empty() && source != req->source_volume_id()) continue;
      rows.emplace_back(s, std::move(source));
    }
    std::sort(rows.begin(), rows.end(),
              [](const auto& a, const auto& b) { return a.first.name() < b.first.name(); });
    auto begin = rows.begin();
    if (!req->starting_token().empty()) {
      const std::string& token = req->starting_token();
      if (token.size() < 2 || token[0] != 's' || token[1] != ':') {
        return Err(grpc::StatusCode::ABORTED, "starting_token: not a token this plugin issued");
      }
      const std::string after = token.substr(2);
      begin =
          std::upper_bound(rows.begin(), rows.end(), after,
                           [](const std::string& n, const auto& r) { return n < r.first.name(); });
    }
    size_t max = req->max_entries() == 0 ? SIZE_MAX : static_cast<size_t>(req->max_entries());
    for (auto it = begin; it != rows.end(); ++it) {
      if (static_cast<size_t>(reply->entries_size()) == max) {
        reply->set_next_token("s:" + std::prev(it)->first.name());
        break;
      }
      FillSnapshot(it->first, it->second, reply->add_entries()->mutable_snapshot());
    }
    return grpc::Status::OK;
  }

  // Every snapshot from the volume list: SnapshotList would also walk each snapshot's namespace
  // for its exclusive bytes, which no CSI answer carries.
  Result<std::vector<Volume>> Snapshots() {
    auto vols = meta_->VolumeList();
    GRANARY_TRY(vols);
    std::erase_if(*vols, [](const Volume& v) { return !v.read_only(); });
    return vols;
  }

  static void FillSnapshot(const Volume& s, const std::string& source, v1::Snapshot* out) {
    out->set_snapshot_id(s.name());
    out->set_source_volume_id(source);
    out->set_size_bytes(static_cast<int64_t>(s.used_bytes()));
    out->mutable_creation_time()->set_seconds(s.created_ms() / 1000);
    out->mutable_creation_time()->set_nanos(static_cast<int32_t>(s.created_ms() % 1000) * 1000000);
    out->set_ready_to_use(true);  // one metadata operation: ready when it returns
  }

  grpc::Status ControllerExpandVolume(grpc::ServerContext*,
                                      const v1::ControllerExpandVolumeRequest* req,
                                      v1::ControllerExpandVolumeResponse* reply) override {
    if (req->volume_id().empty()) return Invalid("volume_id is required");
    if (!req->has_capacity_range()) return Invalid("capacity_range is required");
    if (req->has_volume_capability()) {
      if (auto s = CheckCapability(req->volume_capability()); !s.ok()) return s;
    }
    int64_t required = req->capacity_range().required_bytes();
    int64_t limit = req->capacity_range().limit_bytes();
    if (required < 0 || limit < 0) return Invalid("capacity_range: bytes must not be negative");
    if (limit > 0 && required > limit) {
      return Err(grpc::StatusCode::OUT_OF_RANGE,
                 fmt::format("capacity_range: required {} exceeds limit {}", required, limit));
    }
    auto vol = meta_->VolumeGet(req->volume_id());
    if (!vol.ok()) return FromStatus(vol.status(), "get volume " + req->volume_id());
    uint64_t want = static_cast<uint64_t>(required > 0 ? required : limit);
    uint64_t quota = vol->quota_bytes();
    // Never shrink (CSI expansion only grows); an unlimited volume stays unlimited.
    if (quota != 0 && want > quota) {
      auto set = meta_->VolumeSetQuota(req->volume_id(), want, vol->quota_inodes());
      if (!set.ok()) return FromStatus(set.status(), "set quota of " + req->volume_id());
      quota = set->quota_bytes();
      GLOG_INFO("event=volume_expanded volume={} quota={}", req->volume_id(), quota);
    }
    reply->set_capacity_bytes(static_cast<int64_t>(quota));
    // The mount reads the quota from the metanode: nothing to grow on the node.
    reply->set_node_expansion_required(false);
    return grpc::Status::OK;
  }

 private:
  client::MetaClient* meta_;
  std::mutex create_mu_;
  std::function<void(const std::string&)> on_deleted_;
};

}  // namespace

Status Serve(const DriverOptions& options, const std::function<void()>& on_ready) {
  DriverOptions o = options;
  if (o.mode != "controller" && o.mode != "node" && o.mode != "all") {
    return InvalidArgument(fmt::format("--mode {}: controller|node|all", o.mode));
  }
  if (o.endpoint.rfind("unix://", 0) != 0) {
    return InvalidArgument(fmt::format("--endpoint {}: unix:///PATH", o.endpoint));
  }
  bool controller = o.mode != "node";
  bool node = o.mode != "controller";
  if (node && o.node_id.empty()) return InvalidArgument("--node-id is required for the node mode");
  if (o.granary_binary.empty()) {
    std::error_code ec;
    o.granary_binary = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  }
  std::string socket = o.endpoint.substr(std::string("unix://").size());
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(socket).parent_path(), ec);
  std::filesystem::remove(socket, ec);  // a stale socket of a killed plugin

  client::MetaClientOptions mo;
  mo.address = o.meta;
  auto meta = client::MetaClient::Connect(mo);
  if (!meta.ok()) return meta.status();
  mo.deadline = std::chrono::milliseconds(3000);  // Probe answers fast: the CO polls it
  auto probe = client::MetaClient::Connect(mo);
  if (!probe.ok()) return probe.status();

  IdentityService identity(probe->get(), controller);
  ControllerService ctrl(meta->get());
  std::unique_ptr<NodePlugin> nodesvc = MakeNodePlugin(o, meta->get());
  if (node) nodesvc->Rediscover();
  if (node && controller) {
    ctrl.OnDeleted([&nodesvc](const std::string& volume) { nodesvc->ForgetVolume(volume); });
  }

  grpc::ServerBuilder builder;
  builder.AddListeningPort("unix:" + socket, grpc::InsecureServerCredentials());
  builder.RegisterService(&identity);
  if (controller) builder.RegisterService(&ctrl);
  if (node) builder.RegisterService(nodesvc.get());
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) return Unavailable(fmt::format("cannot listen on {}", o.endpoint));
  GLOG_INFO("event=listening endpoint={} mode={} node_id={}", o.endpoint, o.mode, o.node_id);
  on_ready();

  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigaddset(&term, SIGINT);
  int sig = 0;
  sigwait(&term, &sig);
  GLOG_INFO("event=stopping signal={}", sig);
  // Mounts stay: they belong to the pods, not to this process.
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  std::filesystem::remove(socket, ec);
  return Status::Ok();
}

}  // namespace granary::csi
