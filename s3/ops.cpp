// S3 operations over the Objects API and libgranary (docs/s3.md). Each handler returns a
// Response or an S3Error; XML through pugixml.
#include <fmt/format.h>

#include <pugixml.hpp>
#include <sstream>

#include "common/aligned_buffer.h"
#include "common/log.h"
#include "s3/internal.h"
#include "s3/s3_util.h"

namespace granary::s3 {

namespace {

constexpr const char* kNs = "http://s3.amazonaws.com/doc/2006-03-01/";
constexpr uint64_t kMinPartSize = 5ull << 20;

class Xml {
 public:
  explicit Xml(const char* root_name) {
    auto decl = doc_.append_child(pugi::node_declaration);
    decl.append_attribute("version") = "1.0";
    decl.append_attribute("encoding") = "UTF-8";
    root_ = doc_.append_child(root_name);
    root_.append_attribute("xmlns") = kNs;
  }
  pugi::xml_node root() { return root_; }
  std::string str() const {
    std::ostringstream out;
    doc_.save(out, "", pugi::format_raw);
    return out.str();
  }

 private:
  pugi::xml_document doc_;
  pugi::xml_node root_;
};

pugi::xml_node Add(pugi::xml_node parent, const char* name, const std::string& value) {
  auto n = parent.append_child(name);
  n.text().set(value.c_str());
  return n;
}

Response XmlResponse(const Xml& x, int status = 200) {
  Response r;
  r.status = status;
  r.Header("Content-Type", "application/xml");
  r.body = x.str();
  return r;
}

Response Empty(int status) {
  Response r;
  r.status = status;
  return r;
}

std::string Quote(std::string_view hex) { return "\"" + std::string(hex) + "\""; }

std::string OwnerId(const std::string& access_key) { return access_key; }

// Authorises `id` on `name`: owner, or a grant of enough access.
std::variant<Bucket, S3Error> Authorize(Context& ctx, const Request& req, const Identity& id,
                                        bool write) {
  auto b = ctx.GetBucket(req.bucket);
  if (!b.ok()) {
    if (b.status().code() == Code::NOT_FOUND) {
      return Err(404, "NoSuchBucket", "The specified bucket does not exist");
    }
    return ErrorFromStatus(b.status());
  }
  if (b->owner() == id.access_key) return *b;
  for (const Grant& g : b->grants()) {
    if (g.access_key() != id.access_key) continue;
    if (g.access() == Access::READ_WRITE || (g.access() == Access::READ && !write)) return *b;
  }
  return Err(403, "AccessDenied", "Access Denied");
}

S3Error ObjectError(const Status& s) {
  S3Error e = ErrorFromStatus(s);
  if (s.code() == Code::NOT_FOUND)
    return Err(404, "NoSuchKey", "The specified key does not exist.");
  return e;
}

std::optional<S3Error> CheckKey(const std::string& key) {
  if (key.size() > 1024) return Err(400, "KeyTooLongError", "Your key is too long");
  std::string_view k = key;
  if (k.ends_with('/')) k.remove_suffix(1);
  size_t start = 0;
  while (true) {
    size_t slash = k.find('/', start);
    std::string_view part = k.substr(start, slash == k.npos ? k.npos : slash - start);
    if (part.empty() || part == "." || part == "..") {
      return Err(
          400, "InvalidArgument",
          fmt::format("key '{}' has an empty, '.' or '..' segment (it is a file path)", key));
    }
    if (part.size() > 255) {
      return Err(400, "KeyTooLongError", "a key segment is longer than 255 bytes");
    }
    if (part.find('\0') != part.npos) return Err(400, "InvalidArgument", "NUL in key");
    if (slash == k.npos) break;
    start = slash + 1;
  }
  return std::nullopt;
}

uint32_t FileMode(const Bucket& b) { return 0666 & ~b.umask(); }
uint32_t DirMode(const Bucket& b) { return 0777 & ~b.umask(); }

// Object headers taken from a PUT / CreateMultipartUpload / CopyObject REPLACE.
ObjectMeta MetaFromRequest(const Request& req) {
  ObjectMeta m;
  static const char* kKept[] = {"content-type",        "content-encoding", "cache-control",
                                "content-disposition", "content-language", "expires"};
  for (const char* h : kKept) {
    if (auto* v = req.headers.Find(h)) (*m.mutable_headers())[h] = *v;
  }
  for (auto& [k, v] : req.headers.all) {
    if (k.starts_with("x-amz-meta-")) (*m.mutable_headers())[k] = v;
  }
  return m;
}

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

// Streams the body into a staged inode: the bytes, their MD5, or the S3 error.
struct Uploaded {
  client::ObjectClient::Staged staged;
  std::string md5;  // raw
  uint64_t size = 0;
  std::optional<CommitRequest> commit;  // small bodies: for the Publish to apply
};
// Bodies up to this size are buffered whole and written in two metanode operations.
constexpr uint64_t kSmallPut = 1 << 20;
std::variant<Uploaded, S3Error> ReceiveInto(Context& ctx, Request& req, const Identity& id,
                                            const Bucket& bucket, const Layout* layout) {
  Body body(req, id);
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
  return up;
}

std::optional<S3Error> PutPrecondition(const Request& req, Precondition* pre) {
  if (auto* inm = req.headers.Find("if-none-match")) {
    if (Unquote(*inm) != "*") {
      return Err(501, "NotImplemented", "If-None-Match on PUT supports only '*'");
    }
    pre->set_if_none_match_any(true);
  }
  if (auto* im = req.headers.Find("if-match")) pre->set_if_match(*im);
  return std::nullopt;
}

S3Error PublishError(const Status& s) {
  if (s.code() == Code::PRECONDITION_FAILED) {
    return Err(412, "PreconditionFailed",
               "At least one of the pre-conditions you specified did not hold");
  }
  return ObjectError(s);
}

// ---------------------------------------------------------------- buckets

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

// Reads a small XML request body (bounded), checking its signature and digest.
std::variant<std::string, S3Error> SmallBody(Request& req, const Identity& id, size_t limit) {
  Body body(req, id);
  std::string out;
  std::vector<uint8_t> buf(64 << 10);
  while (true) {
    auto n = body.Read(std::span<uint8_t>(buf.data(), buf.size()));
    if (!n.ok()) return body.error();
    if (*n == 0) break;
    out.append(reinterpret_cast<char*>(buf.data()), *n);
    if (out.size() > limit) return Err(400, "MalformedXML", "request body too large");
  }
  return out;
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

// ---------------------------------------------------------------- listing

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

void AddContents(pugi::xml_node root, const ObjectInfo& o, const ListParams& p, const Identity& id,
                 bool owner) {
  auto c = root.append_child("Contents");
  Add(c, "Key", Enc(p, o.key()));
  Add(c, "LastModified", IsoDate(o.attr().mtime()));
  Add(c, "ETag", o.etag());
  Add(c, "Size", std::to_string(o.is_directory() ? 0 : o.attr().size()));
  if (owner) {
    auto ow = c.append_child("Owner");
    Add(ow, "ID", OwnerId(id.access_key));
    Add(ow, "DisplayName", id.access_key);
  }
  Add(c, "StorageClass", "STANDARD");
}

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
  for (const ObjectInfo& o : list->objects()) AddContents(root, o, p, id, owner);
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
    Add(ow, "ID", OwnerId(b.owner()));
    Add(ow, "DisplayName", b.owner());
    Add(v, "StorageClass", "STANDARD");
  }
  for (const std::string& cp : list->common_prefixes()) {
    Add(root.append_child("CommonPrefixes"), "Prefix", Enc(p, cp));
  }
  return XmlResponse(x);
}

// ---------------------------------------------------------------- objects

struct ByteRange {
  uint64_t first = 0, last = 0;  // inclusive
};
// nullopt: no (usable) Range header; S3Error: unsatisfiable.
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

Outcome GetObject(Context& ctx, const Request& req, const Bucket& b, bool head) {
  auto obj = ctx.objects().Get(b.volume_id(), req.key, !head);
  if (!obj.ok()) return ObjectError(obj.status());
  const ObjectInfo& info = obj->info();
  if (auto c = Conditionals(req, info)) return *c;
  const uint64_t size = info.is_directory() ? 0 : info.attr().size();
  Response r;
  ObjectHeaders(r, info, req);
  uint64_t first = 0, length = size;
  auto range = ParseRange(req.headers.Find("range"), size);
  if (auto* e = std::get_if<S3Error>(&range)) {
    S3Error err = *e;
    return err;
  }
  if (auto* br = std::get_if<ByteRange>(&range)) {
    first = br->first;
    length = br->last - br->first + 1;
    r.status = 206;
    r.Header("Content-Range", fmt::format("bytes {}-{}/{}", br->first, br->last, size));
  }
  r.stream_length = length;
  auto shared = std::make_shared<ObjectGetReply>(std::move(*obj));
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
  auto up = ReceiveInto(ctx, req, id, b, nullptr);
  if (auto* e = std::get_if<S3Error>(&up)) return *e;
  Uploaded& u = std::get<Uploaded>(up);
  PublishRequest pr;
  pr.set_volume_id(b.volume_id());
  pr.set_key(req.key);
  pr.set_ino(u.staged.attr.ino());
  pr.set_handle_owner(u.staged.handle_owner);
  *pr.mutable_precondition() = pre;
  *pr.mutable_meta() = MetaFromRequest(req);
  pr.mutable_meta()->set_etag(Quote(Hex(u.md5)));
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
  r.bytes_in = u.size;
  return r;
}

Outcome DeleteObject(Context& ctx, const Request& req, const Bucket& b) {
  if (auto e = CheckKey(req.key)) return *e;
  auto existed = ctx.objects().Delete(b.volume_id(), req.key);
  if (!existed.ok()) return ObjectError(existed.status());
  return Empty(204);
}

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
  Request src_req;
  src_req.bucket = std::get<CopySource>(cs).bucket;
  auto sb = Authorize(ctx, src_req, id, false);
  if (auto* e = std::get_if<S3Error>(&sb)) return *e;
  auto src =
      ctx.objects().Get(std::get<Bucket>(sb).volume_id(), std::get<CopySource>(cs).key, extents);
  if (!src.ok()) return ObjectError(src.status());
  if (src->info().is_directory()) return Err(404, "NoSuchKey", "The specified key does not exist.");
  if (auto e = CopyConditions(req, src->info())) return *e;
  return std::move(*src);
}

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
  pr.mutable_meta()->set_etag(s.etag());  // same bytes, same ETag
  pr.set_uid(b.uid());
  pr.set_gid(b.gid());
  pr.set_dir_mode(DirMode(b));
  pr.set_file_mode(FileMode(b));
  auto info = ctx.objects().Publish(pr);
  if (!info.ok()) return PublishError(info.status());
  Xml x("CopyObjectResult");
  Add(x.root(), "LastModified", IsoDate(info->attr().mtime()));
  Add(x.root(), "ETag", info->etag());
  return XmlResponse(x);
}

