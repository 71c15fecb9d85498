#include "operator/runtime/leader_election.h"

#include <cmath>

#include "common/log.h"
#include "operator/runtime/objects.h"

namespace granary::runtime {

using Clock = std::chrono::steady_clock;

LeaderElector::LeaderElector(kube::Client& client, LeaderElectionOptions options,
                             Callbacks callbacks)
    : client_(client), options_(std::move(options)), callbacks_(std::move(callbacks)) {}

LeaderElector::~LeaderElector() { Stop(true); }

void LeaderElector::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  stopped_ = false;
  thread_ = std::thread([this] { Run(); });
}

bool LeaderElector::Pause(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, d, [&] { return stop_; });
  return !stop_;
}

bool LeaderElector::IsLeader() const {
  std::lock_guard lock(mu_);
  return leader_;
}

std::string LeaderElector::holder() const {
  std::lock_guard lock(mu_);
  return holder_;
}

void LeaderElector::SetLeader(bool leader) {
  {
    std::lock_guard lock(mu_);
    if (leader_ == leader) return;
    leader_ = leader;
  }
  GLOG_INFO("event={} lease={}/{} identity={}", leader ? "leader_elected" : "leader_lost",
            options_.ns, options_.name, options_.identity);
  if (leader && callbacks_.on_started_leading) callbacks_.on_started_leading();
  if (!leader && callbacks_.on_stopped_leading) callbacks_.on_stopped_leading();
}

LeaderElector::Attempt LeaderElector::TryAcquireOrRenew() {
  const auto& leases = kube::resources::kLeases;
  auto now = Clock::now();
  int64_t seconds = std::max<int64_t>(
      1, static_cast<int64_t>(
             std::ceil(std::chrono::duration<double>(options_.lease_duration).count())));
  std::string stamp = NowMicroTime();
  auto lease = client_.Get(leases, options_.ns, options_.name);
  if (!lease.ok()) {
    if (lease.status().code() != Code::NOT_FOUND) return Attempt::kFailed;
    kube::Json fresh = {{"apiVersion", leases.ApiVersion()},
                        {"kind", leases.kind},
                        {"metadata", {{"name", options_.name}, {"namespace", options_.ns}}},
                        {"spec",
                         {{"holderIdentity", options_.identity},
                          {"leaseDurationSeconds", seconds},
                          {"acquireTime", stamp},
                          {"renewTime", stamp},
                          {"leaseTransitions", 0}}}};
    auto created = client_.Create(leases, fresh);
    if (!created.ok()) return Attempt::kFailed;
    std::lock_guard lock(mu_);
    observed_spec_ = (*created)["spec"];
    observed_at_ = now;
    holder_ = options_.identity;
    return Attempt::kLeading;
  }
  kube::Json spec = lease->value("spec", kube::Json::object());
  std::string holder = spec.value("holderIdentity", "");
  bool mine = holder == options_.identity;
  {
    std::lock_guard lock(mu_);
    if (spec != observed_spec_) {
      observed_spec_ = spec;
      observed_at_ = now;
    }
    holder_ = holder;
    if (!mine && !holder.empty()) {
      auto duration = std::chrono::seconds(spec.value("leaseDurationSeconds", seconds));
      if (observed_at_ + duration > now) return Attempt::kOtherHolder;
    }
  }
  kube::Json next = *lease;
  kube::Json& s = next["spec"];
  if (!s.is_object()) s = kube::Json::object();
  s["holderIdentity"] = options_.identity;
  s["leaseDurationSeconds"] = seconds;
  s["renewTime"] = stamp;
  if (!mine) {
    s["acquireTime"] = stamp;
    s["leaseTransitions"] = spec.value("leaseTransitions", 0) + 1;
  }
  auto written = client_.Update(leases, next);
  if (!written.ok()) return Attempt::kFailed;  // 409: someone else wrote first
  std::lock_guard lock(mu_);
  observed_spec_ = (*written)["spec"];
  observed_at_ = now;
  holder_ = options_.identity;
  return Attempt::kLeading;
}

void LeaderElector::Run() {
  while (true) {
    while (TryAcquireOrRenew() != Attempt::kLeading) {
      if (!Pause(options_.retry_period)) return;
    }
    {
      std::lock_guard lock(mu_);
      if (stop_) return;  // Stop() decides what to do with a Lease won just now
    }
    SetLeader(true);
    auto renewed = Clock::now();
    while (true) {
      if (!Pause(options_.retry_period)) return;
      Attempt a = TryAcquireOrRenew();
      if (a == Attempt::kLeading) {
        renewed = Clock::now();
        continue;
      }
      if (a == Attempt::kOtherHolder || Clock::now() - renewed > options_.renew_deadline) {
        SetLeader(false);
        break;
      }
    }
  }
}

void LeaderElector::Stop(bool release) {
  {
    std::lock_guard lock(mu_);
    // Only the first Stop decides about the Lease: the destructor's must not release a Lease
    // that Stop(false) left to expire.
    if (stopped_) return;
    stopped_ = true;
    stop_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  // Reconciling stops before the Lease is given up, so two leaders never overlap.
  SetLeader(false);
  if (release) {
    // Also when the thread won the Lease just before stopping: give it back.
    auto lease = client_.Get(kube::resources::kLeases, options_.ns, options_.name);
    if (lease.ok() && (*lease)["spec"].value("holderIdentity", "") == options_.identity) {
      kube::Json next = *lease;
      next["spec"]["holderIdentity"] = "";
      next["spec"]["leaseDurationSeconds"] = 1;
      next["spec"]["renewTime"] = NowMicroTime();
      client_.Update(kube::resources::kLeases, next).status().PermitUnchecked();  // best effort:
      // the Lease expires by itself otherwise
    }
  }
}

}  // namespace granary::runtime
