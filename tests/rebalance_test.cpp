// PG moves (issue 8, docs/maintenance.md "PG moves") on real processes: a datanode joins a
// cluster holding data, the balancer moves PGs onto it, and while the newcomer fills (repair is
// throttled so the move lasts seconds) a writer and a reader keep going. Writes during the move
// reach the old members as well as the new ones; nothing fails, every byte reads back; after the
// move completes the cluster is healthy, the old members' copies are reclaimed, and any one old
// member can be lost. A move in progress survives a metanode restart.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/erasure.h"
#include "granary/data.grpc.pb.h"
#include "placement/placement.h"
#include "placement/stripe.h"
#include "tests/ec_support.h"

namespace granary::testing {
namespace {

using client::Client;

class RebalanceTest : public ::testing::Test {
 protected:
  // Repair at 1 MiB/s per node: the newcomer needs seconds to fill, so the move is observable.
  void Start(int datanodes) {
    ClusterOptions o;
    o.datanodes = datanodes;
    o.down_after_ms = 1500;
    o.heartbeat_ms = 300;
    o.metanode_flags = {"--gc-grace-ms", "500"};
    o.all_datanode_flags = {"--maintenance-ms", "200", "--repair-mib-per-s", "1"};
    cluster_ = std::make_unique<LocalCluster>(std::move(o));
    cluster_->Start();
    client_ = Connect();
  }

  std::unique_ptr<Client> Connect() {
    client::ClientOptions co;
    co.meta = cluster_->meta_address();
    co.request_timeout = std::chrono::seconds(5);
    co.operation_timeout = std::chrono::seconds(60);
    auto c = Client::Connect(co);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? std::move(*c) : nullptr;
  }

  Status Write(Client& c, const std::string& path, const std::vector<uint8_t>& data) {
    auto f = c.Open(volume_, path, {.create = true, .truncate = true});
    if (!f.ok()) return f.status();
    GRANARY_TRY((*f)->Pwrite(data, 0));
    return (*f)->Close();
  }

  // OK when the file reads back exactly.
  Status Check(Client& c, const std::string& path, const std::vector<uint8_t>& want) {
    auto f = c.Open(volume_, path);
    if (!f.ok()) return f.status();
    std::vector<uint8_t> got(want.size() + 1);
    auto n = (*f)->Pread(got, 0);
    if (!n.ok()) return n.status();
    if (*n != want.size()) {
      return Corrupt(fmt::format("{}: {} bytes, want {}", path, *n, want.size()));
    }
    got.resize(*n);
    if (got != want) return Corrupt(fmt::format("{}: bytes differ", path));
    return Status::Ok();
  }

  ClusterStatusReply Cluster() {
    auto s = client_->meta().ClusterStatus();
    return s.ok() ? *s : ClusterStatusReply();
  }

  placement::PlacementMap Map() {
    auto m = client_->meta().GetClusterMap(0);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    auto p = placement::PlacementMap::Deserialize(m.ok() ? m->placement() : "");
    return p.ok() ? std::move(*p) : placement::PlacementMap();
  }

  // Datanodes that left a PG in a move still in progress, and the moving PGs.
  static std::set<uint32_t> Leaving(const placement::PlacementMap& map) {
    std::set<uint32_t> out;
    for (const PoolSpec& pool : map.pools()) {
      for (uint32_t pg = 0; pg < pool.pg_count(); ++pg) {
        auto members = map.Members(pool.id(), pg);
        auto from = map.MovingFrom(pool.id(), pg);
        for (uint32_t id : *from) {
          if (id != placement::kNoNode &&
              std::find(members->begin(), members->end(), id) == members->end()) {
            out.insert(id);
          }
        }
      }
    }
    return out;
  }

