// `granary mount --supervise`: a small process that outlives the serving process. It holds a
// duplicate of the /dev/fuse descriptor and the INIT state, so that when the server dies
// without unmounting (crash, SIGKILL, OOM kill) a successor is started on the same kernel
// connection and the mount never shows "Transport endpoint is not connected".
// It runs no gRPC and no FUSE loop of its own: only fork/exec, waitpid and a unix socket.
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <thread>

#include "common/log.h"
#include "fuse/handoff.h"
#include "fuse/mount.h"

namespace granary::fuse {
namespace {

struct Child {
  pid_t pid = -1;
  int sock = -1;  // the supervisor's end of the child's socketpair
};

// Starts `argv` with one end of a fresh socketpair as --supervisor-fd (and --adopt when the
// held state is to be sent to it).
Result<Child> Spawn(std::vector<std::string> argv, bool adopt, const sigset_t& unblock) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    return Internal(fmt::format("socketpair: {}", std::strerror(errno)));
  }
  argv.push_back("--supervisor-fd");
  argv.push_back(std::to_string(sv[1]));
  if (adopt) argv.push_back("--adopt");
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) {
    close(sv[0]);
    close(sv[1]);
    return Internal(fmt::format("fork: {}", std::strerror(errno)));
  }
  if (pid == 0) {
    // Only async-signal-safe calls between fork and exec.
    int flags = fcntl(sv[1], F_GETFD);
    fcntl(sv[1], F_SETFD, flags & ~FD_CLOEXEC);
    sigprocmask(SIG_UNBLOCK, &unblock, nullptr);
    execv(cargv[0], cargv.data());
    _exit(127);
  }
  close(sv[1]);
  return Child{pid, sv[0]};
}

// Whether the kernel connection behind `fd` is still up (an unmount aborts it: POLLERR).
bool ConnectionAlive(int fd) {
  pollfd p{fd, 0, 0};
  return poll(&p, 1, 0) >= 0 && (p.revents & (POLLERR | POLLHUP | POLLNVAL)) == 0;
}

}  // namespace

