#include "operator/runtime/objects.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>

namespace granary::runtime {

namespace {
std::string Format(bool micro) {
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  if (!micro) return std::string(buf) + "Z";
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() %
            1'000'000;
  return fmt::format("{}.{:06d}Z", buf, us);
}

Json& Metadata(Json& o) {
  if (!o.contains("metadata") || !o["metadata"].is_object()) o["metadata"] = Json::object();
  return o["metadata"];
}
}  // namespace

std::string NowTime() { return Format(false); }
std::string NowMicroTime() { return Format(true); }

Status SetControllerReference(Json& object, const Json& owner) {
  std::string uid = kube::UidOf(owner);
  if (uid.empty())
    return InvalidArgument("owner reference: the owner has no uid (not created yet)");
  std::string owner_ns = kube::NamespaceOf(owner);
  if (!owner_ns.empty() && owner_ns != kube::NamespaceOf(object)) {
    return InvalidArgument(
        fmt::format("owner reference: {} in namespace {} cannot own an object in "
                    "namespace {}",
                    kube::NameOf(owner), owner_ns, kube::NamespaceOf(object)));
  }
  auto current = ControllerOf(object);
  if (current && current->uid != uid) {
    return InvalidArgument(fmt::format("owner reference: {} is already controlled by {} {}",
                                       kube::NameOf(object), current->kind, current->name));
  }
  Json ref = {{"apiVersion", owner.value("apiVersion", "")},
              {"kind", owner.value("kind", "")},
              {"name", kube::NameOf(owner)},
              {"uid", uid},
              {"controller", true},
              {"blockOwnerDeletion", true}};
  Json& refs = Metadata(object)["ownerReferences"];
  if (!refs.is_array()) refs = Json::array();
  for (auto& r : refs) {
    if (r.value("uid", "") == uid) {
      r = ref;
      return Status::Ok();
    }
  }
  refs.push_back(ref);
  return Status::Ok();
}

std::optional<OwnerRef> ControllerOf(const Json& object) {
  if (!object.contains("metadata") || !object["metadata"].contains("ownerReferences")) {
    return std::nullopt;
  }
  for (const auto& r : object["metadata"]["ownerReferences"]) {
    if (r.value("controller", false)) {
      return OwnerRef{r.value("apiVersion", ""), r.value("kind", ""), r.value("name", ""),
                      r.value("uid", "")};
    }
  }
  return std::nullopt;
}

bool IsControlledBy(const Json& object, const Json& owner) {
  auto c = ControllerOf(object);
  return c && c->uid == kube::UidOf(owner);
}

bool HasFinalizer(const Json& object, const std::string& finalizer) {
  if (!object.contains("metadata") || !object["metadata"].contains("finalizers")) return false;
  const Json& f = object["metadata"]["finalizers"];
  return std::find(f.begin(), f.end(), finalizer) != f.end();
}

bool AddFinalizer(Json& object, const std::string& finalizer) {
  if (HasFinalizer(object, finalizer)) return false;
  Json& f = Metadata(object)["finalizers"];
  if (!f.is_array()) f = Json::array();
  f.push_back(finalizer);
  return true;
}

bool RemoveFinalizer(Json& object, const std::string& finalizer) {
  if (!HasFinalizer(object, finalizer)) return false;
  Json& f = object["metadata"]["finalizers"];
  Json kept = Json::array();
  for (const auto& x : f) {
    if (x != finalizer) kept.push_back(x);
  }
  f = kept;
  return true;
}

bool IsBeingDeleted(const Json& object) {
  return object.contains("metadata") && object["metadata"].contains("deletionTimestamp") &&
         !object["metadata"]["deletionTimestamp"].is_null();
}

bool SetCondition(Json& object, const Condition& c) {
  Json& status = object["status"];
  if (!status.is_object()) status = Json::object();
  Json& conds = status["conditions"];
  if (!conds.is_array()) conds = Json::array();
  int64_t gen = kube::GenerationOf(object);
  Json next = {
      {"type", c.type},       {"status", c.status},        {"reason", c.reason},
      {"message", c.message}, {"observedGeneration", gen}, {"lastTransitionTime", NowTime()}};
  for (auto& existing : conds) {
    if (existing.value("type", "") != c.type) continue;
    if (existing.value("status", "") == c.status) {
      next["lastTransitionTime"] = existing.value("lastTransitionTime", next["lastTransitionTime"]);
    }
    bool changed = existing != next;
    existing = next;
    return changed;
  }
  conds.push_back(next);
  return true;
}

std::optional<Json> FindCondition(const Json& object, const std::string& type) {
  if (!object.contains("status") || !object["status"].contains("conditions")) return std::nullopt;
  for (const auto& c : object["status"]["conditions"]) {
    if (c.value("type", "") == type) return c;
  }
  return std::nullopt;
}

bool IsConditionTrue(const Json& object, const std::string& type) {
  auto c = FindCondition(object, type);
  return c && c->value("status", "") == "True";
}

bool SetObservedGeneration(Json& object) {
  Json& status = object["status"];
  if (!status.is_object()) status = Json::object();
  int64_t gen = kube::GenerationOf(object);
  if (status.value("observedGeneration", int64_t{-1}) == gen) return false;
  status["observedGeneration"] = gen;
  return true;
}

}  // namespace granary::runtime
