// The controller runtime of `granary operator`: one client, informers per kind, controllers,
// an event recorder, leader election and the admin endpoint (/healthz, /readyz, /metrics).
// Informers run on every instance (a standby keeps a warm cache); controllers run only while
// this instance holds the Lease, and stop the moment it is lost.
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <string>

#include "common/admin_server.h"
#include "common/metrics.h"
#include "operator/runtime/controller.h"
#include "operator/runtime/events.h"
#include "operator/runtime/informer.h"
#include "operator/runtime/leader_election.h"

namespace granary::runtime {

struct ManagerOptions {
  std::string component = "granary-operator";  // Event source, default Lease name
  bool leader_election = true;
  LeaderElectionOptions lease;  // identity defaults to hostname + pid
  // Empty host: no admin endpoint.
  HostPort admin{"127.0.0.1", 0};
};

class Manager {
 public:
  Manager(kube::Client& client, ManagerOptions options, MetricsRegistry& metrics = Metrics());
  ~Manager();  // Stop()

  // Shared informer per (resource, namespace, selector): several controllers may watch one kind.
  Informer& AddInformer(const kube::Resource& resource, kube::ReflectorOptions options = {});
  Controller& AddController(ControllerOptions options, Reconciler reconciler);
  EventRecorder& events() { return events_; }
  kube::Client& client() { return client_; }

  // Starts the admin endpoint, the informers and the election (or the controllers at once,
  // without election). Returns without waiting for caches: see Ready().
  Status Start();
  // `release_lease`: false leaves the Lease to expire, as a crash would.
  void Stop(bool release_lease = true);

  bool IsLeader() const { return leading_; }
  // Every informer has synced (what /readyz reports).
  bool Ready() const;
  HostPort admin_address() const;
  const std::string& identity() const { return options_.lease.identity; }

 private:
  void StartControllers();
  void StopControllers();

  kube::Client& client_;
  ManagerOptions options_;
  MetricsRegistry& metrics_;
  EventRecorder events_;
  std::deque<std::unique_ptr<Informer>> informers_;
  std::map<std::string, Informer*> informer_index_;
  std::deque<std::unique_ptr<Controller>> controllers_;
  std::unique_ptr<LeaderElector> elector_;
  std::unique_ptr<AdminServer> admin_;
  std::atomic<bool> leading_{false};
  std::atomic<bool> started_{false};
  std::mutex controllers_mu_;
  Gauge* leader_gauge_;
};

}  // namespace granary::runtime
