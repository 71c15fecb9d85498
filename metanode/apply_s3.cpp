// S3 settings that live beside the data (docs/s3.md): an object's ACL and tags, a bucket's ACL,
// Object Ownership and CORS rules, and the records that let a repeated CompleteMultipartUpload
// get its first answer. Each change is one operation, so replicas apply it like any other.
#include <fmt/format.h>

#include "metanode/apply_internal.h"
#include "metanode/apply_object.h"

namespace granary::metanode {

namespace {

std::string_view Unquoted(std::string_view etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  return etag;
}

bool SameParts(const google::protobuf::RepeatedPtrField<UploadPart>& a,
               const google::protobuf::RepeatedPtrField<UploadPart>& b) {
  if (a.size() != b.size()) return false;
  for (int i = 0; i < a.size(); ++i) {
    if (a[i].number() != b[i].number() || Unquoted(a[i].etag()) != Unquoted(b[i].etag())) {
      return false;
    }
  }
  return true;
}

}  // namespace

Status CheckAclKeys(Txn& txn, const google::protobuf::RepeatedPtrField<AclGrant>& acl) {
  for (const AclGrant& g : acl) {
    if (g.group() != ACL_GROUP_NONE) continue;
    KeyRecord key;
    auto found = txn.GetRecord(Cf::kCatalog, AccessKeyKey(g.access_key()), &key);
    GRANARY_TRY(found);
    if (!*found) return NotFound(fmt::format("ACL grantee: access key '{}'", g.access_key()));
  }
  return Status::Ok();
}

Status ApplyObjectUpdate(Ctx& ctx, OpReply* reply) {
  const ObjectUpdateRequest& req = ctx.op.object_update();
  if (req.set_acl()) GRANARY_TRY(CheckAclKeys(ctx.txn, req.acl()));
  auto found = LookupObject(ctx.txn, req.volume_id(), req.key());
  GRANARY_TRY(found);
  if (!*found) return NotFound(fmt::format("object '{}'", req.key()));
  InodeRecord& rec = **found;
  ObjectMeta meta;
  auto it = rec.xattrs().find(std::string(kObjectMetaXattr));
  // A file written through POSIX has no ObjectMeta yet: one without an ETag is made, and
  // MakeInfo goes on computing its POSIX ETag.
  if (it != rec.xattrs().end() && !meta.ParseFromString(it->second)) {
    return Corrupt(fmt::format("object '{}': unparsable {} xattr", req.key(), kObjectMetaXattr));
  }
  if (req.set_acl()) *meta.mutable_acl() = req.acl();
  if (req.set_tags()) {
    meta.clear_tags();
    for (const auto& [k, v] : req.tags()) (*meta.mutable_tags())[k] = v;
  }
  (*rec.mutable_xattrs())[std::string(kObjectMetaXattr)] = meta.SerializeAsString();
  SaveInode(ctx.txn, rec);
  *reply->mutable_object()->mutable_info() = MakeInfo(rec, req.key());
  return Status::Ok();
}

Status ApplyBucketConfigure(Ctx& ctx, OpReply* reply) {
  const BucketConfigureRequest& req = ctx.op.bucket_configure();
  auto rec = FindRecord<BucketRecord>(ctx.txn, Cf::kCatalog, BucketKey(req.name()));
  GRANARY_TRY(rec);
  if (!*rec) return NotFound(fmt::format("bucket '{}'", req.name()));
  Bucket& b = *(*rec)->mutable_bucket();
  if (req.set_acl()) {
    GRANARY_TRY(CheckAclKeys(ctx.txn, req.acl()));
    *b.mutable_acl() = req.acl();
  }
  if (req.set_ownership()) b.set_object_ownership(req.object_ownership());
  if (req.set_cors()) {
    if (req.cors_configured()) {
      *b.mutable_cors() = req.cors();
    } else {
      b.clear_cors();
    }
    b.set_cors_configured(req.cors_configured());
  }
  ctx.txn.PutRecord(Cf::kCatalog, BucketKey(req.name()), **rec);
  *reply->mutable_bucket()->mutable_bucket() = b;
  return Status::Ok();
}

void RecordCompletion(Ctx& ctx, const UploadCompleteRequest& req, const std::string& key,
                      const ObjectInfo& info) {
  CompletedUploadRecord rec;
  rec.set_format(kFormat);
  rec.set_key(key);
  for (const UploadPart& p : req.parts()) {
    UploadPart& w = *rec.add_parts();
    w.set_number(p.number());
    w.set_etag(p.etag());
  }
  *rec.mutable_info() = info;
  rec.set_checksum_algorithm(req.checksum_algorithm());
  rec.set_checksum(req.checksum());
  rec.set_completed_ms(ctx.op.now_ms());
  ctx.txn.PutRecord(Cf::kSystem, CompletionKey(req.volume_id(), req.upload_id()), rec);
  ctx.txn.Put(Cf::kSystem, CompletionTimeKey(ctx.op.now_ms(), req.volume_id(), req.upload_id()),
              "");
}

Result<bool> RepeatCompletion(Ctx& ctx, const UploadCompleteRequest& req, OpReply* reply) {
  // S3 answers a Complete repeated after it succeeded with 200 and the same result (clients
  // retry it after a lost reply); other parts than the first time's are NoSuchUpload.
  auto rec = FindRecord<CompletedUploadRecord>(ctx.txn, Cf::kSystem,
                                               CompletionKey(req.volume_id(), req.upload_id()));
  GRANARY_TRY(rec);
  if (!*rec || !SameParts((*rec)->parts(), req.parts())) return false;
  ObjectReply& out = *reply->mutable_object();
  *out.mutable_info() = (*rec)->info();
  out.set_checksum_algorithm((*rec)->checksum_algorithm());
  out.set_checksum((*rec)->checksum());
  return true;
}

Status ApplyPruneCompletions(Ctx& ctx, OpReply* reply) {
  auto keys = ExpiredTimeKeys(ctx.txn, kCompletionTimePrefix,
                              static_cast<uint64_t>(ctx.op.prune_completions().before_ms()));
  GRANARY_TRY(keys);
  for (const std::string& key : *keys) {
    ctx.txn.Delete(Cf::kSystem, key);
    ctx.txn.Delete(Cf::kSystem, CompletionKey(ReadU64(std::string_view(key).substr(9)),
                                              std::string_view(key).substr(17)));
  }
  return Status::Ok();
}

}  // namespace granary::metanode
