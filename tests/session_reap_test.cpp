// Client sessions end to end: a libgranary client process (tests/pin_holder.cpp) that pins an
// unlinked file and a staged object is killed -9 (or stopped past its lease) on a real cluster
// with a short lease; the space comes back and nothing visible changes, while a client that
// keeps renewing keeps its unlinked-but-open file.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <set>

#include "client/granary.h"
#include "client/meta_client.h"
#include "tests/harness/cluster.h"

namespace granary::testing {
namespace {

using namespace std::chrono_literals;

constexpr int kLeaseMs = 2000;
constexpr size_t kBytes = 3 << 20;

class SessionReapTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ClusterOptions o;
    o.metanode_flags = {"--client-lease-ms", std::to_string(kLeaseMs), "--gc-grace-ms", "500"};
    cluster_ = std::make_unique<LocalCluster>(o);
    cluster_->Start();
    client::MetaClientOptions mo;
    mo.address = cluster_->meta_address();
    mo.keep_alive = false;  // only reads and admin calls: no session of its own
    auto meta = client::MetaClient::Connect(mo);
    ASSERT_TRUE(meta.ok()) << meta.status().ToString();
    meta_ = std::move(*meta);
  }

  std::unique_ptr<client::Client> Connect() {
    client::ClientOptions o;
    o.meta = cluster_->meta_address();
    auto c = client::Client::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }
  std::unique_ptr<Process> StartHolder(const std::string& name, bool reopen = false) {
    std::vector<std::string> argv{PIN_HOLDER_BINARY, cluster_->meta_address(), "default", name,
                                  std::to_string(kBytes)};
    if (reopen) argv.push_back("--reopen-on-continue");
    return std::make_unique<Process>(argv);
  }
  uint64_t Used() {
    auto v = meta_->VolumeGet("default");
    EXPECT_TRUE(v.ok()) << v.status().ToString();
    return v.ok() ? v->used_bytes() + v->reserved_bytes() : 0;
  }
  uint64_t StatFsUsed() {
    auto v = meta_->VolumeGet("default");
    auto s = meta_->StatFs(v->root_ino());
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? s->used_bytes() : 0;
  }
  std::set<std::string> Names() {
    auto v = meta_->VolumeGet("default");
    auto r = meta_->ReadDir(v->root_ino());
    std::set<std::string> names;
    if (r.ok()) {
      for (const auto& e : r->entries()) names.insert(e.name());
    }
    return names;
  }
  ClusterStatusReply Status() {
    auto s = meta_->ClusterStatus();
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? *s : ClusterStatusReply();
  }

  std::unique_ptr<LocalCluster> cluster_;
  std::unique_ptr<client::MetaClient> meta_;
};

TEST_F(SessionReapTest, AClientKilledWhilePinningFilesGivesTheirSpaceBackAfterItsLease) {
  // A live client in this process holds an unlinked file open across many leases.
  auto live = Connect();
  ASSERT_NE(live, nullptr);
  auto kept = live->Open("default", "kept", {.create = true, .truncate = true});
  ASSERT_TRUE(kept.ok()) << kept.status().ToString();
  std::vector<uint8_t> pattern(1 << 20, 0xa7);
  ASSERT_TRUE((*kept)->Pwrite(pattern, 0).ok());
  ASSERT_TRUE((*kept)->Flush().ok());
  ASSERT_TRUE(live->Remove("default", "kept").ok());
  const auto kept_since = std::chrono::steady_clock::now();

  const uint64_t used0 = Used(), statfs0 = StatFsUsed();
  const auto names0 = Names();
  auto holder = StartHolder("victim");
  auto held = holder->WaitForLine(R"(holding unlinked=(\d+) staged=(\d+))", 60s);
  ASSERT_TRUE(held) << holder->Output();
  const uint64_t unlinked = std::stoull((*held)[1]), staged = std::stoull((*held)[2]);
  EXPECT_EQ(Used(), used0 + 2 * kBytes);
  EXPECT_EQ(Names(), names0);  // neither the unlinked file nor the staged object is visible
  EXPECT_EQ(Status().sessions_reaped(), 0u);

  holder->Kill();  // SIGKILL: no release, no abort
  ASSERT_TRUE(WaitUntil([&] { return Used() == used0; }, 60s)) << "used " << Used();
  EXPECT_EQ(StatFsUsed(), statfs0);
  EXPECT_EQ(meta_->GetAttr(unlinked).status().code(), Code::NOT_FOUND);
  EXPECT_EQ(meta_->GetAttr(staged).status().code(), Code::NOT_FOUND);
  EXPECT_EQ(Names(), names0);
  EXPECT_EQ(Status().sessions_reaped(), 1u);
  // The freed slices' blocks are deleted on the datanodes once the GC grace has passed.
  EXPECT_TRUE(WaitUntil([&] { return Status().garbage_pending() == 0; }, 60s))
      << Status().garbage_pending();

  // The renewing client lost nothing, several leases later.
  ASSERT_TRUE(WaitUntil(
      [&] { return std::chrono::steady_clock::now() - kept_since > 2 * milliseconds(kLeaseMs); },
      30s));
  std::vector<uint8_t> back(pattern.size());
  auto n = (*kept)->Pread(back, 0);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, pattern.size());
  EXPECT_EQ(back, pattern);
  EXPECT_EQ(Status().sessions_reaped(), 1u);
  ASSERT_TRUE((*kept)->Close().ok());
  EXPECT_TRUE(WaitUntil([&] { return Used() == used0 - pattern.size(); }, 10s));

  // The metanode's metrics and `granary admin sessions` report the counters.
  auto admin_line =
      cluster_->metanode().WaitForLine(R"(listening meta=\S+ admin=(\S+))", seconds(5));
  ASSERT_TRUE(admin_line);
  auto [code, metrics] = HttpGet((*admin_line)[1], "/metrics");
  EXPECT_EQ(code, 200);
  EXPECT_NE(metrics.find("granary_metanode_sessions_reaped_total 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("granary_metanode_multipart_expired_total 0"), std::string::npos);
  EXPECT_NE(metrics.find("granary_metanode_sessions "), std::string::npos);
  // `granary admin sessions` too.
  Process admin({GranaryBinary(), "admin", "sessions", "--meta", cluster_->meta_address()});
  EXPECT_TRUE(admin.WaitForLine(R"(sessions=\d+ sessions-reaped=1 multipart-expired=0)", 30s))
      << admin.Output();
}

TEST_F(SessionReapTest, AClientStoppedPastItsLeaseIsToldAndStartsANewSession) {
  const uint64_t used0 = Used();
  auto holder = StartHolder("sleeper", /*reopen=*/true);
  ASSERT_TRUE(holder->WaitForLine(R"(holding unlinked=\d+)", 60s)) << holder->Output();
  holder->Signal(SIGSTOP);
  ASSERT_TRUE(WaitUntil([&] { return Used() == used0 && Status().sessions_reaped() == 1; }, 60s));
  holder->Signal(SIGCONT);
  auto expired = holder->WaitForLine(R"(event=session_expired client=(\w+) new_client=(\w+))", 30s);
  ASSERT_TRUE(expired) << holder->Output();
  EXPECT_NE((*expired)[1], (*expired)[2]);
  EXPECT_NE(holder->Output().find("session expired"), std::string::npos);
  // It works on: a new file, created and closed under its new session.
  ASSERT_TRUE(holder->WaitForLine("^reopened$", 30s)) << holder->Output();
  EXPECT_TRUE(Names().contains("sleeper.after"));
}

}  // namespace
}  // namespace granary::testing
