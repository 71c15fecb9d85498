// The CSI plugin's calls over its unix socket, against the CSI v1 specification's expectations:
// identity, every argument error with its exact code, idempotency, paging, capacity, expansion.
#include <filesystem>
#include <fstream>
#include <set>

#include "client/meta_client.h"
#include "tests/csi_support.h"

namespace granary::testing {
namespace {

TEST(CsiLauncherTest, AutoNoneAndPrefixResolveToTheCommandPrefix) {
  EXPECT_TRUE(csi::ResolveLauncher("none").empty());
  EXPECT_TRUE(csi::ResolveLauncher("").empty());
  EXPECT_EQ(csi::ResolveLauncher("systemd-run  --scope --"),
            (std::vector<std::string>{"systemd-run", "--scope", "--"}));
  // auto: systemd-run --scope only where systemd is this host's init.
  auto launcher = csi::ResolveLauncher("auto");
  if (access("/run/systemd/system", F_OK) == 0 && access("/usr/bin/systemd-run", X_OK) == 0) {
    ASSERT_FALSE(launcher.empty());
    EXPECT_EQ(launcher[1], "--scope");
  } else {
    EXPECT_TRUE(launcher.empty());
  }
}

using Mode = v1::VolumeCapability::AccessMode;
using grpc::StatusCode;

class CsiTest : public CsiFixture {};

TEST_F(CsiTest, IdentityReportsNameCapabilitiesAndProbesTheMetanode) {
  v1::GetPluginInfoResponse info;
  ASSERT_TRUE(Call(*identity_, &v1::Identity::Stub::GetPluginInfo, {}, &info).ok());
  EXPECT_EQ(info.name(), "csi.granary.io");
  EXPECT_FALSE(info.vendor_version().empty());

  v1::GetPluginCapabilitiesResponse caps;
  ASSERT_TRUE(Call(*identity_, &v1::Identity::Stub::GetPluginCapabilities, {}, &caps).ok());
  std::set<int> services;
  bool online = false;
  for (const auto& c : caps.capabilities()) {
    if (c.has_service()) services.insert(c.service().type());
    if (c.has_volume_expansion()) {
      online = c.volume_expansion().type() == v1::PluginCapability::VolumeExpansion::ONLINE;
    }
  }
  EXPECT_TRUE(services.count(v1::PluginCapability::Service::CONTROLLER_SERVICE));
  EXPECT_TRUE(services.count(v1::PluginCapability::Service::VOLUME_ACCESSIBILITY_CONSTRAINTS));
  EXPECT_TRUE(online);

  v1::ProbeResponse probe;
  ASSERT_TRUE(Call(*identity_, &v1::Identity::Stub::Probe, {}, &probe).ok());
  EXPECT_TRUE(probe.ready().value());
}

// CSI spec: a plugin that is alive but cannot serve yet answers ready=false. An error instead
// makes csi-provisioner and csi-resizer exit, and the controller pod crash-looped until the
// metanode came up.
TEST_F(CsiTest, ProbeAnswersNotReadyWithoutAnErrorWhileTheMetanodeIsDown) {
  auto probe = [&](v1::ProbeResponse* reply) {
    return Call(*identity_, &v1::Identity::Stub::Probe, {}, reply);
  };
  cluster_->KillMetanode();
  v1::ProbeResponse reply;
  auto st = probe(&reply);
  ASSERT_TRUE(st.ok()) << st.error_code() << " " << st.error_message();
  ASSERT_TRUE(reply.has_ready());
  EXPECT_FALSE(reply.ready().value());

  // A plugin started while the metanode is down comes up and answers the same.
  plugin_.reset();
  StartPlugin();
  reply.Clear();
  st = probe(&reply);
  ASSERT_TRUE(st.ok()) << st.error_code() << " " << st.error_message();
  ASSERT_TRUE(reply.has_ready());
  EXPECT_FALSE(reply.ready().value());

  cluster_->RestartMetanode();
  EXPECT_TRUE(WaitUntil([&] {
    v1::ProbeResponse p;
    return probe(&p).ok() && p.ready().value();
  }));
}

// What a node keeps per volume (stage record, mount log, control socket) never outlives it: a
// deleted volume's files go, and a restarted node plugin drops files no stage record explains
// (a plugin killed while it unstaged).
TEST_F(CsiTest, NoPerVolumeFileOutlivesItsVolume) {
  std::filesystem::create_directories(path("state"));
  std::ofstream(path("state/pvc-gone.log")) << "an earlier stage\n";
  std::ofstream(path("state/pvc-orphan.log")) << "an earlier stage\n";
  std::ofstream(path("state/pvc-orphan.sock")) << "";
  v1::CreateVolumeResponse created;
  ASSERT_TRUE(Create(CreateReq("pvc-gone"), &created).ok());
  v1::DeleteVolumeRequest dreq;
  v1::DeleteVolumeResponse drep;
  dreq.set_volume_id("pvc-gone");
  ASSERT_TRUE(Call(*controller_, &v1::Controller::Stub::DeleteVolume, dreq, &drep).ok());
  EXPECT_FALSE(std::filesystem::exists(path("state/pvc-gone.log")));
  EXPECT_TRUE(std::filesystem::exists(path("state/pvc-orphan.log")));

  plugin_.reset();
  StartPlugin();
  EXPECT_FALSE(std::filesystem::exists(path("state/pvc-orphan.log")));
  EXPECT_FALSE(std::filesystem::exists(path("state/pvc-orphan.sock")));
}

TEST_F(CsiTest, EveryMissingOrInvalidArgumentHasItsCode) {
  v1::CreateVolumeResponse created;
  auto create = [&](v1::CreateVolumeRequest r) { return Create(r, &created).error_code(); };
  auto req = CreateReq("pvc-bad");
  req.clear_name();
  EXPECT_EQ(create(req), StatusCode::INVALID_ARGUMENT) << "missing name";
  req = CreateReq("pvc-bad");
  req.clear_volume_capabilities();
  EXPECT_EQ(create(req), StatusCode::INVALID_ARGUMENT) << "missing capabilities";
  req = CreateReq("pvc-bad");
  req.mutable_volume_capabilities(0)->mutable_block();
  EXPECT_EQ(create(req), StatusCode::INVALID_ARGUMENT) << "block";
  req = CreateReq("pvc-bad");
  req.mutable_volume_capabilities(0)->clear_access_mode();
  EXPECT_EQ(create(req), StatusCode::INVALID_ARGUMENT) << "missing access mode";
  req = CreateReq("pvc-bad");
  req.mutable_volume_capabilities(0)->mutable_access_mode()->set_mode(
      Mode::MULTI_NODE_SINGLE_WRITER);
  EXPECT_EQ(create(req), StatusCode::INVALID_ARGUMENT) << "unsupported mode";
  req = CreateReq("pvc-bad");
  req.mutable_volume_capabilities(0)->mutable_mount()->set_fs_type("ext4");
  EXPECT_EQ(create(req), StatusCode::INVALID_ARGUMENT) << "fs_type";
  req = CreateReq("pvc-bad");
  req.mutable_volume_content_source()->mutable_snapshot()->set_snapshot_id("pvc-x@snap-1");
  EXPECT_EQ(create(req), StatusCode::NOT_FOUND) << "a content source that does not exist";
  req = CreateReq("pvc-bad");
  req.mutable_volume_content_source();
  EXPECT_EQ(create(req), StatusCode::INVALID_ARGUMENT) << "an empty content source";
  req = CreateReq("pvc-bad");
  req.mutable_capacity_range()->set_required_bytes(2 << 20);
  req.mutable_capacity_range()->set_limit_bytes(1 << 20);
  EXPECT_EQ(create(req), StatusCode::OUT_OF_RANGE) << "required > limit";
  req = CreateReq("pvc-bad");
  req.mutable_capacity_range()->set_required_bytes(-1);
  EXPECT_EQ(create(req), StatusCode::INVALID_ARGUMENT) << "negative";
  req = CreateReq("pvc-bad");
  (*req.mutable_parameters())["colour"] = "blue";
  EXPECT_EQ(create(req), StatusCode::INVALID_ARGUMENT) << "unknown parameter";
  req = CreateReq("pvc-bad");
  (*req.mutable_parameters())["pool"] = "no-such-pool";
  EXPECT_EQ(create(req), StatusCode::INVALID_ARGUMENT) << "unknown pool";
  req = CreateReq("pvc-bad");
  (*req.mutable_parameters())["locality"] = "planet";
  EXPECT_EQ(create(req), StatusCode::INVALID_ARGUMENT) << "locality";

  v1::DeleteVolumeResponse deleted;
  EXPECT_EQ(Call(*controller_, &v1::Controller::Stub::DeleteVolume, {}, &deleted).error_code(),
            StatusCode::INVALID_ARGUMENT);

  v1::ValidateVolumeCapabilitiesRequest vreq;
  v1::ValidateVolumeCapabilitiesResponse vrep;
  *vreq.add_volume_capabilities() = MountCap();
  EXPECT_EQ(Call(*controller_, &v1::Controller::Stub::ValidateVolumeCapabilities, vreq, &vrep)
                .error_code(),
            StatusCode::INVALID_ARGUMENT)
      << "missing volume_id";
  vreq.set_volume_id("pvc-none");
  EXPECT_EQ(Call(*controller_, &v1::Controller::Stub::ValidateVolumeCapabilities, vreq, &vrep)
                .error_code(),
            StatusCode::NOT_FOUND);
  vreq.clear_volume_capabilities();
  EXPECT_EQ(Call(*controller_, &v1::Controller::Stub::ValidateVolumeCapabilities, vreq, &vrep)
                .error_code(),
            StatusCode::INVALID_ARGUMENT)
      << "missing capabilities";

  v1::ListVolumesRequest lreq;
  v1::ListVolumesResponse lrep;
  lreq.set_starting_token("garbage");
  EXPECT_EQ(Call(*controller_, &v1::Controller::Stub::ListVolumes, lreq, &lrep).error_code(),
            StatusCode::ABORTED);
  lreq.clear_starting_token();
  lreq.set_max_entries(-1);
  EXPECT_EQ(Call(*controller_, &v1::Controller::Stub::ListVolumes, lreq, &lrep).error_code(),
            StatusCode::INVALID_ARGUMENT);

  v1::GetCapacityRequest creq;
  v1::GetCapacityResponse crep;
  (*creq.mutable_parameters())["pool"] = "no-such-pool";
  EXPECT_EQ(Call(*controller_, &v1::Controller::Stub::GetCapacity, creq, &crep).error_code(),
            StatusCode::INVALID_ARGUMENT);

  v1::ControllerExpandVolumeRequest ereq;
  v1::ControllerExpandVolumeResponse erep;
  ereq.mutable_capacity_range()->set_required_bytes(1 << 20);
  EXPECT_EQ(
      Call(*controller_, &v1::Controller::Stub::ControllerExpandVolume, ereq, &erep).error_code(),
      StatusCode::INVALID_ARGUMENT)
      << "missing volume_id";
  ereq.set_volume_id("pvc-none");
  EXPECT_EQ(
      Call(*controller_, &v1::Controller::Stub::ControllerExpandVolume, ereq, &erep).error_code(),
      StatusCode::NOT_FOUND);
  ereq.clear_capacity_range();
  EXPECT_EQ(
      Call(*controller_, &v1::Controller::Stub::ControllerExpandVolume, ereq, &erep).error_code(),
      StatusCode::INVALID_ARGUMENT)
      << "missing capacity_range";

  // Node calls.
  EXPECT_EQ(Stage("", path("s")).error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Stage("default", "").error_code(), StatusCode::INVALID_ARGUMENT);
  {
    v1::NodeStageVolumeRequest r;
    r.set_volume_id("default");
    r.set_staging_target_path(path("s"));
    v1::NodeStageVolumeResponse rep;
    EXPECT_EQ(Call(*node_, &v1::Node::Stub::NodeStageVolume, r, &rep).error_code(),
              StatusCode::INVALID_ARGUMENT)
        << "missing capability";
    *r.mutable_volume_capability() = MountCap();
    r.mutable_volume_capability()->mutable_block();
    EXPECT_EQ(Call(*node_, &v1::Node::Stub::NodeStageVolume, r, &rep).error_code(),
              StatusCode::INVALID_ARGUMENT)
        << "block";
  }
  EXPECT_EQ(Stage("pvc-none", path("s")).error_code(), StatusCode::NOT_FOUND);
  EXPECT_EQ(Publish("", path("s"), path("t")).error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Publish("default", "", path("t")).error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Publish("default", path("s"), "").error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Publish("default", path("s"), path("t")).error_code(), StatusCode::FAILED_PRECONDITION)
      << "not staged";
  EXPECT_EQ(Unpublish("", path("t")).error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Unpublish("default", "").error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(Unpublish("default", path("never-published")).ok()) << "missing target is success";
  EXPECT_EQ(Unstage("", path("s")).error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Unstage("default", "").error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(Unstage("default", path("never-staged")).ok()) << "missing staging is success";

  v1::NodeGetVolumeStatsRequest sreq;
  v1::NodeGetVolumeStatsResponse srep;
  sreq.set_volume_path(path("t"));
  EXPECT_EQ(Call(*node_, &v1::Node::Stub::NodeGetVolumeStats, sreq, &srep).error_code(),
            StatusCode::INVALID_ARGUMENT);
  sreq.set_volume_id("default");
  sreq.clear_volume_path();
  EXPECT_EQ(Call(*node_, &v1::Node::Stub::NodeGetVolumeStats, sreq, &srep).error_code(),
            StatusCode::INVALID_ARGUMENT);
  sreq.set_volume_path(path("no-such-path"));
  EXPECT_EQ(Call(*node_, &v1::Node::Stub::NodeGetVolumeStats, sreq, &srep).error_code(),
            StatusCode::NOT_FOUND);

  v1::NodeExpandVolumeRequest nreq;
  v1::NodeExpandVolumeResponse nrep;
  nreq.set_volume_path(path("t"));
  EXPECT_EQ(Call(*node_, &v1::Node::Stub::NodeExpandVolume, nreq, &nrep).error_code(),
            StatusCode::INVALID_ARGUMENT);
  nreq.set_volume_id("default");
  nreq.clear_volume_path();
  EXPECT_EQ(Call(*node_, &v1::Node::Stub::NodeExpandVolume, nreq, &nrep).error_code(),
            StatusCode::INVALID_ARGUMENT);
  nreq.set_volume_path(path("no-such-path"));
  EXPECT_EQ(Call(*node_, &v1::Node::Stub::NodeExpandVolume, nreq, &nrep).error_code(),
            StatusCode::NOT_FOUND);
}

TEST_F(CsiTest, ControllerIsIdempotentPagesAndExpands) {
  constexpr int64_t kGiB = 1ll << 30;
  v1::CreateVolumeResponse a, again;
  ASSERT_TRUE(Create(CreateReq("pvc-a", kGiB), &a).ok());
  EXPECT_EQ(a.volume().volume_id(), "pvc-a");
  EXPECT_EQ(a.volume().capacity_bytes(), kGiB);
  ASSERT_TRUE(Create(CreateReq("pvc-a", kGiB), &again).ok()) << "same name, same request";
  EXPECT_EQ(again.volume().volume_id(), "pvc-a");
  EXPECT_EQ(again.volume().capacity_bytes(), kGiB);
  {
    auto wider = CreateReq("pvc-a", kGiB / 2);
    wider.mutable_capacity_range()->set_limit_bytes(2 * kGiB);
    ASSERT_TRUE(Create(wider, &again).ok()) << "a range the volume satisfies is compatible";
  }
  EXPECT_EQ(Create(CreateReq("pvc-a", 2 * kGiB), &again).error_code(), StatusCode::ALREADY_EXISTS);

  // The quota is the capacity: the metanode holds it.
  auto meta = client::MetaClient::Connect({cluster_->meta_address()});
  ASSERT_TRUE(meta.ok());
  auto vol = (*meta)->VolumeGet("pvc-a");
  ASSERT_TRUE(vol.ok());
  EXPECT_EQ(vol->quota_bytes(), static_cast<uint64_t>(kGiB));

  // Topology: a multi-node volume is accessible from every zone the CO requires; a single-node
  // volume with zone locality is pinned to the preferred zone.
  {
    auto rwx = CreateReq("pvc-rwx");
    *rwx.mutable_volume_capabilities(0) = MountCap(Mode::MULTI_NODE_MULTI_WRITER);
    (*rwx.mutable_parameters())["locality"] = "zone";
    for (const char* z : {"z1", "z2"}) {
      (*rwx.mutable_accessibility_requirements()
            ->add_requisite()
            ->mutable_segments())["topology.granary.io/zone"] = z;
    }
    *rwx.mutable_accessibility_requirements()->add_preferred() =
        rwx.accessibility_requirements().requisite(1);
    v1::CreateVolumeResponse r;
    ASSERT_TRUE(Create(rwx, &r).ok());
    EXPECT_EQ(r.volume().accessible_topology_size(), 2);
    auto rwo = rwx;
    rwo.set_name("pvc-rwo");
    *rwo.mutable_volume_capabilities(0) = MountCap(Mode::SINGLE_NODE_WRITER);
    ASSERT_TRUE(Create(rwo, &r).ok());
    ASSERT_EQ(r.volume().accessible_topology_size(), 1);
    EXPECT_EQ(r.volume().accessible_topology(0).segments().at("topology.granary.io/zone"), "z2");
  }

  // Validate.
  v1::ValidateVolumeCapabilitiesRequest vreq;
  v1::ValidateVolumeCapabilitiesResponse vrep;
  vreq.set_volume_id("pvc-a");
  *vreq.add_volume_capabilities() = MountCap(Mode::MULTI_NODE_READER_ONLY);
  ASSERT_TRUE(
      Call(*controller_, &v1::Controller::Stub::ValidateVolumeCapabilities, vreq, &vrep).ok());
  EXPECT_TRUE(vrep.has_confirmed());
  vreq.mutable_volume_capabilities(0)->mutable_block();
  ASSERT_TRUE(
      Call(*controller_, &v1::Controller::Stub::ValidateVolumeCapabilities, vreq, &vrep).ok());
  EXPECT_FALSE(vrep.has_confirmed());
  EXPECT_FALSE(vrep.message().empty());

  // Paging: every volume exactly once, in pages of two.
  for (const char* n : {"pvc-p1", "pvc-p2", "pvc-p3"}) {
    v1::CreateVolumeResponse r;
    ASSERT_TRUE(Create(CreateReq(n), &r).ok());
  }
  std::vector<std::string> seen;
  std::string token;
  int pages = 0;
  do {
    v1::ListVolumesRequest lreq;
    v1::ListVolumesResponse lrep;
    lreq.set_max_entries(2);
    lreq.set_starting_token(token);
    ASSERT_TRUE(Call(*controller_, &v1::Controller::Stub::ListVolumes, lreq, &lrep).ok());
    EXPECT_LE(lrep.entries_size(), 2);
    for (const auto& e : lrep.entries()) seen.push_back(e.volume().volume_id());
    token = lrep.next_token();
    ASSERT_LT(++pages, 10);
  } while (!token.empty());
  std::vector<std::string> want = {"default", "pvc-a",   "pvc-p1", "pvc-p2",
                                   "pvc-p3",  "pvc-rwo", "pvc-rwx"};
  EXPECT_EQ(seen, want);
  EXPECT_EQ(pages, 4);

  // Capacity: free space of the up datanodes, none in a zone without datanodes.
  v1::GetCapacityRequest creq;
  v1::GetCapacityResponse crep;
  ASSERT_TRUE(Call(*controller_, &v1::Controller::Stub::GetCapacity, creq, &crep).ok());
  EXPECT_GT(crep.available_capacity(), 0);
  (*creq.mutable_accessible_topology()->mutable_segments())["topology.granary.io/zone"] = "mars";
  ASSERT_TRUE(Call(*controller_, &v1::Controller::Stub::GetCapacity, creq, &crep).ok());
  EXPECT_EQ(crep.available_capacity(), 0);

  v1::ControllerGetCapabilitiesResponse ccaps;
  ASSERT_TRUE(
      Call(*controller_, &v1::Controller::Stub::ControllerGetCapabilities, {}, &ccaps).ok());
  std::set<int> rpcs;
  for (const auto& c : ccaps.capabilities()) rpcs.insert(c.rpc().type());
  using T = v1::ControllerServiceCapability::RPC;
  for (auto t : {T::CREATE_DELETE_VOLUME, T::LIST_VOLUMES, T::GET_CAPACITY, T::EXPAND_VOLUME,
                 T::CREATE_DELETE_SNAPSHOT, T::LIST_SNAPSHOTS, T::CLONE_VOLUME}) {
    EXPECT_TRUE(rpcs.count(t)) << T::Type_Name(t);
  }

  // Expansion raises the quota, never lowers it.
  v1::ControllerExpandVolumeRequest ereq;
  v1::ControllerExpandVolumeResponse erep;
  ereq.set_volume_id("pvc-a");
  ereq.mutable_capacity_range()->set_required_bytes(3 * kGiB);
  ASSERT_TRUE(Call(*controller_, &v1::Controller::Stub::ControllerExpandVolume, ereq, &erep).ok());
  EXPECT_EQ(erep.capacity_bytes(), 3 * kGiB);
  EXPECT_FALSE(erep.node_expansion_required());
  EXPECT_EQ((*meta)->VolumeGet("pvc-a")->quota_bytes(), static_cast<uint64_t>(3 * kGiB));
  ereq.mutable_capacity_range()->set_required_bytes(kGiB);
  ASSERT_TRUE(Call(*controller_, &v1::Controller::Stub::ControllerExpandVolume, ereq, &erep).ok());
  EXPECT_EQ(erep.capacity_bytes(), 3 * kGiB);

  // Delete is idempotent.
  v1::DeleteVolumeRequest dreq;
  v1::DeleteVolumeResponse drep;
  dreq.set_volume_id("pvc-a");
  EXPECT_TRUE(Call(*controller_, &v1::Controller::Stub::DeleteVolume, dreq, &drep).ok());
  EXPECT_TRUE(Call(*controller_, &v1::Controller::Stub::DeleteVolume, dreq, &drep).ok());
  EXPECT_EQ((*meta)->VolumeGet("pvc-a").status().code(), Code::NOT_FOUND);
}

TEST_F(CsiTest, NodeReportsItsTopologyAndCapabilities) {
  v1::NodeGetInfoResponse info;
  ASSERT_TRUE(Call(*node_, &v1::Node::Stub::NodeGetInfo, {}, &info).ok());
  EXPECT_EQ(info.node_id(), "node-1");
  const auto& seg = info.accessible_topology().segments();
  EXPECT_EQ(seg.at("topology.granary.io/zone"), "z1");
  EXPECT_EQ(seg.at("topology.granary.io/rack"), "r1");
  EXPECT_EQ(seg.at("topology.granary.io/host"), "h1");
  EXPECT_EQ(seg.at("topology.granary.io/gpu"), "a100");

  v1::NodeGetCapabilitiesResponse caps;
  ASSERT_TRUE(Call(*node_, &v1::Node::Stub::NodeGetCapabilities, {}, &caps).ok());
  std::set<int> rpcs;
  for (const auto& c : caps.capabilities()) rpcs.insert(c.rpc().type());
  using T = v1::NodeServiceCapability::RPC;
  for (auto t :
       {T::STAGE_UNSTAGE_VOLUME, T::GET_VOLUME_STATS, T::EXPAND_VOLUME, T::VOLUME_CONDITION}) {
    EXPECT_TRUE(rpcs.count(t)) << T::Type_Name(t);
  }
}

}  // namespace
}  // namespace granary::testing
