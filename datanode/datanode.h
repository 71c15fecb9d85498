// granary_datanode public surface: one datanode — block store, framed data server, DataControl
// gRPC service and metanode session — startable in-process (so `granary server` runs N of them)
// or as `granary datanode`. Other public headers: block_store.h, device.h, fault_device.h,
// epochs.h (for tests).
//
//   DatanodeOptions o;  o.data_dir = "/var/lib/granary/dn0";  o.meta = {{"127.0.0.1", 7410}};
//   auto dn = Datanode::Start(o);          // Result<std::unique_ptr<Datanode>>
//   (*dn)->data_address();                 // bound --data-listen (port 0 resolved)
//   (*dn)->Stop();                         // or destroy it
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/net.h"
#include "common/status.h"
#include "common/topology.h"
#include "datanode/device.h"
#include "datanode/epochs.h"
#include "datanode/maintenance.h"

namespace granary::datanode {

struct DatanodeOptions {
  std::string data_dir;
  HostPort listen{"127.0.0.1", 0};       // gRPC DataControl; port 0 picks one
  HostPort data_listen{"127.0.0.1", 0};  // framed data protocol; port 0 picks one
  // Host others use to reach us (registered with the metanode); default: the listen host.
  std::string advertise;
  std::vector<HostPort> meta;  // metanode addresses; may be empty only when `epochs` is set
  Labels labels;
  // Overrides the metanode's map as the source of PG epochs (tests, benchmarks). With `meta`
  // empty the node runs without a metanode.
  std::shared_ptr<EpochView> epochs;
  // Disk I/O; default io_uring. Tests pass a FaultInjectionDevice.
  std::shared_ptr<Device> device;
  // Replicated blocks of at least this many bytes are written with O_DIRECT on the PG's
  // followers (the first member, which readers try first, keeps its copy in the page cache);
  // 0: every block through the page cache (docs/data-path.md "Direct writes").
  uint64_t direct_write_min = 2 << 20;
  std::chrono::milliseconds heartbeat_interval{2000};
  // Repair, reconciliation and scrub (only with a metanode).
  MaintenanceOptions maintenance;
  // Blocks of at most this many bytes are stored in the datanode's RocksDB (DIR/small), not as
  // files; 0 turns that off (docs/data-path.md "Small blocks").
  uint64_t small_block_max = 64 << 10;
  size_t workers = 16;
  uint64_t memory_budget = 256ull << 20;
};

class BlockStore;

class Datanode {
 public:
  // Opens the store, binds both listeners, registers with the metanode (an unreachable one is
  // retried in the background) and starts serving.
  static Result<std::unique_ptr<Datanode>> Start(DatanodeOptions options);
  ~Datanode();
  // Stops accepting, finishes admitted requests, stops heartbeats. Idempotent.
  void Stop();

  HostPort control_address() const;
  HostPort data_address() const;
  // Assigned by the metanode (0 until registered).
  uint32_t node_id() const;
  // False after a disk error (EIO) until restart; reported in heartbeats and /healthz.
  bool healthy() const;
  BlockStore& store();
  // Null when running without a metanode.
  Maintenance* maintenance();

 private:
  struct Impl;
  explicit Datanode(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace granary::datanode
