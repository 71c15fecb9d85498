// Object listings: ListObjects v1/v2 and ListObjectVersions (each object its one null version).
#include <pugixml.hpp>

#include "s3/internal.h"

namespace granary::s3 {

namespace {

struct ListParams {
  std::string prefix, delimiter, after;
  int max_keys = 1000;
  bool url = false;
};

std::variant<ListParams, S3Error> ParseListParams(const Request& req, const std::string& after) {
  ListParams p;
  p.prefix = req.Q("prefix");
  p.delimiter = req.Q("delimiter");
  p.after = after;
  std::string et = req.Q("encoding-type");
  if (!et.empty() && et != "url") {
    return Err(400, "InvalidArgument", "Invalid Encoding Method specified in Request");
  }
  p.url = et == "url";
  if (req.Has("max-keys")) {
    try {
      size_t used = 0;
      long v = std::stol(req.Q("max-keys"), &used);
      if (used != req.Q("max-keys").size() || v < 0) throw std::invalid_argument("");
      p.max_keys = static_cast<int>(std::min<long>(v, 1000));
    } catch (...) {
      return Err(400, "InvalidArgument",
                 "Provided max-keys not an integer or within integer range");
    }
  }
  return p;
}

Result<ObjectListReply> RunList(Context& ctx, const Bucket& b, const ListParams& p) {
  if (p.max_keys == 0) return ObjectListReply{};
  ObjectListRequest lr;
  lr.set_volume_id(b.volume_id());
  lr.set_prefix(p.prefix);
  lr.set_delimiter(p.delimiter);
  lr.set_start_after(p.after);
  lr.set_max_keys(static_cast<uint32_t>(p.max_keys));
  return ctx.objects().List(lr);
}

std::string Enc(const ListParams& p, const std::string& v) {
  return p.url ? UriEncode(v, true) : v;
}

void AddContents(pugi::xml_node root, const ObjectInfo& o, const ListParams& p, const Bucket& b,
                 bool owner) {
  auto c = root.append_child("Contents");
  Add(c, "Key", Enc(p, o.key()));
  Add(c, "LastModified", IsoDate(o.attr().mtime()));
  Add(c, "ETag", o.etag());
  Add(c, "Size", std::to_string(o.is_directory() ? 0 : o.attr().size()));
  if (owner) {  // the object's, not the requester's (an anonymous lister has none)
    auto ow = c.append_child("Owner");
    Add(ow, "ID", OwnerId(ObjectOwner(b, o)));
    Add(ow, "DisplayName", ObjectOwner(b, o));
  }
  Add(c, "StorageClass", "STANDARD");
}

}  // namespace

Outcome ListObjects(Context& ctx, const Request& req, const Identity& id, const Bucket& b) {
  const bool v2 = req.Q("list-type") == "2";
  std::string after;
  std::string token = req.Q("continuation-token");
  if (v2) {
    if (req.Has("continuation-token")) {
      auto decoded = Base64Decode(token);
      if (!decoded)
        return Err(400, "InvalidArgument", "The continuation token provided is incorrect");
      after = *decoded;
    } else {
      after = req.Q("start-after");
    }
  } else {
    after = req.Q("marker");
  }
  auto pv = ParseListParams(req, after);
  if (auto* e = std::get_if<S3Error>(&pv)) return *e;
  const ListParams& p = std::get<ListParams>(pv);
  auto list = RunList(ctx, b, p);
  if (!list.ok()) return ErrorFromStatus(list.status());
  Xml x("ListBucketResult");
  auto root = x.root();
  Add(root, "Name", req.bucket);
  Add(root, "Prefix", Enc(p, p.prefix));
  if (v2) {
    if (req.Has("start-after")) Add(root, "StartAfter", Enc(p, req.Q("start-after")));
    if (req.Has("continuation-token")) Add(root, "ContinuationToken", token);
    Add(root, "KeyCount", std::to_string(list->objects_size() + list->common_prefixes_size()));
  } else {
    Add(root, "Marker", Enc(p, after));
  }
  Add(root, "MaxKeys", std::to_string(p.max_keys));
  if (!p.delimiter.empty()) Add(root, "Delimiter", Enc(p, p.delimiter));
  if (p.url) Add(root, "EncodingType", "url");
  Add(root, "IsTruncated", list->truncated() ? "true" : "false");
  if (list->truncated()) {
    if (v2) {
      Add(root, "NextContinuationToken", Base64(list->next_marker()));
    } else {
      Add(root, "NextMarker", Enc(p, list->next_marker()));
    }
  }
  const bool owner = !v2 || req.Q("fetch-owner") == "true";
  for (const ObjectInfo& o : list->objects()) AddContents(root, o, p, b, owner);
  for (const std::string& cp : list->common_prefixes()) {
    Add(root.append_child("CommonPrefixes"), "Prefix", Enc(p, cp));
  }
  return XmlResponse(x);
}

Outcome ListVersions(Context& ctx, const Request& req, const Identity& id, const Bucket& b) {
  auto pv = ParseListParams(req, req.Q("key-marker"));
  if (auto* e = std::get_if<S3Error>(&pv)) return *e;
  const ListParams& p = std::get<ListParams>(pv);
  auto list = RunList(ctx, b, p);
  if (!list.ok()) return ErrorFromStatus(list.status());
  Xml x("ListVersionsResult");
  auto root = x.root();
  Add(root, "Name", req.bucket);
  Add(root, "Prefix", Enc(p, p.prefix));
  Add(root, "KeyMarker", Enc(p, p.after));
  Add(root, "VersionIdMarker", "");
  Add(root, "MaxKeys", std::to_string(p.max_keys));
  if (!p.delimiter.empty()) Add(root, "Delimiter", Enc(p, p.delimiter));
  if (p.url) Add(root, "EncodingType", "url");
  Add(root, "IsTruncated", list->truncated() ? "true" : "false");
  if (list->truncated()) {
    Add(root, "NextKeyMarker", Enc(p, list->next_marker()));
    Add(root, "NextVersionIdMarker", "null");
  }
  for (const ObjectInfo& o : list->objects()) {
    auto v = root.append_child("Version");
    Add(v, "Key", Enc(p, o.key()));
    Add(v, "VersionId", "null");
    Add(v, "IsLatest", "true");
    Add(v, "LastModified", IsoDate(o.attr().mtime()));
    Add(v, "ETag", o.etag());
    Add(v, "Size", std::to_string(o.is_directory() ? 0 : o.attr().size()));
    auto ow = v.append_child("Owner");
    Add(ow, "ID", OwnerId(ObjectOwner(b, o)));
    Add(ow, "DisplayName", ObjectOwner(b, o));
    Add(v, "StorageClass", "STANDARD");
  }
  for (const std::string& cp : list->common_prefixes()) {
    Add(root.append_child("CommonPrefixes"), "Prefix", Enc(p, cp));
  }
  return XmlResponse(x);
}

}  // namespace granary::s3
