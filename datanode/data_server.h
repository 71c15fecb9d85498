// The framed data protocol server on --data-listen (docs/data-path.md "Protocol"). Threads: one
// acceptor, one reader per connection (it only receives frames and admits them), and a fixed
// worker pool that does disk I/O, forwards along the chain and writes replies. Many requests
// are in flight per connection; replies go out in completion order, matched by request_id.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/data_connection.h"
#include "common/net.h"
#include "common/status.h"
#include "datanode/block_store.h"
#include "datanode/epochs.h"
#include "datanode/worker_pool.h"
#include "granary/meta.pb.h"

namespace granary::datanode {

struct DataServerOptions {
  HostPort listen{"127.0.0.1", 0};
  // How this node names itself in errors and in the `node` metric label; empty means
  // "datanode <advertise or listen host>:<bound port>".
  std::string name;
  std::string advertise;
  size_t workers = 16;
  // Received payload bytes admitted at once; beyond it connections are not read.
  uint64_t memory_budget = 256ull << 20;
  size_t max_inflight_per_connection = 64;
  std::chrono::milliseconds forward_timeout{30000};
  // A client that does not read its replies for this long is disconnected.
  std::chrono::milliseconds send_timeout{30000};
  // This node's id in the cluster map (0: not registered yet). A replicated block is written
  // through the page cache only where readers go first, the PG's first member; the followers'
  // copies may go direct (BlockStoreOptions::direct_write_min).
  std::function<uint32_t()> node_id;
};

class DataServer {
 public:
  // `store` and `epochs` must outlive the server. The server keeps its own connections to
  // downstream chain members.
  static Result<std::unique_ptr<DataServer>> Start(DataServerOptions options, BlockStore* store,
                                                   EpochView* epochs);
  ~DataServer();
  HostPort address() const { return address_; }
  // This server's own counters (the ones /metrics shows), cumulative since it started: sent
  // with every heartbeat for the dashboard's throughput history (docs/dashboard.md).
  void FillIoCounters(IoCounters* out) const;
  // Stops accepting, closes every connection, finishes admitted requests.
  void Stop();

 private:
  struct Conn;
  struct Metrics;
  struct Request;
  DataServer(DataServerOptions options, BlockStore* store, EpochView* epochs);
  void AcceptLoop();
  void ReadLoop(std::shared_ptr<Conn> conn);
  void Handle(std::shared_ptr<Request> req);
  // Whether this copy of a written block is the one readers try first (kept in the page cache).
  bool ReadSoon(const DataRequest& h) const;
  void HandleWrite(std::shared_ptr<Request> req);
  void HandleRead(std::shared_ptr<Request> req);
  bool CheckEpoch(Request& req);
  void JoinChain(const std::shared_ptr<Request>& req, bool local, Status st, uint64_t epoch);
  // Sends req.resp without payload, then Complete.
  void Finish(Request& req);
  // Metrics, budget and in-flight accounting once a request is answered.
  void Complete(Request& req);
  void SendReply(Conn& conn, const DataResponse& resp, std::span<const uint8_t> payload);

  const DataServerOptions options_;
  BlockStore* const store_;
  EpochView* const epochs_;
  std::shared_ptr<DataConnectionPool> forward_;
  std::unique_ptr<Metrics> metrics_;
  std::unique_ptr<WorkerPool> workers_;
  std::unique_ptr<ByteBudget> budget_;

  int listen_fd_ = -1;
  HostPort address_;
  std::thread acceptor_;
  std::atomic<bool> stopping_{false};
  std::mutex conns_mu_;
  std::condition_variable readers_done_;
  size_t readers_ = 0;
  std::map<int, std::weak_ptr<Conn>> conns_;
};

}  // namespace granary::datanode
