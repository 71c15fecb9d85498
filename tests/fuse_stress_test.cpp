// The mount daemon under the load that once corrupted its heap (bench/mount.sh's phases, scaled
// down): parallel sequential writes and reads, 4 KiB random reads from several threads, then a
// storm of create/write/stat/open/read/unlink/readdir from several threads with handles opened
// and released concurrently on the same inodes. Every byte read is checked, and the daemon must
// still be alive, silent about memory errors, and unmount cleanly. Run with an ASan `granary`
// (GRANARY_BINARY=build-asan/bin/granary GRANARY_STRESS_NO_VALGRIND=1) too; by default the
// daemon runs under valgrind when it is installed.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "tests/fuse_mount.h"

namespace granary::testing {
namespace {

constexpr int kFiles = 4;
constexpr const char* kValgrind = "/usr/bin/valgrind";
constexpr size_t kFileSize = 8 << 20;

// Byte i of file f is a function of (f, i), so any read can be checked in place.
uint8_t ByteAt(int f, uint64_t i) { return static_cast<uint8_t>((i * 2654435761u >> 7) + f * 31); }

std::string Content(int f, size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(ByteAt(f, i));
  return s;
}

// Failures seen by worker threads: counted, the first few described.
class Failures {
 public:
  void Add(const std::string& what) {
    std::lock_guard lock(mu_);
    if (seen_.size() < 10) seen_.push_back(what + " (errno " + std::to_string(errno) + ")");
    ++count_;
  }
  int count() const {
    std::lock_guard lock(mu_);
    return count_;
  }
  std::string Describe() const {
    std::lock_guard lock(mu_);
    std::string out;
    for (const auto& s : seen_) out += s + "\n";
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> seen_;
  int count_ = 0;
};

// Runs `body(t)` on `n` threads and joins them.
template <typename Body>
void Parallel(int n, Body body) {
  std::vector<std::thread> threads;
  for (int t = 0; t < n; ++t) threads.emplace_back(body, t);
  for (auto& th : threads) th.join();
}

// What a memory error in the daemon prints (ASan, UBSan, glibc's heap checks).
bool ReportsMemoryError(const std::string& out) {
  for (const char* s : {"AddressSanitizer", "runtime error:", "malloc", "free()", "corrupted",
                        "double free", "Invalid read", "Invalid write", "Aborted"}) {
    if (out.find(s) != std::string::npos) return true;
  }
  return false;
}

TEST(FuseStressTest, ConcurrentReadsThenCreateUnlinkStormKeepTheDaemonHealthy) {
  umask(022);
  LocalCluster cluster;
  cluster.Start();
  // The daemon runs under valgrind when it is installed (CI installs it): the use-after-free
  // this test guards against was a write inside pthread_mutex_unlock, which ASan does not see
  // (libc is not instrumented) but memcheck does.
  std::vector<std::string> checker;
  if (access(kValgrind, X_OK) == 0 && std::getenv("GRANARY_STRESS_NO_VALGRIND") == nullptr) {
    checker = {kValgrind, "-q", "--error-exitcode=99", "--num-callers=30"};
  }
  FuseMount m(cluster.meta_address(), "default", {}, checker);
  const auto deadline_of = [](int s) { return std::chrono::steady_clock::now() + seconds(s); };

  // 1. Sequential writes, one file per thread (1 MiB writes, like fio's seq job).
  Failures failures;
  Parallel(kFiles, [&](int f) {
    if (WriteAll(m / ("seq." + std::to_string(f)), Content(f, kFileSize)) != 0)
      failures.Add("seq write");
  });
  ASSERT_EQ(failures.count(), 0) << failures.Describe();

  // 2. Sequential reads (the kernel's readahead fans out over the daemon's workers).
  Parallel(kFiles, [&](int f) {
    if (ReadAll(m / ("seq." + std::to_string(f))) != Content(f, kFileSize))
      failures.Add("seq read mismatch");
  });
  ASSERT_EQ(failures.count(), 0) << failures.Describe();

  // 3. 4 KiB random reads from 8 threads over the 4 files, each thread with its own handles,
  // reopened every few hundred reads so that opens and releases interleave with reads.
  Parallel(8, [&](int t) {
    std::mt19937_64 rng(t);
    const auto end = deadline_of(4);
    while (std::chrono::steady_clock::now() < end) {
      const int f = static_cast<int>(rng() % kFiles);
      int fd = ::open((m / ("seq." + std::to_string(f))).c_str(), O_RDONLY);
      if (fd < 0) {
        failures.Add("randread open");
        return;
      }
      for (int i = 0; i < 200; ++i) {
        uint64_t off = (rng() % (kFileSize / 4096)) * 4096;
        uint8_t buf[4096];
        if (::pread(fd, buf, sizeof buf, static_cast<off_t>(off)) != 4096) {
          failures.Add("randread short pread");
          break;
        }
        for (size_t k = 0; k < sizeof buf; k += 511) {
          if (buf[k] != ByteAt(f, off + k)) {
            failures.Add("randread bytes differ");
            break;
          }
        }
      }
      ::close(fd);
    }
  });
  ASSERT_EQ(failures.count(), 0) << failures.Describe();

  // 4. The bench's next step: unlink the files (some still open here, so they must stay
  // readable until closed), then a create/write/stat/read/unlink storm from 6 threads while two
  // more keep opening, reading and closing a shared file that one of them replaces, and one
  // lists the directory.
  std::vector<int> held;
  for (int f = 0; f < kFiles; f += 2)
    held.push_back(::open((m / ("seq." + std::to_string(f))).c_str(), O_RDONLY));
  for (int f = 0; f < kFiles; ++f)
    ASSERT_EQ(ERRNO_OF(unlink((m / ("seq." + std::to_string(f))).c_str())), 0);
  for (size_t i = 0; i < held.size(); ++i) {
    ASSERT_GE(held[i], 0);
    uint8_t buf[4096];
    ASSERT_EQ(::pread(held[i], buf, sizeof buf, 1 << 20), 4096);
    EXPECT_EQ(buf[7], ByteAt(static_cast<int>(i) * 2, (1 << 20) + 7));
    ::close(held[i]);
  }

  ASSERT_EQ(WriteAll(m / "shared", Content(9, 64 << 10)), 0);
  std::atomic<bool> stop{false};
  std::thread lister([&] {
    while (!stop) {
      DIR* d = opendir(m.path().c_str());
      if (d == nullptr) continue;
      while (readdir(d) != nullptr) {
      }
      closedir(d);
    }
  });
  std::vector<std::thread> sharers;
  for (int t = 0; t < 2; ++t) {
    sharers.emplace_back([&, t] {
      const std::string want = Content(9, 64 << 10);
      while (!stop) {
        if (t == 0) {
          // Replace the name: readers hold either the old or the new inode, both complete.
          if (WriteAll(m / "shared.tmp", want) != 0 ||
              rename((m / "shared.tmp").c_str(), (m / "shared").c_str()) != 0) {
            failures.Add("replace shared (write+rename)");
          }
        }
        int fd = ::open((m / "shared").c_str(), O_RDONLY);
        // The looked-up inode may be replaced and freed before the open reaches it (ENOENT).
        if (fd < 0) continue;
        std::string got(want.size(), '\0');
        ssize_t n = ::pread(fd, got.data(), got.size(), 0);
        if (n != static_cast<ssize_t>(want.size()) || got != want)
          failures.Add("shared read differs");
        ::close(fd);
      }
    });
  }
  Parallel(6, [&](int t) {
    const auto end = deadline_of(6);
    for (int i = 0; std::chrono::steady_clock::now() < end; ++i) {
      const std::string name = m / ("t" + std::to_string(t) + "-" + std::to_string(i));
      const std::string body = Content(t, static_cast<size_t>(i % 5) * 1000);
      if (WriteAll(name, body, O_CREAT | O_EXCL) != 0) {
        failures.Add("storm create");
        continue;
      }
      // Right after close the size is the committed one, even while the lister's readdirplus
      // pages (fetched before the commit) and other threads' getattrs race it.
      struct stat st {};
      if (stat(name.c_str(), &st) != 0) failures.Add("storm stat");
      if (static_cast<size_t>(st.st_size) != body.size())
        failures.Add("storm stat size " + std::to_string(st.st_size) + " after writing " +
                     std::to_string(body.size()));
      int fd = ::open(name.c_str(), O_RDONLY);
      if (fd < 0) {
        failures.Add("storm open");
        continue;
      }
      // Unlinked while open: still readable through the handle until close.
      if (unlink(name.c_str()) != 0) failures.Add("storm unlink");
      std::string got(body.size(), '\0');
      if (::pread(fd, got.data(), got.size(), 0) < 0)
        failures.Add("storm read of unlinked-open file");
      ::close(fd);
    }
  });
  stop = true;
  for (auto& s : sharers) s.join();
  lister.join();
  EXPECT_EQ(failures.count(), 0) << failures.Describe();

  // The daemon survived, reported nothing, and commits and unmounts on SIGTERM with exit 0.
  ASSERT_TRUE(m.process().running()) << m.process().Output();
  EXPECT_FALSE(ReportsMemoryError(m.process().Output())) << m.process().Output();
  m.process().Signal(SIGTERM);
  auto status = m.process().Wait(seconds(30));
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << m.process().Output();
  EXPECT_FALSE(ReportsMemoryError(m.process().Output())) << m.process().Output();
}

}  // namespace
}  // namespace granary::testing
