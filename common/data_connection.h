// Client side of the framed data protocol (DESIGN §4, docs/data-path.md): one TCP connection to
// a datanode's --data-listen address carrying many requests at once. Used by libgranary and by
// datanodes forwarding along a replication chain.
//
//   auto pool = DataConnectionPool::Create();
//   DataRequest req;  req.set_op(WRITE_BLOCK); ...
//   Result<DataReply> r = pool->Call("10.0.0.7:7420", req, payload, Deadline(5s));
//
// Threads: each connection owns one receiver thread; senders write from the calling thread
// under a per-connection lock (a 4 MiB payload goes out with writev, never copied by us).
#pragma once

#include <sys/uio.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>

#include "common/aligned_buffer.h"
#include "common/status.h"
#include "granary/data.pb.h"

namespace granary {

using Clock = std::chrono::steady_clock;

inline Clock::time_point DeadlineIn(Clock::duration d) { return Clock::now() + d; }

// A reply whose frame arrived. `header.code()` may still be an error (NOT_FOUND, STALE_EPOCH…):
// the transport worked; use ReplyStatus() to turn it into a Status.
struct DataReply {
  DataResponse header;
  AlignedBuffer payload;  // page-aligned; READ_BLOCK bytes
};

// Status of a reply's header code, with the datanode's message prefixed by `address`.
Status ReplyStatus(const DataReply& reply, const std::string& address);

class DataConnection : public std::enable_shared_from_this<DataConnection> {
 public:
  // Connects (TCP_NODELAY) within `deadline`. Unavailable naming `address` on failure.
  static Result<std::shared_ptr<DataConnection>> Connect(const std::string& address,
                                                         Clock::time_point deadline);
  ~DataConnection();
  DataConnection(const DataConnection&) = delete;
  DataConnection& operator=(const DataConnection&) = delete;

  // Sends `request` (its request_id is overwritten with a connection-unique id) followed by
  // `payload`, which must stay valid only until this call returns: the bytes are on the socket
  // by then. Blocks while the socket is full (back-pressure from the datanode). The future
  // yields the reply whose request_id matches, Unavailable "…: deadline exceeded" if none came
  // by `deadline`, or Unavailable naming the address when the connection fails — in which case
  // every pending request fails the same way.
  std::future<Result<DataReply>> CallAsync(DataRequest request, std::span<const uint8_t> payload,
                                           Clock::time_point deadline);

  // The same with a callback instead of a future: `done` runs exactly once, on the receiver
  // thread (or on the caller's when the connection has already failed), and must not block.
  using DoneCallback = std::function<void(Result<DataReply>)>;
  void CallAsync(DataRequest request, std::span<const uint8_t> payload, Clock::time_point deadline,
                 DoneCallback done);

  // CallAsync + wait.
  Result<DataReply> Call(DataRequest request, std::span<const uint8_t> payload,
                         Clock::time_point deadline);

  // False once the connection has failed or been closed; a pool then dials a new one.
  bool healthy() const;
  const std::string& address() const { return address_; }
  size_t pending() const;

  // Fails every pending request (Unavailable "connection closed") and stops the receiver.
  void Close();

 private:
  struct Pending;
  DataConnection(std::string address, int fd);
  void ReceiveLoop();
  void Fail(const Status& status);
  void Wake();
  Status SendAll(::iovec* iov, int iovcnt, Clock::time_point deadline);

  const std::string address_;
  const int fd_;
  int wake_fd_ = -1;  // eventfd: a new deadline or Close() wakes the receiver

  mutable std::mutex mu_;
  bool failed_ = false;
  Status failure_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, std::unique_ptr<Pending>> pending_;

  std::mutex send_mu_;
  std::thread receiver_;
};

// Connections keyed by address, dialled on first use and re-dialled after a failure.
class DataConnectionPool {
 public:
  static std::shared_ptr<DataConnectionPool> Create() {
    return std::shared_ptr<DataConnectionPool>(new DataConnectionPool());
  }
  ~DataConnectionPool();

  Result<std::shared_ptr<DataConnection>> Get(const std::string& address,
                                              Clock::time_point deadline);

  // Get + DataConnection::Call / CallAsync. A dial failure yields a ready future.
  Result<DataReply> Call(const std::string& address, DataRequest request,
                         std::span<const uint8_t> payload, Clock::time_point deadline);
  std::future<Result<DataReply>> CallAsync(const std::string& address, DataRequest request,
                                           std::span<const uint8_t> payload,
                                           Clock::time_point deadline);
  void CallAsync(const std::string& address, DataRequest request, std::span<const uint8_t> payload,
                 Clock::time_point deadline, DataConnection::DoneCallback done);

  void CloseAll();

 private:
  DataConnectionPool() = default;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<DataConnection>> conns_;
};

}  // namespace granary
