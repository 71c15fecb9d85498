// Internal types of the S3 gateway shared by gateway.cpp (HTTP), auth.cpp (SigV4), body.cpp
// (request bodies), dispatch.cpp (routing) and ops_*.cpp (the operations). Not a public header.
#pragma once

#include <openssl/evp.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <pugixml.hpp>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "client/granary.h"
#include "client/meta_client.h"
#include "client/object_client.h"
#include "common/metrics.h"
#include "common/status.h"
#include "s3/checksum.h"
#include "s3/documents.h"
#include "s3/error.h"
#include "s3/gateway.h"
#include "s3/sigv4.h"
#include "s3/ttl_cache.h"

namespace granary::s3 {

// Storage errors through the one table (common/error_table.h).
S3Error ErrorFromStatus(const Status& status);

// Incremental MD5 / SHA-256.
class Digest {
 public:
  explicit Digest(const EVP_MD* md);
  ~Digest();
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;
  void Update(const void* data, size_t n);
  std::string Final();  // raw bytes
 private:
  EVP_MD_CTX* ctx_;
};
std::string Base64(std::string_view bytes);
std::optional<std::string> Base64Decode(std::string_view text);

// Raw request body bytes as they arrive from the socket.
class RawBody {
 public:
  virtual ~RawBody() = default;
  // 0 at the end of the body; an error when the connection broke (IncompleteBody).
  virtual Result<size_t> ReadSome(std::span<uint8_t> out) = 0;
};

struct Headers {
  // Lower-case name -> values in arrival order.
  std::multimap<std::string, std::string> all;
  const std::string* Find(const std::string& name) const {
    auto it = all.find(name);
    return it == all.end() ? nullptr : &it->second;
  }
  std::string Get(const std::string& name, std::string fallback = "") const {
    auto* v = Find(name);
    return v ? *v : fallback;
  }
};

struct Request {
  std::string method;
  std::string target;    // as received
  std::string raw_path;  // percent-encoded
  std::string path;      // decoded
  Params query;          // decoded
  Headers headers;
  std::string host;
  std::string bucket;
  std::string key;
  bool virtual_host = false;  // the bucket came from the Host header (--domain)
  bool has_content_length = false;
  uint64_t content_length = 0;
  RawBody* raw = nullptr;
  std::string request_id;
  bool Has(std::string_view q) const {
    for (auto& [k, v] : query)
      if (k == q) return true;
    return false;
  }
  std::string Q(std::string_view q, std::string fallback = "") const {
    for (auto& [k, v] : query)
      if (k == q) return v;
    return fallback;
  }
};

// Who signed the request (after Authenticate): a key, or nobody (`anonymous`: an unsigned
// request, allowed only what is public).
struct Identity {
  bool anonymous = false;
  std::string access_key;
  Credential credential;
  std::string signing_key;
  std::string seed_signature;  // for aws-chunked chunk signatures
  std::string amz_date;
  std::string payload_hash;  // x-amz-content-sha256 or UNSIGNED-PAYLOAD
};

// The request body after SigV4: aws-chunked decoded, payload hash, chunk and trailer signatures,
// Content-MD5 and the x-amz-checksum-* value (header or trailer) checked, in one pass.
// Read returns the decoded bytes; the last Read (0) fails when a check fails.
class Body {
 public:
  // `compute`: the checksum to compute when the client sends none (an upload's algorithm);
  // a client value of another algorithm is then an InvalidRequest. `header_checksums`: false
  // when x-amz-checksum-* headers describe something else (CompleteMultipartUpload's object).
  Body(Request& req, const Identity& id, std::optional<ChecksumAlgorithm> compute = std::nullopt,
       bool header_checksums = true);
  Result<size_t> Read(
      std::span<uint8_t> out);  // S3 errors arrive as Status with code InvalidArgument
  // The error of the last failed Read as S3 reports it.
  const S3Error& error() const { return error_; }
  // Decoded length when known (Content-Length or x-amz-decoded-content-length); nullopt if not.
  std::optional<uint64_t> length() const { return length_; }
  // MD5 of every byte returned so far (valid after the end).
  std::string md5() const { return md5_result_; }
  bool done() const { return done_; }
  // Wrong checksum headers (malformed, two of them, unknown algorithm), found before any byte
  // is read: the request fails without storing anything. Read fails with it too.
  const std::optional<S3Error>& setup_error() const { return setup_error_; }
  // The verified (or computed) checksum, valid after the end; nullopt when none was asked for.
  const std::optional<Checksum>& checksum() const { return checksum_; }

