// Object reads and writes: Get/HeadObject, PutObject (body to a staged inode), DeleteObject(s).
#include <fmt/format.h>

#include <pugixml.hpp>

#include "common/aligned_buffer.h"
#include "s3/internal.h"
#include "s3/s3_util.h"

namespace granary::s3 {

namespace {

void ObjectHeaders(Response& r, const ObjectInfo& info, const Request& req) {
  r.Header("ETag", info.etag());
  r.Header("Last-Modified", HttpDate(info.attr().mtime().sec()));
  r.Header("Accept-Ranges", "bytes");
  bool has_type = false;
  for (auto& [k, v] : info.headers()) {
    if (k == "content-type") has_type = true;
    r.Header(k, v);
  }
  if (!has_type) {
    r.Header("Content-Type",
             info.is_directory() ? "application/x-directory" : "binary/octet-stream");
  }
  static const std::pair<const char*, const char*> kOverrides[] = {
      {"response-content-type", "Content-Type"},
      {"response-content-disposition", "Content-Disposition"},
      {"response-cache-control", "Cache-Control"},
      {"response-content-encoding", "Content-Encoding"},
      {"response-content-language", "Content-Language"},
      {"response-expires", "Expires"}};
  for (auto& [q, h] : kOverrides) {
    if (!req.Has(q)) continue;
    std::erase_if(r.headers, [&](const auto& kv) { return strcasecmp(kv.first.c_str(), h) == 0; });
    r.Header(h, req.Q(q));
  }
}

// RFC 7232 order: If-Match, If-Unmodified-Since, If-None-Match, If-Modified-Since.
std::optional<Outcome> Conditionals(const Request& req, const ObjectInfo& info) {
  const int64_t mtime = info.attr().mtime().sec();
  auto etag_in = [&](const std::string& list) {
    for (auto& e : SplitList(list))
      if (e == "*" || Unquote(e) == Unquote(info.etag())) return true;
    return false;
  };
  auto not_modified = [&] {
    Response r = Empty(304);
    r.Header("ETag", info.etag());
    r.Header("Last-Modified", HttpDate(mtime));
    return Outcome(r);
  };
  auto* im = req.headers.Find("if-match");
  if (im && !etag_in(*im)) {
    return Outcome(Err(412, "PreconditionFailed",
                       "At least one of the pre-conditions you specified did not hold"));
  }
  if (!im) {
    if (auto* ius = req.headers.Find("if-unmodified-since")) {
      auto t = ParseHttpDate(*ius);
      if (t && mtime > *t) {
        return Outcome(Err(412, "PreconditionFailed",
                           "At least one of the pre-conditions you specified did not hold"));
      }
    }
  }
  auto* inm = req.headers.Find("if-none-match");
  if (inm && etag_in(*inm)) return not_modified();
  if (!inm) {
    if (auto* ims = req.headers.Find("if-modified-since")) {
      auto t = ParseHttpDate(*ims);
      if (t && mtime <= *t) return not_modified();
    }
  }
  return std::nullopt;
}

// Bodies up to this size are buffered whole and written in two metanode operations.
constexpr uint64_t kSmallPut = 1 << 20;

}  // namespace

std::variant<Uploaded, S3Error> ReceiveInto(Context& ctx, Request& req, const Identity& id,
                                            const Bucket& bucket, const Layout* layout,
                                            std::optional<ChecksumAlgorithm> compute) {
  Body body(req, id, compute);
  if (body.setup_error()) return *body.setup_error();
  if (!req.has_content_length && !body.length()) {
    return Err(411, "MissingContentLength", "You must provide the Content-Length HTTP header.");
  }
  if (body.length() && *body.length() > ctx.options().max_put_bytes) {
    return Err(400, "EntityTooLarge",
               fmt::format("Your proposed upload exceeds the maximum allowed size ({} bytes)",
                           ctx.options().max_put_bytes));
  }
  if (!layout && body.length() && *body.length() <= kSmallPut) {
    // A small object: buffered whole and checked (signature, length, MD5) before anything is
    // stored, then staged with its allocation in one metanode operation; the Publish commits it.
    // Half the fsync'd metanode operations of the streaming path below.
    const uint64_t want = *body.length();
    AlignedBuffer buf(std::max<uint64_t>(want, 1) + 1);  // +1: a longer body is seen, not cut
    uint64_t got = 0;
    while (true) {
      auto n = body.Read(std::span<uint8_t>(buf.data() + got, buf.size() - got));
      if (!n.ok()) return body.error();
      if (*n == 0) break;
      got += *n;
      if (got > want) {
        return Err(400, "IncompleteBody", "the body is longer than its declared length");
      }
    }
    Uploaded up;
    CommitRequest commit;
    auto staged = ctx.objects().StageWithData(bucket.volume_id(), bucket.uid(), bucket.gid(),
                                              FileMode(bucket),
                                              std::span<const uint8_t>(buf.data(), got), &commit);
    if (!staged.ok()) return ErrorFromStatus(staged.status());
    up.staged = std::move(*staged);
    if (commit.ino() != 0) up.commit = std::move(commit);  // an empty body allocates nothing
    up.size = got;
    up.md5 = body.md5();
    up.checksum = body.checksum();
    return up;
  }
  auto staged =
      ctx.objects().Stage(bucket.volume_id(), bucket.uid(), bucket.gid(), FileMode(bucket), layout);
  if (!staged.ok()) return ErrorFromStatus(staged.status());
  Uploaded up;
  up.staged = std::move(*staged);
  AlignedBuffer buf(1 << 20);
  while (true) {
    auto n = body.Read(std::span<uint8_t>(buf.data(), buf.size()));
    if (!n.ok()) {
      up.staged.file->Close().PermitUnchecked();  // releases the stage pin: nothing stays
      return body.error();
    }
    if (*n == 0) break;
    if (up.size + *n > ctx.options().max_put_bytes) {
      up.staged.file->Close().PermitUnchecked();
      return Err(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size");
    }
    Status s = up.staged.file->Pwrite(std::span<const uint8_t>(buf.data(), *n), up.size);
    if (!s.ok()) {
      up.staged.file->Close().PermitUnchecked();
      return ErrorFromStatus(s);
    }
    up.size += *n;
  }
  Status s = up.staged.file->Flush();
  if (!s.ok()) {
    up.staged.file->Close().PermitUnchecked();
    return ErrorFromStatus(s);
  }
  up.md5 = body.md5();
  up.checksum = body.checksum();
  return up;
}

std::variant<std::monostate, ByteRange, S3Error> ParseRange(const std::string* header,
                                                            uint64_t size) {
  if (!header) return std::monostate{};
  std::string_view h = *header;
  if (!h.starts_with("bytes=") || h.find(',') != h.npos) return std::monostate{};
  h.remove_prefix(6);
  size_t dash = h.find('-');
  if (dash == h.npos) return std::monostate{};
  auto num = [](std::string_view s) -> std::optional<uint64_t> {
    if (s.empty() || s.size() > 19) return std::nullopt;
    uint64_t v = 0;
    for (char c : s) {
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + (c - '0');
    }
    return v;
  };
  auto a = num(h.substr(0, dash));
  auto b = num(h.substr(dash + 1));
  auto unsatisfiable = [] {
    return Err(416, "InvalidRange", "The requested range is not satisfiable");
  };
  if (!a && b) {  // suffix: the last b bytes
    if (*b == 0) return unsatisfiable();
    if (size == 0) return unsatisfiable();
    return ByteRange{size - std::min(*b, size), size - 1};
  }
  if (!a) return std::monostate{};
  if (*a >= size) return unsatisfiable();
  if (b && *b < *a) return std::monostate{};
  return ByteRange{*a, b ? std::min(*b, size - 1) : size - 1};
}

namespace {

// GetObject / HeadObject with partNumber (S3 API Reference, GetObject: "Effectively performs a
// 'ranged' GET request for the part specified"): the part's bytes of a multipart object, the
// whole object as its one part otherwise. Beyond the parts: 416 InvalidPartNumber.
std::variant<std::monostate, ByteRange, S3Error> PartRange(Context& ctx, const Request& req,
                                                           const ObjectInfo& info,
                                                           uint32_t* parts_count) {
  const std::string text = req.Q("partNumber");
  long n = 0;
  try {
    size_t used = 0;
    n = std::stol(text, &used);
    if (used != text.size()) n = 0;
  } catch (...) {
    n = 0;
  }
  if (n < 1 || n > 10000) {
    return Err(400, "InvalidArgument",
               "Part number must be an integer between 1 and 10000, inclusive");
  }
  const uint64_t size = info.is_directory() ? 0 : info.attr().size();
  auto beyond = [] {
    return Err(416, "InvalidPartNumber", "The requested partnumber is not satisfiable");
  };
  if (info.parts_count() == 0) {
    if (n != 1) return beyond();
    if (size == 0) return std::monostate{};
    return ByteRange{0, size - 1};
  }
  auto meta = StoredMeta(ctx, info);
  if (!meta.ok()) return ErrorFromStatus(meta.status());
  if (!*meta || (*meta)->parts_size() == 0) {  // rewritten since: one part, as above
    if (n != 1) return beyond();
    return size == 0 ? std::variant<std::monostate, ByteRange, S3Error>(std::monostate{})
                     : ByteRange{0, size - 1};
  }
  const auto& parts = (*meta)->parts();
  *parts_count = static_cast<uint32_t>(parts.size());
  // The n-th part in the object, as MinIO and radosgw count them.
  if (n > parts.size()) return beyond();
  uint64_t first = 0;
  for (int i = 0; i + 1 < n; ++i) first += parts[i].size();
  const uint64_t length = parts[n - 1].size();
  if (length == 0) return std::monostate{};
  return ByteRange{first, first + length - 1};
}

}  // namespace

Outcome GetObject(Context& ctx, const Request& req, const Identity& id, const Bucket& b,
                  bool head) {
  const bool by_part = req.Has("partNumber");
  if (by_part && req.headers.Find("range")) {
    return Err(400, "InvalidRequest",
               "Cannot specify both Range header and partNumber query parameter");
  }
  // S3 API Reference, GetObject: the response-* overrides "cannot be used with an unsigned
  // (anonymous) request".
  if (id.anonymous) {
    for (const auto& [name, value] : req.query) {
      if (name.starts_with("response-")) {
        return Err(400, "InvalidRequest",
                   "Request specific response headers cannot be used for anonymous GET requests.");
      }
    }
  }
  auto got = AuthorizedObject(ctx, b, req.key, id, !head);
  if (auto* e = std::get_if<S3Error>(&got)) return *e;
  ObjectGetReply& obj = std::get<ObjectGetReply>(got);
  const ObjectInfo& info = obj.info();
  if (auto c = Conditionals(req, info)) return *c;
  const uint64_t size = info.is_directory() ? 0 : info.attr().size();
  Response r;
  ObjectHeaders(r, info, req);
  if (info.tags_size() > 0) r.Header("x-amz-tagging-count", std::to_string(info.tags_size()));
  uint64_t first = 0, length = size;
  uint32_t parts_count = 0;
  auto range = by_part ? PartRange(ctx, req, info, &parts_count)
                       : ParseRange(req.headers.Find("range"), size);
  if (auto* e = std::get_if<S3Error>(&range)) {
    S3Error err = *e;
    return err;
  }
  if (parts_count > 0) r.Header("x-amz-mp-parts-count", std::to_string(parts_count));
  if (auto* br = std::get_if<ByteRange>(&range)) {
    first = br->first;
    length = br->last - br->first + 1;
    r.status = 206;
    r.Header("Content-Range", fmt::format("bytes {}-{}/{}", br->first, br->last, size));
  }
  // A checksum describes the whole object, so a range gets none (as in S3).
  if (r.status == 200 &&
      strcasecmp(req.headers.Get("x-amz-checksum-mode").c_str(), "ENABLED") == 0) {
    auto c = StoredChecksum(ctx, info);
    if (!c.ok()) return ErrorFromStatus(c.status());
    if (*c) ChecksumHeaders(r, **c);
  }
  r.stream_length = length;
  auto shared = std::make_shared<ObjectGetReply>(std::move(obj));
  client::ObjectClient* objects = &ctx.objects();
  r.stream = [shared, objects, first, length](const Response::Sink& sink) -> Status {
    // Bounded memory: one window at a time, whatever the object size.
    const uint64_t window = std::min<uint64_t>(length, 4ull << 20);
    if (length == 0) return Status::Ok();
    AlignedBuffer buf(window);
    for (uint64_t done = 0; done < length;) {
      uint64_t n = std::min(window, length - done);
      std::span<uint8_t> out(buf.data(), n);
      GRANARY_TRY(objects->Read(*shared, first + done, out));
      GRANARY_TRY(sink(out));
      done += n;
    }
    return Status::Ok();
  };
  return r;
}

Outcome PutObject(Context& ctx, Request& req, const Identity& id, const Bucket& b) {
  if (auto e = CheckKey(req.key)) return *e;
  Precondition pre;
  if (auto e = PutPrecondition(req, &pre)) return *e;
  if (req.key.ends_with('/')) {  // a directory marker: no body allowed
    auto body = SmallBody(req, id, 0);
    if (auto* e = std::get_if<S3Error>(&body)) {
      if (e->code == "MalformedXML") {
        return Err(400, "InvalidRequest", "a key ending in '/' is a directory and takes no body");
      }
      return *e;
    }
    PublishRequest pr;
    pr.set_volume_id(b.volume_id());
    pr.set_key(req.key);
    *pr.mutable_precondition() = pre;
    pr.set_uid(b.uid());
    pr.set_gid(b.gid());
    pr.set_dir_mode(DirMode(b));
    auto info = ctx.objects().Publish(pr);
    if (!info.ok()) return PublishError(info.status());
    Response r = Empty(200);
    r.Header("ETag", info->etag());
    return r;
  }
  // Owner, ACL and tags are checked before any byte is read.
  ObjectMeta meta = MetaFromRequest(req);
  if (auto e = NewObjectSettings(ctx, req, id, b, &meta)) return *e;
  auto up = ReceiveInto(ctx, req, id, b, nullptr);
  if (auto* e = std::get_if<S3Error>(&up)) return *e;
  Uploaded& u = std::get<Uploaded>(up);
  PublishRequest pr;
  pr.set_volume_id(b.volume_id());
  pr.set_key(req.key);
  pr.set_ino(u.staged.attr.ino());
  pr.set_handle_owner(u.staged.handle_owner);
  *pr.mutable_precondition() = pre;
  *pr.mutable_meta() = std::move(meta);
  pr.mutable_meta()->set_etag(Quote(Hex(u.md5)));
  if (u.checksum) SetMetaChecksum(pr.mutable_meta(), *u.checksum);
  pr.set_uid(b.uid());
  pr.set_gid(b.gid());
  pr.set_dir_mode(DirMode(b));
  pr.set_file_mode(FileMode(b));
  if (u.commit) *pr.mutable_commit() = std::move(*u.commit);
  auto info = ctx.objects().Publish(pr);
  if (!info.ok()) {
    u.staged.file->Close().PermitUnchecked();  // the unpublished inode goes away
    return PublishError(info.status());
  }
  client::ObjectClient::Detach(*u.staged.file);
  Response r = Empty(200);
  r.Header("ETag", info->etag());
  if (u.checksum) ChecksumHeaders(r, *u.checksum);
  r.bytes_in = u.size;
  return r;
}

Outcome DeleteObject(Context& ctx, const Request& req, const Bucket& b) {
  if (auto e = CheckKey(req.key)) return *e;
  auto existed = ctx.objects().Delete(b.volume_id(), req.key);
  if (!existed.ok()) return ObjectError(existed.status());
  return Empty(204);
}

Outcome DeleteObjects(Context& ctx, Request& req, const Identity& id, const Bucket& b) {
  auto body = SmallBody(req, id, 2 << 20);
  if (auto* e = std::get_if<S3Error>(&body)) return *e;
  // Every key arrives exactly as sent, a key of one space included (documents.cpp).
  auto doc = ParseDeleteXml(std::get<std::string>(body));
  if (auto* e = std::get_if<S3Error>(&doc)) return *e;
  const DeleteDocument& del = std::get<DeleteDocument>(doc);
  Xml x("DeleteResult");
  for (const std::string& key : del.keys) {
    std::optional<S3Error> err = CheckKey(key);
    if (!err) {
      auto existed = ctx.objects().Delete(b.volume_id(), key);
      if (!existed.ok()) err = ObjectError(existed.status());
    }
    if (err) {
      auto e = x.root().append_child("Error");
      Add(e, "Key", key);
      Add(e, "Code", err->code);
      Add(e, "Message", err->message);
    } else if (!del.quiet) {
      Add(x.root().append_child("Deleted"), "Key", key);
    }
  }
  return XmlResponse(x);
}

}  // namespace granary::s3
