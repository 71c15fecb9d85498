// Node-side mount plumbing of the CSI plugin: the kernel's mount table, bind mounts, and the
// `granary mount` daemons that serve staged volumes.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace granary::csi {

struct MountEntry {
  std::string device;  // major:minor; a bind mount shares its source's
  std::string root;
  std::string mountpoint;
  std::string fstype;
  std::string source;
  bool read_only = false;
};

std::vector<MountEntry> ReadMountTable();
// The topmost mount on exactly `path`, if any.
std::optional<MountEntry> FindMount(const std::string& path);

// Bind-mounts `source` on `target` (created when missing), then remounts it read-only when asked
// (a bind mount ignores MS_RDONLY on the first call).
Status BindMount(const std::string& source, const std::string& target, bool read_only);
// Unmounts `path`; a busy mount is detached lazily as the last resort. Missing or unmounted is Ok.
Status Unmount(const std::string& path);

struct DaemonSpec {
  std::string binary;
  std::string meta;
  std::string volume;
  std::string labels;
  std::string mountpoint;
  std::string log_file;
  // Where a successor may take the mount over (`granary mount --control`; an upgrade is SIGUSR2
  // to the supervisor).
  std::string control_socket;
  // Command prefix the supervisor is started under (e.g. systemd-run --scope …); empty: none.
  std::vector<std::string> launcher;
  bool read_only = false;
};
// The launcher DriverOptions::mount_launcher names ("auto", "none" or a command prefix).
std::vector<std::string> ResolveLauncher(const std::string& setting);
// Starts `granary mount --supervise` detached (its own session, reparented away from this
// process): the supervisor restarts the serving process on the same kernel connection when it
// dies (docs/mount-survival.md). Returns once the mount is up or has failed.
Status StartMountDaemon(const DaemonSpec& spec);
// The pid of the `granary mount` daemon (the supervisor) of `mountpoint`, found in /proc
// (survives plugin restarts, which a remembered pid would not).
std::optional<pid_t> FindMountDaemon(const std::string& mountpoint);
// The pid of the process serving `mountpoint` under its supervisor.
std::optional<pid_t> FindMountServer(const std::string& mountpoint);
// SIGTERM to the daemon (it commits, unmounts and exits), waited on; umount as the fallback.
Status StopMountDaemon(const std::string& mountpoint);

}  // namespace granary::csi
