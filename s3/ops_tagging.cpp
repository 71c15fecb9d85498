// Object tagging (docs/s3.md "Tagging"): Get/Put/DeleteObjectTagging. Tags given with PUT,
// CreateMultipartUpload and CopyObject are NewObjectSettings' (access.cpp); GET and HEAD answer
// x-amz-tagging-count.
#include "s3/internal.h"

namespace granary::s3 {

namespace {

Outcome SetTags(Context& ctx, const Request& req, const Bucket& b, const Tags& tags, int status) {
  ObjectUpdateRequest ur;
  ur.set_volume_id(b.volume_id());
  ur.set_key(req.key);
  ur.set_set_tags(true);
  for (auto& [k, v] : tags) (*ur.mutable_tags())[k] = v;
  auto done = ctx.objects().Update(ur);
  if (!done.ok()) return ObjectError(done.status());
  return Empty(status);
}

}  // namespace

Outcome GetObjectTagging(Context& ctx, const Request& req, const Identity& id, const Bucket& b) {
  if (auto e = CheckKey(req.key)) return *e;
  auto got = AuthorizedObject(ctx, b, req.key, id, false);
  if (auto* e = std::get_if<S3Error>(&got)) return *e;
  Xml x("Tagging");
  auto set = x.root().append_child("TagSet");
  for (const auto& [k, v] : std::get<ObjectGetReply>(got).info().tags()) {
    auto tag = set.append_child("Tag");
    Add(tag, "Key", k);
    Add(tag, "Value", v);
  }
  return XmlResponse(x);
}

Outcome PutObjectTagging(Context& ctx, Request& req, const Identity& id, const Bucket& b) {
  if (auto e = CheckKey(req.key)) return *e;
  auto body = SmallBody(req, id, 64 << 10);
  if (auto* e = std::get_if<S3Error>(&body)) return *e;
  auto tags = ParseTaggingXml(std::get<std::string>(body));
  if (auto* e = std::get_if<S3Error>(&tags)) return *e;
  return SetTags(ctx, req, b, std::get<Tags>(tags), 200);
}

Outcome DeleteObjectTagging(Context& ctx, const Request& req, const Identity&, const Bucket& b) {
  if (auto e = CheckKey(req.key)) return *e;
  return SetTags(ctx, req, b, {}, 204);
}

}  // namespace granary::s3
