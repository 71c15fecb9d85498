// Warm-ups on the live data path (docs/locality.md): datanodes on simulated hosts h1..h4 (their
// `host` labels, as tests/locality_test.cpp does), a replicated:2 pool whose counted copies live
// on h1..h3 only (node selector pool=main), and readers that say they run on h4.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <regex>

#include "tests/ec_support.h"
#include "tests/fuse_mount.h"
#include "tests/harness/small_fs.h"
#include "tests/harness/test_support.h"

namespace granary::testing {
namespace {

class WarmupTest : public ::testing::Test {
 protected:
  void SetUp() override { Start({}); }
  void TearDown() override {
    client_.reset();
    if (cluster_) cluster_->KillAll();
    small_fs_.reset();
    cluster_.reset();
  }

  void Start(std::function<void(ClusterOptions&)> customize) {
    ClusterOptions options;
    options.datanodes = 4;
    for (int i = 0; i < 4; ++i) {
      options.datanode_flags.push_back({"--labels",
                                        fmt::format("host=h{}{}", i + 1, i < 3 ? ",pool=main" : ""),
                                        "--workers", "2", "--maintenance-ms", "200"});
    }
    options.metanode_flags = {"--warmup-recheck-ms", "1000", "--gc-grace-ms", "1000"};
    if (customize) customize(options);
    cluster_ = std::make_unique<LocalCluster>(std::move(options));
    cluster_->Start();
    client_ = Connect("host=h1");
    PoolSpec spec;
    spec.set_name("data");
    spec.set_redundancy(Redundancy::REPLICATED_POOL);
    spec.set_replicas(2);
    spec.set_failure_domain(FailureDomain::DOMAIN_HOST);
    spec.set_pg_count(16);
    spec.set_block_size(1 << 20);
    (*spec.mutable_node_selector())["pool"] = "main";
    CreatePoolAndVolume(client_->meta(), spec);
  }

  std::unique_ptr<client::Client> Connect(const std::string& labels) {
    return ConnectWithLabels(*cluster_, labels);
  }

  // Writes `files` files of `size` bytes under train/.
  void WriteDataset(int files, size_t size) {
    ASSERT_TRUE(client_->Mkdir("data", "train", 0755, true).ok());
    for (int i = 0; i < files; ++i) {
      WriteFile(*client_, "data", fmt::format("train/shard-{}", i), Pattern(size + i * 4097, i));
    }
  }

  bool DatasetReads(client::Client& c, int files, size_t size) {
    for (int i = 0; i < files; ++i) {
      if (ReadFile(c, "data", fmt::format("train/shard-{}", i)) != Pattern(size + i * 4097, i)) {
        ADD_FAILURE() << "shard " << i << " differs";
        return false;
      }
    }
    return true;
  }

  std::optional<Warmup> Get(const std::string& name) {
    auto list = client_->meta().WarmupList(name);
    if (!list.ok() || list->empty()) return std::nullopt;
    return list->front();
  }

  const DomainBytes* Host(const VolumeLocalityReply& r, const std::string& name) {
    for (const auto& h : r.hosts()) {
      if (h.name() == name) return &h;
    }
    return nullptr;
  }

