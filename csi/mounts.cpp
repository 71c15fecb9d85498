#include "csi/mounts.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

#include "common/log.h"

extern char** environ;

namespace granary::csi {
namespace {

using Clock = std::chrono::steady_clock;

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = 0;
      bool ok = true;
      for (size_t j = 1; j <= 3; ++j) {
        char c = s[i + j];
        if (c < '0' || c > '7') ok = false;
        v = v * 8 + (c - '0');
      }
      if (ok) {
        out.push_back(static_cast<char>(v));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

Status Errno(std::string_view what, int err) {
  return Status(Code::INTERNAL, fmt::format("{}: {}", what, std::strerror(err)));
}

bool ProcessGone(pid_t pid) {
  std::ifstream stat(fmt::format("/proc/{}/stat", pid));
  if (!stat) return true;
  std::string line;
  std::getline(stat, line);
  // "pid (comm) S ...": a zombie has exited (nobody may reap it when pid 1 does not).
  auto close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() || line[close + 2] == 'Z';
}

template <typename F>
bool WaitFor(F&& done, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

}  // namespace

std::vector<MountEntry> ReadMountTable() {
  std::vector<MountEntry> out;
  std::ifstream info("/proc/self/mountinfo");
  std::string line;
  while (std::getline(info, line)) {
    std::istringstream in(line);
    std::string id, parent, dev, root, mp, opts, field;
    in >> id >> parent >> dev >> root >> mp >> opts;
    while (in >> field && field != "-") {
    }
    MountEntry e;
    e.device = dev;
    e.root = Unescape(root);
    e.mountpoint = Unescape(mp);
    e.read_only = opts.rfind("ro", 0) == 0 && (opts.size() == 2 || opts[2] == ',');
    in >> e.fstype >> e.source;
    out.push_back(std::move(e));
  }
  return out;
}

std::optional<MountEntry> FindMount(const std::string& path) {
  std::optional<MountEntry> found;
  for (auto& e : ReadMountTable()) {
    if (e.mountpoint == path) found = e;  // the last one is on top
  }
  return found;
}

Status BindMount(const std::string& source, const std::string& target, bool read_only) {
  std::error_code ec;
  std::filesystem::create_directories(target, ec);
  if (ec) return Status(Code::INTERNAL, fmt::format("mkdir {}: {}", target, ec.message()));
  if (mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    return Errno(fmt::format("bind mount {} on {}", source, target), errno);
  }
  if (read_only &&
      mount(nullptr, target.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
    int err = errno;
    umount2(target.c_str(), MNT_DETACH);
    return Errno(fmt::format("remount {} read-only", target), err);
  }
  return Status::Ok();
}

Status Unmount(const std::string& path) {
  while (FindMount(path)) {
    if (umount2(path.c_str(), 0) == 0) continue;
    int err = errno;
    if (err == EINVAL || err == ENOENT) break;  // not a mount point (any more)
    GLOG_WARN("event=umount_busy path={} error={}: detaching lazily", path, std::strerror(err));
    if (umount2(path.c_str(), MNT_DETACH) != 0 && errno != EINVAL) {
      return Errno(fmt::format("umount {}", path), errno);
    }
  }
  return Status::Ok();
}

std::vector<std::string> ResolveLauncher(const std::string& setting) {
  if (setting == "none" || setting.empty()) return {};
  if (setting == "auto") {
    // A host whose init is systemd: the supervisor goes into its own transient scope, out of
    // the plugin container's cgroup, so a container restart does not kill it.
    if (access("/run/systemd/system", F_OK) == 0 && access("/usr/bin/systemd-run", X_OK) == 0) {
      return {"/usr/bin/systemd-run", "--scope", "--collect", "--quiet", "--"};
    }
    return {};
  }
  std::vector<std::string> out;
  std::istringstream words(setting);
  for (std::string w; words >> w;) out.push_back(w);
  return out;
}

Status StartMountDaemon(const DaemonSpec& spec) {
  std::vector<std::string> args = spec.launcher;
  std::vector<std::string> mount = {spec.binary,  "mount",       "--meta",
                                    spec.meta,    "--volume",    spec.volume,
                                    "--log-file", spec.log_file, "--supervise"};
  args.insert(args.end(), mount.begin(), mount.end());
  if (!spec.control_socket.empty()) {
    args.push_back("--control");
    args.push_back(spec.control_socket);
  }
  if (!spec.labels.empty()) {
    args.push_back("--labels");
    args.push_back(spec.labels);
  }
  if (spec.read_only) args.push_back("--read-only");
  args.push_back(spec.mountpoint);
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  // The daemon must not hold the plugin's stdio (a pipe a supervisor reads) for its lifetime.
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, spec.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND,
                                   0644);
  // Its own process group from the start: a signal to the plugin's group never reaches it.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, argv[0], &fa, &attr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return Errno(fmt::format("spawn {}", argv[0]), rc);
  GLOG_INFO("event=mount_daemon_spawned pid={} command=\"{}\"", pid, fmt::join(args, " "));
  // `granary mount` without --foreground exits once the mount is up (0) or has failed (1).
  int status = 0;
  bool exited =
      WaitFor([&] { return waitpid(pid, &status, WNOHANG) == pid; }, std::chrono::seconds(60));
  if (!exited) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return Status(Code::UNAVAILABLE,
                  fmt::format("mount of {} on {} did not come up in 60 s (log {})", spec.volume,
                              spec.mountpoint, spec.log_file));
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::ifstream log(spec.log_file);
    std::string line, last;
    while (std::getline(log, line)) {
      if (!line.empty()) last = line;
    }
    return Status(Code::UNAVAILABLE,
                  fmt::format("mount of {} on {} failed: {}", spec.volume, spec.mountpoint, last));
  }
  return Status::Ok();
}

namespace {

// Every live `granary mount` process whose arguments name `mountpoint`, with its arguments.
std::vector<std::pair<pid_t, std::vector<std::string>>> MountProcesses(
    const std::string& mountpoint) {
  std::vector<std::pair<pid_t, std::vector<std::string>>> out;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return out;
  while (dirent* d = readdir(proc)) {
    char* end = nullptr;
    long pid = std::strtol(d->d_name, &end, 10);
    if (end == d->d_name || *end != '\0') continue;
    std::ifstream f(fmt::format("/proc/{}/cmdline", pid), std::ios::binary);
    std::string cmd((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    std::vector<std::string> args;
    std::string cur;
    for (char c : cmd) {
      if (c == '\0') {
        args.push_back(cur);
        cur.clear();
      } else {
        cur.push_back(c);
      }
    }
    if (args.size() >= 3 && args[1] == "mount" &&
        std::find(args.begin(), args.end(), mountpoint) != args.end() &&
        !ProcessGone(static_cast<pid_t>(pid))) {
      out.emplace_back(static_cast<pid_t>(pid), std::move(args));
    }
  }
  closedir(proc);
  return out;
}

bool Has(const std::vector<std::string>& args, std::string_view flag) {
  return std::find(args.begin(), args.end(), flag) != args.end();
}

}  // namespace

std::optional<pid_t> FindMountDaemon(const std::string& mountpoint) {
  // The supervisor (its children carry --supervisor-fd), or an unsupervised daemon.
  for (const auto& [pid, args] : MountProcesses(mountpoint)) {
    if (!Has(args, "--supervisor-fd")) return pid;
  }
  return std::nullopt;
}

std::optional<pid_t> FindMountServer(const std::string& mountpoint) {
  for (const auto& [pid, args] : MountProcesses(mountpoint)) {
    if (Has(args, "--supervisor-fd")) return pid;
  }
  return std::nullopt;
}

Status StopMountDaemon(const std::string& mountpoint) {
  if (auto pid = FindMountDaemon(mountpoint)) {
    kill(*pid, SIGTERM);
    if (!WaitFor([&] { return ProcessGone(*pid); }, std::chrono::seconds(20))) {
      GLOG_WARN("event=mount_daemon_stuck pid={} mountpoint={}: killing", *pid, mountpoint);
      kill(*pid, SIGKILL);
      WaitFor([&] { return ProcessGone(*pid); }, std::chrono::seconds(5));
    }
  }
  return Unmount(mountpoint);
}

}  // namespace granary::csi
