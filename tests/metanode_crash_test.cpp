// Crash safety of the metanode (DESIGN §3): a real `granary metanode` process serves 16
// concurrent clients and is SIGKILLed repeatedly. After every restart each acknowledged
// operation is present, no half operation is visible, and a retried request (same OpId) gets
// its first answer.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <map>
#include <thread>

#include "client/meta_client.h"
#include "tests/harness/process.h"

namespace granary {
namespace {

using testing::Process;
using testing::TempDir;
using namespace std::chrono_literals;

constexpr int kClients = 16;
constexpr int kKills = 4;

std::unique_ptr<Process> StartMetanode(const TempDir& dir, const std::string& listen,
                                       std::string* address) {
  auto p = std::make_unique<Process>(
      std::vector<std::string>{testing::GranaryBinary(), "metanode", "--data", dir.str() + "/meta",
                               "--listen", listen, "--admin", "127.0.0.1:0"});
  auto m = p->WaitForLine(R"(listening meta=(\S+) admin=(\S+))", 30s);
  if (!m) {
    ADD_FAILURE() << "metanode did not start:\n" << p->Output();
    return nullptr;
  }
  *address = (*m)[1];
  return p;
}

// What one client has seen acknowledged in its own directory: name -> ino.
struct ClientModel {
  uint64_t dir = 0;
  std::map<std::string, uint64_t> names;
  CreateRequest last_create;  // a request acknowledged earlier, to be replayed
  uint64_t last_create_ino = 0;
  int acked = 0;
  std::string failure;
};

TEST(MetanodeCrashTest, AcknowledgedOperationsSurviveKill9) {
  TempDir dir;
  std::string address;
  auto node = StartMetanode(dir, "127.0.0.1:0", &address);
  ASSERT_NE(node, nullptr);

  client::MetaClientOptions options;
  options.address = address;
  options.deadline = 60s;
  auto admin = client::MetaClient::Connect(options);
  ASSERT_TRUE(admin.ok());
  auto volume = (*admin)->VolumeCreate("crash");
  ASSERT_TRUE(volume.ok()) << volume.status().ToString();

  std::atomic<bool> stop{false};
  std::atomic<int> total_acked{0};
  std::vector<ClientModel> models(kClients);
  std::vector<std::thread> clients;
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      ClientModel& m = models[c];
      auto mc = client::MetaClient::Connect(options);
      auto d = (*mc)->Mkdir(volume->root_ino(), "c" + std::to_string(c));
      if (!d.ok()) {
        m.failure = "mkdir: " + d.status().ToString();
        return;
      }
      m.dir = d->ino();
      for (int k = 0; !stop.load(); ++k) {
        std::string name = "f" + std::to_string(k);
        CreateRequest req;
        *req.mutable_op() = (*mc)->NextOpId();
        req.set_parent(m.dir);
        req.set_name(name);
        req.set_exclusive(true);
        auto f = (*mc)->Create(req);
        if (!f.ok()) {  // a retried create must never see its own first attempt as AlreadyExists
          m.failure = "create " + name + ": " + f.status().ToString();
          return;
        }
        m.names[name] = f->ino();
        m.last_create = req;
        m.last_create_ino = f->ino();
        if (k % 3 == 1) {  // rename the previous file over nothing
          std::string from = "f" + std::to_string(k - 1), to = "r" + std::to_string(k - 1);
          if (m.names.contains(from)) {
            auto r = (*mc)->Rename(m.dir, from, m.dir, to);
            if (!r.ok()) {
              m.failure = "rename " + from + ": " + r.status().ToString();
              return;
            }
            m.names[to] = m.names[from];
            m.names.erase(from);
          }
        } else if (k % 3 == 2) {  // unlink the renamed one
          std::string victim = "r" + std::to_string(k - 2);
          if (m.names.contains(victim)) {
            Status s = (*mc)->Unlink(m.dir, victim);
            if (!s.ok()) {
              m.failure = "unlink " + victim + ": " + s.ToString();
              return;
            }
            m.names.erase(victim);
          }
        }
        ++m.acked;
        ++total_acked;
      }
    });
  }

  for (int round = 0; round < kKills; ++round) {
    int target = total_acked.load() + 150;
    ASSERT_TRUE(testing::WaitUntil([&] { return total_acked.load() >= target; }, 60s))
        << "clients made no progress in round " << round << "\n"
        << node->Output();
    node->Kill();  // SIGKILL: no shutdown path runs
    node = StartMetanode(dir, address, &address);
    ASSERT_NE(node, nullptr);
  }
  int target = total_acked.load() + 50;
  EXPECT_TRUE(testing::WaitUntil([&] { return total_acked.load() >= target; }, 60s));
  stop = true;
  for (auto& t : clients) t.join();

  // One more crash with everything quiet, then check the state against every client's model.
  node->Kill();
  node = StartMetanode(dir, address, &address);
  ASSERT_NE(node, nullptr);
  auto check = client::MetaClient::Connect(options);
  uint64_t files = 0;
  for (int c = 0; c < kClients; ++c) {
    const ClientModel& m = models[c];
    ASSERT_TRUE(m.failure.empty()) << "client " << c << ": " << m.failure;
    std::map<std::string, uint64_t> seen;
    std::string after;
    for (;;) {
      auto page = (*check)->ReadDir(m.dir, after, 500);
      ASSERT_TRUE(page.ok()) << page.status().ToString();
      for (const auto& e : page->entries()) seen[e.name()] = e.ino();
      if (page->eof() || page->entries_size() == 0) break;
      after = page->entries(page->entries_size() - 1).name();
    }
    EXPECT_EQ(seen, m.names) << "client " << c;
    files += m.names.size();
    // The first answer, again: replaying an acknowledged create is not AlreadyExists.
    if (m.last_create_ino != 0) {
      EntryReply reply;
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 10s);
      auto s = (*check)->namespace_stub().Create(&ctx, m.last_create, &reply);
      ASSERT_TRUE(s.ok()) << s.error_message();
      EXPECT_EQ(reply.attr().ino(), m.last_create_ino);
    }
  }
  auto v = (*check)->VolumeGet("crash");
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->used_inodes(), files + kClients);  // files + one directory per client
  node->Signal(SIGTERM);
  auto status = node->Wait(30s);
  ASSERT_TRUE(status.has_value()) << "metanode did not stop on SIGTERM";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << node->Output();
}

}  // namespace
}  // namespace granary
