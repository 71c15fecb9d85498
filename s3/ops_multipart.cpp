// Multipart uploads: create, upload or copy a part, complete, abort, list parts and uploads.
#include <fmt/format.h>

#include <pugixml.hpp>

#include "common/log.h"
#include "s3/internal.h"
#include "s3/s3_util.h"

namespace granary::s3 {

namespace {

constexpr uint64_t kMinPartSize = 5ull << 20;

std::variant<Upload, S3Error> LoadUpload(Context& ctx, const Request& req, const Bucket& b) {
  auto up = ctx.objects().UploadGet(b.volume_id(), req.Q("uploadId"));
  if (!up.ok() || up->key() != req.key) {
    if (!up.ok() && up.status().code() != Code::NOT_FOUND) return ErrorFromStatus(up.status());
    return Err(404, "NoSuchUpload",
               "The specified upload does not exist. The upload ID may be invalid, or the "
               "upload may have been aborted or completed.");
  }
  return std::move(*up);
}

S3Error NoSuchUpload() {
  return Err(404, "NoSuchUpload",
             "The specified upload does not exist. The upload ID may be invalid, or the upload "
             "may have been aborted or completed.");
}

// The parts a CompleteMultipartUpload document lists (number, ETag), in its order.
std::variant<std::vector<UploadPart>, S3Error> ParseCompleteParts(pugi::xml_node root) {
  std::vector<UploadPart> parts;
  for (auto p : root.children("Part")) {
    UploadPart part;
    try {
      part.set_number(static_cast<uint32_t>(std::stoul(p.child_value("PartNumber"))));
    } catch (...) {
      return MalformedXml();
    }
    part.set_etag(p.child_value("ETag"));
    parts.push_back(std::move(part));
  }
  return parts;
}

// A Complete repeated after it succeeded: S3 answers 200 with the first result (clients retry
// it after a lost reply); the metanode keeps that result for an hour and checks the parts.
std::variant<ObjectReply, S3Error> RepeatedComplete(Context& ctx, Request& req, const Identity& id,
                                                    const Bucket& b) {
  auto body = SmallBody(req, id, 4 << 20, /*header_checksums=*/false);
  if (auto* e = std::get_if<S3Error>(&body)) return *e;
  const std::string& xml = std::get<std::string>(body);
  pugi::xml_document doc;
  if (!LoadXml(doc, xml) || !doc.child("CompleteMultipartUpload")) return MalformedXml();
  auto parts = ParseCompleteParts(doc.child("CompleteMultipartUpload"));
  if (auto* e = std::get_if<S3Error>(&parts)) return *e;
  UploadCompleteRequest cr;
  cr.set_volume_id(b.volume_id());
  cr.set_upload_id(req.Q("uploadId"));
  for (auto& p : std::get<std::vector<UploadPart>>(parts)) *cr.add_parts() = std::move(p);
  auto done = ctx.objects().UploadComplete(cr);
  if (!done.ok()) {
    if (done.status().code() == Code::NOT_FOUND) return NoSuchUpload();
    return ErrorFromStatus(done.status());
  }
  return std::move(*done);
}

// The algorithm the upload's parts use (CreateMultipartUpload's x-amz-checksum-algorithm).
std::optional<ChecksumAlgorithm> UploadAlgorithm(const Upload& u) {
  if (u.meta().checksum_algorithm().empty()) return std::nullopt;
  return ParseChecksumAlgorithm(u.meta().checksum_algorithm());
}

std::optional<Checksum> PartChecksum(const UploadPart& p) {
  auto a = ParseChecksumAlgorithm(p.checksum_algorithm());
  if (!a || p.checksum().empty()) return std::nullopt;
  return Checksum{*a, p.checksum(), false};
}

}  // namespace

namespace {

Response CompleteResult(const Request& req, const ObjectReply& done) {
  std::optional<Checksum> checksum;
  if (auto a = ParseChecksumAlgorithm(done.checksum_algorithm()); a && !done.checksum().empty()) {
    checksum = Checksum{*a, done.checksum(), true};
  }
  Xml x("CompleteMultipartUploadResult");
  Add(x.root(), "Location", "/" + req.bucket + "/" + req.key);
  Add(x.root(), "Bucket", req.bucket);
  Add(x.root(), "Key", req.key);
  Add(x.root(), "ETag", done.info().etag());
  if (checksum) {
    Add(x.root(), ChecksumElement(checksum->algorithm).c_str(), checksum->value);
    Add(x.root(), "ChecksumType", "COMPOSITE");
  }
  Response r = XmlResponse(x);
  if (checksum) ChecksumHeaders(r, *checksum);
  return r;
}

}  // namespace

Outcome CreateUpload(Context& ctx, const Request& req, const Identity& id, const Bucket& b) {
  if (auto e = CheckKey(req.key)) return *e;
  if (req.key.ends_with('/')) return Err(400, "InvalidRequest", "a directory takes no upload");
  auto alg = RequestedAlgorithm(req);
  if (auto* e = std::get_if<S3Error>(&alg)) return *e;
  const auto algorithm = std::get<std::optional<ChecksumAlgorithm>>(alg);
  if (auto* t = req.headers.Find("x-amz-checksum-type"); t && *t != "COMPOSITE") {
    return Err(501, "NotImplemented",
               "Only the COMPOSITE checksum type is supported for multipart uploads");
  }
  UploadCreateRequest ur;
  ur.set_volume_id(b.volume_id());
  ur.set_key(req.key);
  *ur.mutable_meta() = MetaFromRequest(req);
  // Owner, ACL and tags of the object-to-be, stored with the upload and given to the object.
  if (auto e = NewObjectSettings(ctx, req, id, b, ur.mutable_meta())) return *e;
  if (algorithm) ur.mutable_meta()->set_checksum_algorithm(std::string(AlgorithmName(*algorithm)));
  ur.set_uid(b.uid());
  ur.set_gid(b.gid());
  auto up = ctx.objects().UploadCreate(ur);
  if (!up.ok()) return ObjectError(up.status());
  Xml x("InitiateMultipartUploadResult");
  Add(x.root(), "Bucket", req.bucket);
  Add(x.root(), "Key", req.key);
  Add(x.root(), "UploadId", up->upload_id());
  Response r = XmlResponse(x);
  if (algorithm) {
    r.Header("x-amz-checksum-algorithm", std::string(AlgorithmName(*algorithm)));
    r.Header("x-amz-checksum-type", "COMPOSITE");
  }
  return r;
}

Outcome UploadPartOp(Context& ctx, Request& req, const Identity& id, const Bucket& b) {
  int number = 0;
  try {
    number = std::stoi(req.Q("partNumber"));
  } catch (...) {
  }
  if (number < 1 || number > 10000) {
    return Err(400, "InvalidArgument", "Part number must be an integer between 1 and 10000");
  }
  auto up = LoadUpload(ctx, req, b);
  if (auto* e = std::get_if<S3Error>(&up)) return *e;
  const Upload& u = std::get<Upload>(up);
  const bool copy = req.headers.Find("x-amz-copy-source") != nullptr;
  const auto algorithm = UploadAlgorithm(u);
  std::variant<Uploaded, S3Error> got = copy ? CopyIntoPart(ctx, req, id, b, u.layout(), algorithm)
                                             : ReceiveInto(ctx, req, id, b, &u.layout(), algorithm);
  if (auto* e = std::get_if<S3Error>(&got)) return *e;
  Uploaded& data = std::get<Uploaded>(got);
  UploadPartRequest pr;
  pr.set_volume_id(b.volume_id());
  pr.set_upload_id(u.upload_id());
  pr.set_handle_owner(data.staged.handle_owner);
  UploadPart& part = *pr.mutable_part();
  part.set_number(static_cast<uint32_t>(number));
  part.set_ino(data.staged.attr.ino());
  part.set_etag(Quote(Hex(data.md5)));
  part.set_size(data.size);
  if (data.checksum) {
    part.set_checksum_algorithm(std::string(AlgorithmName(data.checksum->algorithm)));
    part.set_checksum(data.checksum->value);
  }
  part.set_modified_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count());
  auto stored = ctx.objects().UploadPartCommit(pr);
  if (!stored.ok()) {
    data.staged.file->Close().PermitUnchecked();
    if (stored.status().code() == Code::NOT_FOUND) {
      return Err(404, "NoSuchUpload", "The specified upload does not exist.");
    }
    return ErrorFromStatus(stored.status());
  }
  client::ObjectClient::Detach(*data.staged.file);
  if (copy) {
    Xml x("CopyPartResult");
    Add(x.root(), "LastModified", HttpDate(part.modified_ms() / 1000));
    Add(x.root(), "ETag", part.etag());
    if (data.checksum) {
      Add(x.root(), ChecksumElement(data.checksum->algorithm).c_str(), data.checksum->value);
    }
    return XmlResponse(x);
  }
  Response r = Empty(200);
  r.Header("ETag", part.etag());
  if (data.checksum) r.Header(ChecksumHeader(data.checksum->algorithm), data.checksum->value);
  r.bytes_in = data.size;
  return r;
}