  std::unique_ptr<LocalCluster> cluster_;
  std::unique_ptr<client::Client> client_;
  std::unique_ptr<SmallFilesystem> small_fs_;
};

double RatioFrom(const std::string& metrics) {
  std::smatch m;
  static const std::regex kRatio("granary_client_read_local_ratio ([0-9.]+)");
  return std::regex_search(metrics, m, kRatio) ? std::stod(m[1]) : -1;
}

TEST_F(WarmupTest, AReaderOnAWarmedHostReadsLocallyAndDeletingTheWarmupFreesTheCopies) {
  constexpr int kFiles = 6;
  constexpr size_t kSize = (4 << 20) + 12345;
  WriteDataset(kFiles, kSize);
  const uint64_t h4_files_before = BlockFilesOf(cluster_->datanode_dir(3)).files;
  ASSERT_EQ(h4_files_before, 0u) << "h4 is outside the pool: no counted copy there";

  // Before: nothing of the dataset is on h4, and a reader there reads remotely.
  auto before = client_->meta().VolumeLocality("data", "train");
  ASSERT_TRUE(before.ok()) << before.status().ToString();
  EXPECT_EQ(Host(*before, "h4"), nullptr);
  uint64_t stored = 0;
  for (const auto& h : before->hosts()) stored += h.bytes();
  EXPECT_EQ(stored, 2 * before->logical_bytes()) << "two counted copies";

  const auto t0 = std::chrono::steady_clock::now();
  auto w = client_->meta().WarmupCreate("ml/train", "data", "/train", {"h4"});
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto got = Get("ml/train");
        return got && got->state() == WARMUP_READY;
      },
      seconds(60)))
      << Get("ml/train")->DebugString();
  const double warm_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto ready = Get("ml/train");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->done_bytes(), ready->bytes());
  std::printf("warmed %lu bytes to h4 in %.2f s (%lu copies)\n", ready->bytes(), warm_s,
              ready->copies());
  auto after = client_->meta().VolumeLocality("data", "train");
  ASSERT_TRUE(after.ok());
  const DomainBytes* h4 = Host(*after, "h4");
  ASSERT_NE(h4, nullptr);
  EXPECT_EQ(h4->local_bytes(), after->logical_bytes());
  EXPECT_EQ(h4->warm_bytes(), after->logical_bytes());
  // The counted copies did not move: h1..h3 hold what they held.
  for (const auto& h : before->hosts()) {
    const DomainBytes* now = Host(*after, h.name());
    ASSERT_NE(now, nullptr);
    EXPECT_EQ(now->bytes(), h.bytes()) << h.name();
  }
  EXPECT_GT(BlockFilesOf(cluster_->datanode_dir(3)).files, 0u);

  // A mount on h4 reads its bytes from h4: its metric says so.
  {
    FuseMount mount(cluster_->meta_address(), "data",
                    {"--labels", "host=h4", "--admin", "127.0.0.1:0"});
    auto admin = mount.process().WaitForLine("event=admin_listening address=(\\S+)", seconds(10));
    ASSERT_TRUE(admin) << mount.process().Output();
    for (int i = 0; i < kFiles; ++i) {
      std::ifstream in(mount / fmt::format("train/shard-{}", i), std::ios::binary);
      std::vector<uint8_t> got((std::istreambuf_iterator<char>(in)), {});
      EXPECT_TRUE(got == Pattern(kSize + i * 4097, i)) << "shard " << i << " through the mount";
    }
    auto [code, body] = HttpGet((*admin)[1], "/metrics");
    ASSERT_EQ(code, 200);
    const double ratio = RatioFrom(body);
    std::printf("mount on h4: granary_client_read_local_ratio %.4f\n", ratio);
    EXPECT_GE(ratio, 0.95) << body;
  }
  // The same through libgranary: at least 95 % of the bytes came from h4's datanode.
  auto reader = Connect("host=h4");
  const uint64_t local0 = ReadBytes("local");
  const uint64_t all0 =
      ReadBytes("local") + ReadBytes("rack") + ReadBytes("zone") + ReadBytes("remote");
  ASSERT_TRUE(DatasetReads(*reader, kFiles, kSize));
  const double local = static_cast<double>(ReadBytes("local") - local0);
  const double all = static_cast<double>(ReadBytes("local") + ReadBytes("rack") +
                                         ReadBytes("zone") + ReadBytes("remote") - all0);
  ASSERT_GT(all, 0);
  EXPECT_GE(local / all, 0.95) << local << " of " << all << " bytes from h4";

  // Warm copies are not redundancy: the repair report is healthy, and h4's datanode holds
  // nothing counted.
  auto status = client_->meta().ClusterStatus();
  ASSERT_TRUE(status.ok());
  EXPECT_TRUE(status->healthy());

  // Delete: the copies leave h4's disk, readers there go remote again, nothing is lost.
  ASSERT_TRUE(client_->meta().WarmupDelete("ml/train").ok());
  ASSERT_TRUE(WaitUntil([&] { return !Get("ml/train"); }, seconds(30)));
  ASSERT_TRUE(
      WaitUntil([&] { return BlockFilesOf(cluster_->datanode_dir(3)).files == 0; }, seconds(30)))
      << BlockFilesOf(cluster_->datanode_dir(3)).files << " block files left on h4";
  auto gone = client_->meta().VolumeLocality("data", "train");
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(Host(*gone, "h4"), nullptr);
  auto fresh = Connect("host=h4");
  const uint64_t local1 = ReadBytes("local");
  EXPECT_TRUE(DatasetReads(*fresh, kFiles, kSize));
  EXPECT_EQ(ReadBytes("local"), local1) << "no copy on h4 any more";
}

