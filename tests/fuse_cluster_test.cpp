// `granary mount` across processes and failures: two mounts of one volume (close-to-open,
// atomic rename), fio verify jobs, a random-operation stress against an in-memory model, and
// crashes (SIGKILL of the mount daemon, of a datanode during I/O).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <random>
#include <thread>

#include "tests/fuse_mount.h"

namespace granary::testing {
namespace {

std::string Pattern(size_t n, uint64_t seed) {
  std::string s(n, '\0');
  std::mt19937_64 rng(seed);
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(rng());
  return s;
}

class FuseClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    umask(022);
    cluster_ = std::make_unique<LocalCluster>();
    cluster_->Start();
  }
  std::unique_ptr<FuseMount> Mount(std::vector<std::string> extra = {}) {
    return std::make_unique<FuseMount>(cluster_->meta_address(), "default", std::move(extra));
  }
  // Runs fio to completion (bounded); returns its exit status and output.
  std::pair<int, std::string> Fio(std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/fio"};
    argv.insert(argv.end(), args.begin(), args.end());
    Process fio(argv);
    auto status = fio.Wait(seconds(240));
    if (!status) fio.Kill();
    int code = status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
    return {code, fio.Output()};
  }

  std::unique_ptr<LocalCluster> cluster_;
};

TEST_F(FuseClusterTest, CloseToOpenBetweenTwoMounts) {
  auto a = Mount();
  auto b = Mount();
  const std::string v1 = Pattern(3 << 20, 1), v2 = Pattern(3 << 20, 2);
  ASSERT_EQ(WriteAll(*a / "f", v1), 0);
  // A name created on A is visible on B, with the closed bytes.
  EXPECT_TRUE(ReadAll(*b / "f") == v1);
  // Same size, new bytes: B's open must drop the pages it cached for v1.
  ASSERT_EQ(WriteAll(*a / "f", v2, 0), 0);
  EXPECT_TRUE(ReadAll(*b / "f") == v2);
  // A longer file: B's open sees the new size.
  const std::string v3 = v2 + "tail";
  ASSERT_EQ(WriteAll(*a / "f", "tail", O_APPEND), 0);
  EXPECT_TRUE(ReadAll(*b / "f") == v3);
  // Data buffered in an open file on A is not visible on B before close, and is after.
  int fd = open((*a / "g").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "pending", 7), 7);
  struct stat st {};
  ASSERT_EQ(stat((*b / "g").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 0);
  ASSERT_EQ(close(fd), 0);
  EXPECT_EQ(ReadAll(*b / "g"), "pending");
}

// Names, missing names and attributes are cached for 30 s (the default --cache-timeout) because
// each mount follows the metanode's change feed: another mount's changes reach the kernel's
// cache within a round trip, not after a timeout (docs/mount.md "Coherent caching").
TEST_F(FuseClusterTest, CachedNamesAndAttributesFollowAnotherMountsChanges) {
  auto a = Mount();
  auto b = Mount();
  ASSERT_TRUE(b->process().WaitForLine("event=change_feed_following", seconds(10)));
  ASSERT_TRUE(a->process().WaitForLine("event=change_feed_following", seconds(10)));
  struct stat st {};
  auto on_b = [&](const std::string& name) { return stat((*b / name).c_str(), &st) == 0; };
  // B learns that "x" does not exist (cached), then A creates it.
  ASSERT_FALSE(on_b("x"));
  ASSERT_EQ(WriteAll(*a / "x", ""), 0);
  EXPECT_TRUE(WaitUntil([&] { return on_b("x"); }, seconds(5))) << "a created name stays hidden";
  // Attributes B holds: a chmod and a write+close on A.
  ASSERT_EQ(chmod((*a / "x").c_str(), 0600), 0);
  EXPECT_TRUE(WaitUntil([&] { return on_b("x") && (st.st_mode & 0777) == 0600; }, seconds(5)));
  ASSERT_EQ(WriteAll(*a / "x", "12345"), 0);
  EXPECT_TRUE(WaitUntil([&] { return on_b("x") && st.st_size == 5; }, seconds(5)));
  // Names B holds: a rename and an unlink on A.
  ASSERT_EQ(rename((*a / "x").c_str(), (*a / "y").c_str()), 0);
  EXPECT_TRUE(WaitUntil([&] { return !on_b("x") && on_b("y"); }, seconds(5)));
  ASSERT_EQ(unlink((*a / "y").c_str()), 0);
  EXPECT_TRUE(WaitUntil([&] { return !on_b("y"); }, seconds(5)));
  // A directory B listed (readdirplus caches its entries) changes on A.
  ASSERT_EQ(mkdir((*a / "d").c_str(), 0755), 0);
  ASSERT_EQ(WriteAll(*a / "d/f", "1"), 0);
  EXPECT_TRUE(WaitUntil([&] { return on_b("d/f"); }, seconds(5)));
  auto listed = [&] {
    std::vector<std::string> names;
    for (const auto& e : std::filesystem::directory_iterator(*b / "d")) {
      names.push_back(e.path().filename());
    }
    return names;
  };
  EXPECT_EQ(listed(), std::vector<std::string>{"f"});
  ASSERT_EQ(rename((*a / "d/f").c_str(), (*a / "d/g").c_str()), 0);
  EXPECT_TRUE(WaitUntil([&] { return !on_b("d/f") && on_b("d/g"); }, seconds(5)));
  EXPECT_EQ(listed(), std::vector<std::string>{"g"});
}

