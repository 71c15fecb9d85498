// POSIX behaviour of `granary mount` through a real kernel mount on a loopback cluster: every
// call with its exact errno, as root and as an unprivileged uid.
#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <set>

#include "client/meta_client.h"
#include "tests/fuse_mount.h"

namespace granary::testing {
namespace {

class FusePosixTest : public ::testing::Test {
 protected:
  void SetUp() override {
    umask(022);  // modes below are the ones asked for, whatever the runner's umask
    cluster_ = std::make_unique<LocalCluster>();
    cluster_->Start();
    mount_ = std::make_unique<FuseMount>(cluster_->meta_address(), "default");
  }
  void TearDown() override {
    mount_.reset();
    cluster_.reset();
  }
  std::string P(const std::string& rel) { return *mount_ / rel; }

  // Runs `body` in a forked child as uid/gid 1000; returns the child's exit code (the body
  // returns 0 when every check passed, else the number of the failed check).
  int AsUser(const std::function<int()>& body, uid_t uid = 1000) {
    pid_t pid = fork();
    if (pid == 0) {
      if (setgroups(0, nullptr) != 0 || setresgid(uid, uid, uid) != 0 ||
          setresuid(uid, uid, uid) != 0) {
        _exit(100);
      }
      _exit(body());
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 200;
  }

  std::unique_ptr<LocalCluster> cluster_;
  std::unique_ptr<FuseMount> mount_;
};

TEST_F(FusePosixTest, CreateWriteReadWithOpenFlags) {
  ASSERT_EQ(WriteAll(P("f"), "hello"), 0);
  EXPECT_EQ(ReadAll(P("f")), "hello");
  // O_EXCL on an existing name.
  EXPECT_EQ(ERRNO_OF(open(P("f").c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644)), EEXIST);
  // O_APPEND appends at the end, whatever the offset.
  ASSERT_EQ(WriteAll(P("f"), " world", O_APPEND), 0);
  EXPECT_EQ(ReadAll(P("f")), "hello world");
  // O_TRUNC empties.
  ASSERT_EQ(WriteAll(P("f"), "x", O_TRUNC), 0);
  EXPECT_EQ(ReadAll(P("f")), "x");
  // Open of a missing file without O_CREAT.
  EXPECT_EQ(ERRNO_OF(open(P("missing").c_str(), O_RDONLY)), ENOENT);
  // A directory cannot be opened for writing.
  ASSERT_EQ(mkdir(P("d").c_str(), 0755), 0);
  EXPECT_EQ(ERRNO_OF(open(P("d").c_str(), O_WRONLY)), EISDIR);
  // pwrite/pread at offsets, read-your-writes before close.
  int fd = open(P("g").c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, "abc", 3, 10), 3);
  char buf[16] = {};
  ASSERT_EQ(pread(fd, buf, sizeof buf, 0), 13);
  EXPECT_EQ(std::string(buf, 13), std::string(10, '\0') + "abc");
  struct stat st {};
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, 13);
  ASSERT_EQ(close(fd), 0);
  ASSERT_EQ(stat(P("g").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 13);
}

TEST_F(FusePosixTest, DirectoriesAndNamesWithExactErrors) {
  ASSERT_EQ(mkdir(P("d").c_str(), 0755), 0);
  EXPECT_EQ(ERRNO_OF(mkdir(P("d").c_str(), 0755)), EEXIST);
  ASSERT_EQ(WriteAll(P("d/f"), "x"), 0);
  EXPECT_EQ(ERRNO_OF(rmdir(P("d").c_str())), ENOTEMPTY);
  EXPECT_EQ(ERRNO_OF(rmdir(P("d/f").c_str())), ENOTDIR);
  EXPECT_EQ(ERRNO_OF(unlink(P("d").c_str())), EISDIR);
  EXPECT_EQ(ERRNO_OF(unlink(P("nope").c_str())), ENOENT);
  EXPECT_EQ(ERRNO_OF(mkdir(P("d/f/x").c_str(), 0755)), ENOTDIR);
  EXPECT_EQ(ERRNO_OF(mkdir(P("no/x").c_str(), 0755)), ENOENT);
  ASSERT_EQ(unlink(P("d/f").c_str()), 0);
  ASSERT_EQ(rmdir(P("d").c_str()), 0);
  // 255 bytes is the longest name; 256 is ENAMETOOLONG for every call that takes a name.
  std::string ok(255, 'n'), too_long(256, 'n');
  ASSERT_EQ(WriteAll(P(ok), "x"), 0);
  EXPECT_EQ(ReadAll(P(ok)), "x");
  EXPECT_EQ(WriteAll(P(too_long), "x"), ENAMETOOLONG);
  EXPECT_EQ(ERRNO_OF(mkdir(P(too_long).c_str(), 0755)), ENAMETOOLONG);
  EXPECT_EQ(ERRNO_OF(rename(P(ok).c_str(), P(too_long).c_str())), ENAMETOOLONG);
  EXPECT_EQ(ERRNO_OF(symlink("t", P(too_long).c_str())), ENAMETOOLONG);
  // A deep tree.
  std::string path = "deep";
  ASSERT_EQ(mkdir(P(path).c_str(), 0755), 0);
  for (int i = 0; i < 48; ++i) {
    path += "/level" + std::to_string(i);
    ASSERT_EQ(mkdir(P(path).c_str(), 0755), 0) << path;
  }
  ASSERT_EQ(WriteAll(P(path + "/leaf"), "bottom"), 0);
  EXPECT_EQ(ReadAll(P(path + "/leaf")), "bottom");
}

TEST_F(FusePosixTest, ReaddirListsEveryEntryOnce) {
  ASSERT_EQ(mkdir(P("many").c_str(), 0755), 0);
  std::set<std::string> want;
  for (int i = 0; i < 1500; ++i) {
    std::string name = "entry-" + std::to_string(i);
    ASSERT_EQ(WriteAll(P("many/" + name), ""), 0);
    want.insert(name);
  }
  ASSERT_EQ(mkdir(P("many/sub").c_str(), 0755), 0);
  want.insert("sub");
  DIR* d = opendir(P("many").c_str());
  ASSERT_NE(d, nullptr);
  std::multiset<std::string> got;
  bool saw_dots = false;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n == "." || n == "..") {
      saw_dots = true;
      continue;
    }
    got.insert(n);
    if (n == "sub") {
      EXPECT_EQ(e->d_type, DT_DIR);
    }
    if (n == "entry-7") {
      EXPECT_EQ(e->d_type, DT_REG);
    }
  }
  closedir(d);
  EXPECT_TRUE(saw_dots);
  EXPECT_EQ(got.size(), want.size());
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()), want);
}

