// Leader election on a coordination.k8s.io/v1 Lease, as client-go does it: the holder renews
// spec.renewTime every retry period; a candidate takes the Lease over once it has seen the same
// record unchanged for a whole lease duration (measured on its own clock, so clocks need not
// agree). Every write is an update with the Lease's resourceVersion, so of two candidates only
// one wins. A leader that cannot renew within renew_deadline, or that sees another holder,
// stops leading at once (on_stopped_leading): reconciling must stop there, since another
// instance may already have started.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "operator/kube/client.h"

namespace granary::runtime {

struct LeaderElectionOptions {
  std::string ns = "default";
  std::string name = "granary-operator";
  std::string identity;  // unique per instance (pod name + random suffix)
  std::chrono::milliseconds lease_duration{15'000};
  std::chrono::milliseconds renew_deadline{10'000};
  std::chrono::milliseconds retry_period{2'000};
};

class LeaderElector {
 public:
  struct Callbacks {
    std::function<void()> on_started_leading;
    std::function<void()> on_stopped_leading;
  };

  LeaderElector(kube::Client& client, LeaderElectionOptions options, Callbacks callbacks);
  ~LeaderElector();  // Stop(true)

  void Start();
  // `release`: give the Lease up (empty holder) so a standby takes over without waiting out
  // the lease duration. false: just stop renewing, as a crashed process would.
  void Stop(bool release = true);

  bool IsLeader() const;
  // The holder last observed ("" when none).
  std::string holder() const;
  const std::string& identity() const { return options_.identity; }

 private:
  enum class Attempt { kLeading, kOtherHolder, kFailed };
  void Run();
  Attempt TryAcquireOrRenew();
  bool Pause(std::chrono::milliseconds d);
  void SetLeader(bool leader);

  kube::Client& client_;
  LeaderElectionOptions options_;
  Callbacks callbacks_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool stopped_ = false;  // Stop ran (it runs once per Start)
  bool leader_ = false;
  std::string holder_;
  kube::Json observed_spec_;
  std::chrono::steady_clock::time_point observed_at_;
  std::thread thread_;
};

}  // namespace granary::runtime
