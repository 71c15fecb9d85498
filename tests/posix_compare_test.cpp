// POSIX completeness of `granary mount` (issue 23) measured against ext4 on the same machine:
// the same sequence of system calls runs in a directory of the host's ext4 and in the mount,
// as root and as an unprivileged uid, and every result (return value, errno, the attributes
// that follow) must be the same. The test skips when the temp dir is not ext4.
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "tests/fuse_mount.h"

namespace granary::testing {
namespace {

constexpr uid_t kUser = 1000;
constexpr gid_t kOtherGroup = 50;  // a group kUser is not in

// Records what each call returned; the log of ext4 and of the mount must match line by line.
class Trace {
 public:
  explicit Trace(std::string base) : base_(std::move(base)) {}
  std::string P(const std::string& rel) const { return base_ + "/" + rel; }

  // rc < 0 is recorded as its errno.
  void Call(const std::string& what, int rc) {
    out_ << what << " = " << (rc < 0 ? "errno " + std::string(strerrorname_np(errno)) : "0")
         << "\n";
  }
  // The attributes a user sees (times only when asked: creation times differ between runs).
  void Stat(const std::string& rel, bool times = false) {
    struct stat st {};
    if (lstat(P(rel).c_str(), &st) != 0) {
      out_ << "stat " << rel << " = errno " << strerrorname_np(errno) << "\n";
      return;
    }
    char line[256];
    snprintf(line, sizeof(line), "stat %s = type %o mode %04o nlink %lu uid %u gid %u rdev %u:%u",
             rel.c_str(), st.st_mode & S_IFMT, st.st_mode & 07777,
             static_cast<unsigned long>(st.st_nlink), st.st_uid, st.st_gid, major(st.st_rdev),
             minor(st.st_rdev));
    out_ << line;
    if (times) out_ << " atime " << st.st_atim.tv_sec << " mtime " << st.st_mtim.tv_sec;
    out_ << "\n";
  }
  // A shell command's exit status (paths in its messages differ between the two trees) and,
  // with `record_output`, what it printed.
  void Shell(const std::string& what, const std::string& command, bool record_output = false) {
    FILE* p = popen((command + " 2>/dev/null").c_str(), "r");
    std::string output;
    char buf[512];
    for (size_t n; p != nullptr && (n = fread(buf, 1, sizeof buf, p)) > 0;) output.append(buf, n);
    const int status = p != nullptr ? pclose(p) : -1;
    out_ << what << " = exit " << (WIFEXITED(status) ? WEXITSTATUS(status) : -1) << "\n";
    if (record_output) out_ << output;
  }
  std::string str() const { return out_.str(); }

 private:
  std::string base_;
  std::ostringstream out_;
};

// Runs `body` in a forked child as kUser (setresuid; no supplementary groups) and returns its
// trace.
std::string AsUser(const std::function<std::string()>& body) {
  int fds[2];
  if (pipe(fds) != 0) return "pipe failed";
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    if (setgroups(0, nullptr) != 0 || setresgid(kUser, kUser, kUser) != 0 ||
        setresuid(kUser, kUser, kUser) != 0) {
      _exit(100);
    }
    umask(022);
    std::string out = body();
    for (size_t at = 0; at < out.size();) {
      ssize_t n = write(fds[1], out.data() + at, out.size() - at);
      if (n <= 0) _exit(101);
      at += static_cast<size_t>(n);
    }
    _exit(0);
  }
  close(fds[1]);
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof(buf))) > 0;) out.append(buf, n);
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) out += "child failed\n";
  return out;
}

int BindSocket(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return -1;
  memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int err = errno;
  close(fd);
  errno = err;
  return rc;
}

