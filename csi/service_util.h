// What the CSI services share (driver.cpp, node_service.cpp): argument checks, and storage
// errors mapped to gRPC codes through the one table (DESIGN §6).
#pragma once

#include <grpcpp/grpcpp.h>

#include <string>
#include <string_view>

#include "common/status.h"
#include "common/topology.h"
#include "csi/driver.h"
#include "csi/v1/csi.grpc.pb.h"

namespace granary::csi::internal {

namespace v1 = ::csi::v1;

grpc::Status Err(grpc::StatusCode code, std::string message);
grpc::Status Invalid(std::string message);
grpc::Status FromStatus(const Status& s, std::string_view context);
// Filesystem access only, in the modes a shared POSIX volume serves.
grpc::Status CheckCapability(const v1::VolumeCapability& cap);
grpc::Status CheckCapabilities(
    const google::protobuf::RepeatedPtrField<v1::VolumeCapability>& caps);
bool MultiNode(const v1::VolumeCapability& cap);
// This node's labels (--labels or GRANARY_LABELS), with host = the node id when unset.
Labels NodeLabels(const DriverOptions& o);
std::string ZoneKey();

}  // namespace granary::csi::internal
