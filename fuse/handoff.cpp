#include "fuse/handoff.h"

#include <fmt/format.h>
#include <linux/fuse.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "fuse/fs.h"  // libfuse with the project's FUSE_USE_VERSION

namespace granary::fuse {
namespace {

constexpr uint32_t kMagic = 0x47524e48;  // "GRNH"
constexpr uint32_t kVersion = 1;
// Not in this system's <linux/fuse.h> (protocol 7.38); the kernel (6.9+) defines it as 7.
constexpr int32_t kNotifyResend = 7;
// Even (not an interrupt reply), below the resend bit, and never reached by the kernel's
// request counter: a reply to it is refused with ENOENT.
constexpr uint64_t kReplayUnique = 0x3ffffffffffffffeull;

struct WireHeader {
  uint32_t magic;
  uint32_t version;
  uint64_t generation;
  uint32_t init_len;
  uint32_t what_len;
};

Status Errno(std::string_view what) {
  return Unavailable(fmt::format("{}: {}", what, std::strerror(errno)));
}

bool WaitReadable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  int rc;
  do {
    rc = poll(&p, 1, timeout_ms);
  } while (rc < 0 && errno == EINTR);
  return rc == 1;
}

Status ReadFull(int fd, void* buf, size_t n, int timeout_ms) {
  auto* p = static_cast<uint8_t*>(buf);
  while (n > 0) {
    if (!WaitReadable(fd, timeout_ms)) return Unavailable("handoff: peer silent or gone");
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return r == 0 ? Unavailable("handoff: peer closed") : Errno("handoff read");
    p += r;
    n -= static_cast<size_t>(r);
  }
  return Status::Ok();
}

Status WriteFull(int fd, const void* buf, size_t n) {
  auto* p = static_cast<const uint8_t*>(buf);
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return Errno("handoff write");
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

Result<sockaddr_un> Address(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    return InvalidArgument(fmt::format("socket path {} is too long", path));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

}  // namespace

Status SendState(int sock, int fuse_fd, const HandoffState& state) {
  WireHeader h{kMagic, kVersion, state.generation, static_cast<uint32_t>(state.init.size()),
               static_cast<uint32_t>(state.what.size())};
  iovec iov{&h, sizeof(h)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(c), &fuse_fd, sizeof(int));
  ssize_t n;
  do {
    n = sendmsg(sock, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof(h))) return Errno("handoff sendmsg");
  if (Status s = WriteFull(sock, state.init.data(), state.init.size()); !s.ok()) return s;
  return WriteFull(sock, state.what.data(), state.what.size());
}

Status ReceiveState(int sock, int* fuse_fd, HandoffState* state, int timeout_ms) {
  *fuse_fd = -1;
  if (!WaitReadable(sock, timeout_ms)) return Unavailable("handoff: no state from the peer");
  WireHeader h{};
  iovec iov{&h, sizeof(h)};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_WAITALL);
  } while (n < 0 && errno == EINTR);
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      std::memcpy(fuse_fd, CMSG_DATA(c), sizeof(int));
    }
  }
  auto fail = [&](Status s) {
    if (*fuse_fd >= 0) close(*fuse_fd);
    *fuse_fd = -1;
    return s;
  };
  if (n != static_cast<ssize_t>(sizeof(h))) return fail(Unavailable("handoff: short header"));
  if (h.magic != kMagic || h.version != kVersion) {
    return fail(
        InvalidArgument(fmt::format("handoff: unknown format {:x}/{}", h.magic, h.version)));
  }
  if (*fuse_fd < 0) return fail(Unavailable("handoff: no descriptor passed"));
  if (h.init_len > 4096 || h.what_len > 8192) return fail(InvalidArgument("handoff: oversized"));
  state->generation = h.generation;
  state->init.resize(h.init_len);
  state->what.resize(h.what_len);
  if (Status s = ReadFull(sock, state->init.data(), h.init_len, timeout_ms); !s.ok()) {
    return fail(s);
  }
  if (Status s = ReadFull(sock, state->what.data(), h.what_len, timeout_ms); !s.ok()) {
    return fail(s);
  }
  return Status::Ok();
}

bool ReadByte(int fd, char* out, int timeout_ms) { return ReadFull(fd, out, 1, timeout_ms).ok(); }

bool WriteByte(int fd, char b) { return WriteFull(fd, &b, 1).ok(); }

Status ReplayInit(fuse_session* se, const std::vector<uint8_t>& init) {
  if (init.size() < sizeof(fuse_in_header)) return InvalidArgument("handoff: no INIT saved");
  std::vector<uint8_t> copy = init;
  fuse_in_header in{};
  std::memcpy(&in, copy.data(), sizeof(in));
  if (in.opcode != FUSE_INIT) return InvalidArgument("handoff: saved request is not INIT");
  in.unique = kReplayUnique;
  std::memcpy(copy.data(), &in, sizeof(in));
  fuse_buf buf{};
  buf.mem = copy.data();
  buf.size = copy.size();
  fuse_session_process_buf(se, &buf);
  return Status::Ok();
}

Status NotifyResend(int fuse_fd) {
  fuse_out_header out{};
  out.len = sizeof(out);
  out.error = kNotifyResend;
  out.unique = 0;
  ssize_t n;
  do {
    n = write(fuse_fd, &out, sizeof(out));
  } while (n < 0 && errno == EINTR);
  if (n != static_cast<ssize_t>(sizeof(out))) return Errno("FUSE_NOTIFY_RESEND");
  return Status::Ok();
}

Result<int> ListenUnix(const std::string& path) {
  auto addr = Address(path);
  if (!addr.ok()) return addr.status();
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  unlink(path.c_str());  // a predecessor's socket: its listener has stopped accepting
  if (bind(fd, reinterpret_cast<sockaddr*>(&*addr), sizeof(*addr)) != 0 || listen(fd, 4) != 0) {
    Status s = Errno(fmt::format("listen on {}", path));
    close(fd);
    return s;
  }
  return fd;
}

Result<int> ConnectUnix(const std::string& path) {
  auto addr = Address(path);
  if (!addr.ok()) return addr.status();
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("socket");
  if (connect(fd, reinterpret_cast<sockaddr*>(&*addr), sizeof(*addr)) != 0) {
    Status s = Errno(fmt::format("connect to {}", path));
    close(fd);
    return s;
  }
  return fd;
}

}  // namespace granary::fuse
