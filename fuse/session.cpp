// Mount lifecycle: connect, resolve the mounted directory, mount, serve with a bounded pool of
// FUSE worker threads, and on SIGTERM/SIGINT commit what open files buffer and unmount.
// The session owns the /dev/fuse descriptor; handing it to a successor process (mount
// survival, DESIGN §7) hooks in here.
#include <fcntl.h>
#include <fmt/format.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

#include "client/granary.h"
#include "client/meta_client.h"
#include "common/log.h"
#include "fuse/fs.h"
#include "fuse/mount.h"

namespace granary::fuse {
namespace {

void WakeHandler(int) {}

// The kernel's readahead window for a FUSE mount comes from its bdi (default 128 KiB); a large
// window is what lets sequential reads fetch many blocks from many datanodes at once.
// Found through /proc/self/mountinfo: a stat() of the mount point would wait for the kernel's
// INIT, which this process answers only once its loop runs.
void SetReadahead(const std::string& mountpoint, uint32_t kib) {
  std::ifstream info("/proc/self/mountinfo");
  std::string line, device;
  while (std::getline(info, line)) {
    // "36 35 0:52 / /mnt/point rw,… - fuse.granary granary:vol rw,…"
    std::istringstream fields(line);
    std::string id, parent, dev, root, point;
    fields >> id >> parent >> dev >> root >> point;
    if (point == mountpoint) device = dev;  // the last match is the newest mount
  }
  if (device.empty()) return;
  std::string path = fmt::format("/sys/class/bdi/{}/read_ahead_kb", device);
  std::ofstream f(path);
  if (f) f << kib;
  if (!f) GLOG_WARN("event=readahead_not_set path={}", path);
}

}  // namespace

Status Serve(const MountOptions& options, const std::function<void()>& on_mounted) {
  // SIGTERM/SIGINT are taken by one thread (blocked everywhere else, so blocked before any
  // thread starts); it ends the loop by flagging the session and waking the loop's wait with
  // SIGUSR1.
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigaddset(&term, SIGINT);
  sigaddset(&term, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &term, nullptr);

  client::ClientOptions co;
  co.meta = options.meta;
  co.labels = options.labels;
  co.write_buffer_bytes = options.write_buffer_bytes;
  co.max_inflight_blocks = options.max_inflight_blocks;
  co.operation_timeout = options.operation_timeout;
  auto client = client::Client::Connect(co);
  if (!client.ok()) return client.status().WithContext("connect");
  auto root = (*client)->Resolve(options.volume, options.subdir);
  if (!root.ok()) return root.status().WithContext("mount root");
  if (root->type() != FileType::DIRECTORY) {
    return Status(Code::NOT_DIRECTORY,
                  fmt::format("{}/{} is not a directory", options.volume, options.subdir));
  }

  GranaryFs fs(client->get(), options, root->ino());

  std::vector<std::string> args = {
      "granary-mount", "-o",
      fmt::format("fsname=granary:{},subtype=granary,max_read={}", options.volume, 1 << 20)};
  if (options.allow_other) args.insert(args.end(), {"-o", "allow_other"});
  args.insert(args.end(), {"-o", "default_permissions"});
  if (options.read_only) args.insert(args.end(), {"-o", "ro"});
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  fuse_args fargs = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());

  fuse_session* se = fuse_session_new(&fargs, &GranaryFs::Ops(), sizeof(fuse_lowlevel_ops), &fs);
  if (se == nullptr) return InvalidArgument("fuse_session_new failed (bad mount options)");
  fs.set_session(se);
  if (fuse_session_mount(se, options.mountpoint.c_str()) != 0) {
    fuse_session_destroy(se);
    return Status(Code::PERMISSION_DENIED,
                  fmt::format("mount {} refused (see the message above)", options.mountpoint));
  }
  SetReadahead(options.mountpoint, options.readahead_kib);

  const pthread_t main_thread = pthread_self();
  struct sigaction wake {};
  wake.sa_handler = WakeHandler;
  sigaction(SIGUSR1, &wake, nullptr);
  std::atomic<bool> stopping{false};
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&term, &sig);
    if (stopping.exchange(true)) return;
    GLOG_INFO("event=unmount_requested signal={}", sig);
    fuse_session_exit(se);
    pthread_kill(main_thread, SIGUSR1);
  });

  GLOG_INFO("event=mounted mountpoint={} volume={} subdir=/{} root_ino={} read_only={}",
            options.mountpoint, options.volume, options.subdir, root->ino(), options.read_only);
  if (on_mounted) on_mounted();

  fuse_loop_config* cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(cfg, options.max_threads);
  fuse_loop_cfg_set_idle_threads(cfg, std::min<unsigned>(options.max_threads, 8));
  int rc = fuse_session_loop_mt(se, cfg);
  fuse_loop_cfg_destroy(cfg);

  int failed = fs.FlushAll();
  fuse_session_unmount(se);
  if (!stopping.exchange(true)) {
    // Unmounted from outside (fusermount -u / umount): release the signal thread.
    pthread_kill(waiter.native_handle(), SIGTERM);
  }
  waiter.join();
  fuse_session_destroy(se);
  GLOG_INFO("event=unmounted mountpoint={} loop_rc={} unflushed_files={}", options.mountpoint, rc,
            failed);
  if (failed > 0) return Unavailable(fmt::format("{} open files could not be committed", failed));
  return Status::Ok();
}

}  // namespace granary::fuse
