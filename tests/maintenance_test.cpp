// Keeping data safe over time (issue 8), end to end on real processes: a datanode that stays
// silent goes down then out, its PGs are remapped and repaired until `admin repair` says
// healthy; a node returning after being out reclaims what was deleted meanwhile; scrub finds
// and repairs a flipped byte with no client read; overwritten slices are collected.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <regex>

#include "common/crc32c.h"
#include "common/data_connection.h"
#include "datanode/small_store.h"
#include "granary/data.grpc.pb.h"
#include "placement/placement.h"
#include "tests/ec_support.h"

namespace granary::testing {
namespace {

namespace fs = std::filesystem;
using client::Client;

class MaintenanceTest : public ::testing::Test {
 protected:
  void Start(int datanodes, std::vector<std::string> datanode_flags = {},
             std::vector<std::vector<std::string>> per_datanode = {}) {
    ClusterOptions o;
    o.datanodes = datanodes;
    o.datanode_flags = std::move(per_datanode);
    o.down_after_ms = 1500;
    o.heartbeat_ms = 300;
    o.metanode_flags = {"--out-after-ms",        "3000", "--gc-grace-ms", "500",
                        "--compact-interval-ms", "300"};
    o.all_datanode_flags = {"--maintenance-ms", "200"};
    for (auto& f : datanode_flags) o.all_datanode_flags.push_back(f);
    cluster_ = std::make_unique<LocalCluster>(std::move(o));
    cluster_->Start();
    client::ClientOptions co;
    co.meta = cluster_->meta_address();
    co.request_timeout = std::chrono::seconds(5);
    co.operation_timeout = std::chrono::seconds(60);
    auto c = Client::Connect(co);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    client_ = std::move(*c);
  }

  void Write(const std::string& path, const std::vector<uint8_t>& data,
             const std::string& volume = "default") {
    auto f = client_->Open(volume, path, {.create = true, .truncate = true});
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    ASSERT_TRUE((*f)->Pwrite(data, 0).ok());
    Status st = (*f)->Close();
    ASSERT_TRUE(st.ok()) << st.ToString();
  }

  void ExpectContent(const std::string& path, const std::vector<uint8_t>& want,
                     const std::string& volume = "default") {
    auto f = client_->Open(volume, path);
    ASSERT_TRUE(f.ok()) << path << ": " << f.status().ToString();
    std::vector<uint8_t> got(want.size() + 1);
    auto n = (*f)->Pread(got, 0);
    ASSERT_TRUE(n.ok()) << path << ": " << n.status().ToString() << Logs();
    ASSERT_EQ(*n, want.size()) << path;
    got.resize(*n);
    EXPECT_TRUE(got == want) << path << " differs";
  }

  ClusterStatusReply Cluster() {
    auto s = client_->meta().ClusterStatus();
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? *s : ClusterStatusReply();
  }

  NodeState StateOf(uint32_t id) {
    const auto status = Cluster();
    for (const auto& n : status.nodes()) {
      if (n.id() == id) return n.state();
    }
    return NODE_STATE_UNSPECIFIED;
  }

  // The node id datanode `i` registered as (its data dir's uuid file names it).
  uint32_t NodeIdOf(int i) {
    std::ifstream in(cluster_->datanode_dir(i) + "/node.uuid");
    std::string uuid;
    in >> uuid;
    const auto status = Cluster();
    for (const auto& n : status.nodes()) {
      if (n.uuid() == uuid) return n.id();
    }
    ADD_FAILURE() << "datanode " << i << " not registered";
    return 0;
  }

  std::string Logs() {
    std::string out = "\n--- metanode\n" + cluster_->metanode().Output();
    for (int i = 0; i < cluster_->datanode_count(); ++i) {
      out += fmt::format("\n--- datanode {}\n{}", i, cluster_->datanode(i).Output());
    }
    return out;
  }