Outcome DeleteObjects(Context& ctx, Request& req, const Identity& id, const Bucket& b) {
  auto body = SmallBody(req, id, 2 << 20);
  if (auto* e = std::get_if<S3Error>(&body)) return *e;
  const std::string& xml = std::get<std::string>(body);
  pugi::xml_document doc;
  auto malformed = Err(400, "MalformedXML",
                       "The XML you provided was not well-formed or did not validate against our "
                       "published schema.");
  if (!doc.load_buffer(xml.data(), xml.size())) return malformed;
  auto del = doc.child("Delete");
  if (!del) return malformed;
  const bool quiet = std::string(del.child_value("Quiet")) == "true";
  std::vector<std::string> keys;
  for (auto o : del.children("Object")) {
    if (!o.child("Key")) return malformed;
    keys.emplace_back(o.child_value("Key"));
  }
  if (keys.empty() || keys.size() > 1000) return malformed;
  Xml x("DeleteResult");
  for (const std::string& key : keys) {
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
    } else if (!quiet) {
      Add(x.root().append_child("Deleted"), "Key", key);
    }
  }
  return XmlResponse(x);
}

// ---------------------------------------------------------------- multipart

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

Outcome CreateUpload(Context& ctx, const Request& req, const Bucket& b) {
  if (auto e = CheckKey(req.key)) return *e;
  if (req.key.ends_with('/')) return Err(400, "InvalidRequest", "a directory takes no upload");
  UploadCreateRequest ur;
  ur.set_volume_id(b.volume_id());
  ur.set_key(req.key);
  *ur.mutable_meta() = MetaFromRequest(req);
  ur.set_uid(b.uid());
  ur.set_gid(b.gid());
  auto up = ctx.objects().UploadCreate(ur);
  if (!up.ok()) return ObjectError(up.status());
  Xml x("InitiateMultipartUploadResult");
  Add(x.root(), "Bucket", req.bucket);
  Add(x.root(), "Key", req.key);
  Add(x.root(), "UploadId", up->upload_id());
  return XmlResponse(x);
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
  std::variant<Uploaded, S3Error> got = S3Error{};
  const bool copy = req.headers.Find("x-amz-copy-source") != nullptr;
  if (copy) {
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
    auto staged = ctx.objects().Stage(b.volume_id(), b.uid(), b.gid(), FileMode(b), &u.layout());
    if (!staged.ok()) return ErrorFromStatus(staged.status());
    Uploaded out;
    out.staged = std::move(*staged);
    Digest md5(EVP_md5());
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
      done += n;
    }
    Status st = out.staged.file->Flush();
    if (!st.ok()) {
      out.staged.file->Close().PermitUnchecked();
      return ErrorFromStatus(st);
    }
    out.md5 = md5.Final();
    out.size = length;
    got = std::move(out);
  } else {
    got = ReceiveInto(ctx, req, id, b, &u.layout());
  }
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
    return XmlResponse(x);
  }
  Response r = Empty(200);
  r.Header("ETag", part.etag());
  r.bytes_in = data.size;
  return r;
}

