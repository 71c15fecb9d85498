// The metanode server (DESIGN §3): MetaCore behind gRPC, plus the admin HTTP endpoint.
// `granary metanode` and the embedded `granary server` both start one with Metanode::Start.
#pragma once

#include <memory>
#include <string>

#include "common/admin_server.h"
#include "common/net.h"
#include "common/status.h"
#include "metanode/meta_core.h"

namespace granary::metanode {

struct MetanodeOptions {
  MetaCoreOptions core;
  std::string listen = "127.0.0.1:7410";  // gRPC; port 0 picks a free port
  std::string admin;                      // /metrics and /healthz; empty = none
  // HOST others reach this metanode at (a group member without --peers in its flags).
  std::string advertise;
};

class Metanode {
 public:
  // Opens the store, creates the default pool at first start, binds and serves.
  static Result<std::unique_ptr<Metanode>> Start(MetanodeOptions options);
  ~Metanode();  // Shutdown()

  // Bound addresses with their real ports ("127.0.0.1:41234"); admin is empty without one.
  std::string address() const;
  std::string admin_address() const;
  MetaCore& core();
  // The admin HTTP server (null without --admin): the dashboard registers its pages there.
  AdminServer* admin_server();

  // Stops accepting requests, finishes those in flight, closes the store. Idempotent.
  void Shutdown();

 private:
  struct Impl;
  explicit Metanode(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace granary::metanode
