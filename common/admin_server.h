// The admin HTTP endpoint every long-running role serves (DESIGN §1): /metrics (Prometheus
// text), /healthz, and any extra GET paths a role registers. One thread; admin traffic is small.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "common/metrics.h"
#include "common/net.h"
#include "common/status.h"

namespace granary {

class AdminServer {
 public:
  // A handler returns {http status, body}.
  using Handler = std::function<std::pair<int, std::string>()>;

  // Binds `address` (port 0 picks a free port) and starts serving. `healthy` decides /healthz
  // (200 "ok" or 503 "unhealthy"); null means always healthy.
  static Result<std::unique_ptr<AdminServer>> Start(const HostPort& address,
                                                    MetricsRegistry& registry,
                                                    std::function<bool()> healthy = nullptr);
  ~AdminServer();

  // Must be called before Start returns requests for it; safe at any time.
  void AddHandler(const std::string& path, Handler handler);

  // The bound address, with the real port.
  HostPort address() const;
  void Stop();

 private:
  struct Impl;
  explicit AdminServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace granary
