#include "datanode/block_store.h"

#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <thread>

#include "common/crc32c.h"
#include "datanode/fault_device.h"
#include "datanode/small_store.h"
#include "tests/harness/test_support.h"

namespace granary::datanode {
namespace {

using granary::testing::CachedPages;
using granary::testing::DirectIoSupported;
using granary::testing::RandomBytes;
using granary::testing::TempDir;
namespace fs = std::filesystem;

BlockKey Key(uint64_t slice, uint32_t block = 0, uint32_t fragment = 0) {
  BlockKey k;
  k.set_slice_id(slice);
  k.set_block_index(block);
  k.set_fragment(fragment);
  return k;
}

BlockOrigin Origin(uint32_t pool = 1, uint32_t pg = 7) {
  BlockOrigin o;
  o.set_ino(42);
  o.set_range_index(3);
  o.set_encoding(REPLICATED);
  o.set_pool_id(pool);
  o.set_pg(pg);
  return o;
}

// Stores every block as a file unless told otherwise: most tests here are about files, and
// FaultInjectionDevice does not wrap the small-block RocksDB.
std::unique_ptr<BlockStore> OpenStore(const std::string& dir, std::shared_ptr<Device> dev,
                                      uint64_t small_block_max = 0) {
  auto r = BlockStore::Open(dir, std::move(dev), BlockStoreOptions{small_block_max});
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return r.ok() ? std::move(*r) : nullptr;
}

size_t FilesUnder(const std::string& dir) {
  size_t n = 0;
  std::error_code ec;
  for (auto& e : fs::recursive_directory_iterator(dir, ec)) n += e.is_regular_file();
  return n;
}

std::vector<uint8_t> ReadAll(BlockStore& store, const BlockKey& key, uint64_t off, uint64_t len,
                             ReadPlan* out_plan = nullptr) {
  auto plan = store.PrepareRead(key, off, len);
  EXPECT_TRUE(plan.ok()) << plan.status().ToString();
  if (!plan.ok()) return {};
  AlignedBuffer buf(plan->length);
  EXPECT_TRUE(store.ReadInto(*plan, buf.span()).ok());
  std::vector<uint8_t> v(buf.data(), buf.data() + plan->length);
  if (out_plan) *out_plan = std::move(*plan);
  return v;
}

// The contract tests that hold for both homes of a block: a file (0) and the small-block
// RocksDB (every block here is well under 64 KiB).
class BlockStoreBothWaysTest : public ::testing::TestWithParam<uint64_t> {};
INSTANTIATE_TEST_SUITE_P(FilesAndSmall, BlockStoreBothWaysTest,
                         ::testing::Values(uint64_t{0}, uint64_t{64} << 10),
                         [](const auto& info) { return info.param ? "Small" : "Files"; });

TEST(BlockStoreTest, WritesAreDurableAtomicAndSelfDescribing) {
  TempDir dir;
  auto data = RandomBytes(3 * 4096 + 100, 1);
  auto crcs = BlockCrcs(data.data(), data.size());
  {
    auto store = BlockStore::Open(dir.str(), NewUringDevice(), BlockStoreOptions{0});
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    ASSERT_TRUE((*store)->Write(Key(5, 1), Origin(), data.span(), crcs).ok());
    // Only the final file exists; nothing remains in tmp/.
    EXPECT_EQ(FilesUnder(dir.str() + "/tmp"), 0u);
    EXPECT_EQ(FilesUnder(dir.str() + "/blocks"), 1u);
  }
  // Reopened: the header alone rebuilds the index (key, origin, length).
  auto store = BlockStore::Open(dir.str(), NewUringDevice());
  ASSERT_TRUE(store.ok());
  auto info = (*store)->Stat(Key(5, 1));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->length(), data.size());
  EXPECT_EQ(info->origin().ino(), 42u);
  EXPECT_EQ(info->origin().pg(), 7u);
  ReadPlan plan;
  auto back = ReadAll(**store, Key(5, 1), 0, 0, &plan);
  ASSERT_EQ(back.size(), data.size());
  EXPECT_EQ(0, std::memcmp(back.data(), data.data(), data.size()));
  EXPECT_EQ(plan.crcs, crcs);
  EXPECT_EQ((*store)->capacity().blocks, 1u);
  EXPECT_GT((*store)->capacity().used_bytes, data.size());
}

TEST(BlockStoreTest, ABlockIsInvisibleUntilItsRenameAndWholeAfterwards) {
  TempDir dir;
  auto dev = std::make_shared<FaultInjectionDevice>(NewUringDevice());
  auto store = OpenStore(dir.str(), dev);
  auto data = RandomBytes(64 * 1024, 11);
  auto crcs = BlockCrcs(data.data(), data.size());
  // Hold the write just before its rename: data written and fsynced, not yet published.
  std::mutex mu;
  std::condition_variable cv;
  bool at_rename = false, release = false;
  dev->SetHook("rename", [&] {
    std::unique_lock lock(mu);
    at_rename = true;
    cv.notify_all();
    cv.wait(lock, [&] { return release; });
  });
  std::thread writer([&] { EXPECT_TRUE(store->Write(Key(21), Origin(), data.span(), crcs).ok()); });
  bool held;
  {
    std::unique_lock lock(mu);
    held = cv.wait_for(lock, std::chrono::seconds(30), [&] { return at_rename; });
  }
  EXPECT_TRUE(held);  // not ASSERT: the writer must be released and joined on every path
  EXPECT_EQ(store->PrepareRead(Key(21), 0, 0).status().code(), Code::NOT_FOUND);
  EXPECT_EQ(store->Stat(Key(21)).status().code(), Code::NOT_FOUND);
  EXPECT_EQ(FilesUnder(dir.str() + "/blocks"), 0u);
  EXPECT_EQ(FilesUnder(dir.str() + "/tmp"), 1u);
  {
    std::lock_guard lock(mu);
    release = true;
  }
  cv.notify_all();
  writer.join();
  auto back = ReadAll(*store, Key(21), 0, 0);
  ASSERT_EQ(back.size(), data.size());
  EXPECT_EQ(0, std::memcmp(back.data(), data.data(), data.size()));
  EXPECT_EQ(FilesUnder(dir.str() + "/tmp"), 0u);
}

TEST(BlockStoreTest, LeftoverTempFilesAreSweptOnOpen) {
  TempDir dir;
  { ASSERT_TRUE(BlockStore::Open(dir.str(), NewUringDevice()).ok()); }
  FILE* f = fopen((dir.str() + "/tmp/half-written.1").c_str(), "w");
  fputs("partial", f);
  fclose(f);
  auto store = BlockStore::Open(dir.str(), NewUringDevice());
  ASSERT_TRUE(store.ok());
  EXPECT_EQ(FilesUnder(dir.str() + "/tmp"), 0u);
  EXPECT_EQ((*store)->capacity().blocks, 0u);
}

TEST_P(BlockStoreBothWaysTest, SubRangeReadsCoverWholeCrcUnitsAndCarryStoredCrcs) {
  TempDir dir;
  auto store = OpenStore(dir.str(), NewUringDevice(), GetParam());
  auto data = RandomBytes(5 * 4096 + 10, 2);
  auto crcs = BlockCrcs(data.data(), data.size());
  ASSERT_TRUE(store->Write(Key(9), Origin(), data.span(), crcs).ok());

  ReadPlan plan;
  auto part = ReadAll(*store, Key(9), 4096, 100, &plan);  // rounds up to one 4 KiB unit
  ASSERT_EQ(part.size(), 4096u);
  EXPECT_EQ(0, std::memcmp(part.data(), data.data() + 4096, 4096));
  EXPECT_EQ(plan.crc_offset, 4096u);
  ASSERT_EQ(plan.crcs.size(), 1u);
  EXPECT_EQ(plan.crcs[0], crcs[1]);

  auto tail = ReadAll(*store, Key(9), 4 * 4096, 1 << 20, &plan);  // clipped at the block end
  ASSERT_EQ(tail.size(), 4096u + 10);
  EXPECT_EQ(plan.crcs, std::vector<uint32_t>(crcs.begin() + 4, crcs.end()));
  EXPECT_EQ(Crc32c(tail.data() + 4096, 10), crcs[5]);

  EXPECT_EQ(store->PrepareRead(Key(9), 100, 10).status().code(), Code::INVALID_ARGUMENT);
  EXPECT_EQ(store->PrepareRead(Key(9), 8 * 4096, 10).status().code(), Code::INVALID_ARGUMENT);
  EXPECT_EQ(store->PrepareRead(Key(10), 0, 0).status().code(), Code::NOT_FOUND);
}

TEST_P(BlockStoreBothWaysTest, CrcMismatchIsCorruptAndStoresNothing) {
  TempDir dir;
  auto store = OpenStore(dir.str(), NewUringDevice(), GetParam());
  auto data = RandomBytes(2 * 4096, 3);
  auto crcs = BlockCrcs(data.data(), data.size());
  crcs[1] ^= 1;
  Status st = store->Write(Key(1), Origin(), data.span(), crcs);
  EXPECT_EQ(st.code(), Code::CORRUPT);
  EXPECT_NE(st.message().find("unit 1"), std::string::npos) << st.message();
  crcs.pop_back();
  EXPECT_EQ(store->Write(Key(1), Origin(), data.span(), crcs).code(), Code::INVALID_ARGUMENT);
  EXPECT_EQ(FilesUnder(dir.str() + "/blocks"), 0u);
  EXPECT_EQ(store->capacity().blocks, 0u);
  EXPECT_EQ(store->Stat(Key(1)).status().code(), Code::NOT_FOUND);
}

TEST_P(BlockStoreBothWaysTest, IdenticalRewriteIsOkAndDifferentContentIsRefused) {
  TempDir dir;
  auto store = OpenStore(dir.str(), NewUringDevice(), GetParam());
  auto a = RandomBytes(4096, 4);
  auto b = RandomBytes(4096, 5);
  ASSERT_TRUE(store->Write(Key(2), Origin(), a.span(), BlockCrcs(a.data(), a.size())).ok());
  EXPECT_TRUE(store->Write(Key(2), Origin(), a.span(), BlockCrcs(a.data(), a.size())).ok());
  EXPECT_EQ(store->Write(Key(2), Origin(), b.span(), BlockCrcs(b.data(), b.size())).code(),
            Code::ALREADY_EXISTS);
  auto back = ReadAll(*store, Key(2), 0, 0);
  EXPECT_EQ(0, std::memcmp(back.data(), a.data(), 4096));
}

TEST_P(BlockStoreBothWaysTest, DeleteAndListByPg) {
  TempDir dir;
  auto store = OpenStore(dir.str(), NewUringDevice(), GetParam());
  auto a = RandomBytes(100, 6);
  auto crcs = BlockCrcs(a.data(), a.size());
  ASSERT_TRUE(store->Write(Key(1), Origin(1, 1), a.span(), crcs).ok());
  ASSERT_TRUE(store->Write(Key(2), Origin(1, 2), a.span(), crcs).ok());
  ASSERT_TRUE(store->Write(Key(3), Origin(1, 2), a.span(), crcs).ok());
  EXPECT_EQ(store->List(1, 2, false).size(), 2u);
  EXPECT_EQ(store->List(0, 0, true).size(), 3u);
  EXPECT_TRUE(store->Delete(Key(2)).ok());
  EXPECT_EQ(store->Delete(Key(2)).code(), Code::NOT_FOUND);
  EXPECT_EQ(store->List(1, 2, false).size(), 1u);
  EXPECT_EQ(store->PrepareRead(Key(2), 0, 0).status().code(), Code::NOT_FOUND);
}

TEST_P(BlockStoreBothWaysTest, EmptyBlockRoundTrips) {
  TempDir dir;
  auto store = OpenStore(dir.str(), NewUringDevice(), GetParam());
  ASSERT_TRUE(store->Write(Key(8), Origin(), {}, {}).ok());
  auto plan = store->PrepareRead(Key(8), 0, 0);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->length, 0u);
  EXPECT_TRUE(plan->crcs.empty());
}

