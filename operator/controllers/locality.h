// Locality on Kubernetes (docs/locality.md): the DatasetWarmup resource and the scheduling hint
// for pods that ask for one. Decisions are free functions, tested without an API server
// (tests/operator_objects_test.cpp); the reconcilers are Operator methods (locality.cpp).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/status.h"
#include "granary/meta.pb.h"
#include "operator/kube/resource.h"

namespace granary::operators {

using kube::Json;

namespace resources {
inline const kube::Resource kDatasetWarmups{"granary.io", "v1alpha1", "datasetwarmups",
                                            "DatasetWarmup", true};
}  // namespace resources

inline constexpr const char* kWarmupFinalizer = "granary.io/datasetwarmup";
// A pod created with this scheduling gate (and this label, so the operator's cache holds only
// such pods) is released by the operator with a preferred node affinity toward the hosts
// holding most of its Granary volumes' data.
inline constexpr const char* kLocalityGate = "granary.io/locality";
inline constexpr const char* kLocalityLabel = "granary.io/locality";
// What the operator found, on the released pod: "node-a=100%,node-b=37%" (or why nothing).
inline constexpr const char* kLocalityAnnotation = "granary.io/locality-hosts";
// Preferred terms the hint adds at most (the hosts with most data first).
inline constexpr size_t kMaxLocalityTerms = 3;

// DatasetWarmup.spec.
struct DatasetWarmupSpec {
  std::string claim_name;  // a PVC of the DatasetWarmup's namespace bound to a Granary volume
  std::string path;        // inside the volume; "" = all of it
  std::map<std::string, std::string> node_selector;
  std::vector<std::string> nodes;  // explicit node names (with or instead of the selector)
};
Result<DatasetWarmupSpec> ParseDatasetWarmupSpec(const Json& warmup);
// The metanode warm-up a DatasetWarmup drives: "<namespace>/<name>".
std::string MetaWarmupName(const Json& warmup);
// The Kubernetes nodes a DatasetWarmup warms (Granary hosts are node names), sorted.
std::vector<std::string> WarmupHosts(const DatasetWarmupSpec& spec, const std::vector<Json>& nodes);
// status fields (phase, progress, bytes, …) and the Ready condition's status/reason/message
// from the metanode's warm-up.
struct WarmupStatus {
  Json fields = Json::object();
  std::string ready;  // True|False
  std::string reason;
  std::string message;
  bool stopped = false;
};
WarmupStatus WarmupStatusOf(const granary::Warmup& w);

// The scheduling hint.
struct HostShare {
  std::string host;  // Granary host label = Kubernetes node name
  uint64_t bytes = 0;
};
// Bytes readable on each host (VolumeLocalityReply.hosts[].local_bytes) summed over a pod's
// volumes, with the volumes' total logical bytes: the hosts holding most data first, at most
// kMaxLocalityTerms, each weighted 1..100 by its share of the data. Preferred, never required.
Json LocalityPreferredTerms(std::vector<HostShare> shares, uint64_t total);
// "node-a=100%,node-b=37%" for the annotation.
std::string LocalitySummary(std::vector<HostShare> shares, uint64_t total);
bool HasLocalityGate(const Json& pod);
// The pod released: gate removed, `terms` appended to its preferred node affinity (not
// repeated), annotation set. True when anything changed.
bool ReleaseWithHint(Json& pod, const Json& terms, const std::string& annotation);

}  // namespace granary::operators
