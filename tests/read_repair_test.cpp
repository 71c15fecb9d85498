// Repair on report (issue 29, docs/maintenance.md "Repair on report"), end to end on real
// processes: a read that finds corrupt copies gets them rewritten byte-exact from a good copy
// (or, for an EC fragment, rebuilt from K others) within a bound, `admin repair` shows them and
// then `healthy`; a report against a good copy (a reader's transient fault) changes nothing on
// disk, survives a metanode restart, and is acted on once.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>

#include "tests/ec_support.h"

namespace granary::testing {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// A corrupt copy is rewritten within this long of the read that found it: a heartbeat (500 ms
// here) brings the record to its holder, which verifies, fetches and fsyncs one block. The
// bound is generous for a loaded 2-core machine; the measured figure is printed.
constexpr auto kRepairBound = seconds(20);

struct FileState {
  std::string bytes;
  int64_t mtime_ns = 0;
  bool operator==(const FileState&) const = default;
};

FileState StateOf(const std::string& path) {
  FileState s;
  std::ifstream in(path, std::ios::binary);
  s.bytes.assign(std::istreambuf_iterator<char>(in), {});
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    s.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  }
  return s;
}

// Flips one payload byte `from_end` bytes before the end of a block file (in the page cache,
// which is what the datanode serves from).
void FlipByte(const std::string& path, uint64_t from_end) {
  std::fstream io(path, std::ios::in | std::ios::out | std::ios::binary);
  const auto at = static_cast<std::streamoff>(fs::file_size(path) - from_end);
  io.seekg(at);
  char c = 0;
  io.read(&c, 1);
  c ^= 0x5a;
  io.seekp(at);
  io.write(&c, 1);
}

class ReadRepairTest : public ::testing::Test {
 protected:
  void Start(int datanodes, int down_after_ms = 3000) {
    ClusterOptions o;
    o.datanodes = datanodes;
    o.down_after_ms = down_after_ms;
    o.all_datanode_flags = {"--maintenance-ms", "200"};
    cluster_ = std::make_unique<LocalCluster>(std::move(o));
    cluster_->Start();
    client_ = Connect();
  }

  std::unique_ptr<client::Client> Connect() {
    client::ClientOptions co;
    co.meta = cluster_->meta_address();
    co.request_timeout = std::chrono::seconds(10);
    co.operation_timeout = std::chrono::seconds(60);
    co.fragment_deadline = std::chrono::seconds(5);  // no "slow" rebuilds on a loaded machine
    auto c = client::Client::Connect(co);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(*c);
  }

  ClusterStatusReply Cluster() {
    auto s = client_->meta().ClusterStatus();
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? *s : ClusterStatusReply();
  }

  std::string AdminRepair() {
    Process p({GranaryBinary(), "admin", "--meta", cluster_->meta_address(), "repair"});
    p.Wait(seconds(30));
    return p.Output();
  }

  bool WaitHealthy(std::chrono::milliseconds timeout = seconds(60)) {
    return WaitUntil([&] { return Cluster().healthy(); }, timeout);
  }

  std::string Logs() {
    std::string out = "\n--- metanode\n" + cluster_->metanode().Output();
    for (int i = 0; i < cluster_->datanode_count(); ++i) {
      out += fmt::format("\n--- datanode {}\n{}", i, cluster_->datanode(i).Output());
    }
    return out;
  }

  // The first extent's slice of `path` and where block `block` of it lives.
  std::pair<uint64_t, client::BlockTarget> Locate(const std::string& volume,
                                                  const std::string& path, uint32_t block) {
    auto attr = client_->Resolve(volume, path);
    EXPECT_TRUE(attr.ok()) << attr.status().ToString();
    auto map = client_->meta().ReadMap(attr->ino());
    EXPECT_TRUE(map.ok() && map->extents_size() > 0);
    const uint64_t slice = map->extents(0).slice_id();
    EXPECT_TRUE(client_->cluster().Refresh().ok());
    auto t = client_->cluster().Locate(map->attr().layout(), slice, block);
    EXPECT_TRUE(t.ok()) << t.status().ToString();
    return {slice, *t};
  }

  // The block file of {slice, block, fragment} on the datanode serving `data_address`.
  std::string BlockFile(const std::string& data_address, uint64_t slice, uint32_t block,
                        uint32_t fragment) {
    const int index = DatanodeIndex(*cluster_, data_address);
    EXPECT_GE(index, 0) << data_address;
    const std::string name = fmt::format("{:016x}-{:08x}-{:04x}.blk", slice, block, fragment);
    for (const auto& e : fs::recursive_directory_iterator(cluster_->datanode_dir(index))) {
      if (e.is_regular_file() && e.path().filename() == name) return e.path().string();
    }
    ADD_FAILURE() << name << " not on datanode " << index;
    return "";
  }

