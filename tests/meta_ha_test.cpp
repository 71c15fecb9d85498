// Metadata HA (issue 20, docs/metadata-ha.md): a group of three `granary metanode` processes on
// loopback. The leader is killed -9 under load through every door, paused, wiped; members are
// added and removed; a register workload is checked for linearizability across failovers.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <regex>
#include <thread>

#include "client/granary.h"
#include "client/meta_client.h"
#include "tests/fuse_mount.h"
#include "tests/harness/cluster.h"
#include "tests/harness/meta_group.h"
#include "tests/linearizability.h"

namespace granary::testing {
namespace {

using namespace std::chrono_literals;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Bytes(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  std::mt19937 rng(seed);
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

std::unique_ptr<client::MetaClient> Meta(const std::string& addresses,
                                         std::chrono::milliseconds deadline = 30s) {
  client::MetaClientOptions o;
  o.address = addresses;
  o.deadline = deadline;
  auto mc = client::MetaClient::Connect(o);
  EXPECT_TRUE(mc.ok()) << mc.status().ToString();
  return std::move(*mc);
}

// Runs `granary admin meta ARGS…`; returns (exit status, output).
std::pair<int, std::string> AdminMeta(const std::string& meta, std::vector<std::string> args) {
  std::vector<std::string> argv = {GranaryBinary(), "admin", "meta"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--meta", meta});
  Process p(argv);
  auto status = p.Wait(seconds(120));
  if (!status) p.Kill();
  p.WaitForLine("$^", milliseconds(100));  // drain
  return {status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1, p.Output()};
}

// Kills the leader `count` times, waiting each time for a new leader and restarting the
// killed member; records the time from kill to a new leader.
std::vector<double> KillLeaders(MetaGroupProcesses& group, int count,
                                const std::atomic<bool>* stop = nullptr) {
  std::vector<double> failovers;
  for (int i = 0; i < count && !(stop && *stop); ++i) {
    const int leader = group.WaitLeader();
    if (leader == 0) {
      ADD_FAILURE() << "no leader before kill " << i;
      break;
    }
    const int64_t t0 = NowNs();
    group.Kill(leader);
    const int next = group.WaitLeader(20s, leader);
    if (next == 0) {
      ADD_FAILURE() << "no new leader after killing " << leader << "\n" << group.Output(1);
      break;
    }
    failovers.push_back((NowNs() - t0) / 1e9);
    // Progress, for a run that fails or is stopped by ctest's timeout.
    std::fprintf(stderr, "kill %d: leader %d replaced by %d in %.2f s\n", i, leader, next,
                 failovers.back());
    group.Restart(leader);
  }
  return failovers;
}

class MetaHaTest : public ::testing::Test {
 protected:
  TempDir dir_;
};

// ---------------------------------------------------------------- the checker itself

TEST(RegisterCheckerTest, AcceptsLinearizableAndRejectsStaleReads) {
  RegisterHistory ok;
  ok.Add({true, "a", 0, 10});
  ok.Add({false, "a", 5, 15});  // overlaps the write: may see it
  ok.Add({true, "b", 20, 30});
  ok.Add({false, "b", 25, 35});
  ok.Add({true, "c", 40});       // unknown outcome: may or may not have happened
  ok.Add({false, "b", 50, 60});  // fine if c never happened (or happens later)
  EXPECT_TRUE(ok.Linearizable());

  RegisterHistory stale;
  stale.Add({true, "a", 0, 10});
  stale.Add({true, "b", 20, 30});
  stale.Add({false, "a", 40, 50});  // b was acknowledged before this read began
  EXPECT_FALSE(stale.Linearizable());

  RegisterHistory flicker;  // a read sees b, a later one sees a again
  flicker.Add({true, "a", 0, 10});
  flicker.Add({true, "b", 15, 100});
  flicker.Add({false, "b", 20, 30});
  flicker.Add({false, "a", 40, 50});
  EXPECT_FALSE(flicker.Linearizable());
}

// ---------------------------------------------------------------- failover under load

TEST_F(MetaHaTest, KillingTheLeaderUnderLoadLosesNothingThroughAnyDoor) {
  const int kills =
      std::getenv("GRANARY_HA_KILLS") ? std::atoi(std::getenv("GRANARY_HA_KILLS")) : 20;
  ClusterOptions co;
  co.metanodes = 3;
  co.datanodes = 3;
  co.down_after_ms = 20000;  // datanodes must not be declared down during failovers
  LocalCluster cluster(co);
  cluster.Start();
  const std::string meta = cluster.meta_address();
  auto admin = Meta(meta);
  umask(022);

  // S3: a key, a bucket, a gateway process, the boto3 load script.
  auto key = admin->KeyCreate("ha");
  ASSERT_TRUE(key.ok()) << key.status().ToString();
  ASSERT_TRUE(admin->BucketCreate("habucket", key->access_key()).ok());
  Process gateway({GranaryBinary(), "s3", "--meta", meta, "--listen", "127.0.0.1:0"});
  auto s3 = gateway.WaitForLine(R"(^s3=(\S+))", 30s);
  ASSERT_TRUE(s3) << gateway.Output();
  std::string endpoint = (*s3)[1];
  if (endpoint.rfind("http", 0) != 0) endpoint = "http://" + endpoint;
  const std::string stopfile = dir_.str() + "/stop-s3";
  Process s3load({"/usr/bin/python3", std::string(GRANARY_SOURCE_DIR) + "/tests/meta_ha_s3_load.py",
                  endpoint, key->access_key(), key->secret_key(), "habucket", "load", stopfile});

  // The mount.
  FuseMount mount(meta, "default");
  ASSERT_EQ(mkdir((mount / "m").c_str(), 0755), 0);

  // libgranary: creates (exclusive), writes, renames.
  client::ClientOptions lo;
  lo.meta = meta;
  lo.operation_timeout = 120s;
  auto lib = client::Client::Connect(lo);
  ASSERT_TRUE(lib.ok()) << lib.status().ToString();
  ASSERT_TRUE((*lib)->Mkdir("default", "lib").ok());
  auto lib_dir = (*lib)->Resolve("default", "lib");
  ASSERT_TRUE(lib_dir.ok());

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::map<std::string, uint32_t> acked;  // path in the volume -> seed of its bytes
  std::vector<std::string> errors;
  std::vector<std::thread> workers;
  for (int t = 0; t < 2; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        const std::string name = fmt::format("t{}-{}", t, i);
        const uint32_t seed = t * 100000 + i;
        auto f = (*lib)->Open("default", "lib/" + name, {.create = true, .exclusive = true});
        Status s = f.ok() ? Status::Ok() : f.status();
        if (s.ok()) {
          std::string data = Bytes(64 << 10, seed);
          s = (*f)->Pwrite({reinterpret_cast<const uint8_t*>(data.data()), data.size()}, 0);
          if (s.ok()) s = (*f)->Close();
        }
        if (s.ok()) {
          s = (*lib)->meta().Rename(lib_dir->ino(), name, lib_dir->ino(), name + ".done").status();
        }
        std::lock_guard lock(mu);
        if (!s.ok()) {
          errors.push_back("lib " + name + ": " + s.ToString());
        } else {
          acked["lib/" + name + ".done"] = seed;
        }
      }
    });
  }
  workers.emplace_back([&] {
    for (int i = 0; !stop; ++i) {
      const std::string name = fmt::format("m/f{}", i);
      const uint32_t seed = 500000 + i;
      std::string data = Bytes(100 << 10, seed);
      int fd = open((mount / (name + ".tmp")).c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
      bool ok =
          fd >= 0 && write(fd, data.data(), data.size()) == ssize_t(data.size()) && fsync(fd) == 0;
      const int err = errno;
      if (fd >= 0) ok = close(fd) == 0 && ok;
      ok = ok && rename((mount / (name + ".tmp")).c_str(), (mount / name).c_str()) == 0;
      std::lock_guard lock(mu);
      if (!ok) {
        errors.push_back(fmt::format("mount {}: {}", name, strerror(errno ? errno : err)));
      } else {
        acked[name] = seed;
      }
    }
  });

  const auto failovers = KillLeaders(cluster.meta_group(), kills);
  stop = true;
  for (auto& w : workers) w.join();
  std::ofstream(stopfile) << "stop\n";
  auto s3_done = s3load.Wait(180s);
  s3load.WaitForLine("$^", 100ms);

  EXPECT_EQ(static_cast<int>(failovers.size()), kills);
  double worst = 0;
  for (double f : failovers) worst = std::max(worst, f);
  RecordProperty("failovers", static_cast<int>(failovers.size()));
  RecordProperty("worst_failover_ms", static_cast<int>(worst * 1000));
  EXPECT_TRUE(errors.empty()) << errors.size()
                              << " acknowledged-path errors, first: " << errors.front();
  EXPECT_GT(acked.size(), 20u);

  // Every acknowledged file is there, byte-exact, through libgranary (the mount's files too).
  for (const auto& [path, seed] : acked) {
    auto f = (*lib)->Open("default", path);
    ASSERT_TRUE(f.ok()) << path << ": " << f.status().ToString();
    const size_t size = (*f)->size();
    std::string got(size, '\0');
    auto n = (*f)->Pread({reinterpret_cast<uint8_t*>(got.data()), size}, 0);
    ASSERT_TRUE(n.ok()) << path << ": " << n.status().ToString();
    EXPECT_EQ(got, Bytes(path.rfind("m/", 0) == 0 ? 100 << 10 : 64 << 10, seed)) << path;
  }
  // Nothing was applied twice: every directory holds exactly the acknowledged names.
  auto listed = (*lib)->meta().ReadDir(lib_dir->ino(), "", 100000);
  ASSERT_TRUE(listed.ok());
  size_t lib_acked = 0;
  for (const auto& [path, seed] : acked) lib_acked += path.rfind("lib/", 0) == 0;
  EXPECT_EQ(static_cast<size_t>(listed->entries_size()), lib_acked);

  // S3: every acknowledged PUT reads back byte-exact.
  ASSERT_TRUE(s3_done && WIFEXITED(*s3_done) && WEXITSTATUS(*s3_done) == 0) << s3load.Output();
  auto verified = s3load.WaitForLine(R"(verified (\d+) of (\d+))", 1s);
  ASSERT_TRUE(verified) << s3load.Output();
  EXPECT_EQ((*verified)[1], (*verified)[2]);
  EXPECT_GT(std::stoi((*verified)[2]), 10) << s3load.Output();
}

// ---------------------------------------------------------------- partition stand-in

TEST_F(MetaHaTest, APausedLeaderIsReplacedAndCannotCommitWhenItWakes) {
  MetaGroupOptions go;
  go.dir = dir_.str();
  MetaGroupProcesses group(go);
  group.Start();
  auto mc = Meta(group.addresses());
  auto volume = mc->VolumeCreate("v");
  ASSERT_TRUE(volume.ok()) << volume.status().ToString();
  auto file = mc->Create(volume->root_ino(), "register");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  ASSERT_TRUE(mc->SetXattr(file->ino(), "user.x", "1").ok());

  const int old = group.WaitLeader();
  ASSERT_NE(old, 0);
  group.Pause(old);
  const int next = group.WaitLeader(20s, old);
  ASSERT_NE(next, 0) << "no leader while " << old << " is paused";
  ASSERT_TRUE(mc->SetXattr(file->ino(), "user.x", "2").ok());

  // A client that knows only the old leader: its request waits in the paused process.
  auto pinned = Meta(group.address(old));
  Result<InodeAttr> created = Internal("not run");
  std::thread writer([&] { created = pinned->Create(volume->root_ino(), "from-old-client"); });
  std::this_thread::sleep_for(300ms);  // let the request reach the paused process's socket
  group.Resume(old);
  writer.join();
  ASSERT_TRUE(created.ok()) << created.status().ToString() << "\n--- paused member " << old << ":\n"
                            << group.Output(old) << "\n--- new leader " << next << ":\n"
                            << group.Output(next);
  // Applied once, by the new leader: the name points at the inode the client was given.
  auto found = mc->Lookup(volume->root_ino(), "from-old-client");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->ino(), created->ino());
  // The old leader serves no stale read: through it, the register holds what the new one wrote.
  auto read = pinned->GetXattr(file->ino(), "user.x");
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(*read, "2");
  auto old_view = mc->GroupStatus(group.address(old));
  auto new_view = mc->GroupStatus(group.address(next));
  ASSERT_TRUE(old_view.ok() && new_view.ok());
  EXPECT_EQ(old_view->role(), "follower");
  EXPECT_EQ(old_view->leader_id(), static_cast<uint64_t>(next));
  EXPECT_GE(old_view->term(), new_view->term());
}

// ---------------------------------------------------------------- wipe, restart all

TEST_F(MetaHaTest, AWipedMemberRejoinsAndTheGroupRestartsInAnyOrder) {
  MetaGroupOptions go;
  go.dir = dir_.str();
  go.flags = {"--snapshot-threshold", "32"};
  MetaGroupProcesses group(go);
  group.Start();
  auto mc = Meta(group.addresses());
  auto volume = mc->VolumeCreate("v");
  ASSERT_TRUE(volume.ok()) << volume.status().ToString();
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(mc->Create(volume->root_ino(), fmt::format("a{}", i)).ok());
  }
  const int leader = group.WaitLeader();
  const int wiped = leader == 1 ? 2 : 1;
  group.Kill(wiped);
  group.Wipe(wiped);
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(mc->Create(volume->root_ino(), fmt::format("b{}", i)).ok());
  }
  group.Restart(wiped, {"--peers", group.peers()});
  // It catches up from the leader's checkpoint and log.
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto lead = mc->GroupStatus();
        auto s = mc->GroupStatus(group.address(wiped));
        return lead.ok() && s.ok() && s->role() == "follower" &&
               s->applied_index() >= lead->commit_index();
      },
      30s))
      << group.Output(wiped);

  // Stop everyone; start them in another order.
  for (int id = 1; id <= 3; ++id) group.Kill(id);
  std::vector<int> order = {wiped};
  for (int id = 3; id >= 1; --id) {
    if (id != wiped) order.push_back(id);
  }
  for (int id : order) group.Restart(id);
  ASSERT_NE(group.WaitLeader(), 0);
  auto listed = mc->ReadDir(volume->root_ino(), "", 10000);
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  EXPECT_EQ(listed->entries_size(), 300);
}