Outcome CompleteUpload(Context& ctx, Request& req, const Identity& id, const Bucket& b) {
  auto up = LoadUpload(ctx, req, b);
  if (auto* e = std::get_if<S3Error>(&up)) return *e;
  const Upload& u = std::get<Upload>(up);
  auto body = SmallBody(req, id, 4 << 20);
  if (auto* e = std::get_if<S3Error>(&body)) return *e;
  const std::string& xml = std::get<std::string>(body);
  auto malformed = Err(400, "MalformedXML",
                       "The XML you provided was not well-formed or did not validate against our "
                       "published schema.");
  pugi::xml_document doc;
  if (!doc.load_buffer(xml.data(), xml.size())) return malformed;
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
  auto info = ctx.objects().UploadComplete(cr);
  if (!info.ok()) return PublishError(info.status());
  Xml x("CompleteMultipartUploadResult");
  Add(x.root(), "Location", "/" + req.bucket + "/" + req.key);
  Add(x.root(), "Bucket", req.bucket);
  Add(x.root(), "Key", req.key);
  Add(x.root(), "ETag", info->etag());
  return XmlResponse(x);
}

Outcome AbortUpload(Context& ctx, const Request& req, const Bucket& b) {
  auto up = LoadUpload(ctx, req, b);
  if (auto* e = std::get_if<S3Error>(&up)) return *e;
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

}  // namespace

