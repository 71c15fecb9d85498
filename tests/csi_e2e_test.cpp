// The CSI node path for real: a staged `granary mount`, bind mounts into two "pods", writes
// through one and reads through the other, quota and expansion, a node plugin SIGKILLed
// while a reader streams from a published volume, and the mount's serving process SIGKILLed
// under a published volume (its supervisor replaces it; the pod notices nothing).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "client/meta_client.h"
#include "tests/csi_support.h"

namespace granary::testing {
namespace {

using Mode = v1::VolumeCapability::AccessMode;
using grpc::StatusCode;

std::string ReadAll(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Writes `bytes` in 1 MiB writes; returns 0 or the first errno of write/fsync/close.
int WriteFile(const std::string& p, size_t bytes) {
  int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return errno;
  std::string chunk(1 << 20, 'q');
  int err = 0;
  for (size_t done = 0; done < bytes && err == 0; done += chunk.size()) {
    if (::write(fd, chunk.data(), std::min(chunk.size(), bytes - done)) < 0) err = errno;
  }
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  return err;
}

class CsiE2eTest : public CsiFixture {
 protected:
  v1::NodeGetVolumeStatsResponse Stats(const std::string& vol, const std::string& p) {
    v1::NodeGetVolumeStatsRequest req;
    req.set_volume_id(vol);
    req.set_volume_path(p);
    v1::NodeGetVolumeStatsResponse rep;
    auto st = Call(*node_, &v1::Node::Stub::NodeGetVolumeStats, req, &rep);
    EXPECT_TRUE(st.ok()) << st.error_message();
    return rep;
  }
};

TEST_F(CsiE2eTest, CreateStagePublishTwoPodsWriteReadExpandQuotaAndTearDown) {
  constexpr int64_t kMiB = 1 << 20;
  auto req = CreateReq("pvc-e2e", 8 * kMiB);
  *req.mutable_volume_capabilities(0) = MountCap(Mode::MULTI_NODE_MULTI_WRITER);
  v1::CreateVolumeResponse created;
  ASSERT_TRUE(Create(req, &created).ok());
  const std::string vol = created.volume().volume_id();
  const std::string staging = path("plugins/staging/pvc-e2e");
  const std::string pod_a = path("pods/a/volume");
  const std::string pod_b = path("pods/b/volume");
  const std::string pod_ro = path("pods/ro/volume");

  ASSERT_TRUE(Stage(vol, staging).ok());
  ASSERT_TRUE(Stage(vol, staging).ok()) << "stage is idempotent";
  EXPECT_TRUE(csi::FindMountDaemon(staging).has_value());
  ASSERT_TRUE(Publish(vol, staging, pod_a).ok());
  ASSERT_TRUE(Publish(vol, staging, pod_a).ok()) << "publish is idempotent";
  ASSERT_TRUE(Publish(vol, staging, pod_b).ok());
  ASSERT_TRUE(Publish(vol, staging, pod_ro, /*readonly=*/true).ok());
  EXPECT_EQ(Publish(vol, staging, pod_ro, /*readonly=*/false).error_code(),
            StatusCode::ALREADY_EXISTS)
      << "same target, other mode";

  // A different volume on a target already in use.
  v1::CreateVolumeResponse other;
  ASSERT_TRUE(Create(CreateReq("pvc-other"), &other).ok());
  const std::string other_staging = path("plugins/staging/pvc-other");
  ASSERT_TRUE(Stage("pvc-other", other_staging).ok());
  EXPECT_EQ(Publish("pvc-other", other_staging, pod_a).error_code(), StatusCode::ALREADY_EXISTS);
  ASSERT_TRUE(Unstage("pvc-other", other_staging).ok());

  // Write through pod a, read through pod b (close-to-open across the shared mount).
  {
    std::ofstream out(pod_a + "/hello.txt");
    out << "written by pod a";
  }
  EXPECT_EQ(ReadAll(pod_b + "/hello.txt"), "written by pod a");
  EXPECT_EQ(ReadAll(pod_ro + "/hello.txt"), "written by pod a");
  EXPECT_EQ(::open((pod_ro + "/nope").c_str(), O_WRONLY | O_CREAT, 0644), -1);
  EXPECT_EQ(errno, EROFS);

  ASSERT_EQ(WriteFile(pod_a + "/two-mib", 2 * kMiB), 0);
  std::filesystem::create_directories(pod_b + "/ckpt/step-1");  // DeleteVolume empties trees
  ASSERT_EQ(WriteFile(pod_b + "/ckpt/step-1/shard-0", 4096), 0);
  auto stats = Stats(vol, pod_b);
  EXPECT_FALSE(stats.volume_condition().abnormal());
  ASSERT_EQ(stats.usage_size(), 2);
  EXPECT_EQ(stats.usage(0).unit(), v1::VolumeUsage::BYTES);
  EXPECT_EQ(stats.usage(0).total(), 8 * kMiB) << "the quota is the size";
  EXPECT_GE(stats.usage(0).used(), 2 * kMiB);
  EXPECT_EQ(stats.usage(1).unit(), v1::VolumeUsage::INODES);
  EXPECT_GE(stats.usage(1).used(), 2);

  // A sub-path published on its own: only that directory is visible.
  {
    v1::NodePublishVolumeRequest sub;
    sub.set_volume_id(vol);
    sub.set_staging_target_path(staging);
    sub.set_target_path(path("pods/sub/volume"));
    *sub.mutable_volume_capability() = MountCap(Mode::MULTI_NODE_MULTI_WRITER);
    (*sub.mutable_volume_context())["subdir"] = "ckpt/step-1";
    v1::NodePublishVolumeResponse rep;
    ASSERT_TRUE(Call(*node_, &v1::Node::Stub::NodePublishVolume, sub, &rep).ok());
    ASSERT_TRUE(Call(*node_, &v1::Node::Stub::NodePublishVolume, sub, &rep).ok());
    EXPECT_TRUE(std::filesystem::exists(path("pods/sub/volume/shard-0")));
    EXPECT_FALSE(std::filesystem::exists(path("pods/sub/volume/hello.txt")));
    (*sub.mutable_volume_context())["subdir"] = "ckpt";
    EXPECT_EQ(Call(*node_, &v1::Node::Stub::NodePublishVolume, sub, &rep).error_code(),
              StatusCode::ALREADY_EXISTS)
        << "another sub-path on the same target";
    sub.set_target_path(path("pods/sub2/volume"));
    (*sub.mutable_volume_context())["subdir"] = "../escape";
    EXPECT_EQ(Call(*node_, &v1::Node::Stub::NodePublishVolume, sub, &rep).error_code(),
              StatusCode::INVALID_ARGUMENT);
    (*sub.mutable_volume_context())["subdir"] = "no/such/dir";
    EXPECT_EQ(Call(*node_, &v1::Node::Stub::NodePublishVolume, sub, &rep).error_code(),
              StatusCode::NOT_FOUND);
    ASSERT_TRUE(Unpublish(vol, path("pods/sub/volume")).ok());
  }

  // Quota enforced: 8 MiB does not fit next to 2 MiB.
  EXPECT_EQ(WriteFile(pod_a + "/too-big", 8 * kMiB), EDQUOT);
  ::unlink((pod_a + "/too-big").c_str());

  // Expand online: controller raises the quota, node reports it, the file now fits.
  v1::ControllerExpandVolumeRequest ereq;
  v1::ControllerExpandVolumeResponse erep;
  ereq.set_volume_id(vol);
  ereq.mutable_capacity_range()->set_required_bytes(32 * kMiB);
  ASSERT_TRUE(Call(*controller_, &v1::Controller::Stub::ControllerExpandVolume, ereq, &erep).ok());
  v1::NodeExpandVolumeRequest nreq;
  v1::NodeExpandVolumeResponse nrep;
  nreq.set_volume_id(vol);
  nreq.set_volume_path(pod_a);
  ASSERT_TRUE(Call(*node_, &v1::Node::Stub::NodeExpandVolume, nreq, &nrep).ok());
  EXPECT_EQ(nrep.capacity_bytes(), 32 * kMiB);
  EXPECT_TRUE(WaitUntil([&] { return Stats(vol, pod_a).usage(0).total() == 32 * kMiB; }));
  EXPECT_EQ(WriteFile(pod_a + "/fits-now", 8 * kMiB), 0);

  // Tear down, each step twice (idempotent).
  for (const auto& t : {pod_a, pod_b, pod_ro}) {
    ASSERT_TRUE(Unpublish(vol, t).ok());
    ASSERT_TRUE(Unpublish(vol, t).ok());
    EXPECT_FALSE(csi::FindMount(t).has_value());
  }
  // The volume's files on the node (stage record, mount log, control socket) go with it.
  auto volume_files = [&] {
    std::vector<std::string> found;
    for (const auto& e : std::filesystem::directory_iterator(path("state")))
      if (e.path().filename().string().rfind(vol + ".", 0) == 0) found.push_back(e.path().string());
    return found;
  };
  EXPECT_TRUE(std::filesystem::exists(path("state/" + vol + ".log"))) << "the mount logs there";
  ASSERT_TRUE(Unstage(vol, staging).ok());
  ASSERT_TRUE(Unstage(vol, staging).ok());
  EXPECT_FALSE(csi::FindMount(staging).has_value());
  EXPECT_FALSE(csi::FindMountDaemon(staging).has_value()) << "the mount daemon stopped";
  EXPECT_EQ(volume_files(), std::vector<std::string>{}) << "left on the node after unstage";

  v1::DeleteVolumeRequest dreq;
  v1::DeleteVolumeResponse drep;
  dreq.set_volume_id(vol);
  auto deleted = Call(*controller_, &v1::Controller::Stub::DeleteVolume, dreq, &drep);
  ASSERT_TRUE(deleted.ok()) << deleted.error_code() << " " << deleted.error_message();
  auto meta = client::MetaClient::Connect({cluster_->meta_address()});
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ((*meta)->VolumeGet(vol).status().code(), Code::NOT_FOUND);
  EXPECT_EQ(volume_files(), std::vector<std::string>{}) << "left on the node after delete";
}

TEST_F(CsiE2eTest, NodePluginKilledWhileAReaderStreamsDisturbsNothing) {
  v1::CreateVolumeResponse created;
  ASSERT_TRUE(Create(CreateReq("pvc-kill"), &created).ok());
  const std::string staging = path("plugins/staging/pvc-kill");
  const std::string pod = path("pods/reader/volume");
  ASSERT_TRUE(Stage("pvc-kill", staging).ok());
  ASSERT_TRUE(Publish("pvc-kill", staging, pod).ok());
  ASSERT_EQ(WriteFile(pod + "/data", 4 << 20), 0);
  std::string want = ReadAll(pod + "/data");
  ASSERT_EQ(want.size(), 4u << 20);

  std::atomic<bool> stop{false};
  std::atomic<int> reads{0}, failures{0};
  std::thread reader([&] {
    std::string buf(1 << 20, '\0');
    while (!stop) {
      int fd = ::open((pod + "/data").c_str(), O_RDONLY);
      if (fd < 0) {
        ++failures;
        continue;
      }
      size_t total = 0;
      ssize_t n;
      while ((n = ::read(fd, buf.data(), buf.size())) > 0) total += static_cast<size_t>(n);
      if (n < 0 || total != want.size()) ++failures;
      // Next pass reads from the mount daemon, not the page cache.
      ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
      ::close(fd);
      ++reads;
    }
  });
  EXPECT_TRUE(WaitUntil([&] { return reads > 3; }));
  plugin_->Signal(SIGKILL);
  plugin_->Wait();
  int before = reads;
  EXPECT_TRUE(WaitUntil([&] { return reads > before + 3; })) << "reads go on without the plugin";
  StartPlugin();
  EXPECT_TRUE(
      plugin_->WaitForLine("event=rediscovered volume=pvc-kill .*state=healthy", seconds(5)))
      << plugin_->Output();
  before = reads;
  EXPECT_TRUE(WaitUntil([&] { return reads > before + 3; }));
  stop = true;
  reader.join();
  EXPECT_EQ(failures.load(), 0) << "of " << reads.load() << " reads";

  // The restarted plugin tears down what its predecessor set up.
  ASSERT_TRUE(Unpublish("pvc-kill", pod).ok());
  ASSERT_TRUE(Unstage("pvc-kill", staging).ok());
  EXPECT_FALSE(csi::FindMount(pod).has_value());
  EXPECT_FALSE(csi::FindMount(staging).has_value());
  EXPECT_FALSE(csi::FindMountDaemon(staging).has_value());
}

TEST_F(CsiE2eTest, MountServerKilledUnderAStagedVolumeThePodKeepsReading) {
  v1::CreateVolumeResponse created;
  ASSERT_TRUE(Create(CreateReq("pvc-crash"), &created).ok());
  const std::string staging = path("plugins/staging/pvc-crash");
  const std::string pod = path("pods/crash/volume");
  ASSERT_TRUE(Stage("pvc-crash", staging).ok());
  // Started through the launcher prefix, supervised, with a control socket for upgrades.
  EXPECT_TRUE(plugin_->WaitForLine(
      "event=mount_daemon_spawned pid=\\d+ command=\"/usr/bin/env .* mount .*--supervise --control "
      ".*pvc-crash.sock",
      seconds(5)))
      << plugin_->Output();
  ASSERT_TRUE(Publish("pvc-crash", staging, pod).ok());
  ASSERT_EQ(WriteFile(pod + "/data", 4 << 20), 0);
  const std::string want = ReadAll(pod + "/data");
  ASSERT_EQ(want.size(), 4u << 20);

  std::atomic<bool> stop{false};
  std::atomic<int> reads{0}, failures{0};
  std::thread reader([&] {
    std::string buf(1 << 20, '\0');
    while (!stop) {
      int fd = ::open((pod + "/data").c_str(), O_RDONLY);
      if (fd < 0) {
        ++failures;
        continue;
      }
      std::string got;
      ssize_t n;
      while ((n = ::read(fd, buf.data(), buf.size())) > 0) got.append(buf.data(), n);
      if (n < 0 || got != want) ++failures;
      ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
      ::close(fd);
      ++reads;
    }
  });
  // Joined on every way out: an ASSERT leaving with the thread running would abort the binary.
  struct Joiner {
    std::atomic<bool>& stop;
    std::thread& thread;
    ~Joiner() {
      stop = true;
      if (thread.joinable()) thread.join();
    }
  } joiner{stop, reader};
  EXPECT_TRUE(WaitUntil([&] { return reads > 3; }));
  // Twice: the supervisor's first successor is as replaceable as the original server.
  for (int k = 0; k < 2; ++k) {
    std::optional<pid_t> server;
    ASSERT_TRUE(WaitUntil([&] {
      server = csi::FindMountServer(staging);
      return server.has_value();
    })) << "a mount server serves the staged volume";
    ::kill(*server, SIGKILL);
    EXPECT_TRUE(WaitUntil([&] {
      auto next = csi::FindMountServer(staging);
      return next.has_value() && *next != *server;
    })) << "the supervisor starts a successor";
    int before = reads;
    EXPECT_TRUE(WaitUntil([&] { return reads > before + 3; })) << "reads go on";
    EXPECT_FALSE(Stats("pvc-crash", pod).volume_condition().abnormal());
  }
  stop = true;
  reader.join();
  EXPECT_EQ(failures.load(), 0) << "of " << reads.load() << " reads";

  ASSERT_TRUE(Unpublish("pvc-crash", pod).ok());
  ASSERT_TRUE(Unstage("pvc-crash", staging).ok());
  EXPECT_FALSE(csi::FindMount(staging).has_value());
  EXPECT_FALSE(csi::FindMountDaemon(staging).has_value());
  EXPECT_FALSE(csi::FindMountServer(staging).has_value());
}

TEST_F(CsiE2eTest, BrokenMountIsReportedAbnormalAndRestagedByARestartedPlugin) {
  v1::CreateVolumeResponse created;
  ASSERT_TRUE(Create(CreateReq("pvc-broken"), &created).ok());
  const std::string staging = path("plugins/staging/pvc-broken");
  const std::string pod = path("pods/p/volume");
  ASSERT_TRUE(Stage("pvc-broken", staging).ok());
  ASSERT_TRUE(Publish("pvc-broken", staging, pod).ok());
  ASSERT_EQ(WriteFile(pod + "/kept", 4096), 0);
  EXPECT_FALSE(Stats("pvc-broken", pod).volume_condition().abnormal());

  // The supervisor and its server both (their process group): nothing is left to restart it.
  auto daemon = csi::FindMountDaemon(staging);
  ASSERT_TRUE(daemon.has_value());
  ::kill(-::getpgid(*daemon), SIGKILL);
  EXPECT_TRUE(WaitUntil([&] { return Stats("pvc-broken", pod).volume_condition().abnormal(); }))
      << "a dead mount daemon shows as an abnormal volume";

  plugin_->Signal(SIGKILL);
  plugin_->Wait();
  StartPlugin();
  EXPECT_TRUE(
      plugin_->WaitForLine("event=rediscovered volume=pvc-broken .*state=restaged", seconds(5)))
      << plugin_->Output();
  auto healthy = Stats("pvc-broken", staging);
  EXPECT_FALSE(healthy.volume_condition().abnormal()) << healthy.volume_condition().message();
  EXPECT_EQ(ReadAll(staging + "/kept").size(), 4096u) << "committed data survives the restage";

  ASSERT_TRUE(Unpublish("pvc-broken", pod).ok());
  ASSERT_TRUE(Unstage("pvc-broken", staging).ok());
  EXPECT_FALSE(csi::FindMount(pod).has_value());
  EXPECT_FALSE(csi::FindMount(staging).has_value());
  EXPECT_FALSE(csi::FindMountDaemon(staging).has_value());
}

}  // namespace
}  // namespace granary::testing