// ---------------------------------------------------------------- linearizability

TEST_F(MetaHaTest, ARegisterStaysLinearizableAcrossFailovers) {
  MetaGroupOptions go;
  go.dir = dir_.str();
  MetaGroupProcesses group(go);
  group.Start();
  auto mc = Meta(group.addresses());
  auto volume = mc->VolumeCreate("v");
  ASSERT_TRUE(volume.ok());
  auto file = mc->Create(volume->root_ino(), "register");
  ASSERT_TRUE(file.ok());
  const uint64_t ino = file->ino();

  std::atomic<bool> stop{false};
  std::mutex mu;
  RegisterHistory history;
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t) {
    clients.emplace_back([&, t] {
      auto c = Meta(group.addresses(), 15s);
      std::mt19937 rng(t);
      for (int i = 0; !stop; ++i) {
        RegisterOp op;
        op.write = rng() % 2 == 0;
        op.call_ns = NowNs();
        if (op.write) {
          op.value = fmt::format("t{}-{}", t, i);
          Status s = c->SetXattr(ino, "user.reg", op.value);
          if (s.ok()) op.return_ns = NowNs();  // else: outcome unknown
        } else {
          auto r = c->GetXattr(ino, "user.reg");
          if (r.ok()) {
            op.value = *r;
            op.return_ns = NowNs();
          } else if (r.status().code() == Code::NOT_FOUND) {
            op.value = "";
            op.return_ns = NowNs();
          }
        }
        std::lock_guard lock(mu);
        history.Add(std::move(op));
      }
    });
  }
  KillLeaders(group, 3);
  stop = true;
  for (auto& c : clients) c.join();
  EXPECT_GT(history.size(), 50u);
  EXPECT_TRUE(history.Linearizable()) << history.size() << " operations";
}

