#include "common/rpc_status.h"

#include "common/error_table.h"

namespace granary {

grpc::Status ToGrpcStatus(const Status& status) {
  if (status.ok()) return grpc::Status::OK;
  ErrorDetail detail;
  detail.set_code(status.code());
  detail.set_message(status.message());
  return grpc::Status(MapError(status.code()).grpc_code, status.message(),
                      detail.SerializeAsString());
}

Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return Status::Ok();
  ErrorDetail detail;
  if (!status.error_details().empty() && detail.ParseFromString(status.error_details()) &&
      detail.code() != Code::OK) {
    return Status(detail.code(), detail.message());
  }
  return Status(CodeFromGrpc(status.error_code()), "rpc: " + status.error_message());
}

}  // namespace granary
