// A raft_uv_transport that wraps canonical raft's TCP transport so members can be named by
// service address (HOST:PORT, HOST a DNS name or an IPv4 literal): a connection to a member
// resolves HOST at connect time (off the loop, uv_getaddrinfo) and dials PORT+1. The TCP
// transport alone takes only IPv4 literals, and a Kubernetes pod comes back with a new IP.
#pragma once

// canonical raft 0.15 declares its API without extern "C".
extern "C" {
#include <raft.h>
#include <raft/uv.h>
}
#include <uv.h>

#include <string>

#include "common/status.h"

namespace granary::replication {

class ResolvingTransport {
 public:
  // `bind` is "IPv4:PORT" the Raft listener binds to.
  static Result<std::unique_ptr<ResolvingTransport>> Create(uv_loop_t* loop,
                                                            const std::string& bind);
  ~ResolvingTransport();  // after the loop closed it (raft's close callback)

  raft_uv_transport* transport() { return &outer_; }

 private:
  ResolvingTransport() = default;
  struct Resolve;
  static int Init(raft_uv_transport* t, raft_id id, const char* address);
  static int Listen(raft_uv_transport* t, raft_uv_accept_cb cb);
  static int Connect(raft_uv_transport* t, raft_uv_connect* req, raft_id id,
                     const char* address, raft_uv_connect_cb cb);
  static void Close(raft_uv_transport* t, raft_uv_transport_close_cb cb);
  static void Accepted(raft_uv_transport* inner, raft_id id, const char* address,
                       uv_stream_t* stream);
  static void Resolved(uv_getaddrinfo_t* req, int status, struct addrinfo* res);
  static void InnerClosed(raft_uv_transport* inner);
  void MaybeFinishClose();

  uv_loop_t* loop_ = nullptr;
  raft_uv_transport inner_{};
  raft_uv_transport outer_{};
  bool inner_initialised_ = false;
  raft_uv_accept_cb accept_cb_ = nullptr;
  raft_uv_transport_close_cb close_cb_ = nullptr;
  bool closing_ = false;
  bool inner_closed_ = false;
  int resolving_ = 0;
};

}  // namespace granary::replication