  // Exit status and output of `granary admin fsck`.
  std::pair<int, std::string> Fsck(bool repair = false) {
    std::vector<std::string> argv = {GranaryBinary(), "admin", "fsck", "--meta",
                                     cluster_->meta_address()};
    if (repair) argv.push_back("--repair");
    Process p(argv);
    auto status = p.Wait(seconds(60));
    return {status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1, p.Output()};
  }

  std::string AdminRepair() {
    Process p({GranaryBinary(), "admin", "--meta", cluster_->meta_address(), "repair"});
    p.Wait(seconds(30));
    return p.Output();
  }

  bool WaitHealthy(std::chrono::milliseconds timeout = seconds(60)) {
    return WaitUntil([&] { return Cluster().healthy(); }, timeout);
  }

  std::unique_ptr<LocalCluster> cluster_;
  std::unique_ptr<Client> client_;
};

TEST_F(MaintenanceTest, OutNodeIsRepairedThenTwoMoreLossesStillRead) {
  Start(4);
  std::map<std::string, std::vector<uint8_t>> files;
  for (int i = 0; i < 8; ++i) {
    files["f" + std::to_string(i)] = Pattern((1 << 20) * (1 + i) + 4097 * i, i);
  }
  for (const auto& [path, data] : files) Write(path, data);
  ASSERT_TRUE(WaitHealthy()) << AdminRepair();
  EXPECT_NE(AdminRepair().find("healthy"), std::string::npos);

  const uint32_t victim = NodeIdOf(0);
  cluster_->KillDatanode(0);
  ASSERT_TRUE(WaitUntil([&] { return StateOf(victim) == OUT; }, seconds(30)))
      << "datanode never marked out";
  // Out remaps its PGs; the new members rebuild until every PG is whole again.
  ASSERT_TRUE(WaitHealthy()) << AdminRepair();
  const std::string report = AdminRepair();
  EXPECT_NE(report.find("pgs-degraded=0 blocks-to-repair=0"), std::string::npos) << report;
  EXPECT_NE(report.find("\nhealthy"), std::string::npos) << report;

  // Three copies on the three remaining nodes: any two more can die.
  cluster_->KillDatanode(1);
  cluster_->KillDatanode(2);
  for (const auto& [path, data] : files) ExpectContent(path, data);
}

TEST_F(MaintenanceTest, Ec42OnEightNodesRebuildsFragmentsAfterOut) {
  Start(8);
  CreatePoolAndVolume(client_->meta(), EcPool("ec42", 4, 2, 1 << 20));
  std::map<std::string, std::vector<uint8_t>> files;
  // Full blocks (fragments), tail blocks and short slices (M+1 copies).
  for (size_t size : {size_t{100}, size_t{1} << 20, (size_t{5} << 20) + 12345, size_t{9} << 20}) {
    files["f" + std::to_string(size)] = Pattern(size, size);
  }
  for (const auto& [path, data] : files) Write(path, data, "ec42");
  ASSERT_TRUE(WaitHealthy()) << AdminRepair();
  const uint32_t a = NodeIdOf(0), b = NodeIdOf(1);
  cluster_->KillDatanode(0);
  cluster_->KillDatanode(1);
  for (const auto& [path, data] : files) ExpectContent(path, data, "ec42");
  ASSERT_TRUE(WaitUntil([&] { return StateOf(a) == OUT && StateOf(b) == OUT; }, seconds(30)));
  // The new members rebuild their fragments from any four others.
  ASSERT_TRUE(WaitHealthy(seconds(90))) << AdminRepair();
  cluster_->KillDatanode(2);
  cluster_->KillDatanode(3);
  for (const auto& [path, data] : files) ExpectContent(path, data, "ec42");
}

// Racks r1 (two datanodes), r2, r3, r4: replicated:3 with failure domain rack.
TEST_F(MaintenanceTest, RackDomainKeepsCopiesApartSurvivesARackAndRepairs) {
  const std::vector<std::string> racks = {"r1", "r1", "r2", "r3", "r4"};
  std::vector<std::vector<std::string>> flags;
  for (size_t i = 0; i < racks.size(); ++i) {
    flags.push_back({"--labels", fmt::format("rack={},host=h{}", racks[i], i)});
  }
  Start(static_cast<int>(racks.size()), {}, flags);
  PoolSpec spec;
  spec.set_name("racked");
  spec.set_redundancy(REPLICATED_POOL);
  spec.set_replicas(3);
  spec.set_failure_domain(DOMAIN_RACK);
  spec.set_pg_count(32);
  CreatePoolAndVolume(client_->meta(), spec);
  std::map<std::string, std::vector<uint8_t>> files;
  for (int i = 0; i < 6; ++i) files["r" + std::to_string(i)] = Pattern((1 << 20) + 999 * i, 50 + i);
  for (const auto& [path, data] : files) Write(path, data, "racked");
  ASSERT_TRUE(WaitHealthy()) << AdminRepair();

  // No PG of the pool has two copies in one rack, before and after the repair.
  auto expect_racks_apart = [&] {
    auto map = client_->meta().GetClusterMap(0);
    ASSERT_TRUE(map.ok()) << map.status().ToString();
    std::map<uint32_t, std::string> rack_of;
    for (const auto& n : map->nodes()) rack_of[n.id()] = n.labels().at("rack");
    auto placement = placement::PlacementMap::Deserialize(map->placement());
    ASSERT_TRUE(placement.ok());
    uint32_t pool_id = 0;
    for (const auto& p : map->pools()) {
      if (p.name() == "racked") pool_id = p.id();
    }
    for (uint32_t pg = 0; pg < 32; ++pg) {
      auto members = placement->Members(pool_id, pg);
      ASSERT_TRUE(members.ok());
      std::set<std::string> seen;
      for (uint32_t id : *members) {
        EXPECT_TRUE(seen.insert(rack_of[id]).second)
            << "pg " << pg << " has two copies in " << rack_of[id];
      }
      EXPECT_EQ(members->size(), 3u) << "pg " << pg;
    }
  };
  expect_racks_apart();
  // Rack r1 goes dark: every file still reads (two copies left in other racks).
  const uint32_t a = NodeIdOf(0), b = NodeIdOf(1);
  cluster_->KillDatanode(0);
  cluster_->KillDatanode(1);
  for (const auto& [path, data] : files) ExpectContent(path, data, "racked");
  // After out, its PGs move to r2..r4 and are rebuilt there.
  ASSERT_TRUE(WaitUntil([&] { return StateOf(a) == OUT && StateOf(b) == OUT; }, seconds(30)));
  ASSERT_TRUE(WaitHealthy()) << AdminRepair();
  expect_racks_apart();
  // Full redundancy again: one more datanode may go.
  cluster_->KillDatanode(2);
  for (const auto& [path, data] : files) ExpectContent(path, data, "racked");
}

TEST_F(MaintenanceTest, JoiningDatanodeTakesItsShareAndOldCopiesAreDropped) {
  Start(3);
  std::map<std::string, std::vector<uint8_t>> files;
  uint64_t bytes = 0;
  for (int i = 0; i < 12; ++i) {
    files["j" + std::to_string(i)] = Pattern((1 << 20) + 513 * i, 70 + i);
    bytes += files["j" + std::to_string(i)].size();
  }
  for (const auto& [path, data] : files) Write(path, data);
  ASSERT_TRUE(WaitHealthy()) << AdminRepair();
  const int added = cluster_->AddDatanode();
  ASSERT_TRUE(cluster_->WaitForUpDatanodes(4));
  ASSERT_TRUE(WaitHealthy()) << AdminRepair();
  // The newcomer holds its share; the members it replaced dropped theirs, so the cluster stores
  // three copies, not more.
  auto total = [&] {
    uint64_t sum = 0;
    for (int i = 0; i < cluster_->datanode_count(); ++i) {
      sum += BlockFilesOf(cluster_->datanode_dir(i)).bytes;
    }
    return sum;
  };
  EXPECT_GT(BlockFilesOf(cluster_->datanode_dir(added)).bytes, bytes / 8);
  ASSERT_TRUE(
      WaitUntil([&] { return total() <= 3 * bytes + 3 * files.size() * (64 << 10); }, seconds(30)))
      << "blocks on disk: " << total() << " for " << bytes << " bytes of files";
  for (const auto& [path, data] : files) ExpectContent(path, data);
}

TEST_F(MaintenanceTest, ReturningNodeDropsWhatWasDeletedWhileItWasOut) {
  Start(4);
  const auto keep = Pattern(3 << 20, 1);
  const auto drop = Pattern(6 << 20, 2);
  Write("keep", keep);
  Write("drop", drop);
  ASSERT_TRUE(WaitHealthy()) << AdminRepair();
  const uint32_t victim = NodeIdOf(0);
  cluster_->KillDatanode(0);
  ASSERT_TRUE(WaitUntil([&] { return StateOf(victim) == OUT; }, seconds(30)));
  ASSERT_TRUE(client_->Remove("default", "drop").ok());
  // Collected on the up nodes after the grace.
  ASSERT_TRUE(WaitUntil([&] { return Cluster().garbage_pending() == 0; }, seconds(30)))
      << AdminRepair();
  const BlockFileUsage before = BlockFilesOf(cluster_->datanode_dir(0));
  ASSERT_GT(before.bytes, 0u) << "datanode 0 held no blocks before it went out";

  cluster_->RestartDatanode(0);
  ASSERT_TRUE(WaitUntil([&] { return StateOf(victim) == UP; }, seconds(30)));
  ASSERT_TRUE(WaitHealthy()) << AdminRepair();
  // Space of the deleted file is reclaimed: what remains is at most one copy of `keep` (the
  // node may serve its PGs again) plus block headers.
  ASSERT_TRUE(WaitUntil(
      [&] { return BlockFilesOf(cluster_->datanode_dir(0)).bytes <= keep.size() + (64 << 10); },
      seconds(30)))
      << "datanode 0 still holds " << BlockFilesOf(cluster_->datanode_dir(0)).bytes << " bytes";
  ExpectContent("keep", keep);
  EXPECT_EQ(client_->Resolve("default", "drop").status().code(), Code::NOT_FOUND);
}

TEST_F(MaintenanceTest, ScrubRepairsAFlippedByteWithoutAnyRead) {
  // A pass verifies every block once per period, paced evenly: a byte flipped at any time is
  // found within about one period (plus one maintenance look and the report).
  constexpr int kPeriodMs = 4000;
  Start(3, {"--scrub-period-ms", std::to_string(kPeriodMs)});
  const auto data = Pattern(1 << 20, 3);
  Write("scrubbed", data);
  ASSERT_TRUE(WaitHealthy()) << AdminRepair();
  // Flip the last byte (payload) of one of datanode 0's block files.
  std::string victim;
  for (auto& e : fs::recursive_directory_iterator(cluster_->datanode_dir(0) + "/blocks")) {
    if (e.is_regular_file()) victim = e.path().string();
  }
  ASSERT_FALSE(victim.empty());
  const auto size = fs::file_size(victim);
  char original;
  {
    std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(static_cast<std::streamoff>(size - 1));
    f.get(original);
    f.seekp(static_cast<std::streamoff>(size - 1));
    f.put(static_cast<char>(original ^ 0x5a));
  }
  const uint64_t reported = Cluster().corruptions_reported();
  const auto flipped_at = std::chrono::steady_clock::now();
  // Scrub reports it, drops the copy, and repair fetches a good one from a peer.
  ASSERT_TRUE(WaitUntil([&] { return Cluster().corruptions_reported() > reported; }, seconds(30)))
      << "scrub never reported the flipped byte";
  const auto found_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - flipped_at)
                            .count();
  std::printf("scrub found the flipped byte after %ld ms (period %d ms)\n",
              static_cast<long>(found_ms), kPeriodMs);
  EXPECT_LT(found_ms, kPeriodMs + 5000) << "not found within the scrub period";
  ASSERT_TRUE(WaitUntil(
      [&] {
        std::ifstream in(victim, std::ios::binary);
        if (!in || fs::file_size(victim) != size) return false;
        in.seekg(static_cast<std::streamoff>(size - 1));
        char now;
        return in.get(now) && now == original;
      },
      seconds(30)))
      << "the block was not rebuilt";
  ASSERT_TRUE(WaitHealthy()) << AdminRepair();
  ExpectContent("scrubbed", data);
  // Every datanode's scrub shows in `admin repair`, keeping pace with its period.
  const std::string report = AdminRepair();
  EXPECT_NE(report.find("scrub nodes=3 "), std::string::npos) << report;
  EXPECT_NE(report.find("period-s=4 nodes-behind=0"), std::string::npos) << report;
  EXPECT_NE(cluster_->metanode().Output().find("source=scrub"), std::string::npos);
}

// The same for a block kept in the datanode's RocksDB (a 16 KiB file is one small block): the
// scrubber reads it through the same PrepareRead/ReadInto, and repair rewrites it there.
TEST_F(MaintenanceTest, ScrubRepairsAFlippedByteInASmallBlock) {
  Start(3, {"--scrub-period-ms", "1000"});
  const auto data = Pattern(16 << 10, 4);
  Write("scrubbed-small", data);
  ASSERT_TRUE(WaitHealthy()) << AdminRepair();
  // The running datanode holds its RocksDB locked: stop it, damage the stored value the way a
  // bad DIMM or firmware would (RocksDB's own checksums cover the damaged bytes), restart it.
  const std::string small_dir = cluster_->datanode_dir(0) + "/small";
  cluster_->KillDatanode(0);
  BlockKey victim;
  std::vector<uint32_t> stored_crcs;
  {
    auto store = datanode::SmallStore::Open(small_dir);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    int blocks = 0;
    ASSERT_TRUE((*store)
                    ->ForEach([&](datanode::BlockMeta&& meta, uint64_t) {
                      victim = meta.info.key();
                      stored_crcs = meta.crcs;
                      ++blocks;
                    })
                    .ok());
    ASSERT_EQ(blocks, 1);
    rocksdb::PinnableSlice value;
    ASSERT_TRUE((*store)->GetData(victim, &value).ok());
    std::vector<uint8_t> bytes(value.data(), value.data() + value.size());
    ASSERT_EQ(bytes.size(), data.size());
    bytes[9000] ^= 0x5a;
    ASSERT_TRUE((*store)->OverwriteDataForTest(victim, bytes).ok());
  }
  const uint64_t reported = Cluster().corruptions_reported();
  cluster_->RestartDatanode(0);
  ASSERT_TRUE(WaitUntil([&] { return Cluster().corruptions_reported() > reported; }, seconds(30)))
      << "scrub never reported the flipped byte" << Logs();
  std::smatch m;
  const std::string output = cluster_->datanode(0).Output();
  ASSERT_TRUE(std::regex_search(output, m, std::regex(R"(admin=(\S+))")));
  const std::string admin = m[1];
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto [code, body] = HttpGet(admin, "/metrics");
        std::smatch n;
        return std::regex_search(body, n,
                                 std::regex(R"(granary_datanode_repaired_blocks_total (\d+))")) &&
               std::stoull(n[1]) >= 1;
      },
      seconds(30)))
      << "the small block was not rebuilt" << Logs();
  ASSERT_TRUE(WaitHealthy()) << AdminRepair();
  ExpectContent("scrubbed-small", data);
  // The copy now on datanode 0 is a good one: its bytes match the CRCs recorded with it.
  cluster_->KillDatanode(0);
  auto store = datanode::SmallStore::Open(small_dir);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  rocksdb::PinnableSlice value;
  ASSERT_TRUE((*store)->GetData(victim, &value).ok());
  EXPECT_EQ(BlockCrcs(reinterpret_cast<const uint8_t*>(value.data()), value.size()), stored_crcs);
  EXPECT_EQ(std::memcmp(value.data(), data.data(), data.size()), 0);
}

