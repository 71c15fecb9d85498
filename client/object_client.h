// ObjectClient: the metanode's object API (proto/granary/object.proto) for the S3 gateway, plus
// the two data-path pieces an object needs beyond File: writing into a staged inode that no name
// points at yet, and reading an object through the read map it was opened with (so a GET serves
// one version even when a PUT replaces the key meanwhile).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <vector>

#include "client/granary.h"
#include "common/status.h"
#include "granary/object.grpc.pb.h"

namespace granary::client {

class ObjectClient {
 public:
  // Shares `client`'s metanode address, cluster view and data connections.
  static Result<std::unique_ptr<ObjectClient>> Connect(Client& client);

  // A new unnamed inode pinned by a fresh handle, and a File over it. Closing the File without
  // Publish drops the inode (an interrupted upload leaves nothing).
  struct Staged {
    InodeAttr attr;
    uint64_t handle_owner = 0;
    std::unique_ptr<File> file;
  };
  Result<Staged> Stage(uint64_t volume_id, uint32_t uid, uint32_t gid, uint32_t mode,
                       const Layout* layout = nullptr);
  // Stage + write of a small body in two metanode operations: the inode is staged with its
  // allocation, the blocks are written, and `commit` is filled in for Publish to apply (see
  // PublishRequest.commit). `data` must stay valid until this returns.
  Result<Staged> StageWithData(uint64_t volume_id, uint32_t uid, uint32_t gid, uint32_t mode,
                               std::span<const uint8_t> data, CommitRequest* commit);
  // After a Publish/UploadPartCommit took the stage pin over: closes the (flushed) File without
  // releasing the pin again (saves a metanode operation per PUT).
  static void Detach(File& file);

  // `req.op` is filled in.
  Result<ObjectInfo> Publish(PublishRequest req);
  // true when the key named an object.
  Result<bool> Delete(uint64_t volume_id, const std::string& key);
  Result<ObjectGetReply> Get(uint64_t volume_id, const std::string& key, bool with_extents);
  Result<ObjectListReply> List(const ObjectListRequest& req);

  Result<Upload> UploadCreate(UploadCreateRequest req);
  Result<Upload> UploadPartCommit(UploadPartRequest req);
  // The object and its stored checksum; a repeat of a completion with the same parts gets the
  // first answer (docs/s3.md).
  Result<ObjectReply> UploadComplete(UploadCompleteRequest req);
  Status UploadAbort(uint64_t volume_id, const std::string& upload_id);
  Result<Upload> UploadGet(uint64_t volume_id, const std::string& upload_id);
  // With an upload completed in the last hour too (`completed` set in the reply).
  Result<UploadReply> UploadGetOrCompleted(uint64_t volume_id, const std::string& upload_id);
  // An object's ACL and/or tags (`req.op` is filled in); the object as it is now.
  Result<ObjectInfo> Update(ObjectUpdateRequest req);
  // A bucket's S3 ACL, ownership and CORS settings (`req.op` is filled in).
  Result<Bucket> BucketConfigure(BucketConfigureRequest req);
  Result<UploadListReply> UploadList(uint64_t volume_id, const std::string& prefix);

  // Reads object bytes [offset, offset + out.size()) through `object`'s read map (from Get with
  // extents); holes read as zeros. Every byte is CRC-verified end to end.
  Status Read(const ObjectGetReply& object, uint64_t offset, std::span<uint8_t> out);

 private:
  explicit ObjectClient(Client& client) : client_(client) {}
  template <typename Req, typename Reply>
  Status Call(const char* what,
              grpc::Status (Objects::Stub::*method)(grpc::ClientContext*, const Req&, Reply*),
              const Req& req, Reply* reply);

  Client& client_;
};

}  // namespace granary::client