TEST_F(WarmupTest, FilesWrittenAfterAWarmupAreWarmedTooAndCollectedWithTheirCopies) {
  WriteDataset(2, 3 << 20);
  ASSERT_TRUE(client_->meta().WarmupCreate("w", "data", "", {"h4"}).ok());
  ASSERT_TRUE(
      WaitUntil([&] { return Get("w") && Get("w")->state() == WARMUP_READY; }, seconds(60)));
  const uint64_t h4_files = BlockFilesOf(cluster_->datanode_dir(3)).files;
  // A file written later: a ready warm-up is looked at again (--warmup-recheck-ms) and the new
  // file gets its copies.
  WriteFile(*client_, "data", "train/late", Pattern(3 << 20, 99));
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto loc = client_->meta().VolumeLocality("data", "train/late");
        const DomainBytes* h4 = loc.ok() ? Host(*loc, "h4") : nullptr;
        return h4 && h4->local_bytes() == loc->logical_bytes();
      },
      seconds(30)));
  ASSERT_GT(BlockFilesOf(cluster_->datanode_dir(3)).files, h4_files);
  // Deleting the file: garbage collection deletes its blocks on every datanode, the warm copies
  // included (--gc-grace-ms is short here).
  auto train = client_->Resolve("data", "train");
  ASSERT_TRUE(train.ok());
  ASSERT_TRUE(client_->Remove("data", "train/late").ok());
  EXPECT_TRUE(WaitUntil([&] { return BlockFilesOf(cluster_->datanode_dir(3)).files == h4_files; },
                        seconds(30)))
      << BlockFilesOf(cluster_->datanode_dir(3)).files << " files on h4, " << h4_files
      << " before the late file";
  auto w = Get("w");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->done_bytes(), w->bytes());
}

// `granary admin volume locality` and `granary admin warmup …` as a user runs them.
std::pair<int, std::string> Admin(const std::string& meta, std::vector<std::string> args) {
  std::vector<std::string> argv{GranaryBinary(), "admin"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back("--meta");
  argv.push_back(meta);
  Process p(argv);
  auto status = p.Wait(seconds(60));
  if (!status) return {-1, p.Output()};
  p.WaitForLine("a^", seconds(5));  // drain to EOF
  return {WIFEXITED(*status) ? WEXITSTATUS(*status) : -1, p.Output()};
}

TEST_F(WarmupTest, TheCliPrintsLocalityLinesAndManagesWarmups) {
  WriteDataset(2, 2 << 20);
  WriteFile(*client_, "data", "other", Pattern(1 << 20, 5));
  const std::string meta = cluster_->meta_address();
  auto [rc, out] = Admin(meta, {"volume", "locality", "data"});
  ASSERT_EQ(rc, 0) << out;
  const uint64_t logical = 2 * (2 << 20) + 4097 + (1 << 20);
  EXPECT_NE(out.find(fmt::format("volume=data path=/ files=3 bytes={}\n", logical)),
            std::string::npos)
      << out;
  // One line per host holding data (two counted copies on h1..h3), then racks and zones.
  std::regex host_line(R"(host=(h[1-3]) bytes=(\d+) local-bytes=(\d+) warm-bytes=0\n)");
  uint64_t stored = 0;
  int hosts = 0;
  for (auto it = std::sregex_iterator(out.begin(), out.end(), host_line);
       it != std::sregex_iterator(); ++it) {
    stored += std::stoull((*it)[2]);
    ++hosts;
  }
  EXPECT_GE(hosts, 2) << out;
  EXPECT_EQ(stored, 2 * logical) << out;
  EXPECT_EQ(out.find("host=h4"), std::string::npos) << out;
  EXPECT_NE(out.find("rack=- bytes="), std::string::npos) << out;
  EXPECT_NE(out.find("zone=- bytes="), std::string::npos) << out;
  std::tie(rc, out) = Admin(meta, {"volume", "locality", "data", "--path", "/train"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("path=/train files=2 "), std::string::npos) << out;
  std::tie(rc, out) = Admin(meta, {"volume", "locality", "data", "--path", "nope"});
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("NotFound"), std::string::npos) << out;

  std::tie(rc, out) = Admin(
      meta, {"warmup", "create", "cli", "--volume", "data", "--path", "/train", "--hosts", "h4"});
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("warmup=cli volume=data path=/train hosts=h4 state=copying"),
            std::string::npos)
      << out;
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto [code, text] = Admin(meta, {"warmup", "list"});
        return code == 0 && text.find("state=ready progress=100.0%") != std::string::npos &&
               text.find("  host=h4 progress=100.0%") != std::string::npos;
      },
      seconds(60)))
      << Admin(meta, {"warmup", "list"}).second;
  std::tie(rc, out) = Admin(meta, {"volume", "locality", "data", "--path", "/train"});
  EXPECT_NE(out.find(fmt::format("host=h4 bytes={0} local-bytes={0} warm-bytes={0}\n",
                                 2 * (2 << 20) + 4097)),
            std::string::npos)
      << out;
  std::tie(rc, out) = Admin(meta, {"warmup", "create", "bad", "--volume", "data", "--hosts", ""});
  EXPECT_NE(rc, 0) << out;
  std::tie(rc, out) = Admin(meta, {"warmup", "delete", "cli"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("deleted warmup=cli"), std::string::npos) << out;
  EXPECT_TRUE(WaitUntil(
      [&] {
        return Admin(meta, {"warmup", "list"}).second.empty();
      },
      seconds(30)));
  std::tie(rc, out) = Admin(meta, {"warmup", "delete", "cli"});
  EXPECT_NE(rc, 0);
  EXPECT_NE(out.find("NotFound"), std::string::npos) << out;
}

