// ACLs and Object Ownership (docs/s3.md "ACLs and anonymous access"): Get/PutBucketAcl,
// Get/PutObjectAcl, Get/Put/DeleteBucketOwnershipControls. What the ACLs allow is access.cpp's.
#include <fmt/format.h>

#include "s3/internal.h"

namespace granary::s3 {

namespace {

constexpr const char* kXsi = "http://www.w3.org/2001/XMLSchema-instance";

S3Error AclsDisabled() {
  // S3 User Guide, "Object Ownership": with BucketOwnerEnforced, "requests to set ACLs or update
  // ACLs fail with a 400 error and return the AccessControlListNotSupported error code".
  return Err(400, "AccessControlListNotSupported", "The bucket does not allow ACLs");
}

// The ACL a PutBucketAcl / PutObjectAcl sets: from the headers or from the body, not both.
std::variant<Acl, S3Error> AclToSet(Context& ctx, Request& req, const Identity& id,
                                    const std::string& owner, const std::string& bucket_owner,
                                    bool for_bucket) {
  auto from_headers = RequestedAcl(ctx, req, owner, bucket_owner, for_bucket);
  if (auto* e = std::get_if<S3Error>(&from_headers)) return *e;
  auto body = SmallBody(req, id, 64 << 10);
  if (auto* e = std::get_if<S3Error>(&body)) return *e;
  const std::string& xml = std::get<std::string>(body);
  auto& headers = std::get<std::optional<Acl>>(from_headers);
  if (headers) {
    if (!xml.empty()) {
      return Err(400, "UnexpectedContent", "This request does not support content");
    }
    return std::move(*headers);
  }
  if (xml.empty()) {
    return Err(400, "MissingSecurityHeader",
               "Your request was missing a required header: x-amz-acl, x-amz-grant-* or an "
               "AccessControlPolicy body");
  }
  auto acl = ParseAclXml(xml);
  if (auto* e = std::get_if<S3Error>(&acl)) return *e;
  for (const AclGrant& g : std::get<Acl>(acl)) {
    if (g.group() != ACL_GROUP_NONE) continue;
    auto secret = ctx.Secret(g.access_key());
    if (!secret.ok()) {
      if (secret.status().code() == Code::NOT_FOUND)
        return Err(400, "InvalidArgument", "Invalid id");
      return ErrorFromStatus(secret.status());
    }
  }
  return acl;
}

const char* OwnershipName(ObjectOwnership o) {
  switch (o) {
    case OBJECT_WRITER:
      return "ObjectWriter";
    case BUCKET_OWNER_PREFERRED:
      return "BucketOwnerPreferred";
    case BUCKET_OWNER_ENFORCED:
      return "BucketOwnerEnforced";
    default:
      return "";
  }
}

}  // namespace

Response AclResponse(const std::string& owner,
                     const google::protobuf::RepeatedPtrField<AclGrant>& acl) {
  Xml x("AccessControlPolicy");
  auto o = x.root().append_child("Owner");
  Add(o, "ID", OwnerId(owner));
  Add(o, "DisplayName", owner);
  auto list = x.root().append_child("AccessControlList");
  auto add = [&](const AclGrant& g) {
    auto grant = list.append_child("Grant");
    auto grantee = grant.append_child("Grantee");
    grantee.append_attribute("xmlns:xsi") = kXsi;
    if (g.group() == ACL_GROUP_NONE) {
      grantee.append_attribute("xsi:type") = "CanonicalUser";
      Add(grantee, "ID", OwnerId(g.access_key()));
      Add(grantee, "DisplayName", g.access_key());
    } else {
      grantee.append_attribute("xsi:type") = "Group";
      Add(grantee, "URI", GroupUri(g.group()));
    }
    Add(grant, "Permission", PermissionName(g.permission()));
  };
  if (acl.empty()) {  // never set: the owner's FULL_CONTROL (the "private" canned ACL)
    AclGrant g;
    g.set_access_key(owner);
    g.set_permission(ACL_FULL_CONTROL);
    add(g);
  }
  for (const AclGrant& g : acl) add(g);
  return XmlResponse(x);
}

Outcome GetBucketAcl(Context&, const Request&, const Identity&, const Bucket& b) {
  // With ACLs disabled, "requests to read ACLs always return a response that shows full control
  // for the bucket owner".
  if (b.object_ownership() == BUCKET_OWNER_ENFORCED) return AclResponse(b.owner(), {});
  return AclResponse(b.owner(), b.acl());
}

Outcome PutBucketAcl(Context& ctx, Request& req, const Identity& id, const Bucket& b) {
  if (b.object_ownership() == BUCKET_OWNER_ENFORCED) return AclsDisabled();
  auto acl = AclToSet(ctx, req, id, b.owner(), b.owner(), /*for_bucket=*/true);
  if (auto* e = std::get_if<S3Error>(&acl)) return *e;
  BucketConfigureRequest cr;
  cr.set_name(b.name());
  cr.set_set_acl(true);
  for (AclGrant& g : std::get<Acl>(acl)) *cr.add_acl() = std::move(g);
  auto done = ctx.objects().BucketConfigure(cr);
  ctx.ForgetBucket(b.name());
  if (!done.ok()) {
    if (done.status().code() == Code::NOT_FOUND) return Err(400, "InvalidArgument", "Invalid id");
    return ErrorFromStatus(done.status());
  }
  return Empty(200);
}

Outcome GetObjectAcl(Context& ctx, const Request& req, const Identity& id, const Bucket& b) {
  auto got = AuthorizedObject(ctx, b, req.key, id, false, Permission::kReadAcp);
  if (auto* e = std::get_if<S3Error>(&got)) return *e;
  const ObjectInfo& info = std::get<ObjectGetReply>(got).info();
  if (b.object_ownership() == BUCKET_OWNER_ENFORCED) return AclResponse(b.owner(), {});
  return AclResponse(ObjectOwner(b, info), info.acl());
}

Outcome PutObjectAcl(Context& ctx, Request& req, const Identity& id, const Bucket& b) {
  auto got = AuthorizedObject(ctx, b, req.key, id, false, Permission::kWriteAcp);
  if (auto* e = std::get_if<S3Error>(&got)) return *e;
  if (b.object_ownership() == BUCKET_OWNER_ENFORCED) return AclsDisabled();
  const ObjectInfo& info = std::get<ObjectGetReply>(got).info();
  auto acl = AclToSet(ctx, req, id, ObjectOwner(b, info), b.owner(), /*for_bucket=*/false);
  if (auto* e = std::get_if<S3Error>(&acl)) return *e;
  ObjectUpdateRequest ur;
  ur.set_volume_id(b.volume_id());
  ur.set_key(req.key);
  ur.set_set_acl(true);
  for (AclGrant& g : std::get<Acl>(acl)) *ur.add_acl() = std::move(g);
  auto done = ctx.objects().Update(ur);
  if (!done.ok()) return ObjectError(done.status());
  return Empty(200);
}

Outcome GetOwnershipControls(const Bucket& b) {
  if (b.object_ownership() == OWNERSHIP_UNSET) {
    return Err(404, "OwnershipControlsNotFoundError",
               "The bucket ownership controls were not found");
  }
  Xml x("OwnershipControls");
  Add(x.root().append_child("Rule"), "ObjectOwnership", OwnershipName(b.object_ownership()));
  return XmlResponse(x);
}

Outcome PutOwnershipControls(Context& ctx, Request& req, const Identity& id, const Bucket& b) {
  auto body = SmallBody(req, id, 64 << 10);
  if (auto* e = std::get_if<S3Error>(&body)) return *e;
  pugi::xml_document doc;
  if (!LoadXml(doc, std::get<std::string>(body))) return MalformedXml();
  auto rules = doc.child("OwnershipControls");
  std::optional<ObjectOwnership> ownership;
  int count = 0;
  for (auto rule : rules.children("Rule")) {
    ++count;
    const std::string v = rule.child_value("ObjectOwnership");
    for (ObjectOwnership o : {OBJECT_WRITER, BUCKET_OWNER_PREFERRED, BUCKET_OWNER_ENFORCED}) {
      if (v == OwnershipName(o)) ownership = o;
    }
  }
  if (count != 1 || !ownership) return MalformedXml();
  BucketConfigureRequest cr;
  cr.set_name(b.name());
  cr.set_set_ownership(true);
  cr.set_object_ownership(*ownership);
  auto done = ctx.objects().BucketConfigure(cr);
  ctx.ForgetBucket(b.name());
  if (!done.ok()) return ErrorFromStatus(done.status());
  return Empty(200);
}

Outcome DeleteOwnershipControls(Context& ctx, const Bucket& b) {
  BucketConfigureRequest cr;
  cr.set_name(b.name());
  cr.set_set_ownership(true);
  cr.set_object_ownership(OWNERSHIP_UNSET);
  auto done = ctx.objects().BucketConfigure(cr);
  ctx.ForgetBucket(b.name());
  if (!done.ok()) return ErrorFromStatus(done.status());
  return Empty(204);
}

}  // namespace granary::s3
