#include "operator/runtime/apply.h"

#include <fmt/format.h>

namespace granary::runtime {

void MergeDesired(Json& live, const Json& desired) {
  for (auto it = desired.begin(); it != desired.end(); ++it) {
    if (it.key() == "metadata" || it.key() == "status") continue;
    live[it.key()] = it.value();
  }
  if (!desired.contains("metadata")) return;
  const Json& dm = desired["metadata"];
  Json& lm = live["metadata"];
  for (const char* map : {"labels", "annotations"}) {
    if (!dm.contains(map)) continue;
    if (!lm.contains(map) || !lm[map].is_object()) lm[map] = Json::object();
    for (auto it = dm[map].begin(); it != dm[map].end(); ++it) lm[map][it.key()] = it.value();
  }
  if (dm.contains("ownerReferences")) lm["ownerReferences"] = dm["ownerReferences"];
}

Result<ApplyResult> CreateOrUpdate(kube::Client& client, const kube::Resource& resource,
                                   const Json& desired,
                                   const std::function<void(Json&, const Json&)>& merge,
                                   int attempts) {
  std::string ns = kube::NamespaceOf(desired);
  std::string name = kube::NameOf(desired);
  Status last;
  for (int i = 0; i < attempts; ++i) {
    auto live = client.Get(resource, ns, name);
    if (!live.ok()) {
      if (live.status().code() != Code::NOT_FOUND) return live.status();
      auto created = client.Create(resource, desired);
      if (created.ok()) return ApplyResult{std::move(*created), true};
      if (created.status().code() != Code::ALREADY_EXISTS) return created.status();
      last = created.status();
      continue;  // someone else created it first: merge into theirs
    }
    Json next = *live;
    merge(next, desired);
    if (next == *live) return ApplyResult{std::move(*live), false};
    auto updated = client.Update(resource, next);
    if (updated.ok()) return ApplyResult{std::move(*updated), true};
    if (updated.status().code() != Code::STALE_GENERATION) return updated.status();
    last = updated.status();
  }
  return last.WithContext(
      fmt::format("create or update {} {}", resource.plural, kube::MakeKey(ns, name)));
}

}  // namespace granary::runtime
