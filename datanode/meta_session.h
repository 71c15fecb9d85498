// The datanode's side of the metanode's Cluster service: register (stable uuid kept in
// DIR/node.uuid), heartbeat with capacity/used/health, and keep the cluster map's epochs fresh.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/net.h"
#include "common/status.h"
#include "common/topology.h"
#include "datanode/block_store.h"
#include "datanode/epochs.h"
#include "granary/meta.grpc.pb.h"

namespace granary::datanode {

struct MetaSessionOptions {
  std::vector<HostPort> meta;
  std::string data_dir;
  std::string address;       // control (gRPC) address others use
  std::string data_address;  // --data-listen address others use
  Labels labels;
  std::chrono::milliseconds heartbeat_interval{2000};
  std::chrono::milliseconds rpc_timeout{5000};
};

class MetaSession {
 public:
  // Reads or creates the uuid; does not contact the metanode yet.
  static Result<std::unique_ptr<MetaSession>> Create(MetaSessionOptions options, BlockStore* store,
                                                     std::function<bool()> healthy);
  ~MetaSession();

  // Registers and fetches the map once (an unreachable metanode is logged, not fatal), then
  // heartbeats in a thread that registers again whenever the metanode forgets us.
  void Start();
  // The addresses to register (known once the listeners are bound); call before Start.
  void SetAddresses(std::string control, std::string data);
  void Stop();

  ClusterMapEpochs& epochs() { return *epochs_; }

  // Calls the maintenance worker (maintenance.h) makes on the metanode.
  Result<PgBlocksReply> PgBlocks(const PgBlocksRequest& req);
  Result<CheckSlicesReply> CheckSlices(const CheckSlicesRequest& req);
  Result<ClusterStatusReply> ClusterStatus();
  Status ReportCorruption(const ReportCorruptionRequest& req);
  Status ResolveCorruption(const ResolveCorruptionRequest& req);
  // Warm copies made (or why not): docs/locality.md.
  Status WarmDone(const WarmDoneRequest& req);
  // Repair progress sent with every heartbeat: {blocks still missing, epoch of the last complete
  // pass}.
  void SetRepairProgress(std::function<std::pair<uint64_t, uint64_t>()> progress);
  // More of the maintenance worker's state for each heartbeat (`fill`), and what each reply
  // hands back (`on_reply`: the suspect copies this node holds). Both run on the heartbeat
  // thread and must not block.
  void SetHeartbeatHooks(std::function<void(HeartbeatRequest*)> fill,
                         std::function<void(const HeartbeatReply&)> on_reply);
  uint32_t node_id() const;
  const std::string& uuid() const { return uuid_; }

 private:
  MetaSession(MetaSessionOptions options, BlockStore* store, std::function<bool()> healthy);
  Status RegisterOnce();
  Status HeartbeatOnce();
  Result<ClusterMap> FetchMap(uint64_t known_epoch);
  void Loop();
  std::shared_ptr<Cluster::Stub> Stub();
  // Moves to the next --meta address, or to the leader a NotLeader names (metadata group).
  void NextMeta();
  void Follow(const Status& not_leader);
  // One RPC to the metadata leader: follows NotLeader, tries every member once when one is
  // unavailable.
  template <typename Reply, typename Request>
  Result<Reply> Call(grpc::Status (Cluster::Stub::*method)(grpc::ClientContext*, const Request&,
                                                           Reply*),
                     const Request& req, const char* what);

  MetaSessionOptions options_;
  BlockStore* const store_;
  std::function<bool()> healthy_;
  std::function<std::pair<uint64_t, uint64_t>()> repair_progress_;
  std::function<void(HeartbeatRequest*)> heartbeat_fill_;
  std::function<void(const HeartbeatReply&)> heartbeat_reply_;
  std::string uuid_;
  std::unique_ptr<ClusterMapEpochs> epochs_;

  mutable std::mutex mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  uint32_t node_id_ = 0;
  size_t meta_index_ = 0;
  std::string target_;  // the member calls go to; empty = options_.meta[meta_index_]
  std::shared_ptr<Cluster::Stub> stub_;
  std::thread thread_;
};

}  // namespace granary::datanode