class PosixCompareTest : public ::testing::Test {
 protected:
  void SetUp() override {
    struct statfs fs {};
    if (statfs(ext4_.str().c_str(), &fs) != 0 || fs.f_type != EXT4_SUPER_MAGIC) {
      GTEST_SKIP() << ext4_.str() << " is not ext4: nothing to compare with";
    }
    if (geteuid() != 0) GTEST_SKIP() << "needs root (mknod, setresuid, mounts)";
    umask(022);
    chmod(ext4_.str().c_str(), 0777);
    cluster_ = std::make_unique<LocalCluster>();
    cluster_->Start();
    mount_ = std::make_unique<FuseMount>(
        cluster_->meta_address(), "default",
        std::vector<std::string>{"--attr-timeout", "0", "--entry-timeout", "0"});
    chmod(mount_->path().c_str(), 0777);
  }
  void TearDown() override {
    mount_.reset();
    cluster_.reset();
  }

  // Runs `script` in ext4 and in the mount and compares the traces.
  void Compare(const std::function<void(Trace&)>& script) {
    Trace on_ext4(ext4_.str());
    script(on_ext4);
    Trace on_mount(mount_->path());
    script(on_mount);
    EXPECT_EQ(on_mount.str(), on_ext4.str()) << "granary mount (left) vs ext4 (right)";
  }

  TempDir ext4_;
  std::unique_ptr<LocalCluster> cluster_;
  std::unique_ptr<FuseMount> mount_;
};

// Every special file type through mknod/mkfifo/bind, then every call that takes a name or an
// inode on each of them.
TEST_F(PosixCompareTest, SpecialFilesBehaveAsOnExt4) {
  Compare([](Trace& t) {
    t.Call("mkfifo fifo", mkfifo(t.P("fifo").c_str(), 0640));
    t.Call("mknod chr", mknod(t.P("chr").c_str(), S_IFCHR | 0600, makedev(1, 3)));
    t.Call("mknod blk", mknod(t.P("blk").c_str(), S_IFBLK | 0660, makedev(7, 200)));
    t.Call("mknod sock", mknod(t.P("sock").c_str(), S_IFSOCK | 0755, 0));
    t.Call("mknod reg", mknod(t.P("reg").c_str(), S_IFREG | 0644, 0));
    t.Call("bind sock2", BindSocket(t.P("sock2")));
    t.Call("bind sock2 again", BindSocket(t.P("sock2")));
    t.Call("mkfifo fifo again", mkfifo(t.P("fifo").c_str(), 0600));
    t.Call("mknod chr over fifo", mknod(t.P("fifo").c_str(), S_IFCHR | 0600, makedev(1, 3)));
    for (const char* n : {"fifo", "chr", "blk", "sock", "reg", "sock2"}) t.Stat(n);
    // A FIFO carries bytes between openers through the kernel (nothing reaches storage).
    int fd = open(t.P("fifo").c_str(), O_RDWR | O_NONBLOCK);
    t.Call("open fifo rdwr", fd);
    if (fd >= 0) {
      t.Call("write fifo", write(fd, "abc", 3) == 3 ? 0 : -1);
      char buf[8] = {};
      t.Call("read fifo", read(fd, buf, sizeof(buf)) == 3 && std::string(buf) == "abc" ? 0 : -1);
      close(fd);
    }
    t.Call("truncate fifo", truncate(t.P("fifo").c_str(), 0));
    t.Call("link fifo", link(t.P("fifo").c_str(), t.P("fifo.2").c_str()));
    t.Stat("fifo");
    t.Call("rename fifo.2 -> fifo.3", rename(t.P("fifo.2").c_str(), t.P("fifo.3").c_str()));
    t.Call("rename chr over blk", rename(t.P("chr").c_str(), t.P("blk").c_str()));
    t.Stat("chr");
    t.Stat("blk");
    t.Call("rename sock over reg", rename(t.P("sock").c_str(), t.P("reg").c_str()));
    t.Call("mkdir d", mkdir(t.P("d").c_str(), 0755));
    t.Call("rename fifo.3 over dir", rename(t.P("fifo.3").c_str(), t.P("d").c_str()));
    t.Call("rename dir over fifo.3", rename(t.P("d").c_str(), t.P("fifo.3").c_str()));
    t.Call("rename noreplace", renameat2(AT_FDCWD, t.P("fifo.3").c_str(), AT_FDCWD,
                                         t.P("sock2").c_str(), RENAME_NOREPLACE));
    t.Call("rename exchange", renameat2(AT_FDCWD, t.P("fifo.3").c_str(), AT_FDCWD,
                                        t.P("sock2").c_str(), RENAME_EXCHANGE));
    t.Stat("fifo.3");
    t.Stat("sock2");
    for (const char* n : {"fifo", "blk", "reg", "sock2"}) {
      t.Call(std::string("chmod ") + n, chmod(t.P(n).c_str(), 0604));
      t.Call(std::string("chown ") + n, lchown(t.P(n).c_str(), kUser, kOtherGroup));
      timespec times[2] = {{1000000, 0}, {2000000, 0}};
      t.Call(std::string("utimensat ") + n, utimensat(AT_FDCWD, t.P(n).c_str(), times, 0));
      t.Stat(n, /*times=*/true);
    }
    t.Call("unlink fifo", unlink(t.P("fifo").c_str()));
    t.Stat("fifo.3");
    for (const char* n : {"fifo.3", "blk", "reg", "sock2", "fifo"}) {
      t.Call(std::string("unlink ") + n, unlink(t.P(n).c_str()));
    }
    t.Call("rmdir d", rmdir(t.P("d").c_str()));
  });
}

