// Who may do what (docs/s3.md "ACLs and anonymous access"), declared in internal.h. The model
// follows S3's ACLs (S3 User Guide, "Access control list (ACL) overview"): a bucket ACL's READ
// lists the bucket, WRITE creates, overwrites and deletes its objects, READ_ACP / WRITE_ACP read
// and write the ACL; an object ACL's READ reads the object. On top of S3, the bucket's owner and
// Granary's admin grants (read / readwrite) reach every object of the bucket.
#include <fmt/format.h>

#include "s3/internal.h"

namespace granary::s3 {

namespace {

// An admin grant (`granary admin bucket grant`) of `id` on `b`, if any.
Access AdminAccess(const Bucket& b, const Identity& id) {
  if (id.anonymous) return Access::ACCESS_NONE;
  for (const Grant& g : b.grants()) {
    if (g.access_key() == id.access_key) return g.access();
  }
  return Access::ACCESS_NONE;
}

bool Enforced(const Bucket& b) { return b.object_ownership() == BUCKET_OWNER_ENFORCED; }

bool IsBucketOwner(const Bucket& b, const Identity& id) {
  return !id.anonymous && b.owner() == id.access_key;
}

S3Error InvalidId() { return Err(400, "InvalidArgument", "Invalid id"); }

}  // namespace

S3Error AccessDenied() { return Err(403, "AccessDenied", "Access Denied"); }

std::variant<Bucket, S3Error> LoadBucket(Context& ctx, const std::string& name) {
  auto b = ctx.GetBucket(name);
  if (!b.ok()) {
    if (b.status().code() == Code::NOT_FOUND) {
      return Err(404, "NoSuchBucket", "The specified bucket does not exist");
    }
    return ErrorFromStatus(b.status());
  }
  return std::move(*b);
}

bool BucketAllows(const Bucket& b, const Identity& id, Permission p) {
  if (IsBucketOwner(b, id)) return true;
  const Access admin = AdminAccess(b, id);
  if (admin == Access::READ_WRITE) return true;
  if (admin == Access::READ && p == Permission::kRead) return true;
  if (Enforced(b)) return false;
  return AclAllows(b.acl(), id.access_key, id.anonymous, p);
}

bool BucketAdmin(const Bucket& b, const Identity& id) {
  return IsBucketOwner(b, id) || AdminAccess(b, id) == Access::READ_WRITE;
}

std::string ObjectOwner(const Bucket& b, const ObjectInfo& o) {
  return Enforced(b) || o.owner().empty() ? b.owner() : o.owner();
}

bool ObjectAllows(const Bucket& b, const ObjectInfo& o, const Identity& id, Permission p) {
  if (IsBucketOwner(b, id)) return true;
  const Access admin = AdminAccess(b, id);
  if (admin == Access::READ_WRITE) return true;
  if (admin == Access::READ && p == Permission::kRead) return true;
  if (Enforced(b)) return false;
  if (!id.anonymous && !o.owner().empty() && o.owner() == id.access_key) return true;
  return AclAllows(o.acl(), id.access_key, id.anonymous, p);
}

std::variant<Bucket, S3Error> AuthorizeBucket(Context& ctx, const std::string& name,
                                              const Identity& id, Permission p) {
  auto b = LoadBucket(ctx, name);
  if (auto* e = std::get_if<S3Error>(&b)) return *e;
  if (!BucketAllows(std::get<Bucket>(b), id, p)) return AccessDenied();
  return b;
}

std::variant<ObjectGetReply, S3Error> AuthorizedObject(Context& ctx, const Bucket& b,
                                                       const std::string& key, const Identity& id,
                                                       bool extents, Permission p) {
  auto obj = ctx.objects().Get(b.volume_id(), key, extents);
  if (!obj.ok()) {
    if (obj.status().code() != Code::NOT_FOUND) return ErrorFromStatus(obj.status());
    // S3 API Reference, GetObject: "If you have the s3:ListBucket permission on the bucket,
    // Amazon S3 returns an HTTP status code 404 Not Found error. If you don't have the
    // s3:ListBucket permission, Amazon S3 returns an HTTP status code 403 Access Denied error."
    if (!BucketAllows(b, id, Permission::kRead)) return AccessDenied();
    return Err(404, "NoSuchKey", "The specified key does not exist.");
  }
  if (!ObjectAllows(b, obj->info(), id, p)) return AccessDenied();
  return std::move(*obj);
}

std::variant<std::optional<Acl>, S3Error> RequestedAcl(Context& ctx, const Request& req,
                                                       const std::string& owner,
                                                       const std::string& bucket_owner,
                                                       bool for_bucket) {
  static const std::pair<const char*, AclPermission> kGrantHeaders[] = {
      {"x-amz-grant-read", ACL_READ},
      {"x-amz-grant-write", ACL_WRITE},
      {"x-amz-grant-read-acp", ACL_READ_ACP},
      {"x-amz-grant-write-acp", ACL_WRITE_ACP},
      {"x-amz-grant-full-control", ACL_FULL_CONTROL}};
  std::vector<std::pair<AclPermission, std::string>> grants;
  for (auto& [name, permission] : kGrantHeaders) {
    auto [lo, hi] = req.headers.all.equal_range(name);
    for (auto it = lo; it != hi; ++it) grants.emplace_back(permission, it->second);
  }
  const std::string* canned = req.headers.Find("x-amz-acl");
  if (canned && !grants.empty()) {
    return Err(400, "InvalidRequest",
               "Specifying both Canned ACLs and Header Grants is not allowed");
  }
  std::variant<Acl, S3Error> acl;
  if (canned) {
    acl = CannedAcl(*canned, owner, bucket_owner, for_bucket);
  } else if (!grants.empty()) {
    acl = GrantHeadersAcl(grants);
  } else {
    return std::optional<Acl>();
  }
  if (auto* e = std::get_if<S3Error>(&acl)) return *e;
  for (const AclGrant& g : std::get<Acl>(acl)) {
    if (g.group() != ACL_GROUP_NONE) continue;
    auto secret = ctx.Secret(g.access_key());
    if (!secret.ok()) {
      if (secret.status().code() == Code::NOT_FOUND) return InvalidId();
      return ErrorFromStatus(secret.status());
    }
  }
  return std::optional<Acl>(std::move(std::get<Acl>(acl)));
}

std::optional<S3Error> NewObjectSettings(Context& ctx, const Request& req, const Identity& id,
                                         const Bucket& b, ObjectMeta* meta) {
  if (auto* tagging = req.headers.Find("x-amz-tagging")) {
    auto tags = ParseTaggingHeader(*tagging);
    if (auto* e = std::get_if<S3Error>(&tags)) return *e;
    for (auto& [k, v] : std::get<Tags>(tags)) (*meta->mutable_tags())[k] = v;
  }
  // Who owns the new object (S3 User Guide, "Controlling ownership of objects"): its writer
  // (ObjectWriter, and no controls); the bucket's owner under BucketOwnerEnforced, and under
  // BucketOwnerPreferred when the writer grants it bucket-owner-full-control.
  std::string owner = id.anonymous ? b.owner() : id.access_key;
  const std::string* canned = req.headers.Find("x-amz-acl");
  if (Enforced(b) || (b.object_ownership() == BUCKET_OWNER_PREFERRED && canned &&
                      *canned == "bucket-owner-full-control")) {
    owner = b.owner();
  }
  auto acl = RequestedAcl(ctx, req, owner, b.owner(), /*for_bucket=*/false);
  if (auto* e = std::get_if<S3Error>(&acl)) return *e;
  auto& requested = std::get<std::optional<Acl>>(acl);
  if (Enforced(b)) {
    // "The bucket only accepts PUT requests that don't specify an ACL or specify bucket owner
    // full control ACLs" (S3 API Reference, OwnershipControlsRule).
    const bool accepted = canned ? *canned == "bucket-owner-full-control"
                                 : !requested || IsOwnerFullControl(*requested, b.owner());
    if (!accepted) {
      return Err(400, "AccessControlListNotSupported", "The bucket does not allow ACLs");
    }
    return std::nullopt;  // ACLs are disabled: nothing is stored
  }
  if (owner != b.owner()) meta->set_owner(owner);
  if (requested) {
    for (AclGrant& g : *requested) *meta->add_acl() = std::move(g);
  }
  return std::nullopt;
}

}  // namespace granary::s3