Outcome CompleteUpload(Context& ctx, Request& req, const Identity& id, const Bucket& b) {
  auto seen = ctx.objects().UploadGetOrCompleted(b.volume_id(), req.Q("uploadId"));
  if (!seen.ok()) {
    if (seen.status().code() == Code::NOT_FOUND) return NoSuchUpload();
    return ErrorFromStatus(seen.status());
  }
  if (seen->upload().key() != req.key) return NoSuchUpload();
  if (seen->completed()) {
    auto again = RepeatedComplete(ctx, req, id, b);
    if (auto* e = std::get_if<S3Error>(&again)) return *e;
    return CompleteResult(req, std::get<ObjectReply>(again));
  }
  const Upload& u = seen->upload();
  // x-amz-checksum-* of a Complete is the object's (checked below), not the XML's.
  auto body = SmallBody(req, id, 4 << 20, /*header_checksums=*/false);
  if (auto* e = std::get_if<S3Error>(&body)) return *e;
  const std::string& xml = std::get<std::string>(body);
  auto malformed = Err(400, "MalformedXML",
                       "The XML you provided was not well-formed or did not validate against our "
                       "published schema.");
  pugi::xml_document doc;
  if (!LoadXml(doc, xml)) return malformed;
  auto root = doc.child("CompleteMultipartUpload");
  if (!root) return malformed;
  std::map<uint32_t, const UploadPart*> stored;
  for (const auto& p : u.parts()) stored[p.number()] = &p;
  UploadCompleteRequest cr;
  cr.set_volume_id(b.volume_id());
  cr.set_upload_id(u.upload_id());
  std::string md5s;
  uint32_t last = 0;
  std::vector<const UploadPart*> chosen;
  for (auto p : root.children("Part")) {
    std::string num_text = p.child_value("PartNumber");
    std::string etag = p.child_value("ETag");
    uint32_t num = 0;
    try {
      num = static_cast<uint32_t>(std::stoul(num_text));
    } catch (...) {
      return malformed;
    }
    if (num <= last) {
      return Err(400, "InvalidPartOrder",
                 "The list of parts was not in ascending order. The parts list must be "
                 "specified in order by part number.");
    }
    last = num;
    auto it = stored.find(num);
    if (it == stored.end() || Unquote(etag) != Unquote(it->second->etag())) {
      return Err(
          400, "InvalidPart",
          fmt::format("One or more of the specified parts could not be found (part {}).", num));
    }
    // A checksum listed for the part must be the one it was uploaded with.
    for (auto a :
         {ChecksumAlgorithm::kCrc32, ChecksumAlgorithm::kCrc32c, ChecksumAlgorithm::kCrc64Nvme,
          ChecksumAlgorithm::kSha1, ChecksumAlgorithm::kSha256}) {
      auto listed = p.child(ChecksumElement(a).c_str());
      if (!listed) continue;
      auto have = PartChecksum(*it->second);
      if (!have || have->algorithm != a || have->value != listed.child_value()) {
        return Err(400, "InvalidPart",
                   fmt::format("One or more of the specified parts could not be found: the {} "
                               "of part {} does not match the uploaded part's.",
                               AlgorithmName(a), num));
      }
    }
    chosen.push_back(it->second);
    UploadPart& w = *cr.add_parts();
    w.set_number(num);
    w.set_etag(it->second->etag());
  }
  if (chosen.empty()) return malformed;
  for (size_t i = 0; i + 1 < chosen.size(); ++i) {
    if (chosen[i]->size() < kMinPartSize) {
      return Err(400, "EntityTooSmall",
                 "Your proposed upload is smaller than the minimum allowed object size.");
    }
  }
  for (const UploadPart* p : chosen) {
    std::string hex = Unquote(p->etag());
    std::string raw;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) {
      raw.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    }
    md5s += raw;
  }
  Digest d(EVP_md5());
  d.Update(md5s.data(), md5s.size());
  cr.set_etag(Quote(Hex(d.Final()) + "-" + std::to_string(chosen.size())));
  Precondition pre;
  if (auto e = PutPrecondition(req, &pre)) return *e;
  *cr.mutable_precondition() = pre;
  cr.set_dir_mode(DirMode(b));
  cr.set_file_mode(FileMode(b));
  // COMPOSITE checksum: of the upload's algorithm, or of the one every part has.
  std::optional<Checksum> composite;
  std::optional<ChecksumAlgorithm> alg = UploadAlgorithm(u);
  if (!alg) {
    if (auto first = PartChecksum(*chosen.front())) alg = first->algorithm;
  }
  if (alg) {
    std::vector<std::string> values;
    for (const UploadPart* p : chosen) {
      auto c = PartChecksum(*p);
      if (!c || c->algorithm != *alg) {
        values.clear();
        break;
      }
      values.push_back(c->value);
    }
    if (!values.empty()) {
      if (auto v = CompositeChecksum(*alg, values)) composite = Checksum{*alg, *v, true};
    }
  }
  // A client may state the object's checksum: it must be the composite.
  for (auto& [name, value] : req.headers.all) {
    if (!name.starts_with("x-amz-checksum-")) continue;
    auto a = ParseChecksumAlgorithm(std::string_view(name).substr(15));
    if (!a) continue;
    if (!composite || composite->algorithm != *a) {
      return Err(
          400, "InvalidRequest",
          fmt::format("{} was given, but the parts have no {} checksums", name, AlgorithmName(*a)));
    }
    std::string_view v = value;
    if (v != composite->value && composite->value.substr(0, composite->value.rfind('-')) != v) {
      return Err(400, "BadDigest",
                 fmt::format("The {} you specified did not match the calculated checksum.",
                             AlgorithmName(*a)));
    }
  }
  if (composite) {  // stored by the Complete itself
    cr.set_checksum_algorithm(std::string(AlgorithmName(composite->algorithm)));
    cr.set_checksum(composite->value);
  }
  auto done = ctx.objects().UploadComplete(cr);
  if (!done.ok()) return PublishError(done.status());
  return CompleteResult(req, *done);
}