TEST_F(FusePosixTest, RenamePlainNoreplaceExchangeAndErrors) {
  ASSERT_EQ(WriteAll(P("a"), "A"), 0);
  ASSERT_EQ(WriteAll(P("b"), "B"), 0);
  EXPECT_EQ(
      ERRNO_OF(renameat2(AT_FDCWD, P("a").c_str(), AT_FDCWD, P("b").c_str(), RENAME_NOREPLACE)),
      EEXIST);
  ASSERT_EQ(renameat2(AT_FDCWD, P("a").c_str(), AT_FDCWD, P("b").c_str(), RENAME_EXCHANGE), 0);
  EXPECT_EQ(ReadAll(P("a")), "B");
  EXPECT_EQ(ReadAll(P("b")), "A");
  EXPECT_EQ(
      ERRNO_OF(renameat2(AT_FDCWD, P("a").c_str(), AT_FDCWD, P("c").c_str(), RENAME_EXCHANGE)),
      ENOENT);
  ASSERT_EQ(rename(P("a").c_str(), P("b").c_str()), 0);  // replaces
  EXPECT_EQ(ReadAll(P("b")), "B");
  EXPECT_EQ(ERRNO_OF(access(P("a").c_str(), F_OK)), ENOENT);
  ASSERT_EQ(mkdir(P("d").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(P("d/sub").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(P("full").c_str(), 0755), 0);
  ASSERT_EQ(WriteAll(P("full/x"), "x"), 0);
  EXPECT_EQ(ERRNO_OF(rename(P("d").c_str(), P("d/sub/inside").c_str())), EINVAL);
  EXPECT_EQ(ERRNO_OF(rename(P("d").c_str(), P("full").c_str())), ENOTEMPTY);
  EXPECT_EQ(ERRNO_OF(rename(P("b").c_str(), P("d").c_str())), EISDIR);
  EXPECT_EQ(ERRNO_OF(rename(P("d").c_str(), P("b").c_str())), ENOTDIR);
  EXPECT_EQ(ERRNO_OF(rename(P("nope").c_str(), P("x").c_str())), ENOENT);
  // A directory moves with its contents.
  ASSERT_EQ(rename(P("full").c_str(), P("d/moved").c_str()), 0);
  EXPECT_EQ(ReadAll(P("d/moved/x")), "x");
}

TEST_F(FusePosixTest, SymlinksAndHardLinks) {
  ASSERT_EQ(WriteAll(P("target"), "data"), 0);
  ASSERT_EQ(symlink("target", P("sl").c_str()), 0);
  char buf[64] = {};
  ASSERT_EQ(readlink(P("sl").c_str(), buf, sizeof buf), 6);
  EXPECT_EQ(std::string(buf, 6), "target");
  EXPECT_EQ(ReadAll(P("sl")), "data");
  struct stat st {};
  ASSERT_EQ(lstat(P("sl").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(ERRNO_OF(symlink("x", P("sl").c_str())), EEXIST);
  EXPECT_EQ(ERRNO_OF(readlink(P("target").c_str(), buf, sizeof buf)), EINVAL);

  ASSERT_EQ(link(P("target").c_str(), P("hard").c_str()), 0);
  ASSERT_EQ(stat(P("target").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 2u);
  struct stat st2 {};
  ASSERT_EQ(stat(P("hard").c_str(), &st2), 0);
  EXPECT_EQ(st.st_ino, st2.st_ino);
  ASSERT_EQ(unlink(P("target").c_str()), 0);
  EXPECT_EQ(ReadAll(P("hard")), "data");
  ASSERT_EQ(stat(P("hard").c_str(), &st2), 0);
  EXPECT_EQ(st2.st_nlink, 1u);
  ASSERT_EQ(mkdir(P("d").c_str(), 0755), 0);
  EXPECT_EQ(ERRNO_OF(link(P("d").c_str(), P("dlink").c_str())), EPERM);
  EXPECT_EQ(ERRNO_OF(link(P("hard").c_str(), P("d").c_str())), EEXIST);
}

TEST_F(FusePosixTest, SetattrChmodChownUtimensTruncate) {
  ASSERT_EQ(WriteAll(P("f"), "0123456789"), 0);
  ASSERT_EQ(chmod(P("f").c_str(), 0640), 0);
  struct stat st {};
  ASSERT_EQ(stat(P("f").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  ASSERT_EQ(chown(P("f").c_str(), 1234, 5678), 0);
  ASSERT_EQ(stat(P("f").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, 1234u);
  EXPECT_EQ(st.st_gid, 5678u);
  timespec times[2] = {{1000000, 5}, {2000000, 7}};
  ASSERT_EQ(utimensat(AT_FDCWD, P("f").c_str(), times, 0), 0);
  ASSERT_EQ(stat(P("f").c_str(), &st), 0);
  EXPECT_EQ(st.st_atim.tv_sec, 1000000);
  EXPECT_EQ(st.st_mtim.tv_sec, 2000000);
  EXPECT_EQ(st.st_mtim.tv_nsec, 7);
  // Truncate shrinks, then grows with zeros.
  ASSERT_EQ(truncate(P("f").c_str(), 4), 0);
  EXPECT_EQ(ReadAll(P("f")), "0123");
  ASSERT_EQ(truncate(P("f").c_str(), 8), 0);
  EXPECT_EQ(ReadAll(P("f")), std::string("0123") + std::string(4, '\0'));
  // ftruncate through an open descriptor with buffered bytes: the truncate cuts them.
  int fd = open(P("f").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, "abcdefgh", 8, 0), 8);
  ASSERT_EQ(ftruncate(fd, 3), 0);
  ASSERT_EQ(close(fd), 0);
  EXPECT_EQ(ReadAll(P("f")), "abc");
  EXPECT_EQ(ERRNO_OF(truncate(P("nope").c_str(), 0)), ENOENT);
  // setuid/setgid/sticky bits are kept.
  ASSERT_EQ(mkdir(P("sticky").c_str(), 0755), 0);
  ASSERT_EQ(chmod(P("sticky").c_str(), 01777), 0);
  ASSERT_EQ(stat(P("sticky").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 01777u);
}

TEST_F(FusePosixTest, ExtendedAttributes) {
  ASSERT_EQ(WriteAll(P("f"), "x"), 0);
  const char* f = nullptr;
  std::string path = P("f");
  f = path.c_str();
  ASSERT_EQ(setxattr(f, "user.a", "one", 3, 0), 0);
  EXPECT_EQ(ERRNO_OF(setxattr(f, "user.a", "two", 3, XATTR_CREATE)), EEXIST);
  EXPECT_EQ(ERRNO_OF(setxattr(f, "user.b", "two", 3, XATTR_REPLACE)), ENODATA);
  ASSERT_EQ(setxattr(f, "user.a", "uno", 3, XATTR_REPLACE), 0);
  char buf[64] = {};
  EXPECT_EQ(getxattr(f, "user.a", nullptr, 0), 3);
  ASSERT_EQ(getxattr(f, "user.a", buf, sizeof buf), 3);
  EXPECT_EQ(std::string(buf, 3), "uno");
  EXPECT_EQ(ERRNO_OF(getxattr(f, "user.a", buf, 1)), ERANGE);
  EXPECT_EQ(ERRNO_OF(getxattr(f, "user.none", buf, sizeof buf)), ENODATA);
  ASSERT_EQ(setxattr(f, "user.b", "", 0, 0), 0);
  ssize_t n = listxattr(f, buf, sizeof buf);
  ASSERT_GT(n, 0);
  std::set<std::string> names;
  for (ssize_t i = 0; i < n; i += static_cast<ssize_t>(std::strlen(buf + i)) + 1) {
    names.insert(buf + i);
  }
  EXPECT_EQ(names, (std::set<std::string>{"user.a", "user.b"}));
  ASSERT_EQ(removexattr(f, "user.a"), 0);
  EXPECT_EQ(ERRNO_OF(removexattr(f, "user.a")), ENODATA);
  EXPECT_EQ(ERRNO_OF(getxattr(P("nope").c_str(), "user.a", buf, sizeof buf)), ENOENT);
}

TEST_F(FusePosixTest, UnlinkedOpenFileStaysReadableUntilClosed) {
  std::string data(3 << 20, 'q');
  ASSERT_EQ(WriteAll(P("f"), data), 0);
  int fd = open(P("f").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(unlink(P("f").c_str()), 0);
  EXPECT_EQ(ERRNO_OF(access(P("f").c_str(), F_OK)), ENOENT);
  std::string got(data.size(), '\0');
  // Through a fresh page cache: drop what the kernel holds.
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ASSERT_EQ(pread(fd, got.data(), got.size(), 0), static_cast<ssize_t>(got.size()));
  EXPECT_TRUE(got == data);
  struct stat st {};
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, static_cast<off_t>(data.size()));
  EXPECT_EQ(close(fd), 0);
}

TEST_F(FusePosixTest, FsyncFallocateAndSparseFiles) {
  int fd = open(P("f").c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, "head", 4, 0), 4);
  EXPECT_EQ(fsync(fd), 0);
  EXPECT_EQ(fdatasync(fd), 0);
  // Sparse: a write 100 MiB in; everything before reads as zeros.
  const off_t far = 100 << 20;
  ASSERT_EQ(pwrite(fd, "tail", 4, far), 4);
  ASSERT_EQ(fsync(fd), 0);
  struct stat st {};
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, far + 4);
  std::string hole(1 << 20, 'x');
  ASSERT_EQ(pread(fd, hole.data(), hole.size(), 50 << 20), static_cast<ssize_t>(hole.size()));
  EXPECT_EQ(hole, std::string(1 << 20, '\0'));
  // fallocate grows the size; KEEP_SIZE does not.
  ASSERT_EQ(fallocate(fd, 0, 0, far + 4096), 0);
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, far + 4096);
  ASSERT_EQ(fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, far * 2), 0);
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_size, far + 4096);
  // Punching a hole reads back zeros and keeps the size.
  ASSERT_EQ(pwrite(fd, "0123456789", 10, 1000), 10);
  ASSERT_EQ(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1002, 5), 0);
  char buf[10];
  ASSERT_EQ(pread(fd, buf, 10, 1000), 10);
  EXPECT_EQ(std::string(buf, 10), std::string("01") + std::string(5, '\0') + "789");
  EXPECT_EQ(ERRNO_OF(fallocate(fd, FALLOC_FL_COLLAPSE_RANGE, 0, 4096)), EOPNOTSUPP);
  ASSERT_EQ(close(fd), 0);
}

TEST_F(FusePosixTest, StatfsReportsTheVolumeQuotaAndWritesPastItFailWithEdquot) {
  auto meta = client::MetaClient::Connect({.address = cluster_->meta_address()});
  ASSERT_TRUE(meta.ok());
  ASSERT_TRUE((*meta)->VolumeCreate("small", "", 8 << 20, 100).ok());
  FuseMount small(cluster_->meta_address(), "small");
  struct statvfs sv {};
  ASSERT_EQ(statvfs(small.path().c_str(), &sv), 0);
  EXPECT_EQ(sv.f_blocks * sv.f_frsize, uint64_t{8} << 20);
  EXPECT_EQ(sv.f_files, 100u);
  EXPECT_EQ(sv.f_namemax, 255u);
  // 16 MiB into an 8 MiB volume: the commit at close reports EDQUOT.
  EXPECT_EQ(WriteAll(small / "big", std::string(16 << 20, 'z')), EDQUOT);
}

TEST_F(FusePosixTest, PermissionsAsAnUnprivilegedUser) {
  ASSERT_EQ(mkdir(P("rootonly").c_str(), 0755), 0);
  ASSERT_EQ(mkdir(P("shared").c_str(), 0777), 0);
  ASSERT_EQ(chmod(P("shared").c_str(), 0777), 0);
  ASSERT_EQ(mkdir(P("sticky").c_str(), 0777), 0);
  ASSERT_EQ(chmod(P("sticky").c_str(), 01777), 0);
  ASSERT_EQ(WriteAll(P("secret"), "s"), 0);
  ASSERT_EQ(chmod(P("secret").c_str(), 0600), 0);
  ASSERT_EQ(WriteAll(P("sticky/roots"), "r"), 0);
  ASSERT_EQ(WriteAll(P("public"), "p"), 0);
  std::string root = mount_->path();
  int rc = AsUser([&]() -> int {
    std::string r = root + "/";
    if (ERRNO_OF(open((r + "rootonly/x").c_str(), O_CREAT | O_WRONLY, 0644)) != EACCES) return 1;
    if (ERRNO_OF(open((r + "secret").c_str(), O_RDONLY)) != EACCES) return 2;
    if (ERRNO_OF(open((r + "public").c_str(), O_WRONLY)) != EACCES) return 3;
    if (ReadAll(r + "public") != "p") {
      struct stat st {};
      int e = ERRNO_OF(open((r + "public").c_str(), O_RDONLY));
      int se = ERRNO_OF(stat((r + "public").c_str(), &st));
      fprintf(stderr, "public: open errno %d stat errno %d mode %o uid %d\n", e, se, st.st_mode,
              st.st_uid);
      return 4;
    }
    if (ERRNO_OF(chmod((r + "public").c_str(), 0777)) != EPERM) return 5;
    if (ERRNO_OF(chown((r + "public").c_str(), 1000, 1000)) != EPERM) return 6;
    if (ERRNO_OF(unlink((r + "sticky/roots").c_str())) != EPERM) return 7;
    if (WriteAll(r + "shared/mine", "m") != 0) return 8;
    struct stat st {};
    if (stat((r + "shared/mine").c_str(), &st) != 0 || st.st_uid != 1000 || st.st_gid != 1000) {
      return 9;
    }
    if (chmod((r + "shared/mine").c_str(), 0600) != 0) return 10;
    if (mkdir((r + "shared/mydir").c_str(), 0700) != 0) return 11;
    if (ERRNO_OF(rmdir((r + "rootonly").c_str())) != EACCES) return 12;
    timespec t[2] = {{1, 0}, {1, 0}};
    if (ERRNO_OF(utimensat(AT_FDCWD, (r + "public").c_str(), t, 0)) != EPERM) return 13;
    return 0;
  });
  EXPECT_EQ(rc, 0) << "failed check number " << rc;
  // Root reads the user's private file (root bypasses permission bits); another user cannot.
  EXPECT_EQ(ReadAll(P("shared/mine")), "m");
  rc = AsUser(
      [&]() -> int {
        return ERRNO_OF(open((root + "/shared/mine").c_str(), O_RDONLY)) == EACCES ? 0 : 1;
      },
      1001);
  EXPECT_EQ(rc, 0);
}

TEST_F(FusePosixTest, SigtermCommitsOpenFilesAndUnmounts) {
  int fd = open(P("pending").c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "buffered", 8), 8);
  // The descriptor stays open: the daemon must commit it when asked to stop. The kernel keeps
  // the mount busy, so the lazy unmount below detaches it.
  mount_->process().Signal(SIGTERM);
  close(fd);
  ASSERT_TRUE(mount_->process().Wait(seconds(20)).has_value());
  mount_->Unmount();
  FuseMount again(cluster_->meta_address(), "default");
  EXPECT_EQ(ReadAll(again / "pending"), "buffered");
}

// The mount(8) helper: run directly, then as `mount -t fuse.granary` with the helper placed in
// /sbin for the duration of the test (only when no helper is installed there already).
TEST_F(FusePosixTest, MountHelperWorksDirectlyAndThroughMountT) {
  ASSERT_EQ(WriteAll(P("via-helper"), "seen"), 0);
  const std::string helper = std::string(GRANARY_SOURCE_DIR) + "/scripts/mount.fuse.granary";
  TempDir dir;
  chmod(dir.str().c_str(), 0755);
  const std::string mnt = dir.str() + "/m";
  std::filesystem::create_directory(mnt);
  auto run = [&](std::vector<std::string> argv) {
    Process p(std::move(argv), {{"GRANARY_BIN", GranaryBinary()}});
    auto status = p.Wait(seconds(60));
    if (!status) p.Kill();
    return std::make_pair(status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1, p.Output());
  };
  auto unmount = [&] {
    if (IsMounted(mnt)) umount2(mnt.c_str(), 0);
    WaitUntil([&] { return !IsMounted(mnt); }, seconds(10));
    if (IsMounted(mnt)) umount2(mnt.c_str(), MNT_DETACH);
  };
  auto [rc, out] = run({helper, "granary:default", mnt, "-o",
                        "rw,_netdev,meta=" + cluster_->meta_address() + ",attr_timeout=0.5"});
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(ReadAll(mnt + "/via-helper"), "seen");
  unmount();
  // A bad volume fails the mount with the reason.
  auto [bad_rc, bad_out] =
      run({helper, "nosuchvolume", mnt, "-o", "meta=" + cluster_->meta_address()});
  EXPECT_NE(bad_rc, 0);
  EXPECT_FALSE(IsMounted(mnt));

  const std::string installed = "/sbin/mount.fuse.granary";
  if (std::filesystem::exists(installed) || access("/sbin", W_OK) != 0) {
    GTEST_SKIP() << "a helper is already installed (or /sbin is read-only); mount -t not tried";
  }
  std::filesystem::copy_file(helper, installed);
  chmod(installed.c_str(), 0755);
  auto [mrc, mout] = run({"/bin/mount", "-t", "fuse.granary", "-o",
                          "meta=" + cluster_->meta_address() + ",ro", "default", mnt});
  std::filesystem::remove(installed);
  EXPECT_EQ(mrc, 0) << mout;
  EXPECT_EQ(ReadAll(mnt + "/via-helper"), "seen");
  EXPECT_EQ(WriteAll(mnt + "/nope", "x"), EROFS);
  unmount();
}

}  // namespace
}  // namespace granary::testing