TEST_F(FuseClusterTest, CheckpointRenameIsVisibleAtomicallyOnAnotherMount) {
  auto writer = Mount();
  auto reader = Mount({"--entry-timeout", "0", "--attr-timeout", "0"});
  constexpr int kFiles = 16;
  ASSERT_EQ(mkdir((*writer / "ckpt.tmp").c_str(), 0755), 0);
  for (int i = 0; i < kFiles; ++i) {
    ASSERT_EQ(WriteAll(*writer / ("ckpt.tmp/shard-" + std::to_string(i)), Pattern(256 << 10, i)),
              0);
  }
  std::atomic<bool> done{false};
  std::atomic<int> partial{0}, complete{0};
  std::thread watcher([&] {
    while (!done) {
      struct stat st {};
      if (stat((*reader / "ckpt-0042").c_str(), &st) != 0) continue;
      bool all = true;
      for (int i = 0; i < kFiles; ++i) {
        if (ReadAll(*reader / ("ckpt-0042/shard-" + std::to_string(i))) != Pattern(256 << 10, i)) {
          all = false;
        }
      }
      (all ? complete : partial)++;
      if (all) return;
    }
  });
  ASSERT_EQ(rename((*writer / "ckpt.tmp").c_str(), (*writer / "ckpt-0042").c_str()), 0);
  WaitUntil([&] { return complete.load() > 0; }, seconds(20));
  done = true;
  watcher.join();
  EXPECT_EQ(partial.load(), 0);
  EXPECT_GT(complete.load(), 0);
  struct stat st {};
  EXPECT_EQ(ERRNO_OF(stat((*reader / "ckpt.tmp").c_str(), &st)), ENOENT);
}

TEST_F(FuseClusterTest, FioVerifySequentialAndRandom) {
  auto m = Mount();
  auto [seq, seq_out] =
      Fio({"--name=seq", "--directory=" + m->path(), "--rw=write", "--bs=1M", "--size=48M",
           "--numjobs=2", "--verify=crc32c", "--do_verify=1", "--end_fsync=1"});
  EXPECT_EQ(seq, 0) << seq_out;
  auto [rnd, rnd_out] = Fio({"--name=rnd", "--directory=" + m->path(), "--rw=randwrite", "--bs=4k",
                             "--bsrange=4k-64k", "--size=16M", "--verify=crc32c", "--do_verify=1",
                             "--fsync=64", "--randrepeat=1"});
  EXPECT_EQ(rnd, 0) << rnd_out;
}

