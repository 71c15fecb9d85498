// `granary server --metanodes N`: N metanode processes forming one metadata group under one
// data dir (DATA/meta-<id>), each its own process so a failover can be tried with kill -9.
// A member that exits is started again (after a second), as a supervisor would.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace granary::cmd {

struct MetanodeProcessesOptions {
  std::string data;  // the server's --data; members use DATA/meta-<id>
  std::string host = "127.0.0.1";
  // One per member: member i (from 1) serves on ports[i-1], Raft on the next port.
  std::vector<uint16_t> ports;
  std::vector<std::string> extra_flags;  // passed to every member
};

class MetanodeProcesses {
 public:
  // Starts every member and waits until each prints its address.
  static Result<std::unique_ptr<MetanodeProcesses>> Start(MetanodeProcessesOptions options);
  ~MetanodeProcesses();  // Stop()

  // "HOST:PORT,HOST:PORT,…" (the --meta list for clients).
  std::string addresses() const;
  // SIGTERM to every member, then waits for them.
  void Stop();

  struct Impl;

 private:
  explicit MetanodeProcesses(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace granary::cmd
