// `granary mount --meta HOST:PORT --volume NAME [--subdir P] [--read-only] [--labels …]
//                MOUNTPOINT [--foreground] [--supervise] [--control SOCKET] [--takeover SOCKET]`
// Without --foreground the process detaches once the mount is up (or exits 1 with the reason
// when it cannot be), as mount(8) helpers are expected to.
#include <fcntl.h>
#include <fmt/format.h>
#include <pthread.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <filesystem>

#include "cmd/process.h"
#include "cmd/roles.h"
#include "common/config.h"
#include "common/log.h"
#include "fuse/handoff.h"
#include "fuse/mount.h"

namespace granary::cmd {
namespace {

int Fail(const Status& st) {
  std::fprintf(stderr, "granary mount: %s\n", st.ToString().c_str());
  return 1;
}

}  // namespace

int RunMount(int argc, char** argv) {
  CLI::App app{"granary mount: a Granary volume as a POSIX file system (FUSE)"};
  fuse::MountOptions o;
  o.meta = EnvOr("GRANARY_META", "127.0.0.1:7410");
  bool foreground = false;
  bool supervise = false;
  std::string log_level;
  uint64_t write_buffer_mib = o.write_buffer_bytes >> 20;
  app.add_option("--meta", o.meta, "metanode address(es), HOST:PORT[,HOST:PORT…]")
      ->capture_default_str();
  app.add_option("--volume", o.volume, "volume to mount")->required();
  app.add_option("--subdir", o.subdir, "mount this directory of the volume");
  app.add_flag("--read-only", o.read_only, "mount read-only");
  app.add_option("--labels", o.labels, "where this client runs, e.g. zone=a,host=h1");
  app.add_option("mountpoint", o.mountpoint, "directory to mount on")->required();
  app.add_flag("--foreground,-f", foreground, "stay in the foreground");
  app.add_option("--cache-timeout", o.cache_timeout_s,
                 "seconds the kernel caches names and attributes while the mount follows the "
                 "metanode's change feed (0: do not follow it)")
      ->capture_default_str();
  app.add_option("--attr-timeout", o.attr_timeout_s,
                 "seconds the kernel caches attributes when not following the change feed")
      ->capture_default_str();
  app.add_option("--entry-timeout", o.entry_timeout_s,
                 "seconds the kernel caches names when not following the change feed")
      ->capture_default_str();
  app.add_option("--write-buffer-mib", write_buffer_mib, "dirty MiB one open file buffers")
      ->capture_default_str();
  app.add_option("--write-behind", o.write_behind,
                 "full buffers per open file written in the background (0: inside write)")
      ->capture_default_str();
  app.add_option("--threads", o.max_threads, "FUSE worker threads at most")->capture_default_str();
  app.add_option("--readahead-kib", o.readahead_kib, "kernel readahead window")
      ->capture_default_str();
  bool splice = false;
  app.add_flag("--splice", splice, "receive write payloads by splice (experimental)");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error");
  std::string log_file;
  app.add_option("--log-file", log_file, "append logs here (detached mounts)");
  std::string admin;
  app.add_option("--admin", admin,
                 "/metrics and /healthz address (port 0 picks one), e.g. the local-read ratio");
  app.add_flag("--supervise", supervise,
               "serve from a child process and restart it on the same mount when it dies");
  app.add_option("--control", o.control_socket,
                 "unix socket where a successor (`--takeover`) may take the mount over");
  app.add_option("--takeover", o.takeover_socket,
                 "take the mount over from the process listening on this socket (an upgrade)");
  app.add_option("--supervisor-fd", o.supervisor_fd)->group("");  // set by --supervise
  app.add_flag("--adopt", o.adopt_from_supervisor)->group("");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  o.write_buffer_bytes = write_buffer_mib << 20;
  o.splice = splice;
  // Write buffers come and go with every flush: reused heap, not fresh mmaps (page faults and
  // zeroing for every byte written).
  UseHeapForLargeBuffers();
  std::error_code ec;
  const std::string given_mountpoint = o.mountpoint;
  o.mountpoint = std::filesystem::absolute(o.mountpoint, ec).string();

  int ready[2] = {-1, -1};
  if (!foreground) {
    // Detach before any thread exists (gRPC's threads do not survive fork); the parent exits
    // with the child's verdict once the mount is up or has failed.
    if (pipe(ready) != 0) return Fail(Internal("pipe failed"));
    pid_t pid = fork();
    if (pid < 0) return Fail(Internal("fork failed"));
    if (pid > 0) {
      close(ready[1]);
      char verdict = 1;
      ssize_t n = read(ready[0], &verdict, 1);
      return n == 1 && verdict == 0 ? 0 : 1;
    }
    close(ready[0]);
    setsid();
    if (chdir("/") != 0) return 1;
  }
  // fuse::Serve takes SIGTERM/SIGINT/SIGHUP in one thread: block them before any thread
  // (the logger's included) exists.
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigaddset(&term, SIGINT);
  sigaddset(&term, SIGHUP);
  if (supervise) {
    // The supervisor waits for these on a signalfd: no thread may take them first.
    sigaddset(&term, SIGCHLD);
    sigaddset(&term, SIGUSR2);
  }
  pthread_sigmask(SIG_BLOCK, &term, nullptr);
  if (!log_file.empty()) {
    int fd = open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd < 0) return Fail(InvalidArgument(fmt::format("--log-file {}: cannot open", log_file)));
    dup2(fd, 2);
    close(fd);
  }
  InitLogging("mount", log_level);
  auto mounted = [&] {
    if (o.supervisor_fd < 0) {
      std::printf("granary mount: %s mounted on %s\n", o.volume.c_str(), o.mountpoint.c_str());
    }
    std::fflush(stdout);
    if (ready[1] >= 0) {
      char ok = 0;
      (void)!write(ready[1], &ok, 1);
      close(ready[1]);
      ready[1] = -1;
      // Detached: nobody reads our stdio any more (logs go to --log-file when given).
      int null_fd = open("/dev/null", O_RDWR);
      if (null_fd >= 0) {
        dup2(null_fd, 0);
        dup2(null_fd, 1);
        if (log_file.empty()) dup2(null_fd, 2);
        close(null_fd);
      }
    }
  };
  if (supervise) {
    // The serving child is this same command in the foreground, without --supervise.
    std::vector<std::string> server = {std::filesystem::read_symlink("/proc/self/exe", ec)};
    for (int i = 0; i < argc; ++i) {
      std::string_view a = argv[i];
      if (a == "--supervise" || a == "--foreground" || a == "-f") continue;
      server.emplace_back(a);
    }
    // The mount point as resolved here: the supervisor's children run from "/".
    for (auto it = server.rbegin(); it != server.rend(); ++it) {
      if (*it == given_mountpoint) {
        *it = o.mountpoint;
        break;
      }
    }
    server.emplace_back("--foreground");
    Status s = fuse::Supervise(server, o.mountpoint, mounted);
    if (ready[1] >= 0) close(ready[1]);
    if (!s.ok()) return Fail(s);
    return 0;
  }
  // The serving process exposes its metrics (granary_client_read_local_ratio: the share of its
  // reads served from its own host, docs/locality.md). A successor taking the mount over while
  // the old server still holds the port serves without them rather than failing the mount.
  std::unique_ptr<AdminServer> admin_server;
  if (!admin.empty()) {
    auto started = StartAdminServer(admin);
    if (started.ok() && *started) {
      admin_server = std::move(*started);
      GLOG_INFO("event=admin_listening address={}", admin_server->address().ToString());
    } else if (!started.ok()) {
      GLOG_WARN("event=admin_unavailable error=\"{}\"", started.status().ToString());
    }
  }
  fuse::ServeEnd end = fuse::ServeEnd::kUnmounted;
  Status s = fuse::Serve(o, mounted, &end);
  if (admin_server) admin_server->Stop();
  if (ready[1] >= 0) close(ready[1]);  // the parent reads EOF: failure
  if (!s.ok()) return Fail(s);
  return end == fuse::ServeEnd::kHandedOver ? fuse::kExitHandedOver : 0;
}

}  // namespace granary::cmd