Status Supervise(const std::vector<std::string>& server_argv, const std::string& mountpoint,
                 const std::function<void()>& on_mounted) {
  sigset_t sigs;
  sigemptyset(&sigs);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGUSR2}) sigaddset(&sigs, s);
  sigprocmask(SIG_BLOCK, &sigs, nullptr);
  int sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
  if (sfd < 0) return Internal(fmt::format("signalfd: {}", std::strerror(errno)));

  std::string control;
  for (size_t i = 0; i + 1 < server_argv.size(); ++i) {
    if (server_argv[i] == "--control") control = server_argv[i + 1];
  }

  int held_fd = -1;  // duplicate of the mount's /dev/fuse descriptor
  HandoffState held;
  bool mounted = false;
  bool terminating = false;
  Child current;
  Child upgrading;  // a successor taking over from `current` (SIGUSR2)
  int restarts = 0;
  auto last_start = std::chrono::steady_clock::now();

  auto start = [&](bool adopt, std::vector<std::string> argv) -> Status {
    auto c = Spawn(std::move(argv), adopt, sigs);
    if (!c.ok()) return c.status();
    if (adopt) {
      if (Status s = SendState(c->sock, held_fd, held); !s.ok()) {
        GLOG_ERROR("event=supervisor_send_failed error=\"{}\"", s.ToString());
      }
    }
    last_start = std::chrono::steady_clock::now();
    GLOG_INFO("event=server_started pid={} adopt={} mountpoint={}", c->pid, adopt, mountpoint);
    current = *c;
    return Status::Ok();
  };
  auto finish = [&](Status s) {
    for (int fd : {held_fd, current.sock, upgrading.sock, sfd}) {
      if (fd >= 0) close(fd);
    }
    return s;
  };
  if (Status s = start(false, server_argv); !s.ok()) return finish(s);

  while (true) {
    pollfd p[3] = {{sfd, POLLIN, 0}, {current.sock, POLLIN, 0}, {upgrading.sock, POLLIN, 0}};
    if (poll(p, 3, -1) < 0) {
      if (errno == EINTR) continue;
      return finish(Internal(fmt::format("poll: {}", std::strerror(errno))));
    }
    for (int i : {1, 2}) {
      if (p[i].revents == 0) continue;
      Child& c = i == 1 ? current : upgrading;
      int fd = -1;
      HandoffState got;
      if (Status s = ReceiveState(c.sock, &fd, &got, 1000); !s.ok()) {
        close(c.sock);  // the child closed its end (it exits or exec'd nothing)
        c.sock = -1;
        continue;
      }
      // The newest server's state: its generation numbers the next successor's handles.
      if (held_fd >= 0) close(held_fd);
      held_fd = fd;
      held = std::move(got);
      GLOG_INFO("event=server_ready pid={} generation={}", c.pid, held.generation);
      if (!mounted) {
        mounted = true;
        if (on_mounted) on_mounted();
      }
    }
    if (p[0].revents == 0) continue;
    signalfd_siginfo si{};
    if (read(sfd, &si, sizeof(si)) != sizeof(si)) continue;
    if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT || si.ssi_signo == SIGHUP) {
      // Unmount: the server commits open files and unmounts; then this process ends.
      terminating = true;
      GLOG_INFO("event=supervisor_stopping signal={}", si.ssi_signo);
      if (current.pid > 0) kill(current.pid, SIGTERM);
      continue;
    }
    if (si.ssi_signo == SIGUSR2) {
      if (control.empty() || upgrading.pid > 0 || !mounted) {
        GLOG_WARN("event=upgrade_ignored reason=\"no --control socket, or one in progress\"");
        continue;
      }
      std::vector<std::string> argv = server_argv;
      argv.push_back("--takeover");
      argv.push_back(control);
      Child before = current;
      if (Status s = start(false, argv); !s.ok()) {
        GLOG_ERROR("event=upgrade_failed error=\"{}\"", s.ToString());
        continue;
      }
      upgrading = current;
      current = before;
      continue;
    }
    // SIGCHLD: reap every exited child.
    while (true) {
      int status = 0;
      pid_t pid = waitpid(-1, &status, WNOHANG);
      if (pid <= 0) break;
      const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
      const bool handed = WIFEXITED(status) && WEXITSTATUS(status) == kExitHandedOver;
      GLOG_INFO("event=server_exited pid={} status={} signal={}", pid,
                WIFEXITED(status) ? WEXITSTATUS(status) : -1,
                WIFSIGNALED(status) ? WTERMSIG(status) : 0);
      if (pid == upgrading.pid) {
        // The successor failed before taking over: the old server serves on.
        if (upgrading.sock >= 0) close(upgrading.sock);
        upgrading = Child{};
        continue;
      }
      if (pid != current.pid) continue;
      if (current.sock >= 0) close(current.sock);
      current = Child{};
      if (handed && upgrading.pid > 0) {
        current = upgrading;
        upgrading = Child{};
        continue;
      }
      if (handed) {
        // Taken over by a process this supervisor did not start (`granary mount --takeover`
        // by hand): that process serves now; a second server on the connection would be wrong.
        GLOG_WARN("event=handed_over_elsewhere mountpoint={}: supervisor exits", mountpoint);
        return finish(Status::Ok());
      }
      if (clean || terminating) return finish(Status::Ok());
      if (!mounted || held_fd < 0) {
        return finish(Unavailable(fmt::format("the mount server exited before mounting ({})",
                                              WIFEXITED(status) ? WEXITSTATUS(status) : -1)));
      }
      if (!ConnectionAlive(held_fd)) {
        GLOG_INFO("event=mount_gone mountpoint={}", mountpoint);
        return finish(Status::Ok());
      }
      // A crash loop is slowed down, not given up: the mount waits rather than breaks. The
      // first quick death restarts at once (a one-off kill is not a loop).
      if (std::chrono::steady_clock::now() - last_start < std::chrono::seconds(2)) {
        ++restarts;
        if (restarts > 1) {
          std::this_thread::sleep_for(std::chrono::milliseconds(200 * std::min(restarts - 1, 10)));
        }
      } else {
        restarts = 0;
      }
      GLOG_WARN("event=server_died pid={} mountpoint={}: starting a successor", pid, mountpoint);
      if (Status s = start(true, server_argv); !s.ok()) return finish(s);
    }
  }
}

}  // namespace granary::fuse