TEST_F(PosixCompareTest, SpecialFilesAsAnUnprivilegedUser) {
  Compare([](Trace& t) {
    t.Call("mkdir u", mkdir(t.P("u").c_str(), 0777));
    t.Call("chmod u", chmod(t.P("u").c_str(), 0777));
    t.Call("mkfifo rootfifo", mkfifo(t.P("u/rootfifo").c_str(), 0666));
    std::string user = AsUser([&] {
      Trace u(t.P("u"));
      u.Call("mkfifo", mkfifo(u.P("f").c_str(), 0666));
      u.Call("mknod chr", mknod(u.P("c").c_str(), S_IFCHR | 0600, makedev(1, 3)));
      u.Call("bind", BindSocket(u.P("s")));
      u.Stat("f");
      u.Stat("s");
      u.Call("chmod own fifo", chmod(u.P("f").c_str(), 0600));
      u.Call("chmod root's fifo", chmod(u.P("rootfifo").c_str(), 0600));
      u.Call("chown own fifo", chown(u.P("f").c_str(), 0, 0));
      timespec times[2] = {{5, 0}, {6, 0}};
      u.Call("utimensat root's fifo", utimensat(AT_FDCWD, u.P("rootfifo").c_str(), times, 0));
      u.Call("utimensat now root's fifo", utimensat(AT_FDCWD, u.P("rootfifo").c_str(), nullptr, 0));
      u.Call("rename s", rename(u.P("s").c_str(), u.P("s2").c_str()));
      u.Call("link f", link(u.P("f").c_str(), u.P("f2").c_str()));
      u.Stat("f");
      u.Call("unlink f", unlink(u.P("f").c_str()));
      u.Call("unlink f2", unlink(u.P("f2").c_str()));
      u.Call("unlink s2", unlink(u.P("s2").c_str()));
      return u.str();
    });
    t.Call("user trace follows", 0);
    t.Call(user, 0);
    t.Call("unlink rootfifo", unlink(t.P("u/rootfifo").c_str()));
    t.Call("rmdir u", rmdir(t.P("u").c_str()));
  });
}

