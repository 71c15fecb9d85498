// Erasure-coded pools end to end: a metanode and 6 (or 11) datanodes as real processes, files
// written and read through libgranary in ec:4+2 (and ec:8+3) pools, with fragments deleted,
// corrupted, stalled (SIGSTOP) and their datanodes killed along the way.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "common/data_connection.h"
#include "common/erasure.h"
#include "tests/ec_support.h"

namespace granary::testing {
namespace {

constexpr uint64_t kBlock = 1 << 20;  // small blocks keep the test fast; F = 256 KiB for 4+2

class EcTest : public ::testing::Test {
 protected:
  void StartCluster(int datanodes, uint32_t k, uint32_t m) {
    ClusterOptions options;
    options.datanodes = datanodes;
    for (int i = 0; i < datanodes; ++i) options.datanode_flags.push_back({"--workers", "2"});
    cluster_ = std::make_unique<LocalCluster>(std::move(options));
    cluster_->Start();
    // A generous fragment deadline: a loaded CI machine must not turn healthy reads into
    // rebuilds (the tests that want a short one connect their own client).
    client_ = Connect(std::chrono::milliseconds(5000));
    volume_ = fmt::format("ec{}{}", k, m);
    CreatePoolAndVolume(client_->meta(), EcPool(volume_, k, m, kBlock));
    k_ = k;
    m_ = m;
  }

  std::unique_ptr<client::Client> Connect(std::chrono::milliseconds fragment_deadline) {
    client::ClientOptions o;
    o.meta = cluster_->meta_address();
    o.operation_timeout = std::chrono::seconds(60);
    o.request_timeout = std::chrono::seconds(10);
    o.fragment_deadline = fragment_deadline;
    auto c = client::Client::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(*c);
  }

  uint64_t fragment_size() const { return EcFragmentSize(kBlock, static_cast<int>(k_)); }

  void Write(const std::string& path, const std::vector<uint8_t>& data) {
    WriteFile(*client_, volume_, path, data);
  }
  std::vector<uint8_t> Read(const std::string& path) { return ReadFile(*client_, volume_, path); }

  // Bytes [offset, offset + length) through one Pread.
  std::vector<uint8_t> ReadRange(const std::string& path, uint64_t offset, size_t length) {
    auto f = client_->Open(volume_, path);
    EXPECT_TRUE(f.ok());
    if (!f.ok()) return {};
    std::vector<uint8_t> out(length);
    auto n = (*f)->Pread(out, offset);
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    if (!n.ok()) return {};
    out.resize(*n);
    return out;
  }

  ReadMapReply Map(const std::string& path) {
    auto attr = client_->Resolve(volume_, path);
    EXPECT_TRUE(attr.ok()) << attr.status().ToString();
    auto map = client_->meta().ReadMap(attr->ino());
    EXPECT_TRUE(map.ok()) << map.status().ToString();
    return *map;
  }

  client::BlockTarget Target(const ReadMapReply& map, uint64_t slice, uint32_t block) {
    EXPECT_TRUE(client_->cluster().Refresh().ok());
    auto t = client_->cluster().Locate(map.attr().layout(), slice, block);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return *t;
  }

  // The block file of {slice, block, fragment} in datanode `index`'s directory, or "".
  std::string BlockFile(int index, uint64_t slice, uint32_t block, uint32_t fragment) {
    const std::string name = fmt::format("{:016x}-{:08x}-{:04x}.blk", slice, block, fragment);
    for (const auto& e :
         std::filesystem::recursive_directory_iterator(cluster_->datanode_dir(index))) {
      if (e.is_regular_file() && e.path().filename() == name) return e.path().string();
    }
    return "";
  }

