// libgranary end to end: a metanode and three datanodes as real processes on loopback; files
// written and read through the client library, with kill -9 and corruption along the way.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "client/cluster_view.h"
#include "client/granary.h"
#include "client/meta_client.h"
#include "common/metrics.h"
#include "tests/harness/cluster.h"
#include "tests/harness/small_fs.h"

namespace granary::testing {
namespace {

using client::Client;
using client::File;

std::vector<uint8_t> Pattern(size_t n, uint64_t seed) {
  std::vector<uint8_t> v(n);
  std::mt19937_64 rng(seed);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x = rng();
    std::memcpy(&v[i], &x, 8);
  }
  for (; i < n; ++i) v[i] = static_cast<uint8_t>(rng());
  return v;
}

class ClientE2ETest : public ::testing::Test {
 protected:
  void SetUp() override { StartCluster({}); }

  void StartCluster(ClusterOptions options) {
    cluster_ = std::make_unique<LocalCluster>(std::move(options));
    cluster_->Start();
    client_ = Connect();
  }

  std::unique_ptr<Client> Connect(std::chrono::milliseconds op_timeout = std::chrono::seconds(60)) {
    client::ClientOptions o;
    o.meta = cluster_->meta_address();
    o.operation_timeout = op_timeout;
    o.request_timeout = std::chrono::seconds(10);
    auto c = Client::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(*c);
  }