// Group inheritance from setgid directories, and chown/chmod/write clearing setuid/setgid.
TEST_F(PosixCompareTest, SetgidDirectoriesAndClearingSetidBits) {
  Compare([](Trace& t) {
    t.Call("mkdir g", mkdir(t.P("g").c_str(), 0777));
    t.Call("chown g", chown(t.P("g").c_str(), 0, kOtherGroup));
    t.Call("chmod g", chmod(t.P("g").c_str(), 02777));
    t.Stat("g");
    t.Call("create g/f", close(open(t.P("g/f").c_str(), O_CREAT | O_WRONLY, 0644)));
    t.Call("mkdir g/sub", mkdir(t.P("g/sub").c_str(), 0755));
    t.Call("mkfifo g/p", mkfifo(t.P("g/p").c_str(), 0644));
    t.Call("symlink g/l", symlink("f", t.P("g/l").c_str()));
    t.Call("create g/sub/deep", close(open(t.P("g/sub/deep").c_str(), O_CREAT | O_WRONLY, 0644)));
    for (const char* n : {"g/f", "g/sub", "g/p", "g/l", "g/sub/deep"}) t.Stat(n);
    // Root's chown of a setuid/setgid executable clears both bits.
    t.Call("create x", close(open(t.P("x").c_str(), O_CREAT | O_WRONLY, 0755)));
    t.Call("chmod x 6755", chmod(t.P("x").c_str(), 06755));
    t.Stat("x");
    t.Call("chown x", chown(t.P("x").c_str(), kUser, kUser));
    t.Stat("x");
    t.Call("chmod x 6755 again", chmod(t.P("x").c_str(), 06755));
    t.Call("chown x same owner", chown(t.P("x").c_str(), kUser, kUser));
    t.Stat("x");
    // A directory keeps its setgid bit through chown.
    t.Call("chown g", chown(t.P("g").c_str(), kUser, kOtherGroup));
    t.Stat("g");
    t.Call("create g/y", close(open(t.P("g/y").c_str(), O_CREAT | O_WRONLY, 0644)));
    t.Call("chown g/y", chown(t.P("g/y").c_str(), kUser, kOtherGroup));
    std::string user = AsUser([&] {
      Trace u(t.P("g"));
      // Creating in a setgid directory of a group the user is not in: the group is inherited,
      // a setgid bit asked for on a file is dropped.
      int fd = open(u.P("mine").c_str(), O_CREAT | O_WRONLY, 02755);
      u.Call("create mine 2755", fd);
      if (fd >= 0) close(fd);
      u.Stat("mine");
      u.Call("mkdir mydir", mkdir(u.P("mydir").c_str(), 0755));
      u.Stat("mydir");
      // chmod g+s of a file whose group the user is not in: the kernel drops the bit.
      u.Call("chmod y 2755", chmod(u.P("y").c_str(), 02755));
      u.Stat("y");
      u.Call("chmod y 4755", chmod(u.P("y").c_str(), 04755));
      u.Stat("y");
      // A write by a non-privileged owner clears setuid.
      fd = open(u.P("y").c_str(), O_WRONLY);
      u.Call("open y", fd);
      if (fd >= 0) {
        u.Call("write y", write(fd, "x", 1) == 1 ? 0 : -1);
        close(fd);
      }
      u.Stat("y");
      u.Call("chown y to a foreign group", chown(u.P("y").c_str(), kUser, 0));
      return u.str();
    });
    t.Call(user, 0);
    for (const char* n : {"g/f", "g/p", "g/l", "g/sub/deep", "g/mine", "g/y", "x"}) {
      t.Call(std::string("unlink ") + n, unlink(t.P(n).c_str()));
    }
    for (const char* n : {"g/sub", "g/mydir", "g"}) {
      t.Call(std::string("rmdir ") + n, rmdir(t.P(n).c_str()));
    }
  });
}