// ---------------------------------------------------------------- membership

TEST_F(MetaHaTest, MembersAreReplacedUnderLoadAndAContradictingPeersListIsRefused) {
  MetaGroupOptions go;
  go.dir = dir_.str();
  MetaGroupProcesses group(go);
  group.Start();
  const std::string original_peers = group.peers();
  auto mc = Meta(group.addresses());
  auto volume = mc->VolumeCreate("v");
  ASSERT_TRUE(volume.ok());

  std::atomic<bool> stop{false};
  std::atomic<int> created{0};
  std::vector<std::string> errors;
  std::thread load([&] {
    auto c = Meta(group.addresses());
    for (int i = 0; !stop; ++i) {
      auto r = c->Create(volume->root_ino(), fmt::format("f{}", i));
      if (r.ok()) {
        ++created;
      } else {
        errors.push_back(r.status().ToString());
      }
    }
  });

  const int added = group.Spawn();
  group.StartWith(added, {"--peers", group.peers()});
  ASSERT_TRUE(group.process(added)->WaitForLine("listening meta=", 60s)) << group.Output(added);
  auto [add_code, add_out] =
      AdminMeta(group.addresses(), {"add", fmt::format("{}={}", added, group.address(added))});
  EXPECT_EQ(add_code, 0) << add_out;
  EXPECT_NE(add_out.find(fmt::format("added member id={}", added)), std::string::npos) << add_out;

  auto [remove_code, remove_out] = AdminMeta(group.addresses(), {"remove", "1"});
  EXPECT_EQ(remove_code, 0) << remove_out;
  group.Kill(1);

  const std::string remaining =
      fmt::format("{},{},{}", group.address(2), group.address(3), group.address(added));
  auto [status_code, status_out] = AdminMeta(remaining, {"status"});
  EXPECT_EQ(status_code, 0) << status_out;
  std::regex line(R"(id=(\d) addr=\S+ role=(leader|follower) term=\d+ applied=\d+ lag=\d+)");
  int lines = 0, leaders = 0;
  for (std::sregex_iterator it(status_out.begin(), status_out.end(), line), end; it != end; ++it) {
    ++lines;
    leaders += (*it)[2] == "leader";
    EXPECT_NE((*it)[1], "1");
  }
  EXPECT_EQ(lines, 3) << status_out;
  EXPECT_EQ(leaders, 1) << status_out;

  stop = true;
  load.join();
  EXPECT_TRUE(errors.empty()) << errors.front();
  EXPECT_GT(created.load(), 10);

  // Member 2 restarted with the group's first --peers: the stored configuration wins (members
  // were added and removed since), and it serves again.
  group.Kill(2);
  group.StartWith(2, {"--peers", original_peers});
  EXPECT_TRUE(group.process(2)->WaitForLine("listening meta=", 30s)) << group.Output(2);
  EXPECT_TRUE(group.process(2)->WaitForLine("event=meta_peers_differ", 5s)) << group.Output(2);
  // With another address for a stored member: refused, with the stored members named.
  group.Kill(2);
  const std::string wrong =
      fmt::format("2={},3=127.0.0.1:1,{}={}", group.address(2), added, group.address(added));
  group.StartWith(2, {"--peers", wrong});
  auto exited = group.process(2)->Wait(30s);
  ASSERT_TRUE(exited.has_value()) << group.Output(2);
  EXPECT_NE(WEXITSTATUS(*exited), 0);
  const std::string expected =
      fmt::format("--peers {} does not match the group's stored configuration 2={},3={},{}={}",
                  wrong, group.address(2), group.address(3), added, group.address(added));
  EXPECT_NE(group.Output(2).find(expected), std::string::npos) << group.Output(2);
  // Another member's data dir under this id: refused.
  group.Kill(3);
  Process mixed({GranaryBinary(), "metanode", "--data", group.data_dir(3), "--listen",
                 group.address(2), "--id", "2"});
  exited = mixed.Wait(30s);
  ASSERT_TRUE(exited.has_value()) << mixed.Output();
  mixed.WaitForLine("$^", 100ms);
  EXPECT_NE(mixed.Output().find(fmt::format(
                "{}/raft belongs to metadata group member 3, not --id 2", group.data_dir(3))),
            std::string::npos)
      << mixed.Output();
}