TEST_F(MaintenanceTest, HundredOverwritesLeaveAboutOneCopyOnDisk) {
  Start(3);
  const size_t size = 1 << 20;
  for (int i = 0; i < 100; ++i) Write("ckpt", Pattern(size, 100 + i));
  const auto last = Pattern(size, 199);
  ExpectContent("ckpt", last);
  // Three replicas of one 1 MiB file, plus headers, once the overwritten slices are collected.
  auto total = [&] {
    uint64_t sum = 0;
    for (int i = 0; i < 3; ++i) sum += BlockFilesOf(cluster_->datanode_dir(i)).bytes;
    return sum;
  };
  ASSERT_TRUE(WaitUntil([&] { return total() <= 3 * (size + (64 << 10)); }, seconds(60)))
      << "still " << total() << " bytes of blocks; " << AdminRepair();
  ExpectContent("ckpt", last);
}

TEST_F(MaintenanceTest, PartialOverwritesAreCompactedIntoOneSliceAndCollected) {
  Start(3);
  const size_t size = 1 << 20;
  std::vector<uint8_t> model = Pattern(size, 300);
  Write("fragmented", model);
  std::mt19937_64 rng(301);
  {
    auto f = client_->Open("default", "fragmented");
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    // 100 flushed writes of 100 KiB at random offsets: each a slice partly hiding older ones.
    for (int i = 0; i < 100; ++i) {
      const size_t len = 100 << 10, off = rng() % (size - len);
      auto patch = Pattern(len, 400 + i);
      std::copy(patch.begin(), patch.end(), model.begin() + static_cast<ptrdiff_t>(off));
      ASSERT_TRUE((*f)->Pwrite(patch, off).ok());
      ASSERT_TRUE((*f)->Flush().ok());
    }
    ASSERT_TRUE((*f)->Close().ok());
  }
  auto attr = client_->Resolve("default", "fragmented");
  ASSERT_TRUE(attr.ok());
  // The compactor rewrites the range as one slice; the same bytes read back.
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto map = client_->meta().ReadMap(attr->ino(), 0, size);
        return map.ok() && map->extents_size() == 1;
      },
      seconds(60)))  // the compactor runs every 300 ms; a loaded machine may take a while
      << "range never compacted" << Logs();
  ExpectContent("fragmented", model);
  // The slices it replaced are collected: about one copy per replica is left.
  auto total = [&] {
    uint64_t sum = 0;
    for (int i = 0; i < 3; ++i) sum += BlockFilesOf(cluster_->datanode_dir(i)).bytes;
    return sum;
  };
  ASSERT_TRUE(WaitUntil([&] { return total() <= 3 * (size + (64 << 10)); }, seconds(30)))
      << "still " << total() << " bytes of blocks; " << AdminRepair();
  ExpectContent("fragmented", model);
}