  // A counter of datanode `index` (its /metrics).
  uint64_t DatanodeCounter(int index, const std::string& series) {
    std::smatch m;
    const std::string output = cluster_->datanode(index).Output();
    if (!std::regex_search(output, m, std::regex(R"(admin=(\S+))"))) return 0;
    auto [code, body] = HttpGet(m[1], "/metrics");
    const size_t at = body.find(series + " ");
    return at == std::string::npos ? 0 : std::stoull(body.substr(at + series.size() + 1));
  }

  std::unique_ptr<LocalCluster> cluster_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(ReadRepairTest, TwoCorruptCopiesFoundByOneReadAreRewrittenByteExact) {
  Start(3);  // the default pool: replicated:3
  const auto data = Pattern((12 << 20) + 4321, 29);
  WriteFile(*client_, "default", "file", data);
  ASSERT_TRUE(WaitHealthy()) << AdminRepair();
  // The reader tries block 0's copies in read order: damage the first two, so one read meets
  // both and is served by the third.
  auto [slice, target] = Locate("default", "file", 0);
  ASSERT_EQ(target.read_order.size(), 3u);
  std::vector<std::string> files;
  for (size_t i : target.read_order) {
    files.push_back(BlockFile(target.members[i].data_address, slice, 0, 0));
  }
  const FileState good = StateOf(files[2]);
  ASSERT_EQ(StateOf(files[0]).bytes, good.bytes) << "the copies differ before the test";
  FlipByte(files[0], 1000);
  FlipByte(files[1], 5000);

  const uint64_t corrupt_before = CounterValue("granary_client_corrupt_copies_total");
  const uint64_t reported_before = Cluster().corruptions_reported();
  const auto read_at = Clock::now();
  EXPECT_TRUE(ReadFile(*client_, "default", "file") == data);
  EXPECT_EQ(CounterValue("granary_client_corrupt_copies_total"), corrupt_before + 2);
  // Recorded before the read returned; the holders act on their next heartbeat.
  const ClusterStatusReply seen = Cluster();
  EXPECT_EQ(seen.corruptions_reported(), reported_before + 2);
  EXPECT_EQ(seen.copies_bad(), 2u) << "the bad copies were not visible in the status";
  EXPECT_FALSE(seen.healthy());
  ASSERT_EQ(seen.pgs_with_bad_copies_size(), 1);
  EXPECT_EQ(seen.pgs_with_bad_copies(0).pg(), target.pg);
  EXPECT_EQ(seen.pgs_with_bad_copies(0).copies(), 2u);

  ASSERT_TRUE(WaitUntil(
      [&] {
        return StateOf(files[0]).bytes == good.bytes && StateOf(files[1]).bytes == good.bytes;
      },
      kRepairBound))
      << "the corrupt copies were not rewritten" << Logs();
  const auto rewritten_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - read_at).count();
  ASSERT_TRUE(WaitHealthy(kRepairBound)) << AdminRepair();
  const auto healthy_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - read_at).count();
  std::printf("replicated:3 two bad copies of a 4 MiB block: rewritten_ms=%ld healthy_ms=%ld\n",
              static_cast<long>(rewritten_ms), static_cast<long>(healthy_ms));
  const std::string report = AdminRepair();
  EXPECT_NE(report.find("copies-bad=0"), std::string::npos) << report;
  EXPECT_NE(report.find("\nhealthy"), std::string::npos) << report;
  // The third copy was never touched; the file reads back from any copy.
  EXPECT_EQ(StateOf(files[2]), good);
  EXPECT_TRUE(ReadFile(*client_, "default", "file") == data);
}

