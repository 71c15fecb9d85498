// Helpers every S3 operation shares (declared in internal.h): XML, authorisation, keys, bodies.
#include <fmt/format.h>

#include <pugixml.hpp>
#include <sstream>

#include "s3/internal.h"
#include "s3/s3_util.h"

namespace granary::s3 {

namespace {

constexpr const char* kNs = "http://s3.amazonaws.com/doc/2006-03-01/";

}  // namespace

Xml::Xml(const char* root_name) {
  auto decl = doc_.append_child(pugi::node_declaration);
  decl.append_attribute("version") = "1.0";
  decl.append_attribute("encoding") = "UTF-8";
  root_ = doc_.append_child(root_name);
  root_.append_attribute("xmlns") = kNs;
}

std::string Xml::str() const {
  std::ostringstream out;
  doc_.save(out, "", pugi::format_raw);
  return out.str();
}

pugi::xml_node Add(pugi::xml_node parent, const char* name, const std::string& value) {
  auto n = parent.append_child(name);
  n.text().set(value.c_str());
  return n;
}

Response XmlResponse(const Xml& x, int status) {
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

std::variant<std::string, S3Error> SmallBody(Request& req, const Identity& id, size_t limit,
                                             bool header_checksums) {
  Body body(req, id, std::nullopt, header_checksums);
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
  for (const auto& [name, text] : e.details) Add(root, name.c_str(), text);
  Add(root, "RequestId", req.request_id);
  std::ostringstream out;
  doc.save(out, "", pugi::format_raw);
  return out.str();
}

// ---------------------------------------------------------------- checksums

void SetMetaChecksum(ObjectMeta* m, const Checksum& c) {
  m->set_checksum_algorithm(std::string(AlgorithmName(c.algorithm)));
  m->set_checksum(c.value);
  m->set_checksum_composite(c.composite);
}

Result<std::optional<Checksum>> StoredChecksum(Context& ctx, const ObjectInfo& info) {
  if (info.is_directory()) return std::optional<Checksum>();
  auto raw = ctx.meta().GetXattr(info.attr().ino(), kObjectMetaXattr);
  if (!raw.ok()) {
    if (raw.status().code() == Code::NOT_FOUND) return std::optional<Checksum>();  // POSIX file
    return raw.status().WithContext(
        fmt::format("read the checksum of '{}' (inode {})", info.key(), info.attr().ino()));
  }
  ObjectMeta m;
  if (!m.ParseFromString(*raw) || m.checksum().empty() ||
      m.commit_version() != info.attr().commit_version()) {
    return std::optional<Checksum>();
  }
  auto a = ParseChecksumAlgorithm(m.checksum_algorithm());
  if (!a) return std::optional<Checksum>();
  return std::optional<Checksum>(Checksum{*a, m.checksum(), m.checksum_composite()});
}

void ChecksumHeaders(Response& r, const Checksum& c) {
  r.Header(ChecksumHeader(c.algorithm), c.value);
  r.Header("x-amz-checksum-type", c.composite ? "COMPOSITE" : "FULL_OBJECT");
}

std::variant<std::optional<ChecksumAlgorithm>, S3Error> RequestedAlgorithm(const Request& req) {
  auto* h = req.headers.Find("x-amz-checksum-algorithm");
  if (!h) return std::optional<ChecksumAlgorithm>();
  auto a = ParseChecksumAlgorithm(*h);
  if (!a) {
    return Err(400, "InvalidRequest", kUnsupportedChecksumAlgorithm);
  }
  return std::optional<ChecksumAlgorithm>(*a);
}

}  // namespace granary::s3
