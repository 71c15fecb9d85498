#include "operator/runtime/informer.h"

namespace granary::runtime {

Informer::Informer(kube::Client& client, kube::Resource resource, kube::ReflectorOptions options)
    : resource_(resource) {
  reflector_ = std::make_unique<kube::Reflector>(
      client, std::move(resource), std::move(options),
      kube::Reflector::Sink{
          [this](std::vector<Json> items, const std::string&) { Replace(std::move(items)); },
          [this](const kube::WatchEvent& e) { Apply(e); }});
}

Informer::~Informer() { Stop(); }

void Informer::AddHandler(EventHandler handler) { handlers_.push_back(std::move(handler)); }
void Informer::Start() { reflector_->Start(); }
void Informer::Stop() { reflector_->Stop(); }

void Informer::Replace(std::vector<Json> items) {
  std::map<std::string, Json> next;
  for (auto& item : items) {
    std::string key = kube::KeyOf(item);  // before the move: `a[f(x)] = move(x)` moves first
    next[key] = std::move(item);
  }
  std::vector<Json> added, deleted;
  std::vector<std::pair<Json, Json>> updated;
  {
    std::lock_guard lock(mu_);
    for (const auto& [key, obj] : next) {
      auto it = cache_.find(key);
      if (it == cache_.end()) {
        added.push_back(obj);
      } else if (kube::ResourceVersionOf(it->second) != kube::ResourceVersionOf(obj)) {
        updated.emplace_back(it->second, obj);
      }
    }
    for (const auto& [key, obj] : cache_) {
      if (!next.count(key)) deleted.push_back(obj);
    }
    cache_ = std::move(next);
    synced_ = true;
  }
  for (const auto& h : handlers_) {
    for (const auto& o : added)
      if (h.on_add) h.on_add(o);
    for (const auto& [o, n] : updated)
      if (h.on_update) h.on_update(o, n);
    for (const auto& o : deleted)
      if (h.on_delete) h.on_delete(o);
  }
}

void Informer::Apply(const kube::WatchEvent& e) {
  std::string key = kube::KeyOf(e.object);
  std::optional<Json> old;
  {
    std::lock_guard lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) old = it->second;
    if (e.type == kube::WatchEvent::Type::kDeleted) {
      cache_.erase(key);
    } else {
      cache_[key] = e.object;
    }
  }
  for (const auto& h : handlers_) {
    if (e.type == kube::WatchEvent::Type::kDeleted) {
      if (h.on_delete) h.on_delete(e.object);
    } else if (old) {
      if (h.on_update) h.on_update(*old, e.object);
    } else if (h.on_add) {
      h.on_add(e.object);
    }
  }
}

bool Informer::HasSynced() const {
  std::lock_guard lock(mu_);
  return synced_;
}

std::optional<Json> Informer::Get(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = cache_.find(key);
  if (it == cache_.end()) return std::nullopt;
  return it->second;
}

std::vector<Json> Informer::List() const {
  std::lock_guard lock(mu_);
  std::vector<Json> out;
  for (const auto& [k, o] : cache_) out.push_back(o);
  return out;
}

std::vector<std::string> Informer::Keys() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (const auto& [k, o] : cache_) out.push_back(k);
  return out;
}

}  // namespace granary::runtime
