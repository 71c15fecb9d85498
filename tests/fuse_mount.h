// A real kernel mount of a Granary volume for tests: `granary mount --foreground` as a child
// process, waited on until mounted, and always unmounted (SIGTERM, then umount -l) on the way
// out, even when the test fails.
#pragma once

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "tests/harness/cluster.h"

namespace granary::testing {

inline bool IsMounted(const std::string& path) {
  std::ifstream info("/proc/self/mountinfo");
  std::string line;
  while (std::getline(info, line)) {
    if (line.find(" " + path + " ") != std::string::npos) return true;
  }
  return false;
}

class FuseMount {
 public:
  // `wrapper`: a command the daemon runs under (e.g. valgrind), empty for none.
  FuseMount(const std::string& meta, const std::string& volume, std::vector<std::string> extra = {},
            std::vector<std::string> wrapper = {})
      : path_(dir_.str() + "/mnt") {
    std::filesystem::create_directory(path_);
    // Other users reach the mount point (permission tests run as another uid).
    chmod(dir_.str().c_str(), 0755);
    std::vector<std::string> argv = std::move(wrapper);
    argv.insert(argv.end(),
                {GranaryBinary(), "mount", "--meta", meta, "--volume", volume, "--foreground"});
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(path_);
    proc_ = std::make_unique<Process>(argv);
    if (!proc_->WaitForLine("event=mounted", seconds(30))) {
      throw std::runtime_error("mount did not come up:\n" + proc_->Output());
    }
  }
  ~FuseMount() { Unmount(); }

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }
  Process& process() { return *proc_; }

  // SIGTERM: the daemon commits open files and unmounts; a lazy unmount if it does not.
  void Unmount() {
    if (proc_ && proc_->running()) {
      proc_->Signal(SIGTERM);
      if (!proc_->Wait(seconds(20))) proc_->Kill();
    }
    ForceUnmount();
  }
  // SIGKILL the daemon (a crash); the dead mount is detached.
  void Crash() {
    proc_->Kill();
    ForceUnmount();
  }

 private:
  void ForceUnmount() {
    if (IsMounted(path_)) umount2(path_.c_str(), MNT_DETACH);
  }

  TempDir dir_;
  std::string path_;
  std::unique_ptr<Process> proc_;
};

// Whole-file helpers over plain syscalls (what a user's program does).
inline std::string ReadAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

inline int WriteAll(const std::string& path, const std::string& data,
                    int flags = O_CREAT | O_TRUNC) {
  int fd = ::open(path.c_str(), O_WRONLY | flags, 0644);
  if (fd < 0) return errno;
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      int e = errno;
      ::close(fd);
      return e;
    }
    done += static_cast<size_t>(n);
  }
  if (::close(fd) != 0) return errno;
  return 0;
}

// errno of a call that returns -1 on failure, 0 on success.
#define ERRNO_OF(call) ((call) == -1 ? errno : 0)

}  // namespace granary::testing