  void WriteFile(Client& c, const std::string& path, const std::vector<uint8_t>& data) {
    auto f = c.Open("default", path, {.create = true, .truncate = true});
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    const size_t chunk = 3 << 20;  // not a multiple of anything on purpose
    for (size_t off = 0; off < data.size(); off += chunk) {
      size_t n = std::min(chunk, data.size() - off);
      ASSERT_TRUE((*f)->Pwrite({data.data() + off, n}, off).ok());
    }
    Status s = (*f)->Close();
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  std::vector<uint8_t> ReadFile(Client& c, const std::string& path) {
    auto f = c.Open("default", path);
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    if (!f.ok()) return {};
    std::vector<uint8_t> out((*f)->size());
    const size_t chunk = 7 << 20;
    for (size_t off = 0; off < out.size(); off += chunk) {
      size_t want = std::min(chunk, out.size() - off);
      auto n = (*f)->Pread({out.data() + off, want}, off);
      EXPECT_TRUE(n.ok()) << n.status().ToString();
      if (!n.ok()) return {};
      EXPECT_EQ(*n, want);
    }
    EXPECT_TRUE((*f)->Close().ok());
    return out;
  }

  std::unique_ptr<LocalCluster> cluster_;
  std::unique_ptr<Client> client_;
};

TEST_F(ClientE2ETest, FilesAroundChunkBoundariesRoundTripByteExact) {
  const uint64_t kMiB = 1 << 20;
  const std::vector<uint64_t> sizes = {0,         1, 4096, 64 * kMiB - 1, 64 * kMiB, 64 * kMiB + 1,
                                       200 * kMiB};
  for (uint64_t size : sizes) {
    std::string path = "size-" + std::to_string(size);
    auto data = Pattern(size, size);
    WriteFile(*client_, path, data);
    auto back = ReadFile(*client_, path);
    ASSERT_EQ(back.size(), data.size()) << path;
    EXPECT_TRUE(back == data) << path << " differs";
  }
}

TEST_F(ClientE2ETest, RandomOverwritesAndTruncatesMatchAModel) {
  std::mt19937_64 rng(7);
  std::vector<uint8_t> model;
  auto f = client_->Open("default", "model", {.create = true});
  ASSERT_TRUE(f.ok());
  for (int op = 0; op < 60; ++op) {
    int kind = rng() % 10;
    if (kind == 0) {
      uint64_t size = rng() % (24 << 20);
      ASSERT_TRUE((*f)->Truncate(size).ok());
      model.resize(size, 0);
    } else if (kind == 1) {
      ASSERT_TRUE((*f)->Flush().ok());
    } else {
      uint64_t off = rng() % (20 << 20);
      size_t len = 1 + rng() % (3 << 20);
      auto data = Pattern(len, rng());
      ASSERT_TRUE((*f)->Pwrite(data, off).ok());
      if (model.size() < off + len) model.resize(off + len, 0);
      std::copy(data.begin(), data.end(), model.begin() + off);
    }
    if (op % 15 == 14) {
      // Reads see buffered writes, and after close-and-reopen, committed ones.
      std::vector<uint8_t> buffered(model.size());
      auto n = (*f)->Pread(buffered, 0);
      ASSERT_TRUE(n.ok()) << n.status().ToString();
      ASSERT_EQ(*n, model.size());
      ASSERT_TRUE(buffered == model) << "buffered view differs at op " << op;
      ASSERT_TRUE((*f)->Close().ok());
      ASSERT_TRUE(ReadFile(*client_, "model") == model) << "committed view differs at op " << op;
      f = client_->Open("default", "model");
      ASSERT_TRUE(f.ok());
    }
  }
}

TEST_F(ClientE2ETest, ConcurrentWritersLoseNoBytes) {
  ASSERT_TRUE(client_->Mkdir("default", "shared").ok());
  const size_t kFileSize = 5 << 20;
  // 8 writers, distinct files in one directory.
  {
    std::vector<std::thread> writers;
    for (int w = 0; w < 8; ++w) {
      writers.emplace_back(
          [&, w] { WriteFile(*client_, "shared/f" + std::to_string(w), Pattern(kFileSize, w)); });
    }
    for (auto& t : writers) t.join();
  }
  for (int w = 0; w < 8; ++w) {
    EXPECT_TRUE(ReadFile(*client_, "shared/f" + std::to_string(w)) == Pattern(kFileSize, w)) << w;
  }
  auto listing = client_->List("default", "shared");
  ASSERT_TRUE(listing.ok());
  EXPECT_EQ(listing->size(), 8u);

  // 8 writers, disjoint ranges of one file, each through its own handle and commit.
  auto created = client_->Open("default", "ranges", {.create = true});
  ASSERT_TRUE(created.ok());
  ASSERT_TRUE((*created)->Close().ok());
  const size_t kRange = (3 << 20) + 12345;
  {
    std::vector<std::thread> writers;
    for (int w = 0; w < 8; ++w) {
      writers.emplace_back([&, w] {
        auto f = client_->Open("default", "ranges");
        ASSERT_TRUE(f.ok());
        ASSERT_TRUE((*f)->Pwrite(Pattern(kRange, 100 + w), w * kRange).ok());
        Status s = (*f)->Close();
        ASSERT_TRUE(s.ok()) << s.ToString();
      });
    }
    for (auto& t : writers) t.join();
  }
  auto all = ReadFile(*client_, "ranges");
  ASSERT_EQ(all.size(), 8 * kRange);
  for (int w = 0; w < 8; ++w) {
    auto expect = Pattern(kRange, 100 + w);
    EXPECT_TRUE(std::equal(expect.begin(), expect.end(), all.begin() + w * kRange)) << w;
  }
}

TEST_F(ClientE2ETest, MetanodeKillLosesNothingAcknowledged) {
  auto writer_client = Connect(std::chrono::seconds(20));
  std::atomic<bool> stop{false};
  std::mutex mu;
  std::vector<int> acknowledged;
  std::thread writer([&] {
    for (int i = 0; i < 400 && !stop; ++i) {
      std::string path = "k" + std::to_string(i);
      auto f = writer_client->Open("default", path, {.create = true, .truncate = true});
      if (!f.ok()) continue;
      if (!(*f)->Pwrite(Pattern(300000, i), 0).ok()) continue;
      if ((*f)->Close().ok()) {
        std::lock_guard lock(mu);
        acknowledged.push_back(i);
      }
    }
  });
  ASSERT_TRUE(WaitUntil([&] {
    std::lock_guard lock(mu);
    return acknowledged.size() >= 10;
  }));
  cluster_->KillMetanode();
  cluster_->RestartMetanode();
  ASSERT_TRUE(WaitUntil(
      [&] {
        std::lock_guard lock(mu);
        return acknowledged.size() >= 20;
      },
      std::chrono::seconds(60)));
  stop = true;
  writer.join();

  std::set<int> acked(acknowledged.begin(), acknowledged.end());
  for (int i = 0; i < 400; ++i) {
    std::string path = "k" + std::to_string(i);
    auto attr = client_->Resolve("default", path);
    if (acked.count(i)) {
      ASSERT_TRUE(attr.ok()) << path << ": " << attr.status().ToString();
      EXPECT_TRUE(ReadFile(*client_, path) == Pattern(300000, i)) << path;
    } else if (attr.ok()) {
      // Not acknowledged: either never committed (empty) or committed whole, never half.
      auto data = ReadFile(*client_, path);
      EXPECT_TRUE(data.empty() || data == Pattern(300000, i)) << path;
    }
  }
}

TEST_F(ClientE2ETest, DatanodeKillKeepsReadsAndWritesGoing) {
  for (int i = 0; i < 6; ++i) WriteFile(*client_, "d" + std::to_string(i), Pattern(9 << 20, i));
  cluster_->KillDatanode(0);
  for (int i = 0; i < 6; ++i) {
    EXPECT_TRUE(ReadFile(*client_, "d" + std::to_string(i)) == Pattern(9 << 20, i)) << i;
  }
  // Writes continue once the metanode has marked the node down (a new epoch).
  for (int i = 6; i < 9; ++i) WriteFile(*client_, "d" + std::to_string(i), Pattern(9 << 20, i));
  for (int i = 6; i < 9; ++i) {
    EXPECT_TRUE(ReadFile(*client_, "d" + std::to_string(i)) == Pattern(9 << 20, i)) << i;
  }
}

TEST_F(ClientE2ETest, UnlinkedFileStaysReadableWhileAnyHandleIsOpen) {
  auto data = Pattern(3 << 20, 5);
  WriteFile(*client_, "pinned", data);
  auto first = client_->Open("default", "pinned");
  auto second = client_->Open("default", "pinned");
  ASSERT_TRUE(first.ok() && second.ok());
  ASSERT_TRUE(client_->Remove("default", "pinned").ok());
  EXPECT_EQ(client_->Resolve("default", "pinned").status().code(), Code::NOT_FOUND);
  ASSERT_TRUE((*first)->Close().ok());  // the other handle still pins the inode

  std::vector<uint8_t> back(data.size());
  auto n = (*second)->Pread(back, 0);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  EXPECT_EQ(*n, data.size());
  EXPECT_TRUE(back == data);
  EXPECT_TRUE((*second)->Close().ok());
}

// Finds `needle` in the regular files under `dir` and flips one bit of it; true when found.
bool CorruptFirstCopy(const std::string& dir, const std::vector<uint8_t>& needle) {
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::fstream f(entry.path(), std::ios::in | std::ios::out | std::ios::binary);
    std::vector<char> raw((std::istreambuf_iterator<char>(f)), {});
    std::vector<uint8_t> bytes(raw.begin(), raw.end());
    auto it = std::search(bytes.begin(), bytes.end(), needle.begin(), needle.end());
    if (it == bytes.end()) continue;
    f.clear();
    f.seekp(it - bytes.begin() + 100);
    char c = static_cast<char>(*(it + 100) ^ 0x01);
    f.write(&c, 1);
    return true;
  }
  return false;
}

TEST_F(ClientE2ETest, FlippedByteIsDetectedReportedAndReadFromAnotherCopy) {
  auto data = Pattern(1 << 20, 99);
  WriteFile(*client_, "victim", data);

  // Corrupt the copy the client reads first: block 0 of the file's slice on its nearest member.
  auto attr = client_->Resolve("default", "victim");
  ASSERT_TRUE(attr.ok());
  auto map = client_->meta().ReadMap(attr->ino());
  ASSERT_TRUE(map.ok());
  ASSERT_GE(map->extents_size(), 1);
  ASSERT_TRUE(client_->cluster().Refresh().ok());
  auto target = client_->cluster().Locate(attr->layout(), map->extents(0).slice_id(), 0);
  ASSERT_TRUE(target.ok()) << target.status().ToString();
  const std::string first = target->members[target->read_order[0]].data_address;
  int victim = -1;
  for (int i = 0; i < cluster_->datanode_count(); ++i) {
    if (cluster_->datanode_data_address(i) == first) victim = i;
  }
  ASSERT_GE(victim, 0) << "no datanode serves " << first;
  std::vector<uint8_t> needle(data.begin(), data.begin() + 4096);
  ASSERT_TRUE(CorruptFirstCopy(cluster_->datanode_dir(victim), needle));

  uint64_t before = Metrics().GetCounter("granary_client_corrupt_copies_total", "").value();
  EXPECT_TRUE(ReadFile(*client_, "victim") == data);
  EXPECT_EQ(Metrics().GetCounter("granary_client_corrupt_copies_total", "").value(), before + 1);
  auto status = client_->meta().ClusterStatus();
  ASSERT_TRUE(status.ok());
  EXPECT_GE(status->corruptions_reported(), 1u);
}

// One datanode on a 24 MiB file system: a 40 MiB file cannot fit, the writer gets NoSpace, and
// what was committed before is untouched.
class FullDiskTest : public ClientE2ETest {
 protected:
  void SetUp() override {
    ClusterOptions options;
    options.prepare_datanode_dir = [this](int i, const std::string& dir) {
      if (i == 0) small_fs_ = std::make_unique<SmallFilesystem>(dir, 24);
    };
    StartCluster(options);
  }
  void TearDown() override {
    client_.reset();
    // Processes stop before the file system is unmounted, and the data dir goes after: removed
    // with the file system still mounted at dn0, its removal stopped there and left the rest.
    if (cluster_) cluster_->KillAll();
    small_fs_.reset();
    cluster_.reset();
  }
  std::unique_ptr<SmallFilesystem> small_fs_;
};

TEST_F(FullDiskTest, FullDatanodeDiskIsNoSpaceAndCommittedDataSurvives) {
  if (!small_fs_ || !small_fs_->mounted()) GTEST_SKIP() << (small_fs_ ? small_fs_->why() : "");
  auto before = Pattern(2 << 20, 1);
  WriteFile(*client_, "before", before);

  auto f = client_->Open("default", "too-big", {.create = true});
  ASSERT_TRUE(f.ok());
  auto big = Pattern(40 << 20, 2);  // below the 64 MiB write buffer: Flush does the write
  ASSERT_TRUE((*f)->Pwrite(big, 0).ok());
  Status s = (*f)->Flush();
  EXPECT_EQ(s.code(), Code::NO_SPACE) << s.ToString();
  EXPECT_NE(s.message().find("flush ino"), std::string::npos) << s.ToString();
  (void)(*f)->Close();

  EXPECT_TRUE(ReadFile(*client_, "before") == before);
  auto attr = client_->Resolve("default", "too-big");
  ASSERT_TRUE(attr.ok());
  EXPECT_EQ(attr->size(), 0u) << "nothing of the failed write may be committed";
}

}  // namespace
}  // namespace granary::testing