 private:
  std::optional<S3Error> SetupChecksum(std::optional<ChecksumAlgorithm> compute,
                                       bool header_checksums);
  Status ParseTrailerLine(std::string_view line);
  Status CheckTrailers();
  Result<size_t> ReadRaw(std::span<uint8_t> out);
  Result<size_t> ReadChunked(std::span<uint8_t> out);
  Status Fail(S3Error e);
  Status Refill();                 // the framing lookahead, when used up; IncompleteBody at the end
  Result<std::string> ReadLine();  // from the chunk framing, up to CRLF (bounded)
  Status FinishChecks();

  Request& req_;
  const Identity& id_;
  bool chunked_ = false;
  bool signed_chunks_ = false;
  bool trailer_ = false;
  std::optional<uint64_t> length_;
  uint64_t delivered_ = 0;
  std::unique_ptr<Digest> sha_;        // whole payload, when the hash is signed
  std::unique_ptr<Digest> chunk_sha_;  // current chunk
  Digest md5_;
  std::string md5_result_;
  std::string prev_signature_;
  std::string chunk_signature_;
  uint64_t chunk_left_ = 0;
  bool in_chunk_ = false;
  bool done_ = false;
  bool failed_ = false;
  bool last_chunk_seen_ = false;
  S3Error error_;
  std::optional<S3Error> setup_error_;
  std::unique_ptr<Checksummer> checksummer_;
  std::optional<std::string> want_checksum_;  // raw digest the client sent
  bool checksum_in_trailer_ = false;
  std::optional<Checksum> checksum_;
  std::vector<std::pair<std::string, std::string>> trailers_;  // lower-case name, value
  std::string trailer_signature_;
  std::vector<uint8_t> buf_;  // lookahead for chunk framing
  size_t buf_pos_ = 0, buf_end_ = 0;
};

// Everything an operation handler uses.
class Context {
 public:
  Context(GatewayOptions options, std::unique_ptr<client::Client> client,
          std::unique_ptr<client::ObjectClient> objects);
  const GatewayOptions& options() const { return options_; }
  client::Client& client() { return *client_; }
  client::MetaClient& meta() { return client_->meta(); }
  client::ObjectClient& objects() { return *objects_; }

  // Cached for a short time: every request needs its key's secret and its bucket.
  Result<std::string> Secret(const std::string& access_key);
  Result<Bucket> GetBucket(const std::string& name);
  void ForgetBucket(const std::string& name);

 private:
  GatewayOptions options_;
  std::unique_ptr<client::Client> client_;
  std::unique_ptr<client::ObjectClient> objects_;
  TtlCache<std::string> secrets_{std::chrono::seconds(5)};
  TtlCache<Bucket> buckets_{std::chrono::seconds(2)};
};

// What a handler sends back. Either `body` (small, in memory) or `stream` (large): `stream` is
// called with a sink until it returns; the sink writes bytes to the client.
struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  uint64_t stream_length = 0;
  using Sink = std::function<Status(std::span<const uint8_t>)>;
  std::function<Status(const Sink&)> stream;
  uint64_t bytes_in = 0;  // for metrics
  void Header(std::string name, std::string value) {
    headers.emplace_back(std::move(name), std::move(value));
  }
};

// The result of a handler: a response or an S3 error.
using Outcome = std::variant<Response, S3Error>;

// Checks the signature (SigV4 or SigV2, header or presigned); fills `id`. An unsigned request
// is anonymous (allowed what is public).
std::optional<S3Error> Authenticate(Context& ctx, const Request& req, Identity* id);

// Dispatch to the operation; `op` is set to the operation's metric name.
Outcome Dispatch(Context& ctx, Request& req, const Identity& id, std::string* op);

std::string ErrorXml(const S3Error& e, const Request& req);
std::string HttpDate(int64_t seconds);
std::string IsoDate(const Timespec& t);

// ---------------------------------------------------------------- shared by the operations
// (ops_common.cpp unless noted)

// An S3 XML document whose root element carries the S3 namespace.
class Xml {
 public:
  explicit Xml(const char* root_name);
  pugi::xml_node root() { return root_; }
  std::string str() const;

 private:
  pugi::xml_document doc_;
  pugi::xml_node root_;
};
pugi::xml_node Add(pugi::xml_node parent, const char* name, const std::string& value);
Response XmlResponse(const Xml& x, int status = 200);
Response Empty(int status);

std::string Quote(std::string_view hex);
std::string OwnerId(const std::string& access_key);

// ---------------------------------------------------------------- access (access.cpp)
// docs/s3.md "ACLs and anonymous access". The bucket owner may do everything; an admin grant
// (`granary admin bucket grant`) gives read (GET, HEAD, listings) or readwrite (all but
// deleting the bucket); S3 ACL grants give what S3 gives them, unless the bucket's Object
// Ownership is BucketOwnerEnforced (ACLs disabled).

