// Request authentication (docs/s3.md "Authentication"): SigV4 (header and presigned query),
// SigV2 (header and presigned query), or none: an unsigned request is anonymous and may do only
// what ACLs make public.
#include <fmt/format.h>
#include <openssl/evp.h>

#include <cstring>
#include <ctime>

#include "common/error_table.h"
#include "s3/internal.h"
#include "s3/sigv2.h"

namespace granary::s3 {

S3Error ErrorFromStatus(const Status& status) {
  const ErrorMapping& m = MapError(status.code());
  return Err(m.http_status, std::string(m.s3_code), status.message());
}

namespace {

constexpr const char* kSignatureMismatch =
    "The request signature we calculated does not match the signature you provided. Check your "
    "key and signing method.";

std::optional<S3Error> LookUpSecret(Context& ctx, const std::string& access_key,
                                    std::string* secret) {
  auto s = ctx.Secret(access_key);
  if (!s.ok()) {
    if (s.status().code() == Code::NOT_FOUND) {
      return Err(403, "InvalidAccessKeyId",
                 "The AWS Access Key Id you provided does not exist in our records.");
    }
    return ErrorFromStatus(s.status());
  }
  *secret = std::move(*s);
  return std::nullopt;
}

// The payload modes an unsigned (anonymous) or SigV2 request can use: SigV2 signs no payload,
// and aws-chunked chunk signatures chain on a SigV4 signing key.
std::optional<S3Error> UnsignedPayload(const Request& req, Identity* id) {
  const std::string* hash = req.headers.Find("x-amz-content-sha256");
  if (!hash || *hash == "UNSIGNED-PAYLOAD") {
    id->payload_hash = "UNSIGNED-PAYLOAD";
  } else if (IsSha256Hex(*hash) || *hash == kStreamingUnsignedTrailer) {
    id->payload_hash = *hash;  // still checked against the body
  } else {
    return Err(400, "InvalidRequest",
               fmt::format("x-amz-content-sha256 '{}' needs a SigV4-signed request", *hash));
  }
  return std::nullopt;
}

// ---------------------------------------------------------------- SigV2

// S3 Developer Guide, "Signing and authenticating REST requests" (Signature Version 2).
std::optional<S3Error> AuthenticateV2(Context& ctx, const Request& req, Identity* id,
                                      const std::string& access_key, const std::string& signature,
                                      const std::string& date_line, bool query) {
  id->access_key = access_key;
  std::string secret;
  if (auto e = LookUpSecret(ctx, access_key, &secret)) return e;
  // CanonicalizedAmzHeaders: every x-amz-* header; a presigned URL carries them (and
  // Content-Type / Content-MD5) in its query string, as botocore's presigner puts them there.
  std::vector<std::pair<std::string, std::string>> amz;
  for (const auto& [name, value] : req.headers.all) {
    if (name.starts_with("x-amz-")) amz.emplace_back(name, value);
  }
  std::string content_md5 = req.headers.Get("content-md5");
  std::string content_type = req.headers.Get("content-type");
  if (query) {
    for (const auto& [name, value] : req.query) {
      std::string lower = name;
      for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (lower.starts_with("x-amz-") && !req.headers.Find(lower)) amz.emplace_back(lower, value);
      if (lower == "content-md5" && content_md5.empty()) content_md5 = value;
      if (lower == "content-type" && content_type.empty()) content_type = value;
    }
  }
  // The resource names the bucket even when the Host did (virtual-host style).
  const std::string path = req.virtual_host ? "/" + req.bucket + req.raw_path : req.raw_path;
  const size_t q = req.target.find('?');
  const std::string_view raw_query =
      q == std::string::npos ? std::string_view() : std::string_view(req.target).substr(q + 1);
  // Clients disagree where S3's description leaves room, and S3 accepts them all: a bucket is
  // "/bucket/" in its examples and to botocore but "/bucket" on the request line to others; a
  // sub-resource sent as "uploads=" is signed "uploads" by aws-sdk-go (rclone) and "uploads="
  // by botocore. Each variant names the same resource, so each is tried.
  std::vector<std::string> paths = {path};
  if (req.key.empty() && !req.bucket.empty()) {
    paths.push_back(path.ends_with('/') ? path.substr(0, path.size() - 1) : path + "/");
  }
  std::string sts;
  bool match = false;
  for (const std::string& p : paths) {
    for (bool bare : {false, true}) {
      std::string candidate = V2StringToSign(req.method, content_md5, content_type, date_line, amz,
                                             V2CanonicalResource(p, raw_query, bare));
      if (sts.empty()) sts = candidate;
      match = SafeEqual(V2Signature(secret, candidate), signature);
      if (match) break;
    }
    if (match) break;
  }
  if (!match) {
    S3Error e = Err(403, "SignatureDoesNotMatch", kSignatureMismatch);
    e.details = {
        {"AWSAccessKeyId", access_key}, {"StringToSign", sts}, {"SignatureProvided", signature}};
    return e;
  }
  return UnsignedPayload(req, id);
}

std::optional<S3Error> AuthenticateV2Header(Context& ctx, const Request& req, Identity* id,
                                            const std::string& header, int64_t now) {
  auto a = ParseV2Authorization(header);
  if (!a) {
    return Err(400, "InvalidArgument",
               "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature");
  }
  // With x-amz-date the Date header is ignored, and the StringToSign's date line is empty.
  const std::string* amz_date = req.headers.Find("x-amz-date");
  const std::string* date = amz_date ? amz_date : req.headers.Find("date");
  auto t = date ? ParseV2Date(*date) : std::nullopt;
  if (!t) {
    return Err(403, "AccessDenied",
               "AWS authentication requires a valid Date or x-amz-date header");
  }
  if (std::abs(*t - now) > ctx.options().max_skew_seconds) {
    return Err(403, "RequestTimeTooSkewed",
               "The difference between the request time and the current time is too large.");
  }
  return AuthenticateV2(ctx, req, id, a->access_key, a->signature,
                        amz_date ? "" : req.headers.Get("date"), /*query=*/false);
}

std::optional<S3Error> AuthenticateV2Query(Context& ctx, const Request& req, Identity* id,
                                           int64_t now) {
  const std::string access_key = req.Q("AWSAccessKeyId");
  const std::string signature = req.Q("Signature");
  const std::string expires_text = req.Q("Expires");
  if (access_key.empty() || signature.empty() || expires_text.empty()) {
    return Err(403, "AccessDenied",
               "Query-string authentication requires the Signature, Expires and "
               "AWSAccessKeyId parameters");
  }
  int64_t expires = -1;
  try {
    size_t used = 0;
    expires = std::stoll(expires_text, &used);
    if (used != expires_text.size()) expires = -1;
  } catch (...) {
    expires = -1;
  }
  if (expires < 0) {
    return Err(403, "AccessDenied",
               fmt::format("Invalid date (should be seconds since epoch): {}", expires_text));
  }
  // SigV2 has no signing time, only the expiry: an URL is good until then, like SigV4's.
  if (now > expires) return Err(403, "AccessDenied", "Request has expired");
  return AuthenticateV2(ctx, req, id, access_key, signature, expires_text, /*query=*/true);
}

// ---------------------------------------------------------------- SigV4

std::optional<S3Error> AuthenticateV4(Context& ctx, const Request& req, Identity* id,
                                      const std::string* auth, int64_t now) {
  std::vector<std::string> signed_headers;
  std::string signature;
  Params query = req.query;
  if (auth) {
    auto h = ParseAuthorization(*auth);
    if (!h) {
      return Err(400, "AuthorizationHeaderMalformed", "the Authorization header is malformed");
    }
    id->credential = h->credential;
    signed_headers = h->signed_headers;
    signature = h->signature;
    id->amz_date = req.headers.Get("x-amz-date");
    auto t = ParseAmzDate(id->amz_date);
    if (!t) return Err(403, "AccessDenied", "a valid x-amz-date header is required");
    if (std::abs(*t - now) > ctx.options().max_skew_seconds) {
      return Err(403, "RequestTimeTooSkewed",
                 "The difference between the request time and the current time is too large.");
    }
    if (id->amz_date.substr(0, 8) != id->credential.date) {
      return Err(403, "SignatureDoesNotMatch", "credential date does not match x-amz-date");
    }
    const std::string* hash = req.headers.Find("x-amz-content-sha256");
    if (!hash) {
      return Err(400, "InvalidRequest",
                 "Missing required header for this request: x-amz-content-sha256");
    }
    id->payload_hash = *hash;
    if (!IsSha256Hex(*hash) && *hash != "UNSIGNED-PAYLOAD" && *hash != kStreamingSigned &&
        *hash != kStreamingSignedTrailer && *hash != kStreamingUnsignedTrailer) {
      return Err(400, "InvalidArgument", "x-amz-content-sha256 must be a hash or a known mode");
    }
  } else {
    if (req.Q("X-Amz-Algorithm") != "AWS4-HMAC-SHA256") {
      return Err(400, "AuthorizationQueryParametersError",
                 "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"");
    }
    auto cred = ParseCredential(req.Q("X-Amz-Credential"));
    id->amz_date = req.Q("X-Amz-Date");
    auto t = ParseAmzDate(id->amz_date);
    std::string expires_text = req.Q("X-Amz-Expires");
    signature = req.Q("X-Amz-Signature");
    if (!cred || !t || expires_text.empty() || signature.size() != 64 ||
        !req.Has("X-Amz-SignedHeaders")) {
      return Err(400, "AuthorizationQueryParametersError",
                 "presigned URL lacks or has malformed X-Amz-* parameters");
    }
    int64_t expires = 0;
    try {
      expires = std::stoll(expires_text);
    } catch (...) {
      expires = -1;
    }
    if (expires < 1 || expires > 604800) {
      return Err(400, "AuthorizationQueryParametersError",
                 "X-Amz-Expires must be between 1 and 604800 seconds");
    }
    if (now > *t + expires) return Err(403, "AccessDenied", "Request has expired");
    if (*t - now > ctx.options().max_skew_seconds) {
      return Err(403, "AccessDenied", "Request is not valid yet");
    }
    id->credential = *cred;
    std::string sh = req.Q("X-Amz-SignedHeaders");
    size_t s = 0;
    while (s <= sh.size()) {
      size_t semi = sh.find(';', s);
      signed_headers.push_back(sh.substr(s, semi == std::string::npos ? sh.npos : semi - s));
      if (semi == std::string::npos) break;
      s = semi + 1;
    }
    std::erase_if(query, [](const auto& kv) { return kv.first == "X-Amz-Signature"; });
    id->payload_hash = req.headers.Get("x-amz-content-sha256", "UNSIGNED-PAYLOAD");
  }
  id->access_key = id->credential.access_key;
  std::string secret;
  if (auto e = LookUpSecret(ctx, id->access_key, &secret)) return e;
  CanonicalInput in;
  in.method = req.method;
  in.path = req.path;
  in.query = std::move(query);
  in.signed_headers = signed_headers;
  for (const std::string& name : signed_headers) {
    auto [lo, hi] = req.headers.all.equal_range(name);
    for (auto it = lo; it != hi; ++it) in.headers.emplace_back(name, it->second);
  }
  in.payload_hash = id->payload_hash;
  const std::string canonical = CanonicalRequest(in);
  id->signing_key =
      SigningKey(secret, id->credential.date, id->credential.region, id->credential.service);
  const std::string sts = StringToSign(id->amz_date, id->credential.scope(), canonical);
  const std::string expected = Hex(HmacSha256(id->signing_key, sts));
  if (!SafeEqual(expected, signature)) {
    S3Error e = Err(403, "SignatureDoesNotMatch", kSignatureMismatch);
    e.details = {{"AWSAccessKeyId", id->access_key},
                 {"StringToSign", sts},
                 {"SignatureProvided", signature},
                 {"CanonicalRequest", canonical}};
    return e;
  }
  id->seed_signature = signature;
  return std::nullopt;
}

}  // namespace

std::optional<S3Error> Authenticate(Context& ctx, const Request& req, Identity* id) {
  const int64_t now = std::time(nullptr);
  if (const std::string* auth = req.headers.Find("authorization")) {
    if (auth->starts_with("AWS ")) return AuthenticateV2Header(ctx, req, id, *auth, now);
    return AuthenticateV4(ctx, req, id, auth, now);
  }
  if (req.Has("X-Amz-Algorithm") || req.Has("X-Amz-Signature") || req.Has("X-Amz-Credential")) {
    return AuthenticateV4(ctx, req, id, nullptr, now);
  }
  if (req.Has("AWSAccessKeyId") || req.Has("Signature")) {
    return AuthenticateV2Query(ctx, req, id, now);
  }
  id->anonymous = true;
  return UnsignedPayload(req, id);
}

}  // namespace granary::s3
