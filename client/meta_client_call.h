// Internal to client/: the retrying call templates MetaClient's methods are made of, shared by
// meta_client.cpp (namespace, slices, cluster) and meta_client_admin.cpp (pools, volumes,
// snapshots, warm-ups, keys, buckets).
#pragma once

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>

#include "client/meta_client.h"

namespace granary::client {

template <typename Stub, typename Req, typename Reply>
Status MetaClient::Call(const char* what, std::unique_ptr<Stub> Endpoint::*stub,
                        grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Reply*),
                        const Req& req, Reply* reply) {
  return Invoke(what, [&](Endpoint& e, grpc::ClientContext& ctx) {
    return ((*(e.*stub)).*method)(&ctx, req, reply);
  });
}

// Copying or walking a namespace (a snapshot, a clone, a snapshot's deletion or listing) takes
// time in proportion to the namespace: a silent leader is waited on for longer than usual.
template <typename Req, typename Reply>
Status MetaClient::CallLong(const char* what,
                            grpc::Status (Admin::Stub::*method)(grpc::ClientContext*, const Req&,
                                                                Reply*),
                            const Req& req, Reply* reply, std::chrono::milliseconds budget) {
  constexpr std::chrono::milliseconds kNamespaceCopy = std::chrono::minutes(5);
  const auto total = budget.count() > 0 ? budget : std::max(options_.deadline, kNamespaceCopy);
  const auto attempt = budget.count() > 0 ? budget : kNamespaceCopy;
  return Invoke(
      what,
      [&](Endpoint& e, grpc::ClientContext& ctx) { return ((*e.admin).*method)(&ctx, req, reply); },
      total, attempt);
}

}  // namespace granary::client