// Permission checks for an unprivileged caller: open, sticky-directory unlink and rename,
// utimensat with and without ownership, each errno as ext4 gives it.
TEST_F(PosixCompareTest, PermissionChecksForAnUnprivilegedUser) {
  Compare([](Trace& t) {
    t.Call("mkdir s", mkdir(t.P("s").c_str(), 0777));
    t.Call("chmod s 1777", chmod(t.P("s").c_str(), 01777));
    t.Call("mkdir ro", mkdir(t.P("ro").c_str(), 0755));
    t.Call("create s/roots", close(open(t.P("s/roots").c_str(), O_CREAT | O_WRONLY, 0666)));
    t.Call("chmod s/roots", chmod(t.P("s/roots").c_str(), 0666));
    t.Call("create ro/f", close(open(t.P("ro/f").c_str(), O_CREAT | O_WRONLY, 0644)));
    t.Call("create ro/w", close(open(t.P("ro/w").c_str(), O_CREAT | O_WRONLY, 0666)));
    t.Call("chmod ro/w", chmod(t.P("ro/w").c_str(), 0666));
    t.Call("create secret", close(open(t.P("secret").c_str(), O_CREAT | O_WRONLY, 0600)));
    t.Call("mkfifo s/rootfifo", mkfifo(t.P("s/rootfifo").c_str(), 0666));
    t.Call("chmod s/rootfifo", chmod(t.P("s/rootfifo").c_str(), 0666));
    std::string user = AsUser([&] {
      Trace u(t.P(""));
      u.Call("open secret", open(u.P("secret").c_str(), O_RDONLY));
      u.Call("open ro/f for writing", open(u.P("ro/f").c_str(), O_WRONLY));
      u.Call("create in ro", open(u.P("ro/new").c_str(), O_CREAT | O_WRONLY, 0644));
      u.Call("unlink ro/f", unlink(u.P("ro/f").c_str()));
      u.Call("rename ro/f", rename(u.P("ro/f").c_str(), u.P("s/f").c_str()));
      u.Call("unlink s/roots (sticky)", unlink(u.P("s/roots").c_str()));
      u.Call("rename s/roots (sticky)", rename(u.P("s/roots").c_str(), u.P("s/x").c_str()));
      u.Call("unlink s/rootfifo (sticky)", unlink(u.P("s/rootfifo").c_str()));
      int fd = open(u.P("s/mine").c_str(), O_CREAT | O_WRONLY, 0644);
      u.Call("create s/mine", fd);
      if (fd >= 0) close(fd);
      u.Call("rename own file over root's (sticky)",
             rename(u.P("s/mine").c_str(), u.P("s/roots").c_str()));
      u.Call("rename own in sticky", rename(u.P("s/mine").c_str(), u.P("s/mine2").c_str()));
      timespec times[2] = {{7, 0}, {8, 0}};
      u.Call("utimensat explicit, not owner, writable",
             utimensat(AT_FDCWD, u.P("ro/w").c_str(), times, 0));
      u.Call("utimensat now, not owner, writable",
             utimensat(AT_FDCWD, u.P("ro/w").c_str(), nullptr, 0));
      u.Call("utimensat now, not owner, read-only",
             utimensat(AT_FDCWD, u.P("ro/f").c_str(), nullptr, 0));
      u.Call("utimensat explicit, owner", utimensat(AT_FDCWD, u.P("s/mine2").c_str(), times, 0));
      u.Stat("s/mine2", /*times=*/true);
      u.Call("truncate ro/f", truncate(u.P("ro/f").c_str(), 0));
      u.Call("truncate ro/w", truncate(u.P("ro/w").c_str(), 0));
      u.Call("link ro/f into s", link(u.P("ro/f").c_str(), u.P("s/hard").c_str()));
      u.Call("chmod ro/w", chmod(u.P("ro/w").c_str(), 0600));
      u.Call("chown s/mine2 to root", chown(u.P("s/mine2").c_str(), 0, 0));
      u.Call("unlink s/mine2", unlink(u.P("s/mine2").c_str()));
      u.Call("rmdir ro", rmdir(u.P("ro").c_str()));
      return u.str();
    });
    t.Call(user, 0);
    for (const char* n : {"s/roots", "s/rootfifo", "ro/f", "ro/w", "secret", "s/hard"}) {
      t.Call(std::string("unlink ") + n, unlink(t.P(n).c_str()));
    }
    t.Call("rmdir s", rmdir(t.P("s").c_str()));
    t.Call("rmdir ro", rmdir(t.P("ro").c_str()));
  });
}

