// Create-or-update of an object a controller owns, the step almost every reconcile repeats for
// its children (DaemonSets, StatefulSets, Services, ConfigMaps): write only when something the
// controller manages differs, always with the live resourceVersion, re-reading on 409.
#pragma once

#include <functional>

#include "operator/kube/client.h"

namespace granary::runtime {

using kube::Json;

// Copies what the controller manages from `desired` into `live`: every top-level field but
// metadata and status, plus desired's labels, annotations (merged over the live ones, so other
// writers' keys survive) and ownerReferences.
void MergeDesired(Json& live, const Json& desired);

struct ApplyResult {
  Json object;           // as stored
  bool changed = false;  // created or updated
};

// Creates `desired` if absent; otherwise applies `merge` (MergeDesired by default) to the live
// object and updates it if that changed anything. 409/AlreadyExists races are retried.
Result<ApplyResult> CreateOrUpdate(
    kube::Client& client, const kube::Resource& resource, const Json& desired,
    const std::function<void(Json& live, const Json& desired)>& merge = MergeDesired,
    int attempts = 5);

}  // namespace granary::runtime
