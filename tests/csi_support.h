// A CSI plugin process on a unix socket next to a LocalCluster, and a typed client of its three
// services. Every mount under the fixture's temp dir and every mount daemon serving one is
// removed on the way out, even when the test failed.
#pragma once

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "csi/mounts.h"
#include "csi/v1/csi.grpc.pb.h"
#include "tests/harness/cluster.h"

namespace granary::testing {

namespace v1 = ::csi::v1;

inline v1::VolumeCapability MountCap(v1::VolumeCapability::AccessMode::Mode mode =
                                         v1::VolumeCapability::AccessMode::SINGLE_NODE_WRITER) {
  v1::VolumeCapability cap;
  cap.mutable_mount();
  cap.mutable_access_mode()->set_mode(mode);
  return cap;
}

class CsiFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    ClusterOptions o;
    o.datanodes = 3;
    cluster_ = std::make_unique<LocalCluster>(o);
    cluster_->Start();
    StartPlugin();
  }

  void TearDown() override {
    plugin_.reset();
    CleanMounts();
  }

  // Lazy-unmounts everything under the temp dir (deepest first) and stops its mount daemons.
  void CleanMounts() {
    std::string prefix = dir_.str() + "/";
    std::vector<std::string> points;
    for (const auto& m : csi::ReadMountTable()) {
      if (m.mountpoint.rfind(prefix, 0) == 0) points.push_back(m.mountpoint);
    }
    std::sort(points.begin(), points.end(), [](auto& a, auto& b) { return a.size() > b.size(); });
    for (const auto& p : points) {
      if (auto pid = csi::FindMountDaemon(p)) kill(*pid, SIGKILL);
      (void)csi::Unmount(p);
    }
  }

  void StartPlugin() {
    plugin_ = std::make_unique<Process>(std::vector<std::string>{
        GranaryBinary(), "csi", "--endpoint", "unix://" + socket(), "--node-id", "node-1", "--meta",
        cluster_->meta_address(), "--mode", "all", "--labels", "zone=z1,rack=r1,host=h1,gpu=a100",
        "--state-dir", dir_.str() + "/state",
        // A command-prefix launcher (as systemd-run --scope is in a cluster): env execs what
        // follows, so the staging path is the prefix one without needing systemd here.
        "--mount-launcher", "/usr/bin/env"});
    if (!plugin_->WaitForLine("serving csi.granary.io", seconds(30))) {
      throw std::runtime_error("csi plugin did not start:\n" + plugin_->Output());
    }
    auto channel = grpc::CreateChannel("unix://" + socket(), grpc::InsecureChannelCredentials());
    identity_ = v1::Identity::NewStub(channel);
    controller_ = v1::Controller::NewStub(channel);
    node_ = v1::Node::NewStub(channel);
  }

  std::string socket() const { return dir_.str() + "/csi.sock"; }
  std::string path(const std::string& rel) const { return dir_.str() + "/" + rel; }

  template <typename Stub, typename Req, typename Reply>
  grpc::Status Call(Stub& stub,
                    grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Reply*),
                    const Req& req, Reply* reply) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
    return (stub.*method)(&ctx, req, reply);
  }

  grpc::Status Create(const v1::CreateVolumeRequest& req, v1::CreateVolumeResponse* reply) {
    return Call(*controller_, &v1::Controller::Stub::CreateVolume, req, reply);
  }

  v1::CreateVolumeRequest CreateReq(const std::string& name, int64_t bytes = 0) {
    v1::CreateVolumeRequest req;
    req.set_name(name);
    *req.add_volume_capabilities() = MountCap();
    if (bytes) req.mutable_capacity_range()->set_required_bytes(bytes);
    return req;
  }

  grpc::Status Stage(const std::string& vol, const std::string& staging) {
    v1::NodeStageVolumeRequest req;
    req.set_volume_id(vol);
    req.set_staging_target_path(staging);
    *req.mutable_volume_capability() =
        MountCap(v1::VolumeCapability::AccessMode::MULTI_NODE_MULTI_WRITER);
    v1::NodeStageVolumeResponse reply;
    return Call(*node_, &v1::Node::Stub::NodeStageVolume, req, &reply);
  }
  grpc::Status Unstage(const std::string& vol, const std::string& staging) {
    v1::NodeUnstageVolumeRequest req;
    req.set_volume_id(vol);
    req.set_staging_target_path(staging);
    v1::NodeUnstageVolumeResponse reply;
    return Call(*node_, &v1::Node::Stub::NodeUnstageVolume, req, &reply);
  }
  grpc::Status Publish(const std::string& vol, const std::string& staging,
                       const std::string& target, bool readonly = false) {
    v1::NodePublishVolumeRequest req;
    req.set_volume_id(vol);
    req.set_staging_target_path(staging);
    req.set_target_path(target);
    req.set_readonly(readonly);
    *req.mutable_volume_capability() =
        MountCap(v1::VolumeCapability::AccessMode::MULTI_NODE_MULTI_WRITER);
    v1::NodePublishVolumeResponse reply;
    return Call(*node_, &v1::Node::Stub::NodePublishVolume, req, &reply);
  }
  grpc::Status Unpublish(const std::string& vol, const std::string& target) {
    v1::NodeUnpublishVolumeRequest req;
    req.set_volume_id(vol);
    req.set_target_path(target);
    v1::NodeUnpublishVolumeResponse reply;
    return Call(*node_, &v1::Node::Stub::NodeUnpublishVolume, req, &reply);
  }

  TempDir dir_;
  std::unique_ptr<LocalCluster> cluster_;
  std::unique_ptr<Process> plugin_;
  std::unique_ptr<v1::Identity::Stub> identity_;
  std::unique_ptr<v1::Controller::Stub> controller_;
  std::unique_ptr<v1::Node::Stub> node_;
};

}  // namespace granary::testing