TEST_F(ReadRepairTest, CorruptFragmentFoundByADegradedReadIsRebuilt) {
  Start(6);
  constexpr uint64_t kBlock = 1 << 20;
  CreatePoolAndVolume(client_->meta(), EcPool("ec42", 4, 2, kBlock));
  const auto data = Pattern(2 * kBlock, 42);
  WriteFile(*client_, "ec42", "file", data);
  ASSERT_TRUE(WaitHealthy()) << AdminRepair();
  auto [slice, target] = Locate("ec42", "file", 0);
  ASSERT_EQ(target.members.size(), 6u);
  const std::string file = BlockFile(target.members[1].data_address, slice, 0, 1);
  const FileState good = StateOf(file);
  FlipByte(file, 100);  // inside data fragment 1

  const uint64_t rebuilt_before = Rebuilt("corrupt");
  const auto read_at = Clock::now();
  EXPECT_TRUE(ReadFile(*client_, "ec42", "file") == data);
  EXPECT_EQ(Rebuilt("corrupt"), rebuilt_before + 1);
  const ClusterStatusReply seen = Cluster();
  EXPECT_EQ(seen.copies_bad(), 1u);
  ASSERT_EQ(seen.pgs_with_bad_copies_size(), 1);
  EXPECT_EQ(seen.pgs_with_bad_copies(0).pg(), target.pg);

  // Its holder rebuilds the fragment from four others: the same bytes as written.
  ASSERT_TRUE(WaitUntil([&] { return StateOf(file).bytes == good.bytes; }, kRepairBound))
      << "the corrupt fragment was not rebuilt" << Logs();
  const auto rewritten_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - read_at).count();
  ASSERT_TRUE(WaitHealthy(kRepairBound)) << AdminRepair();
  std::printf("ec:4+2 one bad 256 KiB fragment: rebuilt_ms=%ld\n", static_cast<long>(rewritten_ms));
  // Every fragment is good again: a read needs no rebuild.
  EXPECT_TRUE(ReadFile(*client_, "ec42", "file") == data);
  EXPECT_EQ(Rebuilt("corrupt"), rebuilt_before + 1);
}

TEST_F(ReadRepairTest, ReportAgainstAGoodCopyChangesNothingAndSurvivesAMetanodeRestart) {
  // Long enough that a datanode held stopped for a few seconds is not marked down.
  Start(3, /*down_after_ms=*/20000);
  const auto data = Pattern(6 << 20, 7);
  WriteFile(*client_, "default", "file", data);
  ASSERT_TRUE(WaitHealthy()) << AdminRepair();
  auto [slice, target] = Locate("default", "file", 0);
  std::vector<std::string> files;
  std::vector<FileState> before;
  for (const auto& m : target.members) {
    files.push_back(BlockFile(m.data_address, slice, 0, 0));
    before.push_back(StateOf(files.back()));
  }
  const client::Replica& holder = target.members[0];
  const int holder_index = DatanodeIndex(*cluster_, holder.data_address);
  // Held still, the holder cannot settle the record: the status shows it for as long.
  cluster_->datanode(holder_index).Signal(SIGSTOP);
  ReportCorruptionRequest req;
  req.set_node_id(holder.node_id);
  req.set_slice_id(slice);
  req.set_block_index(0);
  req.set_detail("simulated transient read error");
  req.set_source(SOURCE_CLIENT_READ);
  const uint64_t reported_before = Cluster().corruptions_reported();
  ASSERT_TRUE(client_->meta().ReportCorruption(req).ok());
  ASSERT_TRUE(client_->meta().ReportCorruption(req).ok());  // the same copy again
  ClusterStatusReply seen = Cluster();
  EXPECT_EQ(seen.corruptions_reported(), reported_before + 2);
  EXPECT_EQ(seen.copies_bad(), 1u);
  EXPECT_FALSE(seen.healthy());
  std::string report = AdminRepair();
  EXPECT_NE(report.find("copies-bad=1"), std::string::npos) << report;
  EXPECT_NE(report.find(fmt::format("bad-copies pool=default pg={} copies=1", target.pg)),
            std::string::npos)
      << report;
  EXPECT_NE(report.find("\nrepairing"), std::string::npos) << report;
  // The record is durable: a metanode killed and restarted still has it.
  cluster_->KillMetanode();
  cluster_->RestartMetanode();
  ASSERT_TRUE(WaitUntil([&] { return client_->meta().ClusterStatus().ok(); }, seconds(30)));
  EXPECT_EQ(Cluster().copies_bad(), 1u);

  cluster_->datanode(holder_index).Signal(SIGCONT);
  ASSERT_TRUE(WaitUntil([&] { return Cluster().copies_bad() == 0; }, kRepairBound))
      << AdminRepair() << Logs();
  ASSERT_TRUE(WaitHealthy()) << AdminRepair();
  // Verified against its CRCs and found good: not rewritten, nor any other copy.
  for (size_t i = 0; i < files.size(); ++i) {
    EXPECT_EQ(StateOf(files[i]), before[i]) << files[i] << " changed";
  }
  // Two reports, one record, one verification.
  EXPECT_EQ(DatanodeCounter(holder_index,
                            "granary_datanode_suspects_settled_total{outcome=\"verified_good\"}"),
            1u);
  EXPECT_EQ(DatanodeCounter(holder_index,
                            "granary_datanode_suspects_settled_total{outcome=\"replaced\"}"),
            0u);
  EXPECT_TRUE(ReadFile(*client_, "default", "file") == data);
  report = AdminRepair();
  EXPECT_NE(report.find("copies-bad=0"), std::string::npos) << report;
  EXPECT_NE(report.find("\nhealthy"), std::string::npos) << report;
}

}  // namespace
}  // namespace granary::testing
