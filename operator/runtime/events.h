// Kubernetes Events (core/v1) about the objects a controller manages, as `kubectl describe`
// shows them. A repeat of the same (object, type, reason, message) bumps the count of the event
// already written instead of writing a new one. Best effort: a failure is logged and returned,
// never fatal to a reconcile.
#pragma once

#include <map>
#include <mutex>
#include <string>

#include "operator/kube/client.h"

namespace granary::runtime {

class EventRecorder {
 public:
  EventRecorder(kube::Client& client, std::string component);

  Status Normal(const kube::Json& object, const std::string& reason, const std::string& message);
  Status Warning(const kube::Json& object, const std::string& reason, const std::string& message);
  Status Record(const kube::Json& object, const std::string& type, const std::string& reason,
                const std::string& message);

 private:
  kube::Client& client_;
  std::string component_;
  std::mutex mu_;
  // (uid, type, reason, message) → {namespace/name of the event, count}; bounded.
  std::map<std::string, std::pair<std::string, int64_t>> seen_;
};

}  // namespace granary::runtime
