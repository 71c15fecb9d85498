// The Objects gRPC service (proto/granary/object.proto) over MetaCore.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>

#include "metanode/meta_core.h"

namespace granary::metanode {

std::unique_ptr<grpc::Service> MakeObjectService(MetaCore& core);

}  // namespace granary::metanode