  static DataRequest BlockRequest(DataOp op, const client::BlockTarget& t, uint64_t slice,
                                  uint32_t block, uint32_t fragment) {
    DataRequest req;
    req.set_op(op);
    req.set_pool_id(t.pool_id);
    req.set_pg(t.pg);
    req.set_pg_epoch(t.pg_epoch);
    req.mutable_block()->set_slice_id(slice);
    req.mutable_block()->set_block_index(block);
    req.mutable_block()->set_fragment(fragment);
    return req;
  }

  // Whether datanode `index` stores {slice, block, fragment} of PG `t` in any form (a file or a
  // small block in its RocksDB, which the running datanode keeps locked): asked over the data
  // protocol, a 1-byte read is OK where it is stored and NOT_FOUND elsewhere.
  bool Holds(int index, const client::BlockTarget& t, uint64_t slice, uint32_t block,
             uint32_t fragment) {
    DataRequest req = BlockRequest(DataOp::READ_BLOCK, t, slice, block, fragment);
    req.set_length(1);
    auto reply = data_->Call(cluster_->datanode_data_address(index), req, {},
                             DeadlineIn(std::chrono::seconds(5)));
    EXPECT_TRUE(reply.ok()) << reply.status().ToString();
    if (!reply.ok()) return false;
    const Code code = reply->header.code();
    EXPECT_TRUE(code == Code::OK || code == Code::NOT_FOUND) << reply->header.message();
    return code == Code::OK;
  }

  Status DeleteFragment(const client::BlockTarget& t, uint64_t slice, uint32_t block,
                        uint32_t fragment) {
    DataRequest req = BlockRequest(DataOp::DELETE_BLOCK, t, slice, block, fragment);
    const std::string& address = t.members[fragment].data_address;
    auto reply = data_->Call(address, req, {}, DeadlineIn(std::chrono::seconds(5)));
    return reply.ok() ? ReplyStatus(*reply, address) : reply.status();
  }

