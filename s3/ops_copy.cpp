// Copies: CopyObject (shares the source's slices) and the bytes of an UploadPartCopy.
#include <fmt/format.h>

#include "common/aligned_buffer.h"
#include "s3/internal.h"
#include "s3/s3_util.h"

namespace granary::s3 {

namespace {

struct CopySource {
  std::string bucket, key;
};
std::variant<CopySource, S3Error> ParseCopySource(const std::string& header) {
  std::string v = header;
  size_t q = v.find('?');
  if (q != std::string::npos) {
    std::string query = v.substr(q + 1);
    v = v.substr(0, q);
    if (!query.empty() && query != "versionId=null") {
      return Err(400, "InvalidArgument", "only the null version can be copied");
    }
  }
  auto decoded = UriDecode(v);
  if (!decoded) return Err(400, "InvalidArgument", "Invalid copy source encoding");
  std::string s = *decoded;
  if (s.starts_with('/')) s = s.substr(1);
  size_t slash = s.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 >= s.size()) {
    return Err(400, "InvalidArgument", "Copy Source must mention the source bucket and key");
  }
  return CopySource{s.substr(0, slash), s.substr(slash + 1)};
}

std::optional<S3Error> CopyConditions(const Request& req, const ObjectInfo& src) {
  auto fail = [] {
    return Err(412, "PreconditionFailed",
               "At least one of the pre-conditions you specified did not hold");
  };
  if (auto* m = req.headers.Find("x-amz-copy-source-if-match")) {
    if (Unquote(*m) != Unquote(src.etag())) return fail();
  }
  if (auto* m = req.headers.Find("x-amz-copy-source-if-none-match")) {
    if (Unquote(*m) == Unquote(src.etag()) || *m == "*") return fail();
  }
  if (auto* m = req.headers.Find("x-amz-copy-source-if-unmodified-since")) {
    auto t = ParseHttpDate(*m);
    if (t && src.attr().mtime().sec() > *t) return fail();
  }
  if (auto* m = req.headers.Find("x-amz-copy-source-if-modified-since")) {
    auto t = ParseHttpDate(*m);
    if (t && src.attr().mtime().sec() <= *t) return fail();
  }
  return std::nullopt;
}

// The source object of a copy, authorised for reading.
std::variant<ObjectGetReply, S3Error> LoadCopySource(Context& ctx, const Request& req,
                                                     const Identity& id, bool extents) {
  auto cs = ParseCopySource(req.headers.Get("x-amz-copy-source"));
  if (auto* e = std::get_if<S3Error>(&cs)) return *e;
  auto sb = LoadBucket(ctx, std::get<CopySource>(cs).bucket);
  if (auto* e = std::get_if<S3Error>(&sb)) return *e;
  // The source is read as a GET would read it: its ACL applies.
  auto src = AuthorizedObject(ctx, std::get<Bucket>(sb), std::get<CopySource>(cs).key, id, extents);
  if (auto* e = std::get_if<S3Error>(&src)) return *e;
  ObjectGetReply& got = std::get<ObjectGetReply>(src);
  if (got.info().is_directory()) return Err(404, "NoSuchKey", "The specified key does not exist.");
  if (auto e = CopyConditions(req, got.info())) return *e;
  return std::move(got);
}

}  // namespace

