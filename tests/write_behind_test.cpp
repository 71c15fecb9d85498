// Write-behind in libgranary (docs/durability.md "Write-behind"): full buffers are written in the
// background while the writer goes on; commits keep the order the bytes were written in; a
// failure is reported at the next write or at fsync/close, and the bytes stay for another try.
// A metanode and three datanodes as real processes on loopback, killed with SIGKILL mid-stream.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <random>

#include "client/granary.h"
#include "client/meta_client.h"
#include "tests/harness/cluster.h"
#include "tests/harness/test_support.h"

namespace granary::testing {
namespace {

using client::Client;
using client::File;

constexpr size_t kMiB = 1 << 20;

std::vector<uint8_t> Pattern(size_t n, uint64_t seed) {
  std::vector<uint8_t> v(n);
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t x = rng();
    std::memcpy(&v[i], &x, 8);
  }
  return v;
}

class WriteBehindTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<LocalCluster>();
    cluster_->Start();
    reader_ = Connect(std::chrono::seconds(60));
  }

  // A writer whose buffer fills every 4 MiB, so a few MiB of writes start background flushes.
  std::unique_ptr<Client> Connect(std::chrono::milliseconds op_timeout) {
    client::ClientOptions o;
    o.meta = cluster_->meta_address();
    o.operation_timeout = op_timeout;
    o.request_timeout = std::chrono::seconds(2);
    o.write_buffer_bytes = 4 * kMiB;
    o.write_behind = 2;
    auto c = Client::Connect(o);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::move(*c);
  }

  // The committed size another client sees (no open of its own, so no flush is forced).
  uint64_t CommittedSize(const std::string& path) {
    auto attr = reader_->Resolve("default", path);
    return attr.ok() ? attr->size() : 0;
  }

  std::vector<uint8_t> ReadAll(const std::string& path) {
    auto f = reader_->Open("default", path);
    EXPECT_TRUE(f.ok()) << f.status().ToString();
    if (!f.ok()) return {};
    std::vector<uint8_t> out((*f)->size());
    for (size_t off = 0; off < out.size(); off += 8 * kMiB) {
      const size_t want = std::min(8 * kMiB, out.size() - off);
      auto n = (*f)->Pread({out.data() + off, want}, off);
      EXPECT_TRUE(n.ok()) << n.status().ToString();
      if (!n.ok()) return {};
    }
    EXPECT_TRUE((*f)->Close().ok());
    return out;
  }

  // Writes data[from, to) in 1 MiB calls; a call that reports a background failure is made
  // again, as an application retrying a failed write would (harmless: its bytes were kept).
  static void WriteRange(File& f, const std::vector<uint8_t>& data, size_t from, size_t to,
                         std::vector<Status>* reported = nullptr) {
    for (size_t off = from; off < to; off += kMiB) {
      std::span<const uint8_t> piece(data.data() + off, std::min(kMiB, to - off));
      Status s = f.Pwrite(piece, off);
      if (!s.ok()) {
        ASSERT_NE(reported, nullptr) << "write at " << off << ": " << s.ToString();
        reported->push_back(s);
        s = f.Pwrite(piece, off);
        ASSERT_TRUE(s.ok()) << "write at " << off << " again: " << s.ToString();
      }
    }
  }

  std::unique_ptr<LocalCluster> cluster_;
  std::unique_ptr<Client> reader_;
};

TEST_F(WriteBehindTest, BackgroundFlushesCommitInOrderAndTheNewestBytesWin) {
  auto writer = Connect(std::chrono::seconds(60));
  auto f = writer->Open("default", "ordered", {.create = true, .truncate = true});
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  auto older = Pattern(24 * kMiB, 1);
  auto newer = Pattern(24 * kMiB, 2);
  WriteRange(**f, older, 0, older.size());
  // Storage holds the first buffers before any flush or close: they went in the background.
  ASSERT_TRUE(WaitUntil([&] { return CommittedSize("ordered") >= 16 * kMiB; }))
      << "committed " << CommittedSize("ordered");
  // Overwrites of bytes whose flushes may still be running: the later commit must win.
  WriteRange(**f, newer, 2 * kMiB, 22 * kMiB);
  std::vector<uint8_t> expect = older;
  std::memcpy(expect.data() + 2 * kMiB, newer.data() + 2 * kMiB, 20 * kMiB);
  // Read-your-writes while flushes are in flight.
  std::vector<uint8_t> window(3 * kMiB);
  auto n = (*f)->Pread(window, 1 * kMiB);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  ASSERT_EQ(*n, window.size());
  EXPECT_EQ(0, std::memcmp(window.data(), expect.data() + kMiB, window.size()));
  Status closed = (*f)->Close();
  ASSERT_TRUE(closed.ok()) << closed.ToString();
  EXPECT_TRUE(ReadAll("ordered") == expect);
}

