#include "csi/service_util.h"

#include <fmt/format.h>

#include "common/config.h"
#include "common/error_table.h"

namespace granary::csi::internal {

using AccessMode = v1::VolumeCapability::AccessMode;

grpc::Status Err(grpc::StatusCode code, std::string message) {
  return grpc::Status(code, std::move(message));
}
grpc::Status Invalid(std::string message) {
  return Err(grpc::StatusCode::INVALID_ARGUMENT, std::move(message));
}
// Storage errors reach the CO through the one table (DESIGN §6).
grpc::Status FromStatus(const Status& s, std::string_view context) {
  return grpc::Status(MapError(s.code()).grpc_code,
                      fmt::format("{}: {}: {}", context, CodeName(s.code()), s.message()));
}

grpc::Status CheckCapability(const v1::VolumeCapability& cap) {
  if (cap.has_block())
    return Invalid("block access is not supported: Granary volumes are file systems");
  if (!cap.has_mount()) return Invalid("volume_capability: access_type (mount) is required");
  const auto& fs = cap.mount().fs_type();
  if (!fs.empty() && fs != "granary" && fs != "fuse.granary") {
    return Invalid(fmt::format("volume_capability: fs_type {} is not supported (granary)", fs));
  }
  if (!cap.has_access_mode()) return Invalid("volume_capability: access_mode is required");
  switch (cap.access_mode().mode()) {
    case AccessMode::SINGLE_NODE_WRITER:
    case AccessMode::SINGLE_NODE_READER_ONLY:
    case AccessMode::SINGLE_NODE_SINGLE_WRITER:
    case AccessMode::SINGLE_NODE_MULTI_WRITER:
    case AccessMode::MULTI_NODE_READER_ONLY:
    case AccessMode::MULTI_NODE_MULTI_WRITER:
      return grpc::Status::OK;
    default:
      return Invalid(fmt::format("volume_capability: access mode {} is not supported",
                                 AccessMode::Mode_Name(cap.access_mode().mode())));
  }
}

grpc::Status CheckCapabilities(
    const google::protobuf::RepeatedPtrField<v1::VolumeCapability>& caps) {
  if (caps.empty()) return Invalid("volume_capabilities are required");
  for (const auto& c : caps) {
    if (auto s = CheckCapability(c); !s.ok()) return s;
  }
  return grpc::Status::OK;
}

bool MultiNode(const v1::VolumeCapability& cap) {
  auto m = cap.access_mode().mode();
  return m == AccessMode::MULTI_NODE_READER_ONLY || m == AccessMode::MULTI_NODE_MULTI_WRITER ||
         m == AccessMode::MULTI_NODE_SINGLE_WRITER;
}

Labels NodeLabels(const DriverOptions& o) {
  std::string text = o.labels.empty() ? EnvOr("GRANARY_LABELS", "") : o.labels;
  Labels labels;
  if (auto parsed = ParseLabels(text); parsed.ok()) labels = *parsed;
  if (!labels.count("host")) labels["host"] = o.node_id;
  return labels;
}

std::string ZoneKey() { return std::string(kTopologyPrefix) + "zone"; }

}  // namespace granary::csi::internal