// The bucket, or 404 NoSuchBucket (to anyone, as S3 answers).
std::variant<Bucket, S3Error> LoadBucket(Context& ctx, const std::string& name);
bool BucketAllows(const Bucket& b, const Identity& id, Permission p);
// The owner, or a readwrite admin grant: bucket settings (CORS, ownership controls).
bool BucketAdmin(const Bucket& b, const Identity& id);
bool ObjectAllows(const Bucket& b, const ObjectInfo& o, const Identity& id, Permission p);
// The object's owner as ACLs show it: its writer (ObjectWriter), else the bucket's owner.
std::string ObjectOwner(const Bucket& b, const ObjectInfo& o);
S3Error AccessDenied();
// LoadBucket + BucketAllows.
std::variant<Bucket, S3Error> AuthorizeBucket(Context& ctx, const std::string& name,
                                              const Identity& id, Permission p);
// The object `key` (with its read map when `extents`), if `id` may `p` it. A missing object is
// NoSuchKey to whoever may list the bucket and AccessDenied to others (S3 answers so, lest a
// 404 tell a stranger which keys exist).
std::variant<ObjectGetReply, S3Error> AuthorizedObject(Context& ctx, const Bucket& b,
                                                       const std::string& key, const Identity& id,
                                                       bool extents,
                                                       Permission p = Permission::kRead);
// The ACL a write asks for (x-amz-acl or x-amz-grant-*), nullopt when none; every key it names
// must exist (400 InvalidArgument "Invalid id"). `owner`: the resource's owner.
std::variant<std::optional<Acl>, S3Error> RequestedAcl(Context& ctx, const Request& req,
                                                       const std::string& owner,
                                                       const std::string& bucket_owner,
                                                       bool for_bucket);
// What a new object carries beside its bytes: owner, ACL, tags (x-amz-tagging), following the
// bucket's Object Ownership. Fills `meta`.
std::optional<S3Error> NewObjectSettings(Context& ctx, const Request& req, const Identity& id,
                                         const Bucket& b, ObjectMeta* meta);
// An AccessControlPolicy document of `owner` and `acl` (empty: the owner's FULL_CONTROL).
Response AclResponse(const std::string& owner,
                     const google::protobuf::RepeatedPtrField<AclGrant>& acl);
// A storage error of an object operation (NOT_FOUND is NoSuchKey).
S3Error ObjectError(const Status& s);
// Keys are file paths: no empty, '.' or '..' segment, segments of at most 255 bytes.
std::optional<S3Error> CheckKey(const std::string& key);

inline uint32_t FileMode(const Bucket& b) { return 0666 & ~b.umask(); }
inline uint32_t DirMode(const Bucket& b) { return 0777 & ~b.umask(); }

// Object headers taken from a PUT / CreateMultipartUpload / CopyObject REPLACE.
ObjectMeta MetaFromRequest(const Request& req);
// Reads a small XML request body (bounded), checking its signature and digests (x-amz-checksum-*
// headers too, unless `header_checksums` is false).
std::variant<std::string, S3Error> SmallBody(Request& req, const Identity& id, size_t limit,
                                             bool header_checksums = true);
// If-None-Match: * and If-Match of a write, for the Publish to check.
std::optional<S3Error> PutPrecondition(const Request& req, Precondition* pre);
S3Error PublishError(const Status& s);

// Streams the body into a staged inode: the bytes, their MD5, or the S3 error.
struct Uploaded {
  client::ObjectClient::Staged staged;
  std::string md5;  // raw
  uint64_t size = 0;
  std::optional<CommitRequest> commit;  // small bodies: for the Publish to apply
  std::optional<Checksum> checksum;     // verified x-amz-checksum-* (or computed, see Body)
};
// The request body staged in a new inode of `layout` (the bucket's when null); `compute`: the
// checksum to compute when the client sends none. ops_object.cpp.
std::variant<Uploaded, S3Error> ReceiveInto(Context& ctx, Request& req, const Identity& id,
                                            const Bucket& bucket, const Layout* layout,
                                            std::optional<ChecksumAlgorithm> compute = {});
// UploadPartCopy's bytes: the x-amz-copy-source object (or its x-amz-copy-source-range) copied
// into a new inode of `layout`, with the `compute` checksum of the copied bytes. ops_copy.cpp.
std::variant<Uploaded, S3Error> CopyIntoPart(Context& ctx, Request& req, const Identity& id,
                                             const Bucket& b, const Layout& layout,
                                             std::optional<ChecksumAlgorithm> compute);

// ---------------------------------------------------------------- checksums (ops_common.cpp)