  // (slice, block, fragment) of every block stored on the datanode at control address `address`.
  static std::set<std::tuple<uint64_t, uint32_t, uint32_t>> StoredBlocks(
      const std::string& address) {
    auto stub =
        DataControl::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    ListBlocksRequest req;
    req.set_all(true);
    ListBlocksReply reply;
    std::set<std::tuple<uint64_t, uint32_t, uint32_t>> out;
    if (!stub->ListBlocks(&ctx, req, &reply).ok()) return out;
    for (const BlockInfo& b : reply.blocks()) {
      out.emplace(b.key().slice_id(), b.key().block_index(), b.key().fragment());
    }
    return out;
  }

  // Datanode index of node id `id` (its data dir's uuid file names it).
  int IndexOf(uint32_t id) {
    const auto status = Cluster();
    for (int i = 0; i < cluster_->datanode_count(); ++i) {
      std::ifstream in(cluster_->datanode_dir(i) + "/node.uuid");
      std::string uuid;
      in >> uuid;
      for (const auto& n : status.nodes()) {
        if (n.uuid() == uuid && n.id() == id) return i;
      }
    }
    return -1;
  }

  std::string AdminRepair() {
    Process p({GranaryBinary(), "admin", "--meta", cluster_->meta_address(), "repair"});
    p.Wait(seconds(30));
    return p.Output();
  }

  std::string Logs() {
    std::string out = "\n--- metanode\n" + cluster_->metanode().Output();
    for (int i = 0; i < cluster_->datanode_count(); ++i) {
      out += fmt::format("\n--- datanode {}\n{}", i, cluster_->datanode(i).Output());
    }
    return out;
  }

  // The join scenario over volume_ (a replicated or an EC pool): see the file comment.
  void JoinWithWriterAndReader(size_t file_size, size_t probe_size, int copies);

