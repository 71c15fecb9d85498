// Helpers shared by the metanode's gRPC services (service.cpp, object_service.cpp): reads behind
// the read fence, mutations as operations, errors through ToGrpcStatus. Internal to metanode/.
#pragma once

#include <grpcpp/grpcpp.h>

#include <utility>

#include "common/rpc_status.h"
#include "metanode/meta_core.h"

namespace granary::metanode {

// Runs `query` on a linearizable view of committed state (on a follower: NotLeader).
template <typename Query>
auto Read(MetaCore& core, Query query) -> decltype(query(std::declval<Txn&>())) {
  auto view = core.ReadView();
  if (!view.ok()) return view.status();
  return query(**view);
}

template <typename T, typename Out>
grpc::Status Answer(Result<T> result, Out out) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  out(*result);
  return grpc::Status::OK;
}

// Unary callback handlers: reads answer inline; mutations finish once their operation is
// durable, from the committer, so no server thread waits on a sync.
inline grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* ctx, grpc::Status status) {
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(std::move(status));
  return reactor;
}

// Runs a mutating request as one operation: `fill` puts the request into the operation,
// `extract` copies the durable reply out.
template <typename Fill, typename Extract>
grpc::ServerUnaryReactor* MutateAsync(MetaCore& core, grpc::CallbackServerContext* ctx,
                                      const OpId& id, Fill fill, Extract extract) {
  auto* reactor = ctx->DefaultReactor();
  Operation op;
  *op.mutable_id() = id;
  fill(op);
  core.MutateAsync(std::move(op), [reactor, extract](OpReply reply) mutable {
    if (reply.code() != Code::OK) {
      reactor->Finish(ToGrpcStatus(Status(reply.code(), reply.message())));
      return;
    }
    extract(reply);
    reactor->Finish(grpc::Status::OK);
  });
  return reactor;
}

// The same for synchronous handlers.
template <typename Fill, typename Extract>
grpc::Status Mutate(MetaCore& core, const OpId& id, Fill fill, Extract extract) {
  Operation op;
  *op.mutable_id() = id;
  fill(op);
  auto reply = core.Run(std::move(op));
  if (!reply.ok()) return ToGrpcStatus(reply.status());
  extract(*reply);
  return grpc::Status::OK;
}

}  // namespace granary::metanode
