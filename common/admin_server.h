// The admin HTTP endpoint every long-running role serves (DESIGN §1): /metrics (Prometheus
// text), /healthz, and any extra GET paths a role registers (the metanode's dashboard,
// docs/dashboard.md). One thread; admin traffic is small. Work that may wait (a call to another
// process) belongs to an async handler, which answers from its own thread, so /healthz and
// /metrics never queue behind it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "common/net.h"
#include "common/status.h"

namespace granary {

struct AdminResponse {
  int status = 200;
  std::string body;
  std::string content_type = "text/plain; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;  // extra header fields
};

class AdminServer {
 public:
  // A handler returns {http status, body} (text/plain).
  using Handler = std::function<std::pair<int, std::string>()>;
  // Gets the request target (path and query) and answers through `reply`, exactly once, from
  // any thread.
  using AsyncHandler =
      std::function<void(const std::string& target, std::function<void(AdminResponse)> reply)>;

  // Binds `address` (port 0 picks a free port) and starts serving. `healthy` decides /healthz
  // (200 "ok" or 503 "unhealthy"); null means always healthy.
  static Result<std::unique_ptr<AdminServer>> Start(const HostPort& address,
                                                    MetricsRegistry& registry,
                                                    std::function<bool()> healthy = nullptr);
  ~AdminServer();

  // Safe at any time; a path registered later replaces the earlier handler.
  void AddHandler(const std::string& path, Handler handler);
  // Every GET path equal to `prefix` or starting with it (the longest matching prefix wins;
  // exact AddHandler paths, /metrics and /healthz come first).
  void AddPrefixHandler(const std::string& prefix, AsyncHandler handler);

  // The bound address, with the real port.
  HostPort address() const;
  void Stop();

 private:
  struct Impl;
  explicit AdminServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace granary
