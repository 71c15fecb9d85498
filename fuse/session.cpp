// Mount lifecycle: connect, resolve the mounted directory, mount, serve with a bounded pool of
// FUSE worker threads, and on SIGTERM/SIGINT commit what open files buffer and unmount.
// The session owns the /dev/fuse descriptor; it can be handed to a successor process instead of
// unmounting (mount survival, DESIGN §7, docs/mount-survival.md).
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <pthread.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include "client/granary.h"
#include "client/meta_client.h"
#include "common/log.h"
#include "fuse/fs.h"
#include "fuse/handoff.h"
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

// Where a successor asks for the mount: accepts one takeover request at a time and hands it to
// the serving loop (which stops, commits, and answers on the connection).
class ControlListener {
 public:
  ControlListener(int listen_fd, std::function<void()> stop_loop)
      : listen_fd_(listen_fd), stop_loop_(std::move(stop_loop)) {
    if (pipe2(wake_, O_CLOEXEC) != 0) wake_[0] = wake_[1] = -1;
    thread_ = std::thread([this] { Run(); });
  }
  ~ControlListener() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    (void)!write(wake_[1], "x", 1);
    thread_.join();
    if (pending_ >= 0) close(pending_);
    close(listen_fd_);
    close(wake_[0]);
    close(wake_[1]);
  }
  // The takeover connection that stopped the loop, or -1 (the caller then owns and closes it).
  int Take() {
    std::lock_guard lock(mu_);
    int c = pending_;
    pending_ = -1;
    return c;
  }
  // The loop serves again (a takeover was refused or failed): accept the next request.
  void Resume() {
    std::lock_guard lock(mu_);
    busy_ = false;
    cv_.notify_all();
  }

 private:
  void Run() {
    while (true) {
      pollfd p[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
      if (poll(p, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (p[1].revents != 0) return;
      int c = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      char b = 0;
      if (!ReadByte(c, &b, 5000) || b != kTakeoverRequest) {
        close(c);
        continue;
      }
      std::unique_lock lock(mu_);
      if (done_) {
        close(c);
        return;
      }
      pending_ = c;
      busy_ = true;
      lock.unlock();
      GLOG_INFO("event=takeover_requested");
      stop_loop_();
      lock.lock();
      cv_.wait(lock, [&] { return !busy_ || done_; });
      if (done_) return;
    }
  }

  int listen_fd_;
  std::function<void()> stop_loop_;
  int wake_[2] = {-1, -1};
  std::mutex mu_;
  std::condition_variable cv_;
  int pending_ = -1;
  bool busy_ = false;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace

Status Serve(const MountOptions& requested, const std::function<void()>& on_mounted,
             ServeEnd* end) {
  MountOptions options = requested;
  if (end != nullptr) *end = ServeEnd::kUnmounted;
  // SIGTERM/SIGINT are taken by one thread (blocked everywhere else, so blocked before any
  // thread starts); it ends the loop by flagging the session and waking the loop's wait with
  // SIGUSR1.
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigaddset(&term, SIGINT);
  sigaddset(&term, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &term, nullptr);
  // A datanode that dies mid-request is an error of that request, not the end of the mount.
  signal(SIGPIPE, SIG_IGN);

  client::ClientOptions co;
  co.meta = options.meta;
  co.labels = options.labels;
  co.write_buffer_bytes = options.write_buffer_bytes;
  co.write_behind = options.write_behind;
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
  // A snapshot (VOLUME@NAME, docs/snapshots.md) mounts read-only: writes get EROFS.
  auto volume = (*client)->meta().VolumeGet(options.volume);
  if (volume.ok() && volume->read_only()) options.read_only = true;

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

  // Either a predecessor's connection (its descriptor and INIT state) or a fresh mount.
  HandoffState state;
  state.what = fmt::format("{}/{}", options.volume, options.subdir);
  bool adopted = false;
  int predecessor = -1;
  auto fail = [&](Status s) {
    if (predecessor >= 0) close(predecessor);
    fuse_session_destroy(se);
    return s;
  };
  if (!options.takeover_socket.empty() || options.adopt_from_supervisor) {
    int fuse_fd = -1;
    HandoffState got;
    if (!options.takeover_socket.empty()) {
      auto c = ConnectUnix(options.takeover_socket);
      if (!c.ok()) return fail(c.status().WithContext("takeover"));
      predecessor = *c;
      if (!WriteByte(predecessor, kTakeoverRequest)) {
        return fail(Unavailable("takeover: the serving process closed the control socket"));
      }
      // The predecessor first finishes the requests it serves and commits open files.
      Status s = ReceiveState(predecessor, &fuse_fd, &got, 120000);
      if (!s.ok()) return fail(s.WithContext("takeover"));
    } else {
      Status s = ReceiveState(options.supervisor_fd, &fuse_fd, &got, 30000);
      if (!s.ok()) return fail(s.WithContext("adopt from supervisor"));
      fs.set_predecessor_crashed(true);
    }
    if (got.what != state.what) {
      close(fuse_fd);
      return fail(InvalidArgument(
          fmt::format("takeover: the mount serves {}, this process {}", got.what, state.what)));
    }
    state.init = std::move(got.init);
    state.generation = got.generation + 1;
    fs.set_generation(state.generation);
    // libfuse takes "/dev/fd/N" as an already-open /dev/fuse connection (nothing is mounted).
    std::string dev = fmt::format("/dev/fd/{}", fuse_fd);
    if (fuse_session_mount(se, dev.c_str()) != 0) {
      close(fuse_fd);
      return fail(Internal("takeover: libfuse refused the passed descriptor"));
    }
    if (Status s = ReplayInit(se, state.init); !s.ok()) return fail(s);
    adopted = true;
  } else {
    if (fuse_session_mount(se, options.mountpoint.c_str()) != 0) {
      fuse_session_destroy(se);
      return Status(Code::PERMISSION_DENIED,
                    fmt::format("mount {} refused (see the message above)", options.mountpoint));
    }
    SetReadahead(options.mountpoint, options.readahead_kib);
    // The first request is the kernel's INIT: read here (not by the loop) to keep its bytes
    // for a successor.
    fuse_buf buf{};
    int n = fuse_session_receive_buf(se, &buf);
    if (n <= 0) {
      free(buf.mem);
      fuse_session_unmount(se);
      return fail(Unavailable(fmt::format("no FUSE_INIT from the kernel (rc {})", n)));
    }
    state.init.assign(static_cast<uint8_t*>(buf.mem), static_cast<uint8_t*>(buf.mem) + n);
    fuse_session_process_buf(se, &buf);
    free(buf.mem);
  }
  const int fuse_fd = fuse_session_fd(se);
  if (options.supervisor_fd >= 0) {
    // The supervisor keeps a duplicate and the INIT state for a successor after a crash.
    if (Status s = SendState(options.supervisor_fd, fuse_fd, state); !s.ok()) {
      GLOG_WARN("event=supervisor_unreachable error=\"{}\"", s.ToString());
    }
  }
  if (predecessor >= 0) {
    // The predecessor stops holding the mount only once this process serves it.
    WriteByte(predecessor, kTakeoverDone);
    close(predecessor);
    predecessor = -1;
  }
  if (adopted) {
    // Requests the predecessor read but never answered go back to the kernel's queue.
    if (Status s = NotifyResend(fuse_fd); !s.ok()) {
      GLOG_WARN("event=resend_failed error=\"{}\"", s.ToString());
    }
    GLOG_INFO("event=adopted generation={} via={}", state.generation,
              options.takeover_socket.empty() ? "supervisor" : "takeover");
  }

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

  std::unique_ptr<ControlListener> control;
  if (!options.control_socket.empty()) {
    auto l = ListenUnix(options.control_socket);
    if (!l.ok()) {
      GLOG_ERROR("event=control_socket_failed error=\"{}\"", l.status().ToString());
    } else {
      control = std::make_unique<ControlListener>(*l, [&] {
        fuse_session_exit(se);
        pthread_kill(main_thread, SIGUSR1);
      });
    }
  }

  GLOG_INFO("event=mounted mountpoint={} volume={} subdir=/{} root_ino={} read_only={} pid={}",
            options.mountpoint, options.volume, options.subdir, root->ino(), options.read_only,
            getpid());
  if (on_mounted) on_mounted();

  bool handed_over = false;
  int rc = 0;
  while (true) {
    fuse_loop_config* cfg = fuse_loop_cfg_create();
    fuse_loop_cfg_set_max_threads(cfg, options.max_threads);
    fuse_loop_cfg_set_idle_threads(cfg, std::min<unsigned>(options.max_threads, 8));
    rc = fuse_session_loop_mt(se, cfg);
    fuse_loop_cfg_destroy(cfg);
    int conn = control ? control->Take() : -1;
    if (conn < 0) break;
    if (stopping.load()) {
      close(conn);
      break;
    }
    // A successor asked for the mount: no worker reads any more; what open files buffer is
    // committed before the connection changes hands (the successor re-opens them by inode).
    int failed = fs.FlushAll();
    Status s = failed == 0
                   ? SendState(conn, fuse_fd, state)
                   : Unavailable(fmt::format("{} open files could not be committed", failed));
    char ack = 0;
    if (s.ok() && ReadByte(conn, &ack, 120000) && ack == kTakeoverDone) handed_over = true;
    close(conn);
    if (handed_over) break;
    GLOG_WARN("event=takeover_failed error=\"{}\": serving on",
              s.ok() ? "no answer" : s.ToString());
    fuse_session_reset(se);
    // Anything a stopped worker had read goes back to the queue for the restarted loop.
    if (Status r = NotifyResend(fuse_fd); !r.ok()) {
      GLOG_WARN("event=resend_failed error=\"{}\"", r.ToString());
    }
    control->Resume();
  }
  control.reset();
  fs.StopChangeFeed();

  int failed = 0;
  if (!handed_over) {
    failed = fs.FlushAll();
    if (adopted) {
      // Mounted by a predecessor: libfuse does not know the mount point.
      if (umount2(options.mountpoint.c_str(), MNT_DETACH) != 0 && errno != EINVAL) {
        GLOG_WARN("event=umount_failed mountpoint={} errno={}", options.mountpoint, errno);
      }
    } else {
      fuse_session_unmount(se);
    }
    if (!options.control_socket.empty()) unlink(options.control_socket.c_str());
  }
  if (!stopping.exchange(true)) {
    // Unmounted from outside (fusermount -u / umount) or handed over: release the signal
    // thread.
    pthread_kill(waiter.native_handle(), SIGTERM);
  }
  waiter.join();
  fuse_session_destroy(se);
  if (handed_over) {
    GLOG_INFO("event=handed_over mountpoint={} generation={}", options.mountpoint,
              state.generation);
    if (end != nullptr) *end = ServeEnd::kHandedOver;
    return Status::Ok();
  }
  GLOG_INFO("event=unmounted mountpoint={} loop_rc={} unflushed_files={}", options.mountpoint, rc,
            failed);
  if (failed > 0) return Unavailable(fmt::format("{} open files could not be committed", failed));
  return Status::Ok();
}

}  // namespace granary::fuse