Outcome CopyObject(Context& ctx, Request& req, const Identity& id, const Bucket& b) {
  if (auto e = CheckKey(req.key)) return *e;
  if (req.key.ends_with('/')) return Err(400, "InvalidRequest", "cannot copy onto a directory");
  auto src = LoadCopySource(ctx, req, id, false);
  if (auto* e = std::get_if<S3Error>(&src)) return *e;
  const ObjectInfo& s = std::get<ObjectGetReply>(src).info();
  std::string directive = req.headers.Get("x-amz-metadata-directive", "COPY");
  if (directive != "COPY" && directive != "REPLACE") {
    return Err(400, "InvalidArgument", "Unknown metadata directive.");
  }
  auto cs = std::get<CopySource>(ParseCopySource(req.headers.Get("x-amz-copy-source")));
  if (cs.bucket == req.bucket && cs.key == req.key && directive == "COPY") {
    return Err(400, "InvalidRequest",
               "This copy request is illegal because it is trying to copy an object to itself "
               "without changing the object's metadata, storage class, website redirect "
               "location or encryption attributes.");
  }
  Precondition pre;
  if (auto e = PutPrecondition(req, &pre)) return *e;
  // The copy shares the source's blocks and keeps its checksum; computing another one would
  // mean reading every byte, which this metadata-only copy does not do (docs/s3.md).
  auto requested = RequestedAlgorithm(req);
  if (auto* e = std::get_if<S3Error>(&requested)) return *e;
  auto checksum = StoredChecksum(ctx, s);
  if (!checksum.ok()) return ErrorFromStatus(checksum.status());
  if (auto want = std::get<std::optional<ChecksumAlgorithm>>(requested);
      want && (!*checksum || (*checksum)->algorithm != *want)) {
    return Err(501, "NotImplemented",
               fmt::format("CopyObject keeps the source's checksum and cannot compute {} for it",
                           AlgorithmName(*want)));
  }
  std::string tagging_directive = req.headers.Get("x-amz-tagging-directive", "COPY");
  if (tagging_directive != "COPY" && tagging_directive != "REPLACE") {
    return Err(400, "InvalidArgument", "Unknown tagging directive.");
  }
  PublishRequest pr;
  pr.set_volume_id(b.volume_id());
  pr.set_key(req.key);
  ObjectSource* os = pr.add_sources();
  os->set_ino(s.attr().ino());
  *pr.mutable_precondition() = pre;
  if (directive == "REPLACE") {
    *pr.mutable_meta() = MetaFromRequest(req);
  } else {
    for (auto& [k, v] : s.headers()) (*pr.mutable_meta()->mutable_headers())[k] = v;
  }
  // The copy is a new object: its writer owns it, with the ACL the request gives (private by
  // default, not the source's), and the source's tags unless x-amz-tagging-directive: REPLACE
  // (S3 API Reference, CopyObject).
  if (auto e = NewObjectSettings(ctx, req, id, b, pr.mutable_meta())) return *e;
  if (tagging_directive == "COPY") {
    pr.mutable_meta()->clear_tags();
    for (auto& [k, v] : s.tags()) (*pr.mutable_meta()->mutable_tags())[k] = v;
  }
  pr.mutable_meta()->set_etag(s.etag());  // same bytes, same ETag
  if (*checksum) SetMetaChecksum(pr.mutable_meta(), **checksum);
  pr.set_uid(b.uid());
  pr.set_gid(b.gid());
  pr.set_dir_mode(DirMode(b));
  pr.set_file_mode(FileMode(b));
  auto info = ctx.objects().Publish(pr);
  if (!info.ok()) return PublishError(info.status());
  Xml x("CopyObjectResult");
  Add(x.root(), "LastModified", IsoDate(info->attr().mtime()));
  Add(x.root(), "ETag", info->etag());
  if (*checksum) {
    Add(x.root(), ChecksumElement((*checksum)->algorithm).c_str(), (*checksum)->value);
    Add(x.root(), "ChecksumType", (*checksum)->composite ? "COMPOSITE" : "FULL_OBJECT");
  }
  return XmlResponse(x);
}

std::variant<Uploaded, S3Error> CopyIntoPart(Context& ctx, Request& req, const Identity& id,
                                             const Bucket& b, const Layout& layout,
                                             std::optional<ChecksumAlgorithm> compute) {
  // The source has its own layout, so its bytes are copied (not its slices).
  auto src = LoadCopySource(ctx, req, id, true);
  if (auto* e = std::get_if<S3Error>(&src)) return *e;
  const ObjectGetReply& s = std::get<ObjectGetReply>(src);
  uint64_t first = 0, length = s.info().attr().size();
  if (auto* r = req.headers.Find("x-amz-copy-source-range")) {
    auto range = ParseRange(r, length);
    if (auto* br = std::get_if<ByteRange>(&range)) {
      first = br->first;
      length = br->last - br->first + 1;
    } else {
      return Err(400, "InvalidArgument", "The x-amz-copy-source-range value is invalid");
    }
  }
  auto staged = ctx.objects().Stage(b.volume_id(), b.uid(), b.gid(), FileMode(b), &layout);
  if (!staged.ok()) return ErrorFromStatus(staged.status());
  Uploaded out;
  out.staged = std::move(*staged);
  Digest md5(EVP_md5());
  std::optional<Checksummer> checksummer;
  if (compute) checksummer.emplace(*compute);
  AlignedBuffer buf(4 << 20);
  for (uint64_t done = 0; done < length;) {
    uint64_t n = std::min<uint64_t>(buf.size(), length - done);
    std::span<uint8_t> span(buf.data(), n);
    Status st = ctx.objects().Read(s, first + done, span);
    if (st.ok()) st = out.staged.file->Pwrite(span, done);
    if (!st.ok()) {
      out.staged.file->Close().PermitUnchecked();
      return ErrorFromStatus(st);
    }
    md5.Update(span.data(), n);
    if (checksummer) checksummer->Update(span.data(), n);
    done += n;
  }
  Status st = out.staged.file->Flush();
  if (!st.ok()) {
    out.staged.file->Close().PermitUnchecked();
    return ErrorFromStatus(st);
  }
  out.md5 = md5.Final();
  if (checksummer) out.checksum = Checksum{*compute, Base64(checksummer->Final()), false};
  out.size = length;
  return out;
}

}  // namespace granary::s3