std::string ErrorXml(const S3Error& e, const Request& req) {
  pugi::xml_document doc;
  auto decl = doc.append_child(pugi::node_declaration);
  decl.append_attribute("version") = "1.0";
  decl.append_attribute("encoding") = "UTF-8";
  auto root = doc.append_child("Error");
  Add(root, "Code", e.code);
  Add(root, "Message", e.message);
  // Only what the caller named: never other buckets or internal paths.
  std::string resource = req.bucket.empty() ? "/" : "/" + req.bucket;
  if (!req.key.empty()) resource += "/" + req.key;
  Add(root, "Resource", resource);
  if (!req.bucket.empty()) Add(root, "BucketName", req.bucket);
  Add(root, "RequestId", req.request_id);
  std::ostringstream out;
  doc.save(out, "", pugi::format_raw);
  return out.str();
}

Outcome Dispatch(Context& ctx, Request& req, const Identity& id, std::string* op) {
  const std::string& m = req.method;
  if (req.bucket.empty()) {
    *op = "ListBuckets";
    if (m != "GET") return Err(405, "MethodNotAllowed", "The specified method is not allowed");
    return ListBuckets(ctx, id);
  }
  if (req.key.empty()) {
    if (m == "PUT" && req.query.empty()) {
      *op = "CreateBucket";
      return CreateBucket(ctx, req, id);
    }
    const bool write = m != "GET" && m != "HEAD";
    auto b = Authorize(ctx, req, id, write);
    if (auto* e = std::get_if<S3Error>(&b)) {
      *op = "Bucket";
      return *e;
    }
    const Bucket& bucket = std::get<Bucket>(b);
    if (m == "DELETE" && req.query.empty()) {
      *op = "DeleteBucket";
      return DeleteBucket(ctx, req, id);
    }
    if (m == "HEAD") {
      *op = "HeadBucket";
      Response r = Empty(200);
      r.Header("x-amz-bucket-region", ctx.options().region);
      return r;
    }
    if (m == "POST" && req.Has("delete")) {
      *op = "DeleteObjects";
      return DeleteObjects(ctx, req, id, bucket);
    }
    if (m == "GET") {
      if (req.Has("location")) {
        *op = "GetBucketLocation";
        Xml x("LocationConstraint");
        if (ctx.options().region != "us-east-1") x.root().text().set(ctx.options().region.c_str());
        return XmlResponse(x);
      }
      if (req.Has("versioning")) {
        *op = "GetBucketVersioning";
        return XmlResponse(Xml("VersioningConfiguration"));
      }
      if (req.Has("versions")) {
        *op = "ListObjectVersions";
        return ListVersions(ctx, req, id, bucket);
      }
      if (req.Has("uploads")) {
        *op = "ListMultipartUploads";
        return ListUploads(ctx, req, bucket);
      }
      static const char* kUnsupported[] = {
          "acl",     "policy",      "cors",       "lifecycle",   "tagging",     "website",
          "logging", "replication", "encryption", "object-lock", "notification"};
      for (const char* q : kUnsupported) {
        if (req.Has(q)) {
          *op = "Unsupported";
          return Err(501, "NotImplemented",
                     fmt::format("bucket subresource '{}' is not implemented", q));
        }
      }
      *op = req.Q("list-type") == "2" ? "ListObjectsV2" : "ListObjects";
      return ListObjects(ctx, req, id, bucket);
    }
    *op = "Bucket";
    return Err(405, "MethodNotAllowed",
               "The specified method is not allowed against this resource.");
  }
  const bool write = m != "GET" && m != "HEAD";
  auto b = Authorize(ctx, req, id, write);
  if (auto* e = std::get_if<S3Error>(&b)) {
    *op = "Object";
    return *e;
  }
  const Bucket& bucket = std::get<Bucket>(b);
  if (m == "GET" || m == "HEAD") {
    if (m == "GET" && req.Has("uploadId")) {
      *op = "ListParts";
      return ListParts(ctx, req, bucket);
    }
    if (req.Has("acl") || req.Has("tagging")) {
      *op = "Unsupported";
      return Err(501, "NotImplemented", "object ACLs and tagging are not implemented");
    }
    *op = m == "GET" ? "GetObject" : "HeadObject";
    if (auto e = CheckKey(req.key)) return *e;
    return GetObject(ctx, req, bucket, m == "HEAD");
  }
  if (m == "PUT") {
    if (req.Has("uploadId") || req.Has("partNumber")) {
      *op = req.headers.Find("x-amz-copy-source") ? "UploadPartCopy" : "UploadPart";
      return UploadPartOp(ctx, req, id, bucket);
    }
    if (req.Has("acl") || req.Has("tagging")) {
      *op = "Unsupported";
      return Err(501, "NotImplemented", "object ACLs and tagging are not implemented");
    }
    if (req.headers.Find("x-amz-copy-source")) {
      *op = "CopyObject";
      return CopyObject(ctx, req, id, bucket);
    }
    *op = "PutObject";
    return PutObject(ctx, req, id, bucket);
  }
  if (m == "DELETE") {
    if (req.Has("uploadId")) {
      *op = "AbortMultipartUpload";
      return AbortUpload(ctx, req, bucket);
    }
    *op = "DeleteObject";
    return DeleteObject(ctx, req, bucket);
  }
  if (m == "POST") {
    if (req.Has("uploads")) {
      *op = "CreateMultipartUpload";
      return CreateUpload(ctx, req, bucket);
    }
    if (req.Has("uploadId")) {
      *op = "CompleteMultipartUpload";
      return CompleteUpload(ctx, req, id, bucket);
    }
  }
  *op = "Object";
  return Err(405, "MethodNotAllowed", "The specified method is not allowed against this resource.");
}

}  // namespace granary::s3