TEST(BlockStoreTest, InjectedEioAtEachStepIsUnavailableAndLeavesNothing) {
  for (const char* point : {"create", "write", "sync", "mkdir", "rename", "syncdir"}) {
    SCOPED_TRACE(point);
    TempDir dir;
    auto dev = std::make_shared<FaultInjectionDevice>(NewUringDevice());
    auto store = OpenStore(dir.str(), dev);
    auto data = RandomBytes(8192, 7);
    auto crcs = BlockCrcs(data.data(), data.size());
    dev->Inject(point, EIO, 1);
    Status st = store->Write(Key(77), Origin(), data.span(), crcs);
    EXPECT_EQ(dev->fired(point), 1);
    EXPECT_EQ(st.code(), Code::UNAVAILABLE) << st.ToString();
    EXPECT_NE(st.message().find("EIO"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("slice 0x4d"), std::string::npos) << st.message();
    EXPECT_EQ(FilesUnder(dir.str() + "/blocks") + FilesUnder(dir.str() + "/tmp"), 0u);
    EXPECT_EQ(store->PrepareRead(Key(77), 0, 0).status().code(), Code::NOT_FOUND);
    EXPECT_EQ(store->io_errors(), 1u);
    // The fault was one-shot: the retry succeeds.
    EXPECT_TRUE(store->Write(Key(77), Origin(), data.span(), crcs).ok());
  }
}

TEST(BlockStoreTest, InjectedEnospcIsNoSpace) {
  TempDir dir;
  auto dev = std::make_shared<FaultInjectionDevice>(NewUringDevice());
  auto store = OpenStore(dir.str(), dev);
  auto data = RandomBytes(4096, 8);
  dev->Inject("write", ENOSPC, 1);
  Status st = store->Write(Key(3), Origin(), data.span(), BlockCrcs(data.data(), 4096));
  EXPECT_EQ(st.code(), Code::NO_SPACE) << st.ToString();
  EXPECT_EQ(FilesUnder(dir.str() + "/blocks") + FilesUnder(dir.str() + "/tmp"), 0u);
}

// A real full file system: a few MiB ext4 image on a loop device.
class LoopMount {
 public:
  explicit LoopMount(int mib = 8) {
    image_ = dir_.str() + "/fs.img";
    mnt_ = dir_.str() + "/mnt";
    fs::create_directories(mnt_);
    std::string mk = "truncate -s " + std::to_string(mib) + "M " + image_ +
                     " && mkfs.ext4 -q -F -m 0 " + image_ + " >/dev/null 2>&1";
    if (std::system(mk.c_str()) != 0) {
      why_ = "mkfs.ext4 unavailable";
      return;
    }
    std::string mount = "mount -o loop " + image_ + " " + mnt_ + " 2>/dev/null";
    if (std::system(mount.c_str()) != 0) {
      why_ = "loop devices unavailable (mount -o loop failed)";
      return;
    }
    mounted_ = true;
  }
  ~LoopMount() {
    if (mounted_) umount2(mnt_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& why() const { return why_; }
  const std::string& mnt() const { return mnt_; }

 private:
  TempDir dir_;  // destroyed after the unmount
  std::string image_, mnt_, why_;
  bool mounted_ = false;
};

// Buffered and direct (fallocate first) block files alike.
class FullFileSystemTest : public ::testing::TestWithParam<uint64_t> {};
INSTANTIATE_TEST_SUITE_P(BufferedAndDirect, FullFileSystemTest,
                         ::testing::Values(uint64_t{0}, uint64_t{4096}),
                         [](const auto& info) { return info.param ? "Direct" : "Buffered"; });

TEST_P(FullFileSystemTest, FullFileSystemGivesNoSpaceAndLeavesNothingHalfWritten) {
  LoopMount loop;
  if (!loop.mounted()) GTEST_SKIP() << loop.why();
  BlockStoreOptions options;
  options.small_block_max = 0;
  options.direct_write_min = GetParam();
  auto opened = BlockStore::Open(loop.mnt() + "/dn", NewUringDevice(), options);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto store = std::move(*opened);
  auto data = RandomBytes(1 << 20, 9);
  auto crcs = BlockCrcs(data.data(), data.size());
  Status st;
  uint64_t written = 0;
  for (uint64_t i = 0; i < 64 && st.ok(); ++i) {
    st = store->Write(Key(i), Origin(), data.span(), crcs, /*read_soon=*/false);
    if (st.ok()) ++written;
  }
  ASSERT_EQ(st.code(), Code::NO_SPACE) << st.ToString();
  EXPECT_NE(st.message().find("ENOSPC"), std::string::npos) << st.message();
  EXPECT_GT(written, 0u);
  EXPECT_EQ(FilesUnder(loop.mnt() + "/dn/tmp"), 0u);
  EXPECT_EQ(FilesUnder(loop.mnt() + "/dn/blocks"), written);
  // Every block that was acknowledged reads back intact.
  for (uint64_t i = 0; i < written; ++i) {
    auto back = ReadAll(*store, Key(i), 0, 0);
    ASSERT_EQ(back.size(), data.size());
    EXPECT_EQ(BlockCrcs(back.data(), back.size()), crcs);
  }
  // And after a restart the index matches.
  store.reset();
  auto reopened = BlockStore::Open(loop.mnt() + "/dn", NewUringDevice());
  ASSERT_TRUE(reopened.ok());
  EXPECT_EQ((*reopened)->capacity().blocks, written);
}

// Direct writes (docs/data-path.md "Direct writes"): whole pages bypass the page cache, a last
// partial page goes through it, and the file is exactly as long as a buffered one. A copy that
// is read soon stays buffered.
TEST(BlockStoreTest, DirectWritesRoundTripEveryTailAndSkipThePageCache) {
  TempDir dir;
  if (!DirectIoSupported(dir.str())) GTEST_SKIP() << "no O_DIRECT on " << dir.str();
  BlockStoreOptions options;
  options.small_block_max = 0;
  options.direct_write_min = 8192;
  const std::vector<size_t> sizes = {1, 4096, 8192, 3 * 4096 + 100, 1 << 20, (4 << 20) - 1};
  {
    auto store = BlockStore::Open(dir.str(), NewUringDevice(), options);
    ASSERT_TRUE(store.ok()) << store.status().ToString();
    for (size_t i = 0; i < sizes.size(); ++i) {
      auto data = RandomBytes(sizes[i], i);
      auto crcs = BlockCrcs(data.data(), data.size());
      // Not read soon: a follower's copy, the one that may go direct.
      ASSERT_TRUE((*store)->Write(Key(100 + i), Origin(), data.span(), crcs, false).ok())
          << sizes[i];
      const std::string path = (*store)->PathOf(Key(100 + i));
      EXPECT_EQ(fs::file_size(path), DataOffset(sizes[i]) + sizes[i]) << sizes[i];
      if (sizes[i] >= options.direct_write_min) {
        // At most the partial last page went through the cache.
        EXPECT_LE(CachedPages(path), 1u) << sizes[i];
      }
    }
    auto data = RandomBytes(1 << 20, 99);
    ASSERT_TRUE(
        (*store)->Write(Key(99), Origin(), data.span(), BlockCrcs(data.data(), data.size())).ok());
    EXPECT_EQ(CachedPages((*store)->PathOf(Key(99))), DataOffset(1 << 20) / 4096 + 256);
    EXPECT_EQ(FilesUnder(dir.str() + "/tmp"), 0u);
  }
  auto store = BlockStore::Open(dir.str(), NewUringDevice(), options);
  ASSERT_TRUE(store.ok());
  for (size_t i = 0; i < sizes.size(); ++i) {
    auto data = RandomBytes(sizes[i], i);
    ReadPlan plan;
    auto back = ReadAll(**store, Key(100 + i), 0, 0, &plan);
    ASSERT_EQ(back.size(), data.size()) << sizes[i];
    EXPECT_EQ(0, std::memcmp(back.data(), data.data(), data.size())) << sizes[i];
    EXPECT_EQ(plan.crcs, BlockCrcs(data.data(), data.size())) << sizes[i];
  }
}

// Small blocks (docs/data-path.md "Small blocks"): at most small_block_max bytes go to the
// datanode's RocksDB, one byte more to a file; both are indexed and served alike.
TEST(SmallBlockTest, ThresholdDecidesTheHomeAndReopenRebuildsTheIndex) {
  TempDir dir;
  constexpr uint64_t kMax = 64 << 10;
  auto at = RandomBytes(kMax, 31);        // exactly small_block_max: small
  auto over = RandomBytes(kMax + 1, 32);  // one byte more: a file
  auto tiny = RandomBytes(100, 33);
  const auto at_crcs = BlockCrcs(at.data(), at.size());
  const auto over_crcs = BlockCrcs(over.data(), over.size());
  {
    auto store = OpenStore(dir.str(), NewUringDevice(), kMax);
    ASSERT_TRUE(store->Write(Key(1), Origin(1, 1), at.span(), at_crcs).ok());
    ASSERT_TRUE(store->Write(Key(2), Origin(1, 2), over.span(), over_crcs).ok());
    ASSERT_TRUE(
        store->Write(Key(1, 1, 2), Origin(1, 1), tiny.span(), BlockCrcs(tiny.data(), 100)).ok());
    EXPECT_TRUE(store->IsSmall(Key(1)));
    EXPECT_FALSE(store->IsSmall(Key(2)));
    EXPECT_TRUE(store->IsSmall(Key(1, 1, 2)));
    EXPECT_EQ(FilesUnder(dir.str() + "/blocks"), 1u);  // only the 64 KiB + 1 block
    EXPECT_TRUE(fs::exists(store->PathOf(Key(2))));
    EXPECT_FALSE(fs::exists(store->PathOf(Key(1))));
  }
  // Reopened with small blocks turned off: what is stored stays where it is and readable.
  auto store = OpenStore(dir.str(), NewUringDevice(), 0);
  ASSERT_TRUE(store);
  EXPECT_TRUE(store->IsSmall(Key(1)));
  EXPECT_FALSE(store->IsSmall(Key(2)));
  auto info = store->Stat(Key(1));
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->length(), kMax);
  EXPECT_EQ(info->origin().ino(), 42u);
  EXPECT_EQ(info->origin().pg(), 1u);
  ReadPlan plan;
  auto back = ReadAll(*store, Key(1), 0, 0, &plan);
  ASSERT_EQ(back.size(), at.size());
  EXPECT_EQ(0, std::memcmp(back.data(), at.data(), at.size()));
  EXPECT_EQ(plan.crcs, at_crcs);
  EXPECT_EQ(plan.file, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(plan.memory.data()) % kPageSize, 0u);
  back = ReadAll(*store, Key(2), 0, 0);
  ASSERT_EQ(back.size(), over.size());
  EXPECT_EQ(0, std::memcmp(back.data(), over.data(), over.size()));
  // Both homes show in every listing, capacity and per-slice view.
  EXPECT_EQ(store->KeysOfSlice(1).size(), 2u);
  EXPECT_EQ(store->SliceIds(), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(store->List(1, 1, false).size(), 2u);
  EXPECT_EQ(store->List(1, 2, false).size(), 1u);
  Capacity c = store->capacity();
  EXPECT_EQ(c.blocks, 3u);
  EXPECT_GT(c.used_bytes, at.size() + over.size() + tiny.size());
  // A small block's idempotent retry is Ok and different content is refused, as for a file.
  EXPECT_TRUE(store->Write(Key(1), Origin(1, 1), at.span(), at_crcs).ok());
  EXPECT_EQ(
      store->Write(Key(1), Origin(1, 1), over.span().first(kMax), BlockCrcs(over.data(), kMax))
          .code(),
      Code::ALREADY_EXISTS);
}

TEST(SmallBlockTest, DeleteIsDurableAndFreesTheSpace) {
  TempDir dir;
  auto data = RandomBytes(4096, 34);
  auto crcs = BlockCrcs(data.data(), data.size());
  {
    auto store = OpenStore(dir.str(), NewUringDevice(), 64 << 10);
    ASSERT_TRUE(store->Write(Key(5), Origin(), data.span(), crcs).ok());
    ASSERT_TRUE(store->Write(Key(6), Origin(), data.span(), crcs).ok());
    const uint64_t used = store->capacity().used_bytes;
    EXPECT_TRUE(store->Delete(Key(5)).ok());
    EXPECT_EQ(store->Delete(Key(5)).code(), Code::NOT_FOUND);
    EXPECT_EQ(store->PrepareRead(Key(5), 0, 0).status().code(), Code::NOT_FOUND);
    EXPECT_EQ(store->Stat(Key(5)).status().code(), Code::NOT_FOUND);
    EXPECT_LT(store->capacity().used_bytes, used);
  }
  auto store = OpenStore(dir.str(), NewUringDevice(), 64 << 10);
  EXPECT_EQ(store->Stat(Key(5)).status().code(), Code::NOT_FOUND);
  EXPECT_TRUE(store->Stat(Key(6)).ok());
  EXPECT_EQ(store->capacity().blocks, 1u);
  // Deleted, a key can be written again (repair of a scrubbed-away copy does exactly this).
  auto other = RandomBytes(4096, 35);
  EXPECT_TRUE(store->Write(Key(5), Origin(), other.span(), BlockCrcs(other.data(), 4096)).ok());
}

TEST(SmallBlockTest, AFlippedByteInTheStoredValueIsCaughtByItsCrcs) {
  TempDir dir;
  auto store = OpenStore(dir.str(), NewUringDevice(), 64 << 10);
  auto data = RandomBytes(3 * 4096, 36);
  auto crcs = BlockCrcs(data.data(), data.size());
  ASSERT_TRUE(store->Write(Key(7), Origin(), data.span(), crcs).ok());
  std::vector<uint8_t> flipped(data.data(), data.data() + data.size());
  flipped[5000] ^= 0x40;
  ASSERT_TRUE(store->small_store().OverwriteDataForTest(Key(7), flipped).ok());
  // Served as stored, with the CRCs recorded at write time: the reader's check fails on the
  // second 4 KiB unit (block_io.cpp then reports the copy and reads another replica).
  ReadPlan plan;
  auto back = ReadAll(*store, Key(7), 0, 0, &plan);
  ASSERT_EQ(back.size(), data.size());
  EXPECT_EQ(FirstCrcMismatch(back.data(), back.size(), plan.crcs.data(), plan.crcs.size()), 1);
  // A value whose length disagrees with its record is CORRUPT before anything is sent.
  flipped.pop_back();
  ASSERT_TRUE(store->small_store().OverwriteDataForTest(Key(7), flipped).ok());
  EXPECT_EQ(store->PrepareRead(Key(7), 0, 0).status().code(), Code::CORRUPT);
}

// A read or a rewrite that meets a damaged stored copy tells the damage listener (the datanode
// then quarantines, reports and replaces it: docs/maintenance.md "Repair on report").
TEST(BlockStoreTest, DamagedHeaderOrRecordIsToldToTheDamageListener) {
  TempDir dir;
  auto store = OpenStore(dir.str(), NewUringDevice(), 64 << 10);
  std::vector<std::pair<uint64_t, std::string>> told;
  store->SetDamageListener([&](const BlockKey& key, const std::string& detail) {
    told.emplace_back(key.slice_id(), detail);
  });
  auto big = RandomBytes(128 << 10, 37);  // a file
  auto small = RandomBytes(4096, 38);     // a small block
  ASSERT_TRUE(store->Write(Key(8), Origin(), big.span(), BlockCrcs(big.data(), big.size())).ok());
  ASSERT_TRUE(
      store->Write(Key(9), Origin(), small.span(), BlockCrcs(small.data(), small.size())).ok());
  // A bad data byte is the reader's to find (CRCs travel with the bytes): nothing told.
  EXPECT_TRUE(store->PrepareRead(Key(8), 0, 0).ok());
  EXPECT_TRUE(told.empty());
  {
    std::fstream io(store->PathOf(Key(8)), std::ios::in | std::ios::out | std::ios::binary);
    io.seekp(100);  // inside the header, covered by its CRC
    io.put('\x7f');
  }
  EXPECT_EQ(store->PrepareRead(Key(8), 0, 0).status().code(), Code::CORRUPT);
  // A chain write (a retry of the same block) meets it too.
  EXPECT_EQ(store->Write(Key(8), Origin(), big.span(), BlockCrcs(big.data(), big.size())).code(),
            Code::CORRUPT);
  std::vector<uint8_t> shorter(small.data(), small.data() + small.size() - 1);
  ASSERT_TRUE(store->small_store().OverwriteDataForTest(Key(9), shorter).ok());
  EXPECT_EQ(store->PrepareRead(Key(9), 0, 0).status().code(), Code::CORRUPT);
  ASSERT_EQ(told.size(), 3u);
  EXPECT_EQ(told[0].first, 8u);
  EXPECT_EQ(told[1].first, 8u);
  EXPECT_EQ(told[2].first, 9u);
  EXPECT_NE(told[0].second.find("header"), std::string::npos) << told[0].second;
}

TEST(SmallBlockTest, ConcurrentWritersShareWalSyncs) {
  TempDir dir;
  auto store = OpenStore(dir.str(), NewUringDevice(), 64 << 10);
  constexpr int kThreads = 8, kPerThread = 40;
  auto data = RandomBytes(4096, 37);
  auto crcs = BlockCrcs(data.data(), data.size());
  std::vector<std::thread> writers;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        if (!store->Write(Key(1000 + t * kPerThread + i), Origin(), data.span(), crcs).ok()) {
          ++failures;
        }
      }
    });
  }
  for (auto& w : writers) w.join();
  EXPECT_EQ(failures.load(), 0);
  const uint64_t batches = store->small_store().batches();
  const uint64_t syncs = store->small_store().wal_syncs();
  RecordProperty("wal_syncs", std::to_string(syncs));
  EXPECT_EQ(batches, uint64_t{kThreads * kPerThread});
  // Every write is synced, but writers that queue behind a sync ride on the next one.
  EXPECT_LT(syncs, batches) << syncs << " WAL syncs for " << batches << " batches";
  EXPECT_EQ(store->capacity().blocks, uint64_t{kThreads * kPerThread});
}

