// Status <-> grpc::Status, carrying the exact granary.Code in the status details so it survives
// every gRPC hop (DESIGN §6).
#pragma once

#include <grpcpp/support/status.h>

#include "common/status.h"

namespace granary {

grpc::Status ToGrpcStatus(const Status& status);

// A status without ErrorDetail (a transport failure, a foreign server) maps by its gRPC code;
// the message keeps the gRPC text so "connection refused" reaches the user.
Status FromGrpcStatus(const grpc::Status& status);

}  // namespace granary