class WarmupFullDiskTest : public WarmupTest {
 protected:
  void SetUp() override {
    Start([this](ClusterOptions& o) {
      o.prepare_datanode_dir = [this](int i, const std::string& dir) {
        if (i == 3) small_fs_ = std::make_unique<SmallFilesystem>(dir, 32);
      };
    });
  }
};

TEST_F(WarmupFullDiskTest, AFullDiskOnTheWarmedHostStopsTheWarmupWithAReasonAndLosesNothing) {
  if (!small_fs_ || !small_fs_->mounted()) GTEST_SKIP() << (small_fs_ ? small_fs_->why() : "");
  constexpr int kFiles = 12;
  constexpr size_t kSize = 6 << 20;  // 72 MiB: more than h4's 32 MiB file system holds
  WriteDataset(kFiles, kSize);
  ASSERT_TRUE(client_->meta().WarmupCreate("big", "data", "/train", {"h4"}).ok());
  ASSERT_TRUE(
      WaitUntil([&] { return Get("big") && Get("big")->state() == WARMUP_STOPPED; }, seconds(90)))
      << (Get("big") ? Get("big")->DebugString() : "gone");
  auto stopped = Get("big");
  std::printf("stopped: %s\n", stopped->message().c_str());
  EXPECT_NE(stopped->message().find("host h4"), std::string::npos) << stopped->message();
  EXPECT_LT(stopped->done_bytes(), stopped->bytes());
  // Nothing lost: every file reads back exactly, from h4 (partly local) and from h1; the
  // counted copies are whole.
  auto on_h4 = Connect("host=h4");
  EXPECT_TRUE(DatasetReads(*on_h4, kFiles, kSize));
  EXPECT_TRUE(DatasetReads(*client_, kFiles, kSize));
  auto status = client_->meta().ClusterStatus();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->pgs_degraded(), 0u);
  // Still writable elsewhere, and deleting the stopped warm-up frees h4 again.
  WriteFile(*client_, "data", "after", Pattern(1 << 20, 7));
  ASSERT_TRUE(client_->meta().WarmupDelete("big").ok());
  EXPECT_TRUE(
      WaitUntil([&] { return BlockFilesOf(cluster_->datanode_dir(3)).files == 0; }, seconds(30)));
}

}  // namespace
}  // namespace granary::testing