// A full file system under small blocks: RocksDB's WAL write fails with ENOSPC, which is
// NO_SPACE; acknowledged blocks stay readable; once space is freed the store resumes.
TEST(SmallBlockTest, FullFileSystemGivesNoSpaceAndResumesOnceSpaceIsFreed) {
  LoopMount loop(64);  // room to free more than the 16 MiB RocksDB wants before it resumes
  if (!loop.mounted()) GTEST_SKIP() << loop.why();
  const std::string dir = loop.mnt() + "/dn";
  auto store = OpenStore(dir, NewUringDevice(), 64 << 10);
  auto big = RandomBytes(24 << 20, 40);
  ASSERT_TRUE(store->Write(Key(1), Origin(), big.span(), BlockCrcs(big.data(), big.size())).ok());
  auto data = RandomBytes(60 << 10, 41);
  auto crcs = BlockCrcs(data.data(), data.size());
  Status st;
  uint64_t written = 0;
  for (uint64_t i = 0; i < 2000 && st.ok(); ++i) {
    st = store->Write(Key(100 + i), Origin(), data.span(), crcs);
    if (st.ok()) ++written;
  }
  ASSERT_EQ(st.code(), Code::NO_SPACE) << st.ToString();
  EXPECT_GT(written, 0u);
  EXPECT_EQ(store->io_errors(), 0u);  // a full disk is not a broken one
  for (uint64_t i = 0; i < written; ++i) {
    auto back = ReadAll(*store, Key(100 + i), 0, 0);
    ASSERT_EQ(back.size(), data.size()) << i;
    EXPECT_EQ(BlockCrcs(back.data(), back.size()), crcs);
  }
  // Until space is freed writes keep failing NO_SPACE (and a small delete cannot help: it is a
  // write too). Freeing a file block makes room; RocksDB notices and small writes succeed again.
  st = store->Write(Key(98), Origin(), data.span(), crcs);
  EXPECT_EQ(st.code(), Code::NO_SPACE) << st.ToString();
  ASSERT_TRUE(store->Delete(Key(1)).ok());
  // RocksDB re-checks free space every few seconds: poll, with a deadline.
  Status again = store->Write(Key(99), Origin(), data.span(), crcs);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!again.ok() && std::chrono::steady_clock::now() < deadline) {
    EXPECT_EQ(again.code(), Code::NO_SPACE) << again.ToString();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    again = store->Write(Key(99), Origin(), data.span(), crcs);
  }
  EXPECT_TRUE(again.ok()) << again.ToString();
  EXPECT_EQ(store->io_errors(), 0u);
  store.reset();
  auto reopened = OpenStore(dir, NewUringDevice(), 64 << 10);
  ASSERT_TRUE(reopened);
  EXPECT_EQ(reopened->capacity().blocks, written + (again.ok() ? 1 : 0));
}

}  // namespace
}  // namespace granary::datanode
