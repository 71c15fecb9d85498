// Bucket operations: ListBuckets, CreateBucket, DeleteBucket (HeadBucket is in dispatch.cpp).
#include <fmt/format.h>

#include <pugixml.hpp>

#include "common/bucket_name.h"
#include "s3/internal.h"

namespace granary::s3 {

namespace {

// x-amz-object-ownership of CreateBucket; nullopt when the value is not one of S3's.
std::optional<ObjectOwnership> ParseOwnership(std::string_view v) {
  if (v == "ObjectWriter") return OBJECT_WRITER;
  if (v == "BucketOwnerPreferred") return BUCKET_OWNER_PREFERRED;
  if (v == "BucketOwnerEnforced") return BUCKET_OWNER_ENFORCED;
  return std::nullopt;
}

bool VisibleTo(const Bucket& b, const Identity& id) {
  if (b.owner() == id.access_key) return true;
  for (const Grant& g : b.grants()) {
    if (g.access_key() == id.access_key) return true;
  }
  for (const AclGrant& g : b.acl()) {
    if (g.group() == ACL_GROUP_NONE && g.access_key() == id.access_key) return true;
  }
  return false;
}

}  // namespace

Outcome ListBuckets(Context& ctx, const Request& req, const Identity& id) {
  // S3 API Reference, ListBuckets: max-buckets (1..10000), continuation-token, prefix and
  // bucket-region; the token is opaque (here: the last name listed, base64).
  const bool paged = req.Has("max-buckets") || req.Has("continuation-token") || req.Has("prefix") ||
                     req.Has("bucket-region");
  size_t max = 10000;
  if (req.Has("max-buckets")) {
    const std::string text = req.Q("max-buckets");
    long v = 0;
    try {
      size_t used = 0;
      v = std::stol(text, &used);
      if (used != text.size()) v = 0;
    } catch (...) {
      v = 0;
    }
    if (v < 1 || v > 10000) {
      return Err(400, "InvalidArgument",
                 "Argument max-buckets must be an integer between 1 and 10000");
    }
    max = static_cast<size_t>(v);
  }
  std::string after;
  if (req.Has("continuation-token")) {
    auto decoded = Base64Decode(req.Q("continuation-token"));
    if (!decoded || decoded->empty()) {
      return Err(400, "InvalidArgument", "The continuation token provided is incorrect");
    }
    after = *decoded;
  }
  const std::string prefix = req.Q("prefix");
  const bool other_region =
      req.Has("bucket-region") && req.Q("bucket-region") != ctx.options().region;
  auto all = ctx.meta().BucketList();
  if (!all.ok()) return ErrorFromStatus(all.status());
  std::sort(all->begin(), all->end(),
            [](const Bucket& a, const Bucket& b) { return a.name() < b.name(); });
  Xml x("ListAllMyBucketsResult");
  auto list = x.root().append_child("Buckets");
  size_t shown = 0;
  std::string last;
  bool more = false;
  for (const Bucket& b : *all) {
    if (other_region || !VisibleTo(b, id)) continue;  // other keys' buckets stay invisible
    if (!b.name().starts_with(prefix) || (!after.empty() && b.name() <= after)) continue;
    if (shown == max) {
      more = true;
      break;
    }
    auto n = list.append_child("Bucket");
    Add(n, "Name", b.name());
    Timespec t;
    t.set_sec(b.created_ms() / 1000);
    t.set_nsec(static_cast<uint32_t>(b.created_ms() % 1000) * 1000000);
    Add(n, "CreationDate", IsoDate(t));
    if (paged) Add(n, "BucketRegion", ctx.options().region);
    last = b.name();
    ++shown;
  }
  auto owner = x.root().append_child("Owner");
  Add(owner, "ID", OwnerId(id.access_key));
  Add(owner, "DisplayName", id.access_key);
  if (more) Add(x.root(), "ContinuationToken", Base64(last));
  if (req.Has("prefix")) Add(x.root(), "Prefix", prefix);
  return XmlResponse(x);
}

Outcome CreateBucket(Context& ctx, Request& req, const Identity& id) {
  if (auto problem = BucketNameProblem(req.bucket)) {
    return Err(400, "InvalidBucketName",
               fmt::format("The specified bucket is not valid: it {}.", *problem));
  }
  BucketCreateRequest create;
  create.set_name(req.bucket);
  create.set_owner(id.access_key);
  if (auto* o = req.headers.Find("x-amz-object-ownership")) {
    auto ownership = ParseOwnership(*o);
    if (!ownership) {
      return Err(400, "InvalidArgument", fmt::format("Invalid x-amz-object-ownership: '{}'", *o));
    }
    create.set_object_ownership(*ownership);
  }
  auto acl = RequestedAcl(ctx, req, id.access_key, id.access_key, /*for_bucket=*/true);
  if (auto* e = std::get_if<S3Error>(&acl)) return *e;
  if (auto& requested = std::get<std::optional<Acl>>(acl)) {
    const bool owner_only =
        std::all_of(requested->begin(), requested->end(), [&](const AclGrant& g) {
          return g.group() == ACL_GROUP_NONE && g.access_key() == id.access_key;
        });
    if (create.object_ownership() == BUCKET_OWNER_ENFORCED) {
      // S3 User Guide, "Object Ownership": a bucket ACL granting others access cannot go with
      // BucketOwnerEnforced.
      if (!owner_only) {
        return Err(400, "InvalidBucketAclWithObjectOwnership",
                   "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced "
                   "setting");
      }
    } else {
      for (AclGrant& g : *requested) *create.add_acl() = std::move(g);
    }
  }
  auto body = SmallBody(req, id, 64 << 10);
  if (auto* e = std::get_if<S3Error>(&body)) return *e;
  const std::string& xml = std::get<std::string>(body);
  if (!xml.empty()) {
    pugi::xml_document doc;
    if (!LoadXml(doc, xml) || !doc.child("CreateBucketConfiguration")) return MalformedXml();
  }
  auto b = ctx.meta().BucketCreate(create);
  if (!b.ok()) {
    if (b.status().code() == Code::ALREADY_EXISTS) {
      auto existing = ctx.meta().BucketGet(req.bucket);
      if (existing.ok() && existing->owner() == id.access_key) {
        return Err(409, "BucketAlreadyOwnedByYou",
                   "Your previous request to create the named bucket succeeded and you already "
                   "own it.");
      }
      return Err(409, "BucketAlreadyExists",
                 "The requested bucket name is not available (a bucket or volume has it).");
    }
    // The owner is the signing key: a missing key is a grantee deleted meanwhile.
    if (b.status().code() == Code::NOT_FOUND) return Err(400, "InvalidArgument", "Invalid id");
    return ErrorFromStatus(b.status());
  }
  ctx.ForgetBucket(req.bucket);
  Response r = Empty(200);
  r.Header("Location", "/" + req.bucket);
  return r;
}

Outcome DeleteBucket(Context& ctx, const Request& req, const Identity& id, const Bucket& b) {
  ObjectListRequest lr;
  lr.set_volume_id(b.volume_id());
  lr.set_max_keys(1);
  auto list = ctx.objects().List(lr);
  if (!list.ok()) return ErrorFromStatus(list.status());
  if (list->objects_size() > 0 || list->common_prefixes_size() > 0) {
    return Err(409, "BucketNotEmpty", "The bucket you tried to delete is not empty");
  }
  Status s = ctx.meta().BucketDelete(req.bucket);
  ctx.ForgetBucket(req.bucket);
  if (!s.ok()) {
    if (s.code() == Code::NOT_EMPTY) {
      return Err(409, "BucketNotEmpty", "The bucket you tried to delete is not empty");
    }
    if (s.code() == Code::NOT_FOUND) {
      return Err(404, "NoSuchBucket", "The specified bucket does not exist");
    }
    return ErrorFromStatus(s);
  }
  return Empty(204);
}

}  // namespace granary::s3
