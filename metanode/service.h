// gRPC front end of MetaCore: the four services of proto/granary/meta.proto. Every error leaves
// through ToGrpcStatus, so the granary.Code survives the hop.
#pragma once

#include <memory>

#include "granary/meta.grpc.pb.h"
#include "metanode/meta_core.h"

namespace granary::metanode {

// Services registered on one grpc::ServerBuilder; they must outlive the server.
struct Services {
  std::unique_ptr<grpc::Service> ns;    // callback API
  std::unique_ptr<grpc::Service> data;  // callback API
  std::unique_ptr<grpc::Service> admin;
  std::unique_ptr<grpc::Service> cluster;
  std::unique_ptr<grpc::Service> objects;  // object_service.cpp
  std::unique_ptr<grpc::Service> group;    // group_service.cpp
};
Services MakeServices(MetaCore& core);
std::unique_ptr<grpc::Service> MakeGroupService(MetaCore& core);

}  // namespace granary::metanode
