// Helpers on Kubernetes objects (as JSON) that every reconciler needs: owner references,
// finalizers, status conditions with observedGeneration, and API timestamps.
#pragma once

#include <optional>
#include <string>

#include "common/status.h"
#include "operator/kube/resource.h"

namespace granary::runtime {

using kube::Json;

// RFC 3339 in UTC, seconds ("2026-11-25T01:02:03Z"), and MicroTime (".000123Z") as Leases use.
std::string NowTime();
std::string NowMicroTime();

// --- owner references -------------------------------------------------------------------------
struct OwnerRef {
  std::string api_version;
  std::string kind;
  std::string name;
  std::string uid;
};

// Makes `owner` the controller of `object` (replacing another reference to the same uid).
// InvalidArgument when the owner has no uid yet, when another object already controls `object`,
// or when a namespaced owner lives in another namespace (Kubernetes' garbage collector would
// treat such a reference as absent).
Status SetControllerReference(Json& object, const Json& owner);
std::optional<OwnerRef> ControllerOf(const Json& object);
bool IsControlledBy(const Json& object, const Json& owner);

// --- finalizers ---------------------------------------------------------------------------------
bool HasFinalizer(const Json& object, const std::string& finalizer);
// Both return whether the object changed (write it only then).
bool AddFinalizer(Json& object, const std::string& finalizer);
bool RemoveFinalizer(Json& object, const std::string& finalizer);
bool IsBeingDeleted(const Json& object);

// --- status conditions ---------------------------------------------------------------------------
inline constexpr const char* kReady = "Ready";
inline constexpr const char* kProgressing = "Progressing";
inline constexpr const char* kDegraded = "Degraded";

struct Condition {
  std::string type;
  std::string status;  // "True" | "False" | "Unknown"
  std::string reason;  // CamelCase, machine-readable
  std::string message;
};

// Sets `condition` in object.status.conditions with observedGeneration = metadata.generation.
// lastTransitionTime changes only when the status does. Returns whether anything but times
// changed, so an unchanged reconcile writes nothing.
bool SetCondition(Json& object, const Condition& condition);
std::optional<Json> FindCondition(const Json& object, const std::string& type);
bool IsConditionTrue(const Json& object, const std::string& type);
// status.observedGeneration = metadata.generation; returns whether it changed.
bool SetObservedGeneration(Json& object);

}  // namespace granary::runtime
