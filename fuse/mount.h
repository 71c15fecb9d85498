// The POSIX door (DESIGN §7): a Granary volume mounted through the libfuse3 low-level API.
//
// Contract (docs/mount.md):
// - FUSE node ids are Granary inode numbers; the mounted directory is FUSE_ROOT_ID.
// - close-to-open: data written through an open file is committed, durably (every replica
//   fsynced, metadata committed), at flush (every close) and fsync; open revalidates the inode
//   and drops the kernel page cache when the file changed since it was cached.
// - Permissions are checked by the kernel (`default_permissions`) against the inode's
//   mode/uid/gid; `allow_other` lets every local user use the mount.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"

namespace granary::fuse {

struct MountOptions {
  std::string meta = "127.0.0.1:7410";
  std::string volume;
  std::string subdir;  // mount this directory of the volume instead of its root
  std::string mountpoint;
  std::string labels;  // where this client runs (nearest-copy reads, writer-local placement)
  bool read_only = false;
  // How long the kernel may trust attributes and names (and that a name does not exist) while
  // the mount follows the metanode's change feed, which invalidates them the moment another
  // client changes them (docs/mount.md "Coherent caching"). 0: do not follow the feed.
  double cache_timeout_s = 30.0;
  // The same when not following the feed (off, or while it is unreachable): then nothing
  // tells the mount about other clients' changes and names are not cached negatively
  // (close-to-open still revalidates at open).
  double attr_timeout_s = 1.0;
  double entry_timeout_s = 1.0;
  // Dirty bytes one open file buffers before it writes them out (bounds memory per file).
  uint64_t write_buffer_bytes = 32ull << 20;
  // Full buffers one open file writes out in the background while the application goes on
  // (0: a full buffer is written inside write()); each is write_buffer_bytes of memory.
  uint32_t write_behind = 2;
  // Blocks in flight per read or flush of one file.
  uint32_t max_inflight_blocks = 16;
  // FUSE worker threads at most (each serves one request at a time).
  uint32_t max_threads = 32;
  // Kernel readahead window for the mount (read_ahead_kb of its bdi).
  uint32_t readahead_kib = 8192;
  bool allow_other = true;
  // Receive write payloads through a pipe (splice) into page-aligned buffers. Off by default:
  // an intermittent heap corruption under mixed load was seen with it on and is not yet
  // root-caused (docs/mount.md).
  bool splice = false;
  std::chrono::milliseconds operation_timeout{120000};

  // Mount survival (docs/mount-survival.md).
  // Listen here for a successor's takeover request (`granary mount --control`).
  std::string control_socket;
  // Take the mount over from the process listening here instead of mounting.
  std::string takeover_socket;
  // A supervisor's end of a socketpair: this process reports its state there after mounting,
  // or (adopt_from_supervisor) first receives the state of its crashed predecessor from it.
  int supervisor_fd = -1;
  bool adopt_from_supervisor = false;
};

// How Serve ended when it returned Ok.
enum class ServeEnd { kUnmounted, kHandedOver };

// Mounts, serves until SIGTERM/SIGINT or an external unmount, commits what open files still
// buffer, unmounts. `on_mounted` runs once the mount is visible. Errors before the mount is
// up (unknown volume, missing subdir, mount refused) are returned.
// With control_socket set, a successor can take the mount over: this process then stops reading
// requests, commits what open files buffer, hands the descriptor over and returns kHandedOver
// without unmounting.
Status Serve(const MountOptions& options, const std::function<void()>& on_mounted,
             ServeEnd* end = nullptr);

// `granary mount --supervise`: runs the serving process `server_argv` (a `granary mount
// --foreground` command line) as a child, keeps a duplicate of its /dev/fuse descriptor and its
// INIT state, and when the child dies without unmounting starts a successor on the same
// connection. `on_mounted` runs once the first child has mounted. Returns when the mount is
// gone (unmounted, or the child exited cleanly).
Status Supervise(const std::vector<std::string>& server_argv, const std::string& mountpoint,
                 const std::function<void()>& on_mounted);

}  // namespace granary::fuse
