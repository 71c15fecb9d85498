// GetObjectAttributes (S3 API Reference, GetObjectAttributes): ETag, Checksum, ObjectParts (a
// multipart object's parts, paged), StorageClass, ObjectSize in one answer without the bytes.
#include <fmt/format.h>

#include "s3/internal.h"
#include "s3/s3_util.h"

namespace granary::s3 {

Result<std::optional<ObjectMeta>> StoredMeta(Context& ctx, const ObjectInfo& info) {
  if (info.is_directory()) return std::optional<ObjectMeta>();
  auto raw = ctx.meta().GetXattr(info.attr().ino(), kObjectMetaXattr);
  if (!raw.ok()) {
    if (raw.status().code() == Code::NOT_FOUND) return std::optional<ObjectMeta>();  // POSIX
    return raw.status().WithContext(
        fmt::format("read the S3 metadata of '{}' (inode {})", info.key(), info.attr().ino()));
  }
  ObjectMeta m;
  // Checksum and parts describe the bytes: a POSIX write since makes them stale.
  if (!m.ParseFromString(*raw) || m.etag().empty() ||
      m.commit_version() != info.attr().commit_version()) {
    return std::optional<ObjectMeta>();
  }
  return std::optional<ObjectMeta>(std::move(m));
}

Outcome GetObjectAttributes(Context& ctx, const Request& req, const Identity& id, const Bucket& b) {
  if (auto e = CheckKey(req.key)) return *e;
  const std::string* asked = req.headers.Find("x-amz-object-attributes");
  std::vector<std::string> names;
  if (asked) names = SplitList(*asked);
  if (names.empty()) {
    return Err(400, "InvalidRequest",
               "The x-amz-object-attributes header specifying the attributes to be retrieved "
               "is either missing or empty");
  }
  bool etag = false, checksum = false, parts = false, storage_class = false, size = false;
  for (const std::string& n : names) {
    if (n == "ETag") {
      etag = true;
    } else if (n == "Checksum") {
      checksum = true;
    } else if (n == "ObjectParts") {
      parts = true;
    } else if (n == "StorageClass") {
      storage_class = true;
    } else if (n == "ObjectSize") {
      size = true;
    } else {
      return Err(400, "InvalidArgument", "Invalid attribute name specified.");
    }
  }
  uint32_t max_parts = 1000, marker = 0;
  try {
    if (auto* m = req.headers.Find("x-amz-max-parts")) {
      max_parts = static_cast<uint32_t>(std::min<unsigned long>(std::stoul(*m), 1000));
    }
    if (auto* m = req.headers.Find("x-amz-part-number-marker")) marker = std::stoul(*m);
  } catch (...) {
    return Err(400, "InvalidArgument", "x-amz-max-parts and x-amz-part-number-marker are integers");
  }
  auto got = AuthorizedObject(ctx, b, req.key, id, false);
  if (auto* e = std::get_if<S3Error>(&got)) return *e;
  const ObjectInfo& info = std::get<ObjectGetReply>(got).info();
  std::optional<ObjectMeta> meta;
  if (checksum || parts) {
    auto stored = StoredMeta(ctx, info);
    if (!stored.ok()) return ErrorFromStatus(stored.status());
    meta = std::move(*stored);
  }
  Xml x("GetObjectAttributesResponse");
  auto root = x.root();
  if (etag) Add(root, "ETag", Unquote(info.etag()));  // unquoted, unlike GetObject's header
  auto alg = meta ? ParseChecksumAlgorithm(meta->checksum_algorithm()) : std::nullopt;
  if (checksum && alg && !meta->checksum().empty()) {
    auto c = root.append_child("Checksum");
    Add(c, ChecksumElement(*alg).c_str(), meta->checksum());
    Add(c, "ChecksumType", meta->checksum_composite() ? "COMPOSITE" : "FULL_OBJECT");
  }
  if (parts && meta && meta->parts_size() > 0) {
    auto p = root.append_child("ObjectParts");
    Add(p, "PartsCount", std::to_string(meta->parts_size()));  // boto3: TotalPartsCount
    Add(p, "PartNumberMarker", std::to_string(marker));
    std::vector<const ObjectPart*> shown;
    bool truncated = false;
    for (const ObjectPart& part : meta->parts()) {
      if (part.number() <= marker) continue;
      if (shown.size() == max_parts) {
        truncated = true;
        break;
      }
      shown.push_back(&part);
    }
    if (truncated && !shown.empty()) {
      Add(p, "NextPartNumberMarker", std::to_string(shown.back()->number()));
    }
    Add(p, "MaxParts", std::to_string(max_parts));
    Add(p, "IsTruncated", truncated ? "true" : "false");
    for (const ObjectPart* part : shown) {
      auto n = p.append_child("Part");
      Add(n, "PartNumber", std::to_string(part->number()));
      Add(n, "Size", std::to_string(part->size()));
      if (alg && !part->checksum().empty()) {
        Add(n, ChecksumElement(*alg).c_str(), part->checksum());
      }
    }
  }
  if (storage_class) Add(root, "StorageClass", "STANDARD");
  if (size) {
    Add(root, "ObjectSize", std::to_string(info.is_directory() ? 0 : info.attr().size()));
  }
  Response r = XmlResponse(x);
  r.Header("Last-Modified", HttpDate(info.attr().mtime().sec()));
  return r;
}

}  // namespace granary::s3
