// Bucket operations: ListBuckets, CreateBucket, DeleteBucket (HeadBucket is in dispatch.cpp).
#include <pugixml.hpp>

#include "s3/internal.h"

namespace granary::s3 {

namespace {

bool ValidBucketName(const std::string& n) {
  if (n.size() < 3 || n.size() > 63) return false;
  for (char c : n) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
  }
  if (!isalnum(static_cast<unsigned char>(n.front())) ||
      !isalnum(static_cast<unsigned char>(n.back())))
    return false;
  return n.find("..") == std::string::npos;
}

}  // namespace

Outcome ListBuckets(Context& ctx, const Identity& id) {
  auto all = ctx.meta().BucketList();
  if (!all.ok()) return ErrorFromStatus(all.status());
  Xml x("ListAllMyBucketsResult");
  auto owner = x.root().append_child("Owner");
  Add(owner, "ID", OwnerId(id.access_key));
  Add(owner, "DisplayName", id.access_key);
  auto list = x.root().append_child("Buckets");
  for (const Bucket& b : *all) {
    bool visible = b.owner() == id.access_key;
    for (const Grant& g : b.grants()) visible |= g.access_key() == id.access_key;
    if (!visible) continue;  // other keys' buckets stay invisible
    auto n = list.append_child("Bucket");
    Add(n, "Name", b.name());
    Timespec t;
    t.set_sec(b.created_ms() / 1000);
    t.set_nsec(static_cast<uint32_t>(b.created_ms() % 1000) * 1000000);
    Add(n, "CreationDate", IsoDate(t));
  }
  return XmlResponse(x);
}

Outcome CreateBucket(Context& ctx, Request& req, const Identity& id) {
  if (!ValidBucketName(req.bucket)) {
    return Err(400, "InvalidBucketName", "The specified bucket is not valid.");
  }
  auto body = SmallBody(req, id, 64 << 10);
  if (auto* e = std::get_if<S3Error>(&body)) return *e;
  const std::string& xml = std::get<std::string>(body);
  if (!xml.empty()) {
    pugi::xml_document doc;
    if (!doc.load_buffer(xml.data(), xml.size()) || !doc.child("CreateBucketConfiguration")) {
      return Err(400, "MalformedXML",
                 "The XML you provided was not well-formed or did not validate against our "
                 "published schema.");
    }
  }
  auto b = ctx.meta().BucketCreate(req.bucket, id.access_key);
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
    return ErrorFromStatus(b.status());
  }
  ctx.ForgetBucket(req.bucket);
  Response r = Empty(200);
  r.Header("Location", "/" + req.bucket);
  return r;
}

Outcome DeleteBucket(Context& ctx, const Request& req, const Identity& id) {
  auto b = Authorize(ctx, req, id, true);
  if (auto* e = std::get_if<S3Error>(&b)) return *e;
  if (std::get<Bucket>(b).owner() != id.access_key) {
    return Err(403, "AccessDenied", "only the bucket's owner may delete it");
  }
  ObjectListRequest lr;
  lr.set_volume_id(std::get<Bucket>(b).volume_id());
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