  std::unique_ptr<LocalCluster> cluster_;
  std::unique_ptr<Client> client_;
  std::string volume_ = "default";
};

// `copies`: bytes on disk per byte of file once the move is over (3 for replicated:3, 1.5 for
// ec:2+1 is passed as 2 to leave room for headers).
void RebalanceTest::JoinWithWriterAndReader(size_t file_size, size_t probe_size, int copies) {
  std::mutex mu;
  std::map<std::string, std::vector<uint8_t>> files;  // acknowledged writes
  uint64_t bytes = 0;
  for (int i = 0; i < 16; ++i) {
    auto data = Pattern(file_size + 4097 * i, 100 + i);
    ASSERT_TRUE(Write(*client_, "pre" + std::to_string(i), data).ok());
    bytes += data.size();
    files["pre" + std::to_string(i)] = std::move(data);
  }
  ASSERT_TRUE(WaitUntil([&] { return Cluster().healthy(); }, seconds(60))) << AdminRepair();

  const int added = cluster_->AddDatanode();
  ASSERT_TRUE(cluster_->WaitForUpDatanodes(4));
  ASSERT_TRUE(WaitUntil([&] { return Cluster().pgs_moving() > 0; }, seconds(30))) << AdminRepair();
  const placement::PlacementMap moving = Map();
  const std::set<uint32_t> leaving = Leaving(moving);
  ASSERT_FALSE(leaving.empty());
  // What an operator sees during the move: not healthy.
  std::string moving_report;
  EXPECT_TRUE(WaitUntil(
      [&] {
        moving_report = AdminRepair();
        return moving_report.find("\nrepairing\n") != std::string::npos;
      },
      seconds(30)))
      << moving_report;

  // A writer and a reader, each with its own client, for as long as the move lasts.
  std::atomic<bool> stop{false};
  std::atomic<int> writes{0}, reads{0}, failures{0};
  std::string first_failure;
  auto fail = [&](const std::string& what) {
    std::lock_guard lock(mu);
    if (failures++ == 0) first_failure = what;
  };
  std::thread writer([&, c = Connect()] {
    for (int i = 0; !stop; ++i) {
      auto data = Pattern(300000 + 999 * (i % 50), 5000 + i);
      const std::string path = "during" + std::to_string(i);
      Status st = Write(*c, path, data);
      if (!st.ok()) {
        fail(path + ": " + st.ToString());
        continue;
      }
      ++writes;
      std::lock_guard lock(mu);
      bytes += data.size();
      files[path] = std::move(data);
    }
  });
  std::thread reader([&, c = Connect()] {
    for (int round = 0; !stop; ++round) {
      std::vector<std::pair<std::string, std::vector<uint8_t>>> batch;
      {
        std::lock_guard lock(mu);
        for (const auto& [path, data] : files) batch.emplace_back(path, data);
      }
      for (const auto& [path, data] : batch) {
        if (stop) break;
        Status st = Check(*c, path, data);
        if (!st.ok()) fail(st.ToString());
        ++reads;
      }
    }
  });

  // A probe written during the move: every old member leaving one of its PGs got its copy (or
  // its slot's fragment).
  const auto probe = Pattern(probe_size, 77);
  ASSERT_TRUE(client_->cluster().Refresh().ok());
  ASSERT_TRUE(Write(*client_, "probe", probe).ok());
  {
    const placement::PlacementMap now = Map();
    auto f = client_->Open(volume_, "probe");
    ASSERT_TRUE(f.ok());
    auto map = client_->meta().ReadMap((*f)->ino(), 0, probe.size());
    ASSERT_TRUE(map.ok()) << map.status().ToString();
    const Layout& layout = map->attr().layout();
    const PoolSpec* pool = now.FindPool(layout.pool_id());
    ASSERT_NE(pool, nullptr);
    const uint64_t block_size = layout.block_size() ? layout.block_size() : pool->block_size();
    std::map<uint32_t, std::set<std::tuple<uint64_t, uint32_t, uint32_t>>> stored;
    const ClusterStatusReply status = Cluster();
    for (const auto& n : status.nodes()) stored[n.id()] = StoredBlocks(n.address());
    int checked = 0;
    for (const Extent& e : map->extents()) {
      for (uint32_t b = 0; uint64_t{b} * block_size < e.slice_length(); ++b) {
        auto pg = placement::BlockPg(layout, e.slice_id(), b, pool->pg_count());
        ASSERT_TRUE(pg.ok());
        // Only PGs that moved, from the same list, all along: their writes went to both sets.
        auto move_epoch = now.MoveEpoch(pool->id(), *pg);
        if (*move_epoch == 0 || *move_epoch != *moving.MoveEpoch(pool->id(), *pg)) continue;
        const uint64_t length = std::min<uint64_t>(block_size, e.slice_length() - b * block_size);
        auto holds = [&](uint32_t id, uint32_t slot) {
          auto fragment = StoredFragment(*pool, e.encoding(), length, block_size, slot);
          return !fragment || stored[id].contains({e.slice_id(), b, *fragment});
        };
        auto members = now.Members(pool->id(), *pg);
        auto from = now.MovingFrom(pool->id(), *pg);
        for (uint32_t slot = 0; slot < members->size(); ++slot) {
          EXPECT_TRUE(holds((*members)[slot], slot))
              << "member " << (*members)[slot] << " lacks slice " << e.slice_id() << " block " << b;
        }
        for (uint32_t slot = 0; slot < from->size(); ++slot) {
          if ((*from)[slot] == placement::kNoNode) continue;
          ++checked;
          EXPECT_TRUE(holds((*from)[slot], slot))
              << "previous member " << (*from)[slot] << " of moving pg " << *pg << " lacks slice "
              << e.slice_id() << " block " << b;
        }
      }
    }
    EXPECT_GT(checked, 0) << "no block of the probe landed in a moving PG";
  }
  {
    std::lock_guard lock(mu);
    bytes += probe.size();
    files["probe"] = probe;
  }

  // The move completes once the newcomer has filled; the writer and reader run until then.
  const bool done =
      WaitUntil([&] { return Cluster().pgs_moving() == 0 && Cluster().healthy(); }, seconds(120));
  stop = true;
  writer.join();
  reader.join();
  ASSERT_TRUE(done) << AdminRepair() << Logs();
  EXPECT_EQ(failures.load(), 0) << first_failure;
  EXPECT_GT(writes.load(), 0);
  EXPECT_GT(reads.load(), 0);
  const std::string report = AdminRepair();
  EXPECT_NE(report.find("pgs-moving=0"), std::string::npos) << report;
  EXPECT_NE(report.find("healthy"), std::string::npos) << report;

  // The newcomer holds its share; the old members dropped theirs: three copies on disk.
  EXPECT_GT(BlockFilesOf(cluster_->datanode_dir(added)).bytes, bytes / 8);
  EXPECT_NE(Logs().find("event=pg_moves_completed"), std::string::npos);
  auto total = [&] {
    uint64_t sum = 0;
    for (int i = 0; i < cluster_->datanode_count(); ++i)
      sum += BlockFilesOf(cluster_->datanode_dir(i)).bytes;
    return sum;
  };
  ASSERT_TRUE(WaitUntil([&] { return total() <= copies * bytes + 3 * files.size() * (64 << 10); },
                        seconds(60)))
      << "blocks on disk: " << total() << " for " << bytes << " bytes of files";

  // Losing any one old member that left a PG loses nothing.
  const int victim = IndexOf(*leaving.begin());
  ASSERT_GE(victim, 0);
  cluster_->KillDatanode(victim);
  for (const auto& [path, data] : files) {
    Status st = Check(*client_, path, data);
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
}

TEST_F(RebalanceTest, WritesDuringAJoinReachOldAndNewMembersAndNothingIsLost) {
  Start(3);
  JoinWithWriterAndReader(1 << 20, 12 << 20, 3);
}

// ec:2+1 on 3 datanodes, a fourth joins: fragment i goes to slot i's new member and to its
// previous one while the PG moves; the newcomer copies its fragments from the previous members.
TEST_F(RebalanceTest, Ec21JoinWritesEachFragmentToTheOldAndNewSlotMember) {
  Start(3);
  PoolSpec spec = EcPool("ec", 2, 1, 1 << 20);
  CreatePoolAndVolume(client_->meta(), spec);
  volume_ = "ec";
  JoinWithWriterAndReader(2 << 20, 8 << 20, 2);
}

TEST_F(RebalanceTest, MoveInProgressResumesAfterMetanodeRestart) {
  Start(3);
  std::map<std::string, std::vector<uint8_t>> files;
  for (int i = 0; i < 12; ++i) {
    files["r" + std::to_string(i)] = Pattern((1 << 20) + 333 * i, 900 + i);
    ASSERT_TRUE(Write(*client_, "r" + std::to_string(i), files["r" + std::to_string(i)]).ok());
  }
  ASSERT_TRUE(WaitUntil([&] { return Cluster().healthy(); }, seconds(60))) << AdminRepair();
  cluster_->AddDatanode();
  ASSERT_TRUE(cluster_->WaitForUpDatanodes(4));
  ASSERT_TRUE(WaitUntil([&] { return Cluster().pgs_moving() > 0; }, seconds(30)));
  const placement::PlacementMap before = Map();

  cluster_->KillMetanode();
  cluster_->RestartMetanode();
  // The moves are in the durable map: same PGs, same previous members.
  const placement::PlacementMap after = Map();
  ASSERT_GE(after.epoch(), before.epoch());
  if (after.epoch() == before.epoch()) {
    EXPECT_TRUE(after == before);
  }
  EXPECT_GT(after.MovingPgs(), 0u);
  EXPECT_FALSE(Cluster().healthy());
  for (const auto& [path, data] : files) {
    Status st = Check(*client_, path, data);
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
  ASSERT_TRUE(
      WaitUntil([&] { return Cluster().pgs_moving() == 0 && Cluster().healthy(); }, seconds(120)))
      << AdminRepair() << Logs();
  for (const auto& [path, data] : files) {
    Status st = Check(*client_, path, data);
    EXPECT_TRUE(st.ok()) << st.ToString();
  }
}

}  // namespace
}  // namespace granary::testing
