#include "operator/kube/reflector.h"

#include <algorithm>

#include "common/log.h"

namespace granary::kube {

Reflector::Reflector(Client& client, Resource resource, ReflectorOptions options, Sink sink)
    : client_(client),
      resource_(std::move(resource)),
      options_(std::move(options)),
      sink_(std::move(sink)) {}

Reflector::~Reflector() { Stop(); }

void Reflector::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Run(); });
}

void Reflector::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    if (current_) current_->Cancel();
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

bool Reflector::Pause(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, d, [&] { return stop_; });
  return !stop_;
}

void Reflector::SetError(Status s) {
  std::lock_guard lock(mu_);
  last_error_ = std::move(s);
}

void Reflector::Run() {
  bool need_list = true;
  auto backoff = options_.backoff_initial;
  auto failed = [&](const Status& s) {
    GLOG_WARN("event=reflector_retry resource={} backoff_ms={} error=\"{}\"", resource_.plural,
              backoff.count(), s.ToString());
    SetError(s);
    bool go_on = Pause(backoff);
    backoff = std::min(backoff * 2, options_.backoff_max);
    return go_on;
  };
  while (true) {
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
    }
    if (need_list) {
      auto list =
          client_.List(resource_, options_.ns,
                       {options_.label_selector, options_.field_selector, options_.page_size});
      if (!list.ok()) {
        if (!failed(list.status())) return;
        continue;
      }
      sink_.replace(std::move(list->items), list->resource_version);
      std::lock_guard lock(mu_);
      rv_ = list->resource_version;
      lists_++;
      need_list = false;
    }
    std::string from;
    {
      std::lock_guard lock(mu_);
      from = rv_;
    }
    auto watch = client_.Watch(resource_, options_.ns,
                               {from, options_.label_selector, options_.field_selector, true,
                                options_.watch_timeout_seconds});
    if (!watch.ok()) {
      if (watch.status().code() == Code::STALE_EPOCH) {
        need_list = true;  // a fresh list gives a current resourceVersion: no back-off needed
        SetError(watch.status());
        continue;
      }
      if (!failed(watch.status())) return;
      continue;
    }
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
      current_ = watch->get();
      watches_++;
    }
    Status ended;
    while (true) {
      auto event = (*watch)->Next();
      if (!event.ok()) {
        ended = event.status();
        break;
      }
      if (!event->has_value()) break;  // clean end of stream: resume at once
      backoff = options_.backoff_initial;
      const WatchEvent& e = **event;
      std::string rv = ResourceVersionOf(e.object);
      if (e.type != WatchEvent::Type::kBookmark) sink_.apply(e);
      std::lock_guard lock(mu_);
      if (!rv.empty()) rv_ = rv;
    }
    {
      std::lock_guard lock(mu_);
      current_ = nullptr;
      if (stop_) return;
    }
    if (!ended.ok()) {
      if (ended.code() == Code::STALE_EPOCH) {
        need_list = true;  // history is gone: only a relist converges
        GLOG_INFO("event=reflector_relist resource={} reason=\"{}\"", resource_.plural,
                  ended.message());
        SetError(ended);
        continue;
      }
      if (!failed(ended)) return;
    }
  }
}

std::string Reflector::last_resource_version() const {
  std::lock_guard lock(mu_);
  return rv_;
}
uint64_t Reflector::lists() const {
  std::lock_guard lock(mu_);
  return lists_;
}
uint64_t Reflector::watches() const {
  std::lock_guard lock(mu_);
  return watches_;
}
Status Reflector::last_error() const {
  std::lock_guard lock(mu_);
  return last_error_;
}

}  // namespace granary::kube
