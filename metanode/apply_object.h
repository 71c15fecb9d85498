// Object operations and queries for the S3 gateway (apply_object.cpp; proto/granary/object.proto).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "granary/object.pb.h"
#include "metanode/records.pb.h"
#include "metanode/store.h"

namespace granary::metanode {

struct Ctx;

// The xattr holding an object's ObjectMeta (ETag, headers).
inline constexpr std::string_view kObjectMetaXattr = "granary.s3";

// ETag of bytes written through POSIX: changes with every commit of the inode.
std::string PosixEtag(const InodeAttr& attr);
// The path components of an S3 key (DESIGN §2): `.`/`..`/empty segments -> InvalidArgument, a
// segment over 255 bytes or a key over 1024 -> NameTooLong. A trailing '/' is a directory marker.
Result<std::vector<std::string>> SplitObjectKey(std::string_view key, bool* directory_marker);

Status ApplyObjectStage(Ctx& ctx, OpReply* reply);
Status ApplyObjectPublish(Ctx& ctx, OpReply* reply);
Status ApplyObjectDelete(Ctx& ctx, OpReply* reply);
Status ApplyUploadCreate(Ctx& ctx, OpReply* reply);
Status ApplyUploadPart(Ctx& ctx, OpReply* reply);
Status ApplyUploadComplete(Ctx& ctx, OpReply* reply);
Status ApplyUploadAbort(Ctx& ctx, OpReply* reply);

// S3 settings beside the data (apply_s3.cpp): an object's ACL and tags, a bucket's ACL,
// ownership and CORS, and the records of completed multipart uploads.
Status ApplyObjectUpdate(Ctx& ctx, OpReply* reply);
Status ApplyBucketConfigure(Ctx& ctx, OpReply* reply);
Status ApplyPruneCompletions(Ctx& ctx, OpReply* reply);
// Remembers a successful completion (with its answer) in the completing operation.
void RecordCompletion(Ctx& ctx, const UploadCompleteRequest& req, const std::string& key,
                      const ObjectInfo& info);
// A Complete of an upload that is gone: true (and the first answer in `reply`) when it was
// completed with the same parts; false when it was not completed (or with other parts).
Result<bool> RepeatCompletion(Ctx& ctx, const UploadCompleteRequest& req, OpReply* reply);
// Every access key a grant names exists (NotFound naming the first that does not).
Status CheckAclKeys(Txn& txn, const google::protobuf::RepeatedPtrField<AclGrant>& acl);
// How long a completion is remembered (S3 answers a repeated Complete for hours; clients retry
// within minutes).
inline constexpr int64_t kCompletionRetentionMs = 60 * 60 * 1000;

// Shared by the operations (apply_object.cpp) and the queries (query_object.cpp).
std::string UploadPrefix(uint64_t volume_id);
std::string UploadKey(uint64_t volume_id, std::string_view upload_id);
Result<uint64_t> RootOf(Txn& txn, uint64_t volume_id);
// The object as S3 shows it; `rec` is a regular file or (directory marker) a directory.
ObjectInfo MakeInfo(const InodeRecord& rec, std::string key);
// Walks (and with `ctx`, makes: uid, gid, mode, counted in `vol`) the directories `dirs` below
// `root`. Returns the inodes on the path, root first. Without `ctx`, a missing or non-directory
// component ends the walk early.
Result<std::vector<uint64_t>> WalkDirs(Ctx* ctx, Txn& txn, VolumeRecord* vol, uint64_t root,
                                       const std::vector<std::string>& dirs, uint32_t uid,
                                       uint32_t gid, uint32_t mode);
Result<UploadRecord> LoadUpload(Txn& txn, uint64_t volume_id, const std::string& upload_id);

// The inode of the object `key` names (a regular file, or a directory for "key/"), or nullopt.
Result<std::optional<InodeRecord>> LookupObject(Txn& txn, uint64_t volume_id,
                                                const std::string& key);
Result<ObjectGetReply> QueryObjectGet(Txn& txn, const ObjectGetRequest& req);
Result<ObjectListReply> QueryObjectList(Txn& txn, const ObjectListRequest& req);
// With `include_completed`, an upload completed within the retention answers too, as
// {upload_id, volume_id, key} with `completed` set (UploadReply).
Result<UploadReply> QueryUpload(Txn& txn, uint64_t volume_id, const std::string& upload_id,
                                bool include_completed);
Result<UploadListReply> QueryUploads(Txn& txn, const UploadListRequest& req);

}  // namespace granary::metanode
