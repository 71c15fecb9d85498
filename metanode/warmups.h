// The leader's side of warm-ups (docs/locality.md): time-driven work that decides what to copy
// where (tasks handed to datanodes with their heartbeat replies), marks warm-ups ready or
// stopped, releases the copies of deleted warm-ups, evicts copies from datanodes short of space
// and deletes trashed copies on their datanodes. Every state change is an operation; the plan
// itself is in memory and a new leader rebuilds it. Internal to metanode/.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/status.h"
#include "granary/data.grpc.pb.h"
#include "granary/meta.pb.h"

namespace granary::metanode {

class MetaCore;

struct WarmupOptions {
  // How often the plan is rebuilt (a walk of every copying warm-up's subtree).
  int64_t plan_interval_ms = 1000;
  // A ready warm-up is looked at again this often (files written since get their copies).
  int64_t ready_recheck_ms = 30000;
  // Tasks handed to one datanode per heartbeat.
  size_t tasks_per_heartbeat = 32;
  // Copies released or trashed per operation.
  uint32_t release_batch = 10000;
  size_t trash_batch = 1000;
};

class WarmupDriver {
 public:
  WarmupDriver(MetaCore& core, WarmupOptions options);
  ~WarmupDriver();

  // One round of housekeeping (leader only).
  void Round();
  // A new leader starts from an empty plan.
  void Reset();
  // The copies `node` should make now (its heartbeat reply).
  std::vector<WarmTask> TasksFor(uint32_t node);
  // A datanode's report: recorded through one operation.
  Status Done(const WarmDoneRequest& req);
  // Whether `node` was asked to copy `slice` in the current plan (CheckSlices keeps such a copy
  // while it is being made and reported).
  bool Planned(uint32_t node, uint64_t slice) const;

 private:
  void Plan(int64_t now);
  void EmptyTrash();
  void ReleaseAndEvict();
  Status DeleteOn(const NodeInfo& node, const DeleteBlocksRequest& req);

  MetaCore& core_;
  WarmupOptions options_;
  int64_t last_plan_ms_ = 0;
  std::map<uint64_t, int64_t> last_ready_check_ms_;  // warm-up id -> when a ready one was planned
  mutable std::mutex mu_;
  std::map<uint32_t, std::map<uint64_t, WarmTask>> plan_;  // node -> slice -> task
  std::map<std::string, std::unique_ptr<DataControl::Stub>> stubs_;
};

}  // namespace granary::metanode
