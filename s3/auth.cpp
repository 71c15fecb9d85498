// SigV4 request authentication and the request body pipeline (aws-chunked decoding, payload
// hash, chunk signatures, Content-MD5).
#include <fmt/format.h>
#include <openssl/evp.h>

#include <cstring>
#include <ctime>

#include "common/error_table.h"
#include "s3/internal.h"

namespace granary::s3 {

S3Error ErrorFromStatus(const Status& status) {
  const ErrorMapping& m = MapError(status.code());
  return S3Error{m.http_status, std::string(m.s3_code), status.message()};
}

std::optional<S3Error> Authenticate(Context& ctx, const Request& req, Identity* id) {
  const std::string* auth = req.headers.Find("authorization");
  std::vector<std::string> signed_headers;
  std::string signature;
  Params query = req.query;
  const int64_t now = std::time(nullptr);
  if (auth) {
    auto h = ParseAuthorization(*auth);
    if (!h) {
      if (auth->starts_with("AWS ")) {
        return Err(400, "InvalidRequest", "Signature Version 2 is not supported; use SigV4");
      }
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
                 "the difference between the request time and the server's time is too large");
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
  } else if (req.Has("X-Amz-Algorithm") || req.Has("X-Amz-Signature")) {
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
  } else {
    return Err(403, "AccessDenied", "anonymous access is not allowed; sign requests with SigV4");
  }
  id->access_key = id->credential.access_key;
  auto secret = ctx.Secret(id->access_key);
  if (!secret.ok()) {
    if (secret.status().code() == Code::NOT_FOUND) {
      return Err(403, "InvalidAccessKeyId",
                 "The AWS Access Key Id you provided does not exist in our records.");
    }
    return ErrorFromStatus(secret.status());
  }
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
      SigningKey(*secret, id->credential.date, id->credential.region, id->credential.service);
  const std::string expected = Hex(
      HmacSha256(id->signing_key, StringToSign(id->amz_date, id->credential.scope(), canonical)));
  if (!SafeEqual(expected, signature)) {
    return Err(403, "SignatureDoesNotMatch",
               "The request signature we calculated does not match the signature you provided. "
               "Check your key and signing method.");
  }
  id->seed_signature = signature;
  return std::nullopt;
}

}  // namespace granary::s3