TEST_F(WriteBehindTest, DatanodeKilledMidStreamLosesNothing) {
  auto writer = Connect(std::chrono::seconds(60));
  auto f = writer->Open("default", "one-down", {.create = true, .truncate = true});
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  auto data = Pattern(48 * kMiB, 3);
  WriteRange(**f, data, 0, 16 * kMiB);
  cluster_->KillDatanode(1);  // SIGKILL while background flushes are writing
  WriteRange(**f, data, 16 * kMiB, data.size());
  Status synced = (*f)->Fsync();
  ASSERT_TRUE(synced.ok()) << synced.ToString();
  ASSERT_TRUE((*f)->Close().ok());
  EXPECT_EQ(CommittedSize("one-down"), data.size());
  EXPECT_TRUE(ReadAll("one-down") == data);
}

TEST_F(WriteBehindTest, LostQuorumIsReportedAndTheBytesAreWrittenOnceItIsBack) {
  // Short operation timeout: a flush without a quorum fails within seconds.
  auto writer = Connect(std::chrono::seconds(4));
  auto f = writer->Open("default", "no-quorum", {.create = true, .truncate = true});
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  auto data = Pattern(24 * kMiB, 4);
  WriteRange(**f, data, 0, 8 * kMiB);
  ASSERT_TRUE(WaitUntil([&] { return CommittedSize("no-quorum") >= 4 * kMiB; }));
  cluster_->KillDatanode(1);
  cluster_->KillDatanode(2);
  std::vector<Status> reported;
  WriteRange(**f, data, 8 * kMiB, data.size(), &reported);
  Status synced = (*f)->Fsync();
  EXPECT_EQ(synced.code(), Code::UNAVAILABLE) << synced.ToString();
  for (const Status& s : reported) EXPECT_EQ(s.code(), Code::UNAVAILABLE) << s.ToString();

  // What is committed is a prefix of what was written, never a torn mix.
  const uint64_t committed = CommittedSize("no-quorum");
  EXPECT_GE(committed, 4 * kMiB);
  EXPECT_LT(committed, data.size());
  std::vector<uint8_t> prefix = ReadAll("no-quorum");
  ASSERT_EQ(prefix.size(), committed);
  EXPECT_EQ(0, std::memcmp(prefix.data(), data.data(), committed));

  // The handle kept every byte: once the datanodes are back, fsync writes them all.
  cluster_->RestartDatanode(1);
  cluster_->RestartDatanode(2);
  ASSERT_TRUE(cluster_->WaitForUpDatanodes(3));
  synced = (*f)->Fsync();
  ASSERT_TRUE(synced.ok()) << synced.ToString();
  ASSERT_TRUE((*f)->Close().ok());
  EXPECT_TRUE(ReadAll("no-quorum") == data);
}

// Direct writes on the followers (docs/data-path.md "Direct writes"): of a freshly written
// replicated block, only the copy readers try first (the PG's first member) is in the page
// cache; the two followers wrote theirs straight to the disk.
TEST_F(WriteBehindTest, OnlyTheFirstMemberKeepsAFreshBlockInThePageCache) {
  if (!DirectIoSupported(cluster_->datanode_dir(0))) {
    GTEST_SKIP() << "no O_DIRECT under " << cluster_->datanode_dir(0);
  }
  auto f = reader_->Open("default", "fresh", {.create = true, .truncate = true});
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  auto data = Pattern(4 * kMiB, 5);  // one whole block
  ASSERT_TRUE((*f)->Pwrite(data, 0).ok());
  ASSERT_TRUE((*f)->Close().ok());
  std::vector<size_t> cached;
  for (int i = 0; i < cluster_->datanode_count(); ++i) {
    for (const auto& e :
         std::filesystem::recursive_directory_iterator(cluster_->datanode_dir(i) + "/blocks")) {
      if (e.is_regular_file()) cached.push_back(CachedPages(e.path().string()));
    }
  }
  ASSERT_EQ(cached.size(), 3u) << "one copy per datanode";
  std::sort(cached.begin(), cached.end());
  EXPECT_EQ(cached[0], 0u);
  EXPECT_EQ(cached[1], 0u);
  EXPECT_GE(cached[2], 4 * kMiB / 4096) << "the first member's copy is cached whole";
}

}  // namespace
}  // namespace granary::testing
