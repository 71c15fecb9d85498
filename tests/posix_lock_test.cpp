// Cluster-wide locks (issue 23): two `granary mount` processes of one volume (two hosts, as far
// as the metanode knows) must exclude each other exactly as two processes on one ext4 do. Each
// scenario runs once with both sides on the host's ext4 and once with side A on mount A and
// side B on mount B, and the traces must match. Then a mount that dies holding a lock: its
// locks go when its session lapses, within the bound stated in docs/mount.md.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <sstream>
#include <string>
#include <thread>

#include "tests/fuse_mount.h"

namespace granary::testing {
namespace {

constexpr int kLeaseMs = 3000;

std::string Err(int rc) { return rc < 0 ? strerrorname_np(errno) : "0"; }

int Lock(int fd, int cmd, short type, off_t start, off_t len) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = start;
  fl.l_len = len;
  return fcntl(fd, cmd, &fl);
}

std::string GetLk(int fd, int cmd, short type, off_t start, off_t len) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = start;
  fl.l_len = len;
  if (fcntl(fd, cmd, &fl) != 0) return strerrorname_np(errno);
  if (fl.l_type == F_UNLCK) return "unlocked";
  std::ostringstream o;
  o << (fl.l_type == F_WRLCK ? "write" : "read") << " [" << fl.l_start << "+" << fl.l_len << "]";
  return o.str();
}

// A pipe to say "ready" across a fork.
struct Signal {
  int fds[2];
  Signal() {
    if (pipe(fds) != 0) throw std::runtime_error("pipe");
  }
  ~Signal() {
    close(fds[0]);
    close(fds[1]);
  }
  void Send() { (void)!write(fds[1], "x", 1); }
  bool Wait() {
    char c;
    return read(fds[0], &c, 1) == 1;
  }
};

int WaitChild(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 200 + WTERMSIG(status);
}

// The kernel sends a FUSE RELEASE in the background: close(2) returns before the daemon dropped
// the file's OFD and flock locks (docs/mount.md). Waits, with a deadline, until `fd` sees the
// whole file unlocked; on ext4 that is at once.
std::string WaitUnlocked(int fd) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  std::string seen;
  while ((seen = GetLk(fd, F_OFD_GETLK, F_WRLCK, 0, 0)) != "unlocked" &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return seen;
}

// Both sides of every scenario: `a` and `b` name the same file (through two mounts, or twice on
// ext4).
std::string Scenario(const std::string& a, const std::string& b) {
  std::ostringstream t;
  close(open(a.c_str(), O_CREAT | O_RDWR, 0644));
  int fa = open(a.c_str(), O_RDWR), fb = open(b.c_str(), O_RDWR);
  // OFD locks belong to the open file: two opens in one process exclude each other.
  t << "ofd a write [0,100) = " << Err(Lock(fa, F_OFD_SETLK, F_WRLCK, 0, 100)) << "\n";
  t << "ofd b write [50,60) = " << Err(Lock(fb, F_OFD_SETLK, F_WRLCK, 50, 60)) << "\n";
  t << "ofd b read [100,200) = " << Err(Lock(fb, F_OFD_SETLK, F_RDLCK, 100, 100)) << "\n";
  t << "ofd b getlk write [0,+0) = " << GetLk(fb, F_OFD_GETLK, F_WRLCK, 0, 0) << "\n";
  t << "ofd a getlk read [150,+10) = " << GetLk(fa, F_OFD_GETLK, F_RDLCK, 150, 10) << "\n";
  t << "ofd a unlock [0,50) = " << Err(Lock(fa, F_OFD_SETLK, F_UNLCK, 0, 50)) << "\n";
  t << "ofd b write [0,50) = " << Err(Lock(fb, F_OFD_SETLK, F_WRLCK, 0, 50)) << "\n";
  t << "ofd a getlk write [0,+0) = " << GetLk(fa, F_OFD_GETLK, F_WRLCK, 0, 0) << "\n";
  // A blocked F_OFD_SETLKW is woken when the lock frees.
  auto start = std::chrono::steady_clock::now();
  std::thread waiter([&] {
    t << "ofd b setlkw [50,100) = " << Err(Lock(fb, F_OFD_SETLKW, F_WRLCK, 50, 50)) << "\n";
  });
  // Give the waiter a head start; the outcome is the same whether it blocked or not.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  Lock(fa, F_OFD_SETLK, F_UNLCK, 0, 0);
  waiter.join();
  auto woke = std::chrono::steady_clock::now() - start;
  if (woke > std::chrono::seconds(3)) t << "waiter woke late\n";
  close(fa);
  close(fb);
  fa = open(a.c_str(), O_RDWR);
  fb = open(b.c_str(), O_RDWR);
  // close(fb) above released b's OFD locks.
  t << "after close: getlk = " << WaitUnlocked(fa) << "\n";
  // flock: whole-file, per open file, independent of record locks.
  t << "flock a ex = " << Err(flock(fa, LOCK_EX | LOCK_NB)) << "\n";
  t << "flock b sh = " << Err(flock(fb, LOCK_SH | LOCK_NB)) << "\n";
  t << "ofd b write while flocked = " << Err(Lock(fb, F_OFD_SETLK, F_WRLCK, 0, 0)) << "\n";
  t << "ofd b unlock = " << Err(Lock(fb, F_OFD_SETLK, F_UNLCK, 0, 0)) << "\n";
  t << "flock a sh (downgrade) = " << Err(flock(fa, LOCK_SH | LOCK_NB)) << "\n";
  t << "flock b sh = " << Err(flock(fb, LOCK_SH | LOCK_NB)) << "\n";
  t << "flock a ex = " << Err(flock(fa, LOCK_EX | LOCK_NB)) << "\n";
  t << "flock b un = " << Err(flock(fb, LOCK_UN)) << "\n";
  t << "flock a ex = " << Err(flock(fa, LOCK_EX | LOCK_NB)) << "\n";
  close(fa);  // releases the flock (asynchronously through FUSE: a blocking flock waits for it)
  t << "flock b ex after close = " << Err(flock(fb, LOCK_EX)) << "\n";
  close(fb);

  // Process-associated POSIX locks: the child (side b) against this process (side a).
  fa = open(a.c_str(), O_RDWR);
  t << "posix a write [0,1) = " << Err(Lock(fa, F_SETLK, F_WRLCK, 0, 1)) << "\n";
  Signal ready;
  pid_t child = fork();
  if (child == 0) {
    int fd = open(b.c_str(), O_RDWR);
    int code = 0;
    if (Lock(fd, F_SETLK, F_WRLCK, 0, 1) != -1 || errno != EAGAIN) code |= 1;
    if (Lock(fd, F_SETLK, F_WRLCK, 1, 1) != 0) code |= 2;
    // EINTR: a signal interrupts a blocked F_SETLKW.
    struct sigaction sa {};
    sa.sa_handler = [](int) {};
    sigaction(SIGALRM, &sa, nullptr);  // no SA_RESTART
    alarm(1);
    if (Lock(fd, F_SETLKW, F_WRLCK, 0, 1) != -1 || errno != EINTR) code |= 4;
    ready.Send();
    // A two-owner cycle: this side waits for byte 0, the parent for byte 1.
    int rc = Lock(fd, F_SETLKW, F_WRLCK, 0, 1);
    if (rc != 0 && errno != EDEADLK) code |= 8;
    if (rc != 0) code |= 16;  // this side was the one refused
    _exit(code);              // releases the child's locks
  }
  ready.Wait();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let the child block (either
                                                                // order gives one EDEADLK)
  int rc = Lock(fa, F_SETLKW, F_WRLCK, 1, 1);
  int parent_errno = rc == 0 ? 0 : errno;
  close(fa);  // ends the child's wait for byte 0 if it still waits
  int code = WaitChild(child);
  bool one_deadlock = (parent_errno == EDEADLK) != ((code & 16) != 0);
  t << "posix child checks = " << (code & 15) << ", exactly one EDEADLK = " << one_deadlock << "\n";
  unlink(a.c_str());
  return t.str();
}

class PosixLockTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (mounts)";
    ClusterOptions o;
    o.metanode_flags = {"--client-lease-ms", std::to_string(kLeaseMs)};
    cluster_ = std::make_unique<LocalCluster>(o);
    cluster_->Start();
    a_ = std::make_unique<FuseMount>(cluster_->meta_address(), "default");
    b_ = std::make_unique<FuseMount>(cluster_->meta_address(), "default");
  }
  void TearDown() override {
    a_.reset();
    b_.reset();
    cluster_.reset();
  }
  TempDir ext4_;
  std::unique_ptr<LocalCluster> cluster_;
  std::unique_ptr<FuseMount> a_, b_;
};