TEST_F(MaintenanceTest, FsckFindsMissingAndDeadBlocksAndRepairsThem) {
  Start(3);
  std::map<std::string, std::vector<uint8_t>> files;
  for (int i = 0; i < 3; ++i) files["c" + std::to_string(i)] = Pattern((2 << 20) + i, 500 + i);
  for (const auto& [path, data] : files) Write(path, data);
  ASSERT_TRUE(WaitHealthy()) << AdminRepair();
  // Datanodes reconcile (drop dead and left blocks) once healthy: let that settle first, so the
  // damage below is found by fsck and not cleaned up behind its back.
  const uint64_t epoch = Cluster().epoch();
  for (int i = 0; i < 3; ++i) {
    std::smatch m;
    const std::string output = cluster_->datanode(i).Output();
    ASSERT_TRUE(std::regex_search(output, m, std::regex(R"(admin=(\S+))")));
    const std::string admin = m[1];
    ASSERT_TRUE(WaitUntil(
        [&] {
          auto [code, body] = HttpGet(admin, "/metrics");
          return body.find(fmt::format("granary_datanode_reconciled_epoch {}", epoch)) !=
                 std::string::npos;
        },
        seconds(30)))
        << "datanode " << i << " never reconciled epoch " << epoch;
  }
  auto [rc, out] = Fsck();
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("missing=0 dead=0 misplaced=0 header-mismatch=0"), std::string::npos) << out;
  EXPECT_NE(out.find("\nclean"), std::string::npos) << out;

  // Datanode 0 loses one copy; a block of a slice that never existed appears on it.
  const uint32_t id = NodeIdOf(0);
  std::string control;
  const auto status = Cluster();
  for (const auto& n : status.nodes()) {
    if (n.id() == id) control = n.address();
  }
  auto stub =
      DataControl::NewStub(grpc::CreateChannel(control, grpc::InsecureChannelCredentials()));
  ListBlocksRequest list;
  list.set_all(true);
  ListBlocksReply listed;
  {
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub->ListBlocks(&ctx, list, &listed).ok());
  }
  ASSERT_GT(listed.blocks_size(), 0);
  const BlockInfo lost = listed.blocks(0);
  {
    DeleteBlocksRequest del;
    *del.add_blocks() = lost.key();
    DeleteBlocksReply deleted;
    grpc::ClientContext ctx;
    ASSERT_TRUE(stub->DeleteBlocks(&ctx, del, &deleted).ok());
    ASSERT_EQ(deleted.deleted(), 1u);
  }
  {
    auto map = client_->meta().GetClusterMap(0);
    ASSERT_TRUE(map.ok());
    auto placement = placement::PlacementMap::Deserialize(map->placement());
    ASSERT_TRUE(placement.ok());
    const uint32_t pool = lost.origin().pool_id();
    auto epoch = placement->PgEpoch(pool, 0);
    ASSERT_TRUE(epoch.ok());
    DataRequest req;
    req.set_op(WRITE_BLOCK);
    req.set_pool_id(pool);
    req.set_pg(0);
    req.set_pg_epoch(*epoch);
    req.mutable_block()->set_slice_id(uint64_t{1} << 40);  // never allocated
    req.mutable_origin()->set_pool_id(pool);
    req.mutable_origin()->set_pg(0);
    const auto bytes = Pattern(4096, 9);
    for (uint32_t crc : BlockCrcs(bytes.data(), bytes.size())) req.add_crcs(crc);
    auto conns = DataConnectionPool::Create();
    auto reply = conns->Call(cluster_->datanode_data_address(0), req, bytes,
                             DeadlineIn(std::chrono::seconds(10)));
    ASSERT_TRUE(reply.ok()) << reply.status().ToString();
    ASSERT_TRUE(ReplyStatus(*reply, "dn0").ok()) << ReplyStatus(*reply, "dn0").ToString();
  }
  std::tie(rc, out) = Fsck();
  EXPECT_EQ(rc, 1) << out;
  EXPECT_NE(out.find("missing=1 dead=1"), std::string::npos) << out;
  EXPECT_NE(out.find(fmt::format("missing: slice {} block {}", lost.key().slice_id(),
                                 lost.key().block_index())),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("\nproblems"), std::string::npos) << out;

  std::tie(rc, out) = Fsck(/*repair=*/true);
  EXPECT_NE(out.find("deleted=1 repairs-requested=1"), std::string::npos) << out;
  ASSERT_TRUE(WaitUntil([&] { return Fsck().first == 0; }, seconds(30))) << Fsck().second;
  for (const auto& [path, data] : files) ExpectContent(path, data);
}

}  // namespace
}  // namespace granary::testing