  std::unique_ptr<LocalCluster> cluster_;
  std::unique_ptr<client::Client> client_;
  std::shared_ptr<DataConnectionPool> data_ = DataConnectionPool::Create();
  std::string volume_;
  uint32_t k_ = 0, m_ = 0;
};

class Ec42Test : public EcTest {
 protected:
  void SetUp() override { StartCluster(6, 4, 2); }
};

TEST_F(Ec42Test, FilesAroundFragmentAndStripeBoundariesRoundTripByteExact) {
  const uint64_t f = fragment_size();
  const uint64_t b = kBlock;
  for (uint64_t size : {uint64_t{0}, uint64_t{1}, f - 1, f, f + 1, b - 1, b, b + 1, b + f,
                        2 * b - 1, 3 * b + f + 17, 9 * b + 5}) {
    SCOPED_TRACE(fmt::format("size {}", size));
    const std::string path = fmt::format("size-{}", size);
    auto data = Pattern(size, size);
    Write(path, data);
    auto back = Read(path);
    ASSERT_EQ(back.size(), data.size());
    EXPECT_TRUE(back == data);
    // A slice of at least one stripe (one block) is erasure-coded; a shorter one replicated.
    const ReadMapReply map = Map(path);
    for (const Extent& e : map.extents()) {
      EXPECT_EQ(e.encoding(),
                e.slice_length() >= b ? Encoding::ERASURE_CODED : Encoding::REPLICATED)
          << "slice of " << e.slice_length() << " bytes";
    }
  }
  // Reads that start and end inside fragments, across fragment and block boundaries.
  const uint64_t size = 3 * b + f + 17;
  auto data = Pattern(size, size);
  std::vector<std::pair<uint64_t, size_t>> ranges = {
      {f - 10, 20}, {b - 5000, 10000}, {3 * f + 4095, f + 2}, {3 * b, f + 17}, {1, size - 2}};
  std::mt19937_64 rng(3);
  for (int i = 0; i < 20; ++i) {
    uint64_t off = rng() % size;
    ranges.emplace_back(off, 1 + rng() % std::min<uint64_t>(size - off, 2 * b));
  }
  for (auto [off, len] : ranges) {
    auto got = ReadRange(fmt::format("size-{}", size), off, len);
    ASSERT_EQ(got.size(), len) << off;
    EXPECT_TRUE(std::equal(got.begin(), got.end(), data.begin() + off)) << "at " << off;
  }
}

TEST_F(Ec42Test, FragmentIOfEveryBlockLivesOnMemberIAndTheShortTailOnMembers0ToM) {
  Write("placed", Pattern(kBlock + 5, 1));  // one EC block and a 5-byte replicated tail
  ReadMapReply map = Map("placed");
  ASSERT_EQ(map.extents_size(), 1);
  const uint64_t slice = map.extents(0).slice_id();
  client::BlockTarget t0 = Target(map, slice, 0);
  ASSERT_EQ(t0.members.size(), 6u);
  for (uint32_t i = 0; i < 6; ++i) {
    int node = DatanodeIndex(*cluster_, t0.members[i].data_address);
    ASSERT_GE(node, 0);
    EXPECT_NE(BlockFile(node, slice, 0, i), "") << "fragment " << i << " not on member " << i;
    EXPECT_EQ(std::filesystem::file_size(BlockFile(node, slice, 0, i)) % 4096, 0u);
  }
  client::BlockTarget t1 = Target(map, slice, 1);
  std::set<int> holders;
  for (int node = 0; node < cluster_->datanode_count(); ++node) {
    if (Holds(node, t1, slice, 1, 0)) holders.insert(node);
  }
  std::set<int> expected;
  for (uint32_t i = 0; i <= m_; ++i)
    expected.insert(DatanodeIndex(*cluster_, t1.members[i].data_address));
  EXPECT_EQ(holders, expected)
      << "the tail block's M+1 copies belong on the PG's first M+1 members";
}

// Every combination of up to M lost fragments of 4+2 reads back byte-exact.
TEST_F(Ec42Test, EveryLossOfUpToTwoFragmentsReadsByteExact) {
  const uint64_t f = fragment_size();
  const uint64_t size = 2 * kBlock + f + 3;  // two EC blocks and a replicated tail
  int combinations = 0;
  for (uint32_t mask = 0; mask < 64; ++mask) {
    if (__builtin_popcount(mask) > 2) continue;
    ++combinations;
    SCOPED_TRACE(fmt::format("lost fragments mask {:06b}", mask));
    const std::string path = fmt::format("loss-{}", mask);
    auto data = Pattern(size, 1000 + mask);
    Write(path, data);
    ReadMapReply map = Map(path);
    ASSERT_EQ(map.extents_size(), 1);
    const uint64_t slice = map.extents(0).slice_id();
    for (uint32_t block = 0; block < 2; ++block) {
      client::BlockTarget t = Target(map, slice, block);
      for (uint32_t i = 0; i < 6; ++i) {
        if (mask & (1u << i)) {
          ASSERT_TRUE(DeleteFragment(t, slice, block, i).ok());
        }
      }
    }
    const uint64_t rebuilt_before = Rebuilt("unavailable");
    EXPECT_TRUE(Read(path) == data);
    auto part = ReadRange(path, f - 100, 200);  // spans data fragments 0 and 1
    EXPECT_TRUE(std::equal(part.begin(), part.end(), data.begin() + (f - 100)));
    if (mask & 0xF) {
      EXPECT_GT(Rebuilt("unavailable"), rebuilt_before);
    } else {
      EXPECT_EQ(Rebuilt("unavailable"), rebuilt_before);
    }
  }
  EXPECT_EQ(combinations, 22);
}

TEST_F(Ec42Test, FlippedByteInAFragmentIsDetectedReportedAndTheReadIsStillCorrect) {
  auto data = Pattern(kBlock, 77);
  Write("victim", data);
  ReadMapReply map = Map("victim");
  const uint64_t slice = map.extents(0).slice_id();
  client::BlockTarget t = Target(map, slice, 0);
  const int node = DatanodeIndex(*cluster_, t.members[1].data_address);
  const std::string file = BlockFile(node, slice, 0, 1);
  ASSERT_NE(file, "");
  {
    // Fragment data sits at the end of the block file: flip a byte 100 bytes into it.
    std::fstream io(file, std::ios::in | std::ios::out | std::ios::binary);
    const auto at =
        static_cast<std::streamoff>(std::filesystem::file_size(file) - fragment_size() + 100);
    io.seekg(at);
    char c = 0;
    io.read(&c, 1);
    c ^= 0x10;
    io.seekp(at);
    io.write(&c, 1);
  }
  const uint64_t corrupt_before = CounterValue("granary_client_corrupt_copies_total");
  const uint64_t rebuilt_before = Rebuilt("corrupt");
  EXPECT_TRUE(Read("victim") == data);
  EXPECT_EQ(CounterValue("granary_client_corrupt_copies_total"), corrupt_before + 1);
  EXPECT_EQ(Rebuilt("corrupt"), rebuilt_before + 1);
  auto status = client_->meta().ClusterStatus();
  ASSERT_TRUE(status.ok());
  EXPECT_GE(status->corruptions_reported(), 1u);
}

// A datanode that stops answering (SIGSTOP) costs a read the fragment deadline, not the request
// timeout: its fragment is rebuilt from parity.
TEST_F(Ec42Test, SlowFragmentIsRebuiltAfterTheFragmentDeadline) {
  auto data = Pattern(2 * kBlock, 5);
  Write("slow", data);
  ReadMapReply map = Map("slow");
  const uint64_t slice = map.extents(0).slice_id();
  // The default deadline (1 s): shorter ones also expire on healthy members of a loaded 2-core
  // machine, which then turns this into a test of the machine's load.
  auto fast_client = Connect(std::chrono::milliseconds(1000));
  ASSERT_TRUE(ReadFile(*fast_client, volume_, "slow") == data);  // connections dialled

  client::BlockTarget t = Target(map, slice, 0);
  const int node = DatanodeIndex(*cluster_, t.members[2].data_address);
  cluster_->datanode(node).Signal(SIGSTOP);
  const uint64_t before = Rebuilt("slow");
  auto started = std::chrono::steady_clock::now();
  auto back = ReadFile(*fast_client, volume_, "slow");
  auto took = std::chrono::steady_clock::now() - started;
  cluster_->datanode(node).Signal(SIGCONT);
  EXPECT_TRUE(back == data);
  EXPECT_GE(Rebuilt("slow"), before + 1);
  EXPECT_LT(took, std::chrono::seconds(5)) << "the read waited for the stalled node";
}

TEST_F(Ec42Test, KillingTwoDatanodesLeavesEveryFileReadableByteExact) {
  const std::vector<uint64_t> sizes = {1, kBlock - 1, kBlock, 5 * kBlock + 77, (12 << 20) + 3};
  for (size_t i = 0; i < sizes.size(); ++i) Write(fmt::format("f{}", i), Pattern(sizes[i], i));
  cluster_->KillDatanode(1);
  cluster_->KillDatanode(4);
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_TRUE(Read(fmt::format("f{}", i)) == Pattern(sizes[i], i)) << "file " << i;
  }
  // Once the metanode has marked them down, readers skip them without trying.
  ASSERT_TRUE(cluster_->WaitForUpDatanodes(4));
  ASSERT_TRUE(client_->cluster().Refresh().ok());
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_TRUE(Read(fmt::format("f{}", i)) == Pattern(sizes[i], i)) << "file " << i;
  }
}

