// gRPC front end of the object operations (proto/granary/object.proto).
#include "metanode/object_service.h"

#include <openssl/rand.h>

#include "granary/object.grpc.pb.h"
#include "metanode/apply_object.h"
#include "metanode/service_util.h"

namespace granary::metanode {
namespace {

std::string NewUploadId() {
  unsigned char raw[16];
  RAND_bytes(raw, sizeof raw);
  static const char* digits = "0123456789abcdef";
  std::string id;
  for (unsigned char c : raw) {
    id.push_back(digits[c >> 4]);
    id.push_back(digits[c & 15]);
  }
  return id;
}

class ObjectService final : public Objects::CallbackService {
 public:
  explicit ObjectService(MetaCore& core) : core_(core) {}
  using Ctx = grpc::CallbackServerContext;

  grpc::ServerUnaryReactor* Stage(Ctx* ctx, const StageRequest* req, AttrReply* out) override {
    return MutateAsync(
        core_, ctx, req->op(), [&](Operation& op) { *op.mutable_object_stage() = *req; },
        [out](OpReply& r) {
          *out->mutable_attr() = r.has_stage() ? r.stage().attr() : r.attr().attr();
        });
  }
  grpc::ServerUnaryReactor* StageWrite(Ctx* ctx, const StageRequest* req,
                                       StageReply* out) override {
    return MutateAsync(
        core_, ctx, req->op(), [&](Operation& op) { *op.mutable_object_stage() = *req; },
        [out](OpReply& r) {
          if (r.has_stage()) {
            *out = r.stage();
          } else {
            *out->mutable_attr() = r.attr().attr();
          }
        });
  }
  grpc::ServerUnaryReactor* Publish(Ctx* ctx, const PublishRequest* req,
                                    ObjectReply* out) override {
    return MutateAsync(
        core_, ctx, req->op(), [&](Operation& op) { *op.mutable_object_publish() = *req; },
        [out](OpReply& r) { *out = r.object(); });
  }
  grpc::ServerUnaryReactor* Delete(Ctx* ctx, const ObjectDeleteRequest* req,
                                   ObjectDeleteReply* out) override {
    return MutateAsync(
        core_, ctx, req->op(), [&](Operation& op) { *op.mutable_object_delete() = *req; },
        [out](OpReply& r) { *out = r.object_delete(); });
  }
  grpc::ServerUnaryReactor* Get(Ctx* ctx, const ObjectGetRequest* req,
                                ObjectGetReply* out) override {
    return Done(ctx, Answer(Read(core_, [&](Txn& view) { return QueryObjectGet(view, *req); }),
                            [&](ObjectGetReply& r) { *out = std::move(r); }));
  }
  grpc::ServerUnaryReactor* List(Ctx* ctx, const ObjectListRequest* req,
                                 ObjectListReply* out) override {
    return Done(ctx, Answer(Read(core_, [&](Txn& view) { return QueryObjectList(view, *req); }),
                            [&](ObjectListReply& r) { *out = std::move(r); }));
  }
  grpc::ServerUnaryReactor* UploadCreate(Ctx* ctx, const UploadCreateRequest* req,
                                         UploadReply* out) override {
    return MutateAsync(
        core_, ctx, req->op(),
        [&](Operation& op) {
          *op.mutable_upload_create()->mutable_request() = *req;
          op.mutable_upload_create()->set_upload_id(NewUploadId());
        },
        [out](OpReply& r) { *out = r.upload(); });
  }
  grpc::ServerUnaryReactor* UploadPartCommit(Ctx* ctx, const UploadPartRequest* req,
                                             UploadReply* out) override {
    return MutateAsync(
        core_, ctx, req->op(), [&](Operation& op) { *op.mutable_upload_part() = *req; },
        [out](OpReply& r) { *out = r.upload(); });
  }
  grpc::ServerUnaryReactor* UploadComplete(Ctx* ctx, const UploadCompleteRequest* req,
                                           ObjectReply* out) override {
    return MutateAsync(
        core_, ctx, req->op(), [&](Operation& op) { *op.mutable_upload_complete() = *req; },
        [out](OpReply& r) { *out = r.object(); });
  }
  grpc::ServerUnaryReactor* UploadAbort(Ctx* ctx, const UploadAbortRequest* req, Empty*) override {
    return MutateAsync(
        core_, ctx, req->op(), [&](Operation& op) { *op.mutable_upload_abort() = *req; },
        [](OpReply&) {});
  }
  grpc::ServerUnaryReactor* UploadGet(Ctx* ctx, const UploadGetRequest* req,
                                      UploadReply* out) override {
    return Done(ctx, Answer(Read(core_,
                                 [&](Txn& view) {
                                   return QueryUpload(view, req->volume_id(), req->upload_id(),
                                                      req->include_completed());
                                 }),
                            [&](UploadReply& r) { *out = std::move(r); }));
  }
  grpc::ServerUnaryReactor* Update(Ctx* ctx, const ObjectUpdateRequest* req,
                                   ObjectReply* out) override {
    return MutateAsync(
        core_, ctx, req->op(), [&](Operation& op) { *op.mutable_object_update() = *req; },
        [out](OpReply& r) { *out = r.object(); });
  }
  grpc::ServerUnaryReactor* BucketConfigure(Ctx* ctx, const BucketConfigureRequest* req,
                                            BucketReply* out) override {
    return MutateAsync(
        core_, ctx, req->op(), [&](Operation& op) { *op.mutable_bucket_configure() = *req; },
        [out](OpReply& r) { *out = r.bucket(); });
  }
  grpc::ServerUnaryReactor* UploadList(Ctx* ctx, const UploadListRequest* req,
                                       UploadListReply* out) override {
    return Done(ctx, Answer(Read(core_, [&](Txn& view) { return QueryUploads(view, *req); }),
                            [&](UploadListReply& r) { *out = std::move(r); }));
  }

 private:
  MetaCore& core_;
};

}  // namespace

std::unique_ptr<grpc::Service> MakeObjectService(MetaCore& core) {
  return std::make_unique<ObjectService>(core);
}

}  // namespace granary::metanode
