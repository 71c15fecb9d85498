// The one table that maps granary.Code to each door's vocabulary (DESIGN §6). Doors call
// these functions; none keeps its own switch.
#pragma once

#include <grpcpp/support/status_code_enum.h>

#include <string_view>

#include "granary/code.pb.h"

namespace granary {

struct ErrorMapping {
  Code code;
  std::string_view name;       // DESIGN §6 spelling, e.g. "NotFound"
  int errno_value;             // FUSE / POSIX
  std::string_view s3_code;    // S3 error XML <Code>
  int http_status;             // S3 HTTP status
  grpc::StatusCode grpc_code;  // gRPC status code, used by CSI and every internal service
};

// Every Code has exactly one row; an unknown value maps to Internal's row.
const ErrorMapping& MapError(Code code);

// Inverse for the internal hops: a grpc::StatusCode that carried no ErrorDetail.
Code CodeFromGrpc(grpc::StatusCode code);

}  // namespace granary
