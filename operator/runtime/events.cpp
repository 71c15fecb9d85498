#include "operator/runtime/events.h"

#include <fmt/format.h>

#include "common/log.h"
#include "operator/runtime/objects.h"

namespace granary::runtime {

namespace {
constexpr size_t kMaxRemembered = 1024;
}

EventRecorder::EventRecorder(kube::Client& client, std::string component)
    : client_(client), component_(std::move(component)) {}

Status EventRecorder::Normal(const kube::Json& o, const std::string& reason,
                             const std::string& message) {
  return Record(o, "Normal", reason, message);
}

Status EventRecorder::Warning(const kube::Json& o, const std::string& reason,
                              const std::string& message) {
  return Record(o, "Warning", reason, message);
}

Status EventRecorder::Record(const kube::Json& object, const std::string& type,
                             const std::string& reason, const std::string& message) {
  std::string ns = kube::NamespaceOf(object).empty() ? "default" : kube::NamespaceOf(object);
  std::string id = fmt::format("{}|{}|{}|{}", kube::UidOf(object), type, reason, message);
  std::string now = NowTime();
  std::lock_guard lock(mu_);
  auto it = seen_.find(id);
  if (it != seen_.end()) {
    auto [key, count] = it->second;
    auto [ens, ename] = kube::SplitKey(key);
    auto patched = client_.MergePatch(kube::resources::kEvents, ens, ename,
                                      {{"count", count + 1}, {"lastTimestamp", now}});
    if (patched.ok()) {
      it->second.second = count + 1;
      return Status::Ok();
    }
    seen_.erase(it);  // gone (events expire): write a new one
  }
  kube::Json event = {
      {"apiVersion", "v1"},
      {"kind", "Event"},
      {"metadata", {{"generateName", kube::NameOf(object) + "."}, {"namespace", ns}}},
      {"involvedObject",
       {{"apiVersion", object.value("apiVersion", "")},
        {"kind", object.value("kind", "")},
        {"name", kube::NameOf(object)},
        {"namespace", kube::NamespaceOf(object)},
        {"uid", kube::UidOf(object)},
        {"resourceVersion", kube::ResourceVersionOf(object)}}},
      {"type", type},
      {"reason", reason},
      {"message", message},
      {"source", {{"component", component_}}},
      {"reportingComponent", component_},
      {"firstTimestamp", now},
      {"lastTimestamp", now},
      {"count", 1}};
  auto created = client_.Create(kube::resources::kEvents, event);
  if (!created.ok()) {
    GLOG_WARN("event=k8s_event_failed reason={} error=\"{}\"", reason, created.status().ToString());
    return created.status().WithContext("record event " + reason);
  }
  if (seen_.size() >= kMaxRemembered) seen_.clear();
  seen_[id] = {kube::KeyOf(*created), 1};
  return Status::Ok();
}

}  // namespace granary::runtime