// POSIX ACLs (acl(5)): setfacl/getfacl round trips, default ACLs inherited on create with the
// mask rules, chmod rewriting the mask, and the kernel enforcing named entries for an
// unprivileged user, all as on ext4.
TEST_F(PosixCompareTest, PosixAclsBehaveAsOnExt4) {
  if (system("command -v setfacl >/dev/null && command -v getfacl >/dev/null") != 0) {
    GTEST_SKIP() << "needs setfacl/getfacl (Debian package acl, scripts/install-deps.sh)";
  }
  const std::string user = std::to_string(kUser);
  Compare([&](Trace& t) {
    auto facl = [&](const std::string& rel) {
      t.Shell("getfacl " + rel, "getfacl -cEn '" + t.P(rel) + "'", /*record_output=*/true);
    };
    t.Call("mkdir team", mkdir(t.P("team").c_str(), 0770));
    t.Shell("setfacl named user", "setfacl -m u:" + user + ":rwx '" + t.P("team") + "'");
    t.Shell("setfacl default",
            "setfacl -d -m u::rwx,u:" + user + ":rw-,g::r-x,m::rwx,o::--- '" + t.P("team") + "'");
    facl("team");
    t.Stat("team");
    t.Call("create team/f 0666",
           close(open(t.P("team/f").c_str(), O_CREAT | O_WRONLY, 0666)));  // umask 022 ignored
    t.Stat("team/f");
    facl("team/f");
    t.Call("mkdir team/sub 0777", mkdir(t.P("team/sub").c_str(), 0777));
    t.Stat("team/sub");
    facl("team/sub");
    t.Call("mkfifo team/pipe 0640", mkfifo(t.P("team/pipe").c_str(), 0640));
    t.Stat("team/pipe");
    facl("team/pipe");
    // The named user gets in although the directory is 0770 root:root.
    t.Call(AsUser([&] {
             Trace u(t.P(""));
             int fd = open(u.P("team/mine").c_str(), O_CREAT | O_WRONLY, 0644);
             u.Call("create team/mine", fd);
             if (fd >= 0) close(fd);
             fd = open(u.P("team/f").c_str(), O_RDWR);
             u.Call("open team/f rw", fd);
             if (fd >= 0) close(fd);
             u.Call("chmod team/f (not owner)", chmod(u.P("team/f").c_str(), 0777));
             return u.str();
           }),
           0);
    facl("team/mine");
    // chmod rewrites the mask: the named user loses write.
    t.Call("chmod team/f 0640", chmod(t.P("team/f").c_str(), 0640));
    facl("team/f");
    t.Call(AsUser([&] {
             Trace u(t.P(""));
             int fd = open(u.P("team/f").c_str(), O_RDWR);
             u.Call("open team/f rw after chmod", fd);
             if (fd >= 0) close(fd);
             fd = open(u.P("team/f").c_str(), O_RDONLY);
             u.Call("open team/f r after chmod", fd);
             if (fd >= 0) close(fd);
             return u.str();
           }),
           0);
    t.Shell("setfacl mask back", "setfacl -m m::rw '" + t.P("team/f") + "'");
    t.Stat("team/f");
    t.Shell("setfacl -b", "setfacl -b '" + t.P("team/f") + "'");
    t.Stat("team/f");
    facl("team/f");
    t.Shell("setfacl -k", "setfacl -k '" + t.P("team") + "'");
    t.Call("create team/after 0666",
           close(open(t.P("team/after").c_str(), O_CREAT | O_WRONLY, 0666)));
    t.Stat("team/after");
    facl("team/after");
    t.Shell("default ACL on a file", "setfacl -d -m u::rwx '" + t.P("team/f") + "'");
    t.Shell("cleanup", "rm -rf '" + t.P("team") + "'");
  });
}

}  // namespace
}  // namespace granary::testing