// ---------------------------------------------------------------- granary server

TEST_F(MetaHaTest, TheEmbeddedServerRunsThreeMetanodesAndSurvivesKillingOne) {
  Process server({GranaryBinary(), "server", "--data", dir_.str() + "/data", "--metanodes", "3",
                  "--meta", "127.0.0.1:0", "--s3", "127.0.0.1:0"});
  auto meta = server.WaitForLine(R"(^meta=(\S+))", 90s);
  ASSERT_TRUE(meta) << server.Output();
  ASSERT_TRUE(server.WaitForLine("^ready$", 60s)) << server.Output();
  const std::string list = (*meta)[1];
  EXPECT_EQ(std::count(list.begin(), list.end(), ','), 2) << list;

  const std::string local = dir_.str() + "/in.bin";
  std::ofstream(local, std::ios::binary) << Bytes(1 << 20, 7);
  auto cli = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = {GranaryBinary()};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.insert(argv.end(), {"--meta", list});
    Process p(argv);
    auto st = p.Wait(60s);
    return st && WIFEXITED(*st) && WEXITSTATUS(*st) == 0;
  };
  ASSERT_TRUE(cli({"put", local, "default/one.bin"}));

  // Kill -9 the leader's process: found by its data dir on its command line.
  auto mc = Meta(list);
  auto lead = mc->GroupStatus();
  ASSERT_TRUE(lead.ok()) << lead.status().ToString();
  const std::string marker = fmt::format("{}/data/meta-{}", dir_.str(), lead->leader_id());
  pid_t victim = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    std::ifstream in(e.path() / "cmdline");
    std::string cmdline((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmdline.find(marker + '\0') != std::string::npos) victim = std::stoi(e.path().filename());
  }
  ASSERT_GT(victim, 0) << marker;
  kill(victim, SIGKILL);
  ASSERT_TRUE(cli({"put", local, "default/two.bin"})) << server.Output();
  ASSERT_TRUE(cli({"get", "default/one.bin", dir_.str() + "/out.bin"}));
  EXPECT_TRUE(server.WaitForLine("event=metanode_member_restarted", 60s)) << server.Output();
  server.Signal(SIGTERM);
  EXPECT_TRUE(server.Wait(60s));
}

}  // namespace
}  // namespace granary::testing
