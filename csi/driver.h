// The CSI v1 plugin `csi.granary.io` (docs/csi.md): a CSI volume is a Granary volume; the node
// side stages one `granary mount` per volume per node and bind-mounts it into each pod.
//
// Contract:
// - Every call validates its arguments (INVALID_ARGUMENT) and maps storage errors through
//   common/error_table.h; calls of a service the mode does not serve answer UNIMPLEMENTED.
// - Mount daemons run in their own session: killing or restarting the plugin never touches a
//   staged or published mount. On start the node plugin re-discovers what its state dir
//   records, reports each mount and restages one whose daemon is gone.
#pragma once

#include <functional>
#include <string>

#include "common/status.h"

namespace granary::csi {

inline constexpr const char* kDriverName = "csi.granary.io";
// Topology keys of NodeGetInfo and Volume.accessible_topology.
inline constexpr const char* kTopologyPrefix = "topology.granary.io/";

struct DriverOptions {
  std::string endpoint;  // unix:///path/csi.sock
  std::string node_id;
  std::string meta = "127.0.0.1:7410";
  std::string mode = "all";  // controller | node | all
  std::string labels;        // zone=a,rack=r1,host=h1,gpu=a100 (topology of this node)
  std::string state_dir = "/var/lib/granary/csi";
  std::string granary_binary;  // for `granary mount`; default /proc/self/exe
  // What starts each staged volume's mount supervisor outside the plugin's lifetime
  // (docs/csi.md): "auto" (systemd-run --scope when systemd runs this host), "none", or a
  // command prefix such as "systemd-run --scope --collect --quiet --".
  std::string mount_launcher = "auto";
};

// Serves until SIGTERM/SIGINT (the caller blocks them first). `on_ready` runs once the socket
// accepts calls.
Status Serve(const DriverOptions& options, const std::function<void()>& on_ready);

}  // namespace granary::csi
