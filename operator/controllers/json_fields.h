// Reading fields of Kubernetes objects that may be absent (internal to operator/controllers).
#pragma once

#include <cstdint>

#include "operator/kube/resource.h"

namespace granary::operators {

inline int64_t Int(const kube::Json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

inline kube::Json StatusOf(const kube::Json& o) {
  auto it = o.find("status");
  return it != o.end() && it->is_object() ? *it : kube::Json::object();
}

}  // namespace granary::operators