TEST_F(PosixLockTest, TwoMountsExcludeEachOtherAsTwoProcessesOnExt4) {
  struct statfs fs {};
  if (statfs(ext4_.str().c_str(), &fs) != 0 || fs.f_type != EXT4_SUPER_MAGIC) {
    GTEST_SKIP() << ext4_.str() << " is not ext4";
  }
  std::string on_ext4 = Scenario(ext4_.str() + "/f", ext4_.str() + "/f");
  std::string on_granary = Scenario(*a_ / "f", *b_ / "f");
  EXPECT_EQ(on_granary, on_ext4) << "two granary mounts (left) vs one ext4 (right)";
}

// A mount SIGKILLed while it holds a lock (a crashed host): the lock is released once its
// session lapses, and a waiter on another mount gets it within lease + 2 housekeeping rounds.
TEST_F(PosixLockTest, LocksOfAKilledMountGoWhenItsSessionLapses) {
  auto c = std::make_unique<FuseMount>(cluster_->meta_address(), "default");
  close(open((*a_ / "lockfile").c_str(), O_CREAT | O_RDWR, 0644));
  Signal held;
  pid_t holder = fork();
  if (holder == 0) {
    int fd = open((*c / "lockfile").c_str(), O_RDWR);
    if (fd < 0 || flock(fd, LOCK_EX) != 0 || Lock(fd, F_SETLK, F_WRLCK, 0, 0) != 0) _exit(1);
    held.Send();
    pause();
    _exit(0);
  }
  ASSERT_TRUE(held.Wait());
  int fb = open((*b_ / "lockfile").c_str(), O_RDWR);
  ASSERT_GE(fb, 0);
  EXPECT_EQ(Err(flock(fb, LOCK_EX | LOCK_NB)), "EAGAIN");  // EWOULDBLOCK
  EXPECT_EQ(Err(Lock(fb, F_SETLK, F_WRLCK, 0, 0)), "EAGAIN");
  // The mount process dies; the holder's descriptors die with it, but no release reaches the
  // metanode.
  auto killed = std::chrono::steady_clock::now();
  c->Crash();
  kill(holder, SIGKILL);
  WaitChild(holder);
  EXPECT_EQ(flock(fb, LOCK_EX), 0) << strerrorname_np(errno);  // blocks until reaped
  auto released = std::chrono::steady_clock::now() - killed;
  EXPECT_EQ(Lock(fb, F_SETLKW, F_WRLCK, 0, 0), 0) << strerrorname_np(errno);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(released).count();
  std::printf("released %lld ms after the kill (lease %d ms)\n", static_cast<long long>(ms),
              kLeaseMs);
  EXPECT_LE(ms, kLeaseMs + 2500);
  close(fb);
}

}  // namespace
}  // namespace granary::testing
