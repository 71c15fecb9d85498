#include "operator/runtime/manager.h"

#include <fmt/format.h>
#include <unistd.h>

#include "common/log.h"

namespace granary::runtime {

Manager::Manager(kube::Client& client, ManagerOptions options, MetricsRegistry& metrics)
    : client_(client),
      options_(std::move(options)),
      metrics_(metrics),
      events_(client, options_.component) {
  if (options_.lease.identity.empty()) {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    options_.lease.identity = fmt::format("{}_{}", host, getpid());
  }
  leader_gauge_ =
      &metrics_.GetGauge("granary_operator_leader", "1 while this instance holds the leader Lease");
}

Manager::~Manager() { Stop(); }

Informer& Manager::AddInformer(const kube::Resource& resource, kube::ReflectorOptions options) {
  std::string id = fmt::format("{}.{}|{}|{}", resource.plural, resource.group, options.ns,
                               options.label_selector);
  auto it = informer_index_.find(id);
  if (it != informer_index_.end()) return *it->second;
  informers_.push_back(std::make_unique<Informer>(client_, resource, std::move(options)));
  informer_index_[id] = informers_.back().get();
  return *informers_.back();
}

Controller& Manager::AddController(ControllerOptions options, Reconciler reconciler) {
  controllers_.push_back(
      std::make_unique<Controller>(std::move(options), std::move(reconciler), metrics_));
  return *controllers_.back();
}

bool Manager::Ready() const {
  if (!started_) return false;
  for (const auto& i : informers_) {
    if (!i->HasSynced()) return false;
  }
  return true;
}

HostPort Manager::admin_address() const { return admin_ ? admin_->address() : HostPort{}; }

void Manager::StartControllers() {
  std::lock_guard lock(controllers_mu_);
  leading_ = true;
  leader_gauge_->Set(1);
  for (auto& c : controllers_) c->Start();
}

void Manager::StopControllers() {
  std::lock_guard lock(controllers_mu_);
  leading_ = false;
  leader_gauge_->Set(0);
  for (auto& c : controllers_) c->Stop();
}

Status Manager::Start() {
  if (started_.exchange(true)) return Status::Ok();
  if (!options_.admin.host.empty()) {
    auto admin = AdminServer::Start(options_.admin, metrics_, [this] { return started_.load(); });
    if (!admin.ok()) return admin.status().WithContext("operator admin endpoint");
    admin_ = std::move(*admin);
    admin_->AddHandler("/readyz", [this]() -> std::pair<int, std::string> {
      return Ready() ? std::pair{200, "ok\n"} : std::pair{503, "informers not synced\n"};
    });
  }
  for (auto& i : informers_) i->Start();
  if (!options_.leader_election) {
    StartControllers();
    return Status::Ok();
  }
  if (options_.lease.name.empty()) options_.lease.name = options_.component;
  elector_ = std::make_unique<LeaderElector>(
      client_, options_.lease,
      LeaderElector::Callbacks{[this] { StartControllers(); }, [this] { StopControllers(); }});
  elector_->Start();
  return Status::Ok();
}

void Manager::Stop(bool release_lease) {
  if (!started_) return;
  if (elector_) {
    elector_->Stop(release_lease);  // stops the controllers through on_stopped_leading
    elector_.reset();
  }
  StopControllers();
  for (auto& i : informers_) i->Stop();
  if (admin_) admin_->Stop();
  started_ = false;
}

}  // namespace granary::runtime