// With one member down (min_size K+1 = 5 still met) writes go on, degraded; the restarted node
// lacks those fragments and readers rebuild them until repair does.
TEST_F(Ec42Test, WritesContinueDegradedWithOneDatanodeDown) {
  cluster_->KillDatanode(2);
  ASSERT_TRUE(cluster_->WaitForUpDatanodes(5));
  const uint64_t degraded_before = CounterValue("granary_client_ec_degraded_writes_total");
  auto data = Pattern(4 * kBlock + 9, 42);
  Write("degraded", data);
  EXPECT_GT(CounterValue("granary_client_ec_degraded_writes_total"), degraded_before);
  EXPECT_TRUE(Read("degraded") == data);
  cluster_->RestartDatanode(2);
  ASSERT_TRUE(cluster_->WaitForUpDatanodes(6));
  ASSERT_TRUE(client_->cluster().Refresh().ok());
  EXPECT_TRUE(Read("degraded") == data);
}

// ec:8+3 needs 11 failure domains; on 6 datanodes the pool exists but cannot be placed, and a
// writer is told so (Unavailable, retryable once datanodes join), not NotFound.
TEST_F(Ec42Test, PoolWiderThanTheClusterIsUnavailableToWriters) {
  CreatePoolAndVolume(client_->meta(), EcPool("wide", 8, 3, kBlock));
  auto f = client_->Open("wide", "x", {.create = true});
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_TRUE((*f)->Pwrite(Pattern(kBlock, 1), 0).ok());
  Status s = (*f)->Flush();
  EXPECT_EQ(s.code(), Code::UNAVAILABLE) << s.ToString();
  EXPECT_NE(s.message().find("not placed"), std::string::npos) << s.ToString();
}

