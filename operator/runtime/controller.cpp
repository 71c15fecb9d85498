#include "operator/runtime/controller.h"

#include <fmt/format.h>

#include "common/log.h"
#include "operator/runtime/objects.h"

namespace granary::runtime {

Controller::Controller(ControllerOptions options, Reconciler reconciler, MetricsRegistry& metrics)
    : options_(std::move(options)),
      reconciler_(std::move(reconciler)),
      queue_(options_.rate_limit) {
  std::string c = fmt::format("controller=\"{}\"", options_.name);
  const char* help = "Reconciles by controller and result";
  ok_total_ = &metrics.GetCounter("granary_operator_reconcile_total", help, c + ",result=\"ok\"");
  error_total_ =
      &metrics.GetCounter("granary_operator_reconcile_total", help, c + ",result=\"error\"");
  requeue_total_ =
      &metrics.GetCounter("granary_operator_reconcile_total", help, c + ",result=\"requeue\"");
  seconds_ = &metrics.GetHistogram("granary_operator_reconcile_seconds", "Reconcile latency", c);
  Gauge* depth =
      &metrics.GetGauge("granary_operator_workqueue_depth", "Keys ready to reconcile", c);
  queue_.OnDepth([depth](size_t n) { depth->Set(static_cast<int64_t>(n)); });
}

Controller::~Controller() { Stop(); }

void Controller::For(Informer& informer) {
  primaries_.push_back(&informer);
  informer.AddHandler({[this](const Json& o) { Enqueue(kube::KeyOf(o)); },
                       [this](const Json&, const Json& n) { Enqueue(kube::KeyOf(n)); },
                       [this](const Json& o) { Enqueue(kube::KeyOf(o)); }});
}

void Controller::Owns(Informer& informer, const std::string& owner_kind, bool owner_namespaced) {
  auto enqueue_owner = [this, owner_kind, owner_namespaced](const Json& o) {
    auto owner = ControllerOf(o);
    if (!owner || owner->kind != owner_kind) return;
    Enqueue(kube::MakeKey(owner_namespaced ? kube::NamespaceOf(o) : "", owner->name));
  };
  informer.AddHandler({enqueue_owner,
                       [enqueue_owner](const Json& old, const Json& now) {
                         enqueue_owner(old);
                         enqueue_owner(now);
                       },
                       enqueue_owner});
}

void Controller::Enqueue(const std::string& key) { queue_.Add(key); }

void Controller::Start() {
  if (running_.exchange(true)) return;
  queue_.Reopen();
  for (Informer* i : primaries_) {
    for (const auto& key : i->Keys()) queue_.Add(key);
  }
  for (int i = 0; i < std::max(1, options_.workers); ++i) {
    workers_.emplace_back([this] { Work(); });
  }
  GLOG_INFO("event=controller_started controller={} workers={}", options_.name, options_.workers);
}

void Controller::Stop() {
  if (!running_.exchange(false)) return;
  queue_.ShutDown();
  for (auto& t : workers_) t.join();
  workers_.clear();
  GLOG_INFO("event=controller_stopped controller={}", options_.name);
}

void Controller::Work() {
  while (auto key = queue_.Get()) {
    auto start = Clock::now();
    auto result = reconciler_(*key);
    seconds_->Observe(std::chrono::duration<double>(Clock::now() - start).count());
    reconciles_++;
    if (!result.ok()) {
      failures_++;
      error_total_->Add();
      auto delay = queue_.NextDelay(*key);
      GLOG_WARN("event=reconcile_failed controller={} key={} retry_ms={} error=\"{}\"",
                options_.name, *key, delay.count(), result.status().ToString());
      queue_.AddAfter(*key, delay);
    } else {
      queue_.Forget(*key);
      if (result->requeue_after.count() > 0) {
        requeue_total_->Add();
        queue_.AddAfter(*key, result->requeue_after);
      } else {
        ok_total_->Add();
      }
    }
    queue_.Done(*key);
  }
}

}  // namespace granary::runtime