Outcome AbortUpload(Context& ctx, const Request& req, const Bucket& b) {
  auto seen = ctx.objects().UploadGetOrCompleted(b.volume_id(), req.Q("uploadId"));
  if (!seen.ok()) {
    if (seen.status().code() == Code::NOT_FOUND) return NoSuchUpload();
    return ErrorFromStatus(seen.status());
  }
  if (seen->upload().key() != req.key) return NoSuchUpload();
  // Aborting an upload that was completed meanwhile: 204, as S3 answers for a while (the
  // object stays).
  if (seen->completed()) return Empty(204);
  Status s = ctx.objects().UploadAbort(b.volume_id(), req.Q("uploadId"));
  if (!s.ok()) return ErrorFromStatus(s);
  return Empty(204);
}

Outcome ListParts(Context& ctx, const Request& req, const Bucket& b) {
  auto up = LoadUpload(ctx, req, b);
  if (auto* e = std::get_if<S3Error>(&up)) return *e;
  const Upload& u = std::get<Upload>(up);
  uint32_t marker = 0, max_parts = 1000;
  try {
    if (req.Has("part-number-marker")) marker = std::stoul(req.Q("part-number-marker"));
    if (req.Has("max-parts")) max_parts = std::min<uint32_t>(std::stoul(req.Q("max-parts")), 1000);
  } catch (...) {
    return Err(400, "InvalidArgument", "invalid part-number-marker or max-parts");
  }
  Xml x("ListPartsResult");
  auto root = x.root();
  Add(root, "Bucket", req.bucket);
  Add(root, "Key", req.key);
  Add(root, "UploadId", u.upload_id());
  Add(root, "PartNumberMarker", std::to_string(marker));
  Add(root, "MaxParts", std::to_string(max_parts));
  Add(root, "StorageClass", "STANDARD");
  if (auto a = UploadAlgorithm(u)) {
    Add(root, "ChecksumAlgorithm", std::string(AlgorithmName(*a)));
    Add(root, "ChecksumType", "COMPOSITE");
  }
  uint32_t count = 0, next = 0;
  bool truncated = false;
  std::vector<const UploadPart*> shown;
  for (const auto& p : u.parts()) {
    if (p.number() <= marker) continue;
    if (count == max_parts) {
      truncated = true;
      break;
    }
    shown.push_back(&p);
    next = p.number();
    ++count;
  }
  if (truncated) Add(root, "NextPartNumberMarker", std::to_string(next));
  Add(root, "IsTruncated", truncated ? "true" : "false");
  for (const UploadPart* p : shown) {
    auto n = root.append_child("Part");
    Add(n, "PartNumber", std::to_string(p->number()));
    Timespec t;
    t.set_sec(p->modified_ms() / 1000);
    t.set_nsec(static_cast<uint32_t>(p->modified_ms() % 1000) * 1000000);
    Add(n, "LastModified", IsoDate(t));
    Add(n, "ETag", p->etag());
    Add(n, "Size", std::to_string(p->size()));
    if (auto c = PartChecksum(*p)) Add(n, ChecksumElement(c->algorithm).c_str(), c->value);
  }
  return XmlResponse(x);
}