// Overwrites leave short (replicated) slices on top of erasure-coded ones; truncates cut both.
TEST_F(Ec42Test, RandomOverwritesAndTruncatesMatchAModel) {
  std::mt19937_64 rng(11);
  std::vector<uint8_t> model;
  auto f = client_->Open(volume_, "model", {.create = true});
  ASSERT_TRUE(f.ok());
  for (int op = 0; op < 40; ++op) {
    if (rng() % 8 == 0) {
      uint64_t size = rng() % (8 * kBlock);
      ASSERT_TRUE((*f)->Truncate(size).ok());
      model.resize(size, 0);
    } else {
      uint64_t off = rng() % (6 * kBlock);
      size_t len = 1 + rng() % (3 * kBlock);
      auto data = Pattern(len, rng());
      ASSERT_TRUE((*f)->Pwrite(data, off).ok());
      if (model.size() < off + len) model.resize(off + len, 0);
      std::copy(data.begin(), data.end(), model.begin() + off);
      if (rng() % 2) {
        ASSERT_TRUE((*f)->Flush().ok());
      }
    }
    if (op % 10 == 9) {
      ASSERT_TRUE((*f)->Close().ok());
      ASSERT_TRUE(Read("model") == model) << "committed view differs at op " << op;
      f = client_->Open(volume_, "model");
      ASSERT_TRUE(f.ok());
    }
  }
  ASSERT_TRUE((*f)->Close().ok());
}

class Ec83Test : public EcTest {
 protected:
  void SetUp() override { StartCluster(11, 8, 3); }
};

TEST_F(Ec83Test, RoundTripsAndSurvivesThreeLostDatanodes) {
  const std::vector<uint64_t> sizes = {kBlock - 1, kBlock, 3 * kBlock + fragment_size() + 5,
                                       (10 << 20) + 1};
  for (size_t i = 0; i < sizes.size(); ++i) {
    Write(fmt::format("f{}", i), Pattern(sizes[i], i));
    EXPECT_TRUE(Read(fmt::format("f{}", i)) == Pattern(sizes[i], i)) << "file " << i;
  }
  for (int node : {0, 5, 9}) cluster_->KillDatanode(node);
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_TRUE(Read(fmt::format("f{}", i)) == Pattern(sizes[i], i)) << "file " << i;
  }
}

}  // namespace
}  // namespace granary::testing
