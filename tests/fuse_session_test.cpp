// Mount survival meets client sessions (docs/mount-survival.md, docs/metadata.md "Client
// sessions and reaping"): a mount server replaced after SIGKILL (supervisor) or by an upgrade
// leaves its client session behind; once that lease runs out, the session is reaped — the
// unlinked-but-open file only the dead server pinned gives its space back — and every file held
// open across the handoff stays readable through the successor's own session.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <regex>

#include "client/meta_client.h"
#include "tests/fuse_mount.h"

namespace granary::testing {
namespace {

constexpr int kLeaseMs = 2000;

struct SupervisedMount {
  TempDir dir;
  std::string mnt = dir.str() + "/mnt";
  std::string control = dir.str() + "/control.sock";
  std::unique_ptr<Process> supervisor;

  explicit SupervisedMount(const std::string& meta) {
    std::filesystem::create_directory(mnt);
    supervisor = std::make_unique<Process>(std::vector<std::string>{
        GranaryBinary(), "mount", "--meta", meta, "--volume", "default", "--foreground",
        "--control", control, "--log-level", "info", "--supervise", mnt});
  }
  ~SupervisedMount() {
    if (::testing::Test::HasFailure()) std::cerr << "--- supervisor ---\n" << supervisor->Output();
    if (supervisor->running()) {
      supervisor->Signal(SIGTERM);
      if (!supervisor->Wait(seconds(20))) supervisor->Kill();
    }
    if (IsMounted(mnt)) umount2(mnt.c_str(), MNT_DETACH);
  }
  // The pid of the server the supervisor started last.
  int ServerPid() {
    std::string out = supervisor->Output();
    std::regex re("event=server_started pid=(\\d+)");
    int pid = -1;
    for (std::sregex_iterator it(out.begin(), out.end(), re), end; it != end; ++it) {
      pid = std::stoi((*it)[1]);
    }
    return pid;
  }
};

TEST(FuseSessionTest, FilesHeldAcrossACrashAndAnUpgradeStayReadableAfterTheOldSessionIsReaped) {
  ClusterOptions o;
  o.metanode_flags = {"--client-lease-ms", std::to_string(kLeaseMs), "--gc-grace-ms", "500"};
  LocalCluster cluster(o);
  cluster.Start();
  client::MetaClientOptions mo;
  mo.address = cluster.meta_address();
  mo.keep_alive = false;
  auto meta = client::MetaClient::Connect(mo);
  ASSERT_TRUE(meta.ok());
  auto used = [&] {
    auto v = (*meta)->VolumeGet("default");
    return v.ok() ? v->used_bytes() + v->reserved_bytes() : ~0ull;
  };
  auto reaped = [&] {
    auto s = (*meta)->ClusterStatus();
    return s.ok() ? s->sessions_reaped() : 0;
  };

  SupervisedMount m(cluster.meta_address());
  ASSERT_TRUE(m.supervisor->WaitForLine("event=server_ready pid=\\d+ generation=0", seconds(30)));
  const std::string content = "held open across handoffs\n";
  ASSERT_EQ(WriteAll(m.mnt + "/held", content), 0);
  const uint64_t used0 = used();
  const std::string gone_content(1 << 20, 'g');
  ASSERT_EQ(WriteAll(m.mnt + "/gone", gone_content), 0);
  int held = ::open((m.mnt + "/held").c_str(), O_RDONLY | O_CLOEXEC);
  int gone = ::open((m.mnt + "/gone").c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(held, 0);
  ASSERT_GE(gone, 0);
  ASSERT_EQ(ERRNO_OF(::unlink((m.mnt + "/gone").c_str())), 0);
  EXPECT_EQ(used(), used0 + gone_content.size());  // pinned by the serving process's session

  auto expect_held_readable = [&] {
    std::string got(content.size(), '\0');
    EXPECT_EQ(::pread(held, got.data(), got.size(), 0), static_cast<ssize_t>(got.size()))
        << strerror(errno);
    EXPECT_EQ(got, content);
    struct statvfs st {};
    EXPECT_EQ(ERRNO_OF(::statvfs(m.mnt.c_str(), &st)), 0);
  };

  // Crash: the supervisor starts a successor; the dead server's session lapses and is reaped,
  // which frees the unlinked file only it pinned.
  ASSERT_EQ(::kill(m.ServerPid(), SIGKILL), 0);
  ASSERT_TRUE(m.supervisor->WaitForLine("event=server_ready pid=\\d+ generation=1", seconds(60)));
  ASSERT_TRUE(WaitUntil([&] { return reaped() >= 1 && used() == used0; }, seconds(60)))
      << "reaped " << reaped() << " used " << used() << " (before " << used0 << ")";
  expect_held_readable();  // first use after the reap: the successor re-opens it by inode
  ::close(gone);           // its inode is gone with the old session; closing is all that is left

  // Upgrade: the predecessor exits 75 without releasing; its session goes the same way.
  m.supervisor->Signal(SIGUSR2);
  ASSERT_TRUE(m.supervisor->WaitForLine("event=server_ready pid=\\d+ generation=2", seconds(60)));
  ASSERT_TRUE(m.supervisor->WaitForLine("event=server_exited pid=\\d+ status=75", seconds(30)));
  ASSERT_TRUE(WaitUntil([&] { return reaped() >= 2; }, seconds(60))) << reaped();
  expect_held_readable();
  EXPECT_EQ(ReadAll(m.mnt + "/held"), content);
  EXPECT_EQ(::close(held), 0);
  EXPECT_EQ(used(), used0);
}

}  // namespace
}  // namespace granary::testing
