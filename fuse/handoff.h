// Mount survival (DESIGN §7, docs/mount-survival.md): what one serving process hands to its
// successor over a unix socket — the /dev/fuse descriptor (SCM_RIGHTS) and the negotiated INIT
// state — and the FUSE protocol pieces that let the successor serve without a new FUSE_INIT.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

struct fuse_session;

namespace granary::fuse {

struct HandoffState {
  // The kernel's FUSE_INIT request exactly as it was read (header + fuse_init_in). Replayed
  // into a fresh libfuse session, it yields the same negotiated connection (same op.init).
  std::vector<uint8_t> init;
  // Server incarnation: numbers the file handles each one hands out (GranaryFs::set_generation).
  uint64_t generation = 0;
  // "volume/subdir" the mount serves: a successor for another volume is refused.
  std::string what;
};

// Sends `state` and `fuse_fd` (as SCM_RIGHTS) on the connected unix stream socket `sock`.
Status SendState(int sock, int fuse_fd, const HandoffState& state);
// Receives what SendState sent; `*fuse_fd` is this process's descriptor of the connection.
Status ReceiveState(int sock, int* fuse_fd, HandoffState* state, int timeout_ms);

// Single bytes of the takeover conversation on the control socket.
constexpr char kTakeoverRequest = 'T';
constexpr char kTakeoverDone = 'A';
// Exit code of a serving process that handed its mount over (not a failure, not an unmount).
constexpr int kExitHandedOver = 75;

// Reads one byte with a deadline; false on timeout, EOF or error.
bool ReadByte(int fd, char* out, int timeout_ms);
bool WriteByte(int fd, char b);

// Feeds the saved INIT to `se` under a request id the kernel never issued: libfuse negotiates
// as it did the first time, and its reply is refused by the kernel (ENOENT, which libfuse
// ignores), so the kernel's connection is left as it is.
Status ReplayInit(fuse_session* se, const std::vector<uint8_t>& init);

// FUSE_NOTIFY_RESEND (kernel >= 6.9): the kernel moves every request read from the device
// but not answered back to its pending queue, so the successor reads them again.
Status NotifyResend(int fuse_fd);

// Unix stream socket helpers (paths up to sizeof(sun_path)).
Result<int> ListenUnix(const std::string& path);
Result<int> ConnectUnix(const std::string& path);

}  // namespace granary::fuse
