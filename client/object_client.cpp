#include "client/object_client.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include <thread>

#include "client/cluster_view.h"
#include "client/extent_reader.h"
#include "client/meta_client.h"
#include "client/pool_rules.h"
#include "common/rpc_status.h"

namespace granary::client {

Result<std::unique_ptr<ObjectClient>> ObjectClient::Connect(Client& client) {
  return std::unique_ptr<ObjectClient>(new ObjectClient(client));
}

template <typename Req, typename Reply>
Status ObjectClient::Call(const char* what,
                          grpc::Status (Objects::Stub::*method)(grpc::ClientContext*, const Req&,
                                                                Reply*),
                          const Req& req, Reply* reply) {
  // MetaClient's rules (leader following, Unavailable retried with the same OpId): the object
  // service runs in the metanode, on the same connection.
  return client_.meta().Invoke(
      what,
      [&](MetaClient::Endpoint& e, grpc::ClientContext& ctx) {
        auto stub = Objects::NewStub(e.channel);
        return ((*stub).*method)(&ctx, req, reply);
      },
      std::chrono::duration_cast<std::chrono::milliseconds>(client_.options().operation_timeout));
}

Result<ObjectClient::Staged> ObjectClient::Stage(uint64_t volume_id, uint32_t uid, uint32_t gid,
                                                 uint32_t mode, const Layout* layout) {
  StageRequest req;
  *req.mutable_op() = client_.meta().NextOpId();
  req.set_volume_id(volume_id);
  req.set_uid(uid);
  req.set_gid(gid);
  req.set_mode(mode);
  if (layout) *req.mutable_layout() = *layout;
  const uint64_t owner = client_.NextHandleOwner();
  req.set_handle_owner(owner);
  AttrReply reply;
  GRANARY_TRY(Call("stage object", &Objects::Stub::Stage, req, &reply));
  Staged s;
  s.attr = reply.attr();
  s.handle_owner = owner;
  s.file.reset(new File(&client_, reply.attr(), owner));
  return s;
}

Result<ObjectClient::Staged> ObjectClient::StageWithData(uint64_t volume_id, uint32_t uid,
                                                         uint32_t gid, uint32_t mode,
                                                         std::span<const uint8_t> data,
                                                         CommitRequest* commit) {
  std::vector<DirtyRun> runs{{0, data.size(), data.data()}};
  std::vector<PlannedSlice> slices = data.empty() ? std::vector<PlannedSlice>{} : PlanSlices(runs);
  StageRequest req;
  *req.mutable_op() = client_.meta().NextOpId();
  req.set_volume_id(volume_id);
  req.set_uid(uid);
  req.set_gid(gid);
  req.set_mode(mode);
  req.set_allocate_slices(static_cast<uint32_t>(slices.size()));
  req.set_allocate_bytes(data.size());
  const uint64_t owner = client_.NextHandleOwner();
  req.set_handle_owner(owner);
  StageReply reply;
  GRANARY_TRY(Call("stage object", &Objects::Stub::StageWrite, req, &reply));
  Staged s;
  s.attr = reply.attr();
  s.handle_owner = owner;
  s.file.reset(new File(&client_, reply.attr(), owner));
  if (slices.empty()) return s;
  const AllocateReply& alloc = reply.allocation();
  auto fail = [&](Status st) -> Result<Staged> {
    s.file->Close().PermitUnchecked();  // drops the staged inode
    return st.WithContext(fmt::format("write staged object inode {}", s.attr.ino()));
  };
  // The same block writes as a file's flush: EC-coded or replicated per slice, in parallel,
  // retried on a fresh map, to old and new members while a PG moves.
  auto pool = LayoutPool(client_.cluster(), alloc.layout().pool_id());
  if (!pool.ok()) return fail(pool.status());
  const uint32_t block_size = LayoutBlockSize(alloc.layout(), *pool);
  for (PlannedSlice& slice : slices)
    slice.encoding = SliceEncoding(*pool, slice.length, block_size);
  if (Status w = s.file->WriteBlocks(slices, alloc, *pool); !w.ok()) return fail(w);
  commit->set_ino(s.attr.ino());
  commit->set_intent_id(alloc.intent_id());
  commit->set_generation(alloc.generation());
  commit->set_end(data.size());
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  commit->mutable_mtime()->set_sec(ns / 1000000000);
  commit->mutable_mtime()->set_nsec(static_cast<uint32_t>(ns % 1000000000));
  for (auto& r : CommitRanges(slices, alloc.first_slice_id(), Encoding::REPLICATED)) {
    *commit->add_ranges() = std::move(r);
  }
  return s;
}

void ObjectClient::Detach(File& file) {
  std::lock_guard lock(file.mu_);
  file.closed_ = true;
}

Result<ObjectInfo> ObjectClient::Publish(PublishRequest req) {
  *req.mutable_op() = client_.meta().NextOpId();
  ObjectReply reply;
  GRANARY_TRY(Call("publish object", &Objects::Stub::Publish, req, &reply));
  return std::move(*reply.mutable_info());
}

Result<bool> ObjectClient::Delete(uint64_t volume_id, const std::string& key) {
  ObjectDeleteRequest req;
  *req.mutable_op() = client_.meta().NextOpId();
  req.set_volume_id(volume_id);
  req.set_key(key);
  ObjectDeleteReply reply;
  GRANARY_TRY(Call("delete object", &Objects::Stub::Delete, req, &reply));
  return reply.existed();
}

Result<ObjectGetReply> ObjectClient::Get(uint64_t volume_id, const std::string& key,
                                         bool with_extents) {
  ObjectGetRequest req;
  req.set_volume_id(volume_id);
  req.set_key(key);
  req.set_with_extents(with_extents);
  ObjectGetReply reply;
  GRANARY_TRY(Call("get object", &Objects::Stub::Get, req, &reply));
  return reply;
}

Result<ObjectListReply> ObjectClient::List(const ObjectListRequest& req) {
  ObjectListReply reply;
  GRANARY_TRY(Call("list objects", &Objects::Stub::List, req, &reply));
  return reply;
}

Result<Upload> ObjectClient::UploadCreate(UploadCreateRequest req) {
  *req.mutable_op() = client_.meta().NextOpId();
  UploadReply reply;
  GRANARY_TRY(Call("create upload", &Objects::Stub::UploadCreate, req, &reply));
  return std::move(*reply.mutable_upload());
}

Result<Upload> ObjectClient::UploadPartCommit(UploadPartRequest req) {
  *req.mutable_op() = client_.meta().NextOpId();
  UploadReply reply;
  GRANARY_TRY(Call("commit part", &Objects::Stub::UploadPartCommit, req, &reply));
  return std::move(*reply.mutable_upload());
}

Result<ObjectReply> ObjectClient::UploadComplete(UploadCompleteRequest req) {
  *req.mutable_op() = client_.meta().NextOpId();
  ObjectReply reply;
  GRANARY_TRY(Call("complete upload", &Objects::Stub::UploadComplete, req, &reply));
  return reply;
}

Result<UploadReply> ObjectClient::UploadGetOrCompleted(uint64_t volume_id,
                                                       const std::string& upload_id) {
  UploadGetRequest req;
  req.set_volume_id(volume_id);
  req.set_upload_id(upload_id);
  req.set_include_completed(true);
  UploadReply reply;
  GRANARY_TRY(Call("get upload", &Objects::Stub::UploadGet, req, &reply));
  return reply;
}

Result<ObjectInfo> ObjectClient::Update(ObjectUpdateRequest req) {
  *req.mutable_op() = client_.meta().NextOpId();
  ObjectReply reply;
  GRANARY_TRY(Call("update object", &Objects::Stub::Update, req, &reply));
  return std::move(*reply.mutable_info());
}

Result<Bucket> ObjectClient::BucketConfigure(BucketConfigureRequest req) {
  *req.mutable_op() = client_.meta().NextOpId();
  BucketReply reply;
  GRANARY_TRY(Call("configure bucket", &Objects::Stub::BucketConfigure, req, &reply));
  return std::move(*reply.mutable_bucket());
}

Status ObjectClient::UploadAbort(uint64_t volume_id, const std::string& upload_id) {
  UploadAbortRequest req;
  *req.mutable_op() = client_.meta().NextOpId();
  req.set_volume_id(volume_id);
  req.set_upload_id(upload_id);
  Empty reply;
  return Call("abort upload", &Objects::Stub::UploadAbort, req, &reply);
}

Result<Upload> ObjectClient::UploadGet(uint64_t volume_id, const std::string& upload_id) {
  UploadGetRequest req;
  req.set_volume_id(volume_id);
  req.set_upload_id(upload_id);
  UploadReply reply;
  GRANARY_TRY(Call("get upload", &Objects::Stub::UploadGet, req, &reply));
  return std::move(*reply.mutable_upload());
}

Result<UploadListReply> ObjectClient::UploadList(uint64_t volume_id, const std::string& prefix) {
  UploadListRequest req;
  req.set_volume_id(volume_id);
  req.set_prefix(prefix);
  UploadListReply reply;
  GRANARY_TRY(Call("list uploads", &Objects::Stub::UploadList, req, &reply));
  return reply;
}

Status ObjectClient::Read(const ObjectGetReply& object, uint64_t offset, std::span<uint8_t> out) {
  // Over the read map fixed at open (File re-reads the map on every Pread, which would mix
  // versions of a replaced object).
  const Layout& layout = object.info().attr().layout();
  Status s = ReadExtents(client_, layout, object.extents(), out, offset);
  if (s.code() == Code::STALE_EPOCH || s.code() == Code::UNAVAILABLE) {
    GRANARY_TRY(client_.cluster().Refresh());
    s = ReadExtents(client_, layout, object.extents(), out, offset);
  }
  return s.WithContext(fmt::format("read object '{}' at {}", object.info().key(), offset));
}

}  // namespace granary::client
