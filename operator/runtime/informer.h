// An informer: one resource kept in a local cache by a reflector (list, then watch; resume on
// cuts, relist on 410), with handlers told of every add, update and delete. After a relist the
// cache is diffed against the new list, so handlers see the deletions they missed too.
// Handlers run on the informer's thread, one at a time: keep them short (enqueue a key).
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "operator/kube/reflector.h"

namespace granary::runtime {

using kube::Json;

struct EventHandler {
  std::function<void(const Json& object)> on_add;
  std::function<void(const Json& old_object, const Json& new_object)> on_update;
  std::function<void(const Json& last_known)> on_delete;
};

class Informer {
 public:
  Informer(kube::Client& client, kube::Resource resource, kube::ReflectorOptions options = {});
  ~Informer();

  // Before Start.
  void AddHandler(EventHandler handler);
  void Start();
  void Stop();

  // True once the first list is in the cache.
  bool HasSynced() const;
  // By key ("ns/name" or "name").
  std::optional<Json> Get(const std::string& key) const;
  std::vector<Json> List() const;
  std::vector<std::string> Keys() const;

  const kube::Resource& resource() const { return resource_; }
  const kube::Reflector& reflector() const { return *reflector_; }

 private:
  void Replace(std::vector<Json> items);
  void Apply(const kube::WatchEvent& event);

  kube::Resource resource_;
  std::vector<EventHandler> handlers_;
  mutable std::mutex mu_;
  std::map<std::string, Json> cache_;
  bool synced_ = false;
  std::unique_ptr<kube::Reflector> reflector_;
};

}  // namespace granary::runtime