TEST_F(FuseClusterTest, RandomOperationsMatchAnInMemoryModel) {
  auto m = Mount();
  const std::string path = *m / "stress";
  std::string model;
  std::mt19937_64 rng(42);
  int fd = open(path.c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0);
  const uint64_t kSpan = 24 << 20;
  for (int op = 0; op < 300; ++op) {
    int kind = static_cast<int>(rng() % 10);
    uint64_t off = rng() % kSpan;
    uint64_t len = 1 + rng() % (rng() % 4 == 0 ? (5 << 20) : 70000);
    if (kind < 5) {  // write
      std::string data = Pattern(len, rng());
      ASSERT_EQ(pwrite(fd, data.data(), len, static_cast<off_t>(off)), static_cast<ssize_t>(len));
      if (model.size() < off + len) model.resize(off + len, '\0');
      model.replace(off, len, data);
    } else if (kind == 5) {  // truncate
      uint64_t size = rng() % kSpan;
      ASSERT_EQ(ftruncate(fd, static_cast<off_t>(size)), 0);
      model.resize(size, '\0');
    } else if (kind == 6) {  // punch a hole
      ASSERT_EQ(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off),
                          static_cast<off_t>(len)),
                0);
      if (off < model.size()) {
        uint64_t n = std::min<uint64_t>(len, model.size() - off);
        model.replace(off, n, std::string(n, '\0'));
      }
    } else if (kind == 7) {  // close and reopen: commit, then read through a fresh open
      ASSERT_EQ(close(fd), 0);
      fd = open(path.c_str(), O_RDWR);
      ASSERT_GE(fd, 0);
    } else {  // read and compare
      std::string got(len, '\0');
      ssize_t n = pread(fd, got.data(), len, static_cast<off_t>(off));
      uint64_t want = off >= model.size() ? 0 : std::min<uint64_t>(len, model.size() - off);
      ASSERT_EQ(n, static_cast<ssize_t>(want)) << "op " << op << " off " << off;
      ASSERT_TRUE(got.substr(0, want) == model.substr(std::min<uint64_t>(off, model.size()), want))
          << "op " << op << " off " << off << " len " << len;
    }
  }
  ASSERT_EQ(close(fd), 0);
  EXPECT_TRUE(ReadAll(path) == model);
  // A second mount sees the same bytes.
  auto other = Mount();
  EXPECT_TRUE(ReadAll(*other / "stress") == model);
}

TEST_F(FuseClusterTest, MountDaemonKilledMidWriteKeepsClosedAndFsyncedFiles) {
  auto m = Mount();
  const std::string closed = Pattern(6 << 20, 7), synced = Pattern(5 << 20, 8);
  ASSERT_EQ(mkdir((*m / "ckpt-0041").c_str(), 0755), 0);
  ASSERT_EQ(WriteAll(*m / "ckpt-0041/model", closed), 0);
  int fd = open((*m / "synced").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, synced.data(), synced.size()), static_cast<ssize_t>(synced.size()));
  ASSERT_EQ(fsync(fd), 0);
  // A checkpoint being written when the daemon dies.
  ASSERT_EQ(mkdir((*m / "ckpt.tmp").c_str(), 0755), 0);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    int w = open((*m / "ckpt.tmp/model").c_str(), O_CREAT | O_WRONLY, 0644);
    std::string chunk = Pattern(1 << 20, 9);
    while (w >= 0 && !stop && write(w, chunk.data(), chunk.size()) > 0) {
    }
    if (w >= 0) close(w);
  });
  struct stat st {};
  WaitUntil(
      [&] { return stat((*m / "ckpt.tmp/model").c_str(), &st) == 0 && st.st_size > (8 << 20); },
      seconds(30));
  m->Crash();
  stop = true;
  writer.join();
  close(fd);

  auto fresh = Mount();
  EXPECT_TRUE(ReadAll(*fresh / "ckpt-0041/model") == closed);
  EXPECT_TRUE(ReadAll(*fresh / "synced") == synced);
  // The unpublished checkpoint never replaced the good one.
  EXPECT_EQ(ERRNO_OF(stat((*fresh / "ckpt-0042").c_str(), &st)), ENOENT);
  // Publishing works after the crash and is complete on a fresh mount.
  ASSERT_EQ(WriteAll(*fresh / "ckpt.tmp/model", closed), 0);
  ASSERT_EQ(rename((*fresh / "ckpt.tmp").c_str(), (*fresh / "ckpt-0042").c_str()), 0);
  fresh->Crash();
  auto after = Mount();
  EXPECT_TRUE(ReadAll(*after / "ckpt-0042/model") == closed);
  EXPECT_TRUE(ReadAll(*after / "ckpt-0041/model") == closed);
}

TEST_F(FuseClusterTest, IoContinuesWhenADatanodeIsKilledDuringFio) {
  auto m = Mount();
  std::vector<std::string> argv = {"/usr/bin/fio",    "--name=dn",     "--directory=" + m->path(),
                                   "--rw=write",      "--bs=1M",       "--size=96M",
                                   "--verify=crc32c", "--do_verify=1", "--fsync=8"};
  Process fio(argv);
  struct stat st {};
  WaitUntil([&] { return stat((*m / "dn.0.0").c_str(), &st) == 0 && st.st_size >= (16 << 20); },
            seconds(60));
  cluster_->KillDatanode(1);
  auto status = fio.Wait(seconds(240));
  if (!status) fio.Kill();
  ASSERT_TRUE(status.has_value()) << fio.Output();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << fio.Output();
}

}  // namespace
}  // namespace granary::testing