Outcome ListUploads(Context& ctx, const Request& req, const Bucket& b) {
  auto list = ctx.objects().UploadList(b.volume_id(), req.Q("prefix"));
  if (!list.ok()) return ErrorFromStatus(list.status());
  uint32_t max_uploads = 1000;
  try {
    if (req.Has("max-uploads")) {
      max_uploads = std::min<uint32_t>(std::stoul(req.Q("max-uploads")), 1000);
    }
  } catch (...) {
    return Err(400, "InvalidArgument", "invalid max-uploads");
  }
  const std::string key_marker = req.Q("key-marker");
  const std::string id_marker = req.Q("upload-id-marker");
  Xml x("ListMultipartUploadsResult");
  auto root = x.root();
  Add(root, "Bucket", req.bucket);
  Add(root, "KeyMarker", key_marker);
  Add(root, "UploadIdMarker", id_marker);
  Add(root, "Prefix", req.Q("prefix"));
  Add(root, "MaxUploads", std::to_string(max_uploads));
  std::vector<const Upload*> shown;
  bool truncated = false;
  for (const Upload& u : list->uploads()) {
    if (!key_marker.empty() &&
        (u.key() < key_marker ||
         (u.key() == key_marker && (id_marker.empty() || u.upload_id() <= id_marker)))) {
      continue;
    }
    if (shown.size() == max_uploads) {
      truncated = true;
      break;
    }
    shown.push_back(&u);
  }
  if (truncated && !shown.empty()) {
    Add(root, "NextKeyMarker", shown.back()->key());
    Add(root, "NextUploadIdMarker", shown.back()->upload_id());
  }
  Add(root, "IsTruncated", truncated ? "true" : "false");
  for (const Upload* u : shown) {
    auto n = root.append_child("Upload");
    Add(n, "Key", u->key());
    Add(n, "UploadId", u->upload_id());
    Timespec t;
    t.set_sec(u->initiated_ms() / 1000);
    t.set_nsec(static_cast<uint32_t>(u->initiated_ms() % 1000) * 1000000);
    Add(n, "Initiated", IsoDate(t));
    Add(n, "StorageClass", "STANDARD");
  }
  return XmlResponse(x);
}

}  // namespace granary::s3