// The xattr holding an object's ObjectMeta (the metanode's kObjectMetaXattr).
inline constexpr std::string_view kObjectMetaXattr = "granary.s3";
void SetMetaChecksum(ObjectMeta* m, const Checksum& c);
// The checksum stored with an object, if it still describes the bytes `info` describes (no
// POSIX write since). One metanode read, so only for requests that ask for it.
Result<std::optional<Checksum>> StoredChecksum(Context& ctx, const ObjectInfo& info);
// x-amz-checksum-<alg> and x-amz-checksum-type response headers.
void ChecksumHeaders(Response& r, const Checksum& c);
// x-amz-checksum-algorithm of CreateMultipartUpload / CopyObject; InvalidRequest when unknown.
std::variant<std::optional<ChecksumAlgorithm>, S3Error> RequestedAlgorithm(const Request& req);

struct ByteRange {
  uint64_t first = 0, last = 0;  // inclusive
};
// A Range header. monostate: none (or not usable, so the whole object); S3Error:
// unsatisfiable. ops_object.cpp.
std::variant<std::monostate, ByteRange, S3Error> ParseRange(const std::string* header,
                                                            uint64_t size);

// The ObjectMeta stored with an object, if it still describes the bytes `info` describes (no
// POSIX write since). One metanode read. ops_attributes.cpp.
Result<std::optional<ObjectMeta>> StoredMeta(Context& ctx, const ObjectInfo& info);

// ---------------------------------------------------------------- the operations (Dispatch's)

// ops_bucket.cpp
Outcome ListBuckets(Context& ctx, const Request& req, const Identity& id);
Outcome CreateBucket(Context& ctx, Request& req, const Identity& id);
Outcome DeleteBucket(Context& ctx, const Request& req, const Identity& id, const Bucket& b);
// ops_list.cpp
Outcome ListObjects(Context& ctx, const Request& req, const Identity& id, const Bucket& b);
Outcome ListVersions(Context& ctx, const Request& req, const Identity& id, const Bucket& b);
// ops_acl.cpp
Outcome GetBucketAcl(Context& ctx, const Request& req, const Identity& id, const Bucket& b);
Outcome PutBucketAcl(Context& ctx, Request& req, const Identity& id, const Bucket& b);
Outcome GetObjectAcl(Context& ctx, const Request& req, const Identity& id, const Bucket& b);
Outcome PutObjectAcl(Context& ctx, Request& req, const Identity& id, const Bucket& b);
Outcome GetOwnershipControls(const Bucket& b);
Outcome PutOwnershipControls(Context& ctx, Request& req, const Identity& id, const Bucket& b);
Outcome DeleteOwnershipControls(Context& ctx, const Bucket& b);
// ops_tagging.cpp
Outcome GetObjectTagging(Context& ctx, const Request& req, const Identity& id, const Bucket& b);
Outcome PutObjectTagging(Context& ctx, Request& req, const Identity& id, const Bucket& b);
Outcome DeleteObjectTagging(Context& ctx, const Request& req, const Identity& id, const Bucket& b);
// ops_cors.cpp
Outcome GetBucketCors(const Bucket& b);
Outcome PutBucketCors(Context& ctx, Request& req, const Identity& id, const Bucket& b);
Outcome DeleteBucketCors(Context& ctx, const Bucket& b);
// OPTIONS: a CORS preflight, answered without authentication.
Outcome Preflight(Context& ctx, const Request& req);
// The CORS headers of an actual request carrying Origin (none when no rule allows it).
std::vector<std::pair<std::string, std::string>> CorsHeaders(Context& ctx, const Request& req);
// ops_attributes.cpp
Outcome GetObjectAttributes(Context& ctx, const Request& req, const Identity& id, const Bucket& b);
// ops_object.cpp
Outcome GetObject(Context& ctx, const Request& req, const Identity& id, const Bucket& b, bool head);
Outcome PutObject(Context& ctx, Request& req, const Identity& id, const Bucket& b);
Outcome DeleteObject(Context& ctx, const Request& req, const Bucket& b);
Outcome DeleteObjects(Context& ctx, Request& req, const Identity& id, const Bucket& b);
// ops_copy.cpp
Outcome CopyObject(Context& ctx, Request& req, const Identity& id, const Bucket& b);
// ops_multipart.cpp
Outcome CreateUpload(Context& ctx, const Request& req, const Identity& id, const Bucket& b);
Outcome UploadPartOp(Context& ctx, Request& req, const Identity& id, const Bucket& b);
Outcome CompleteUpload(Context& ctx, Request& req, const Identity& id, const Bucket& b);
Outcome AbortUpload(Context& ctx, const Request& req, const Bucket& b);
Outcome ListParts(Context& ctx, const Request& req, const Bucket& b);
Outcome ListUploads(Context& ctx, const Request& req, const Bucket& b);

}  // namespace granary::s3
