// AWS Signature Version 4 for S3 (docs/s3.md): canonical requests, signing keys, header and
// presigned-URL signatures, and the per-chunk signatures of aws-chunked uploads. Pure functions
// over strings, so they are unit-tested against AWS's published examples and fuzzed.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace granary::s3 {

// "%XX"-decoding; '+' stays '+' (S3 paths and SigV4 treat it literally). nullopt on bad escapes.
std::optional<std::string> UriDecode(std::string_view in);
// AWS's URI encoding: everything but A-Za-z0-9-_.~ as %XX (uppercase); '/' kept when
// `keep_slash`.
std::string UriEncode(std::string_view in, bool keep_slash);

// Query parameters decoded, in request order. nullopt on a bad escape.
using Params = std::vector<std::pair<std::string, std::string>>;
std::optional<Params> ParseQuery(std::string_view query);

std::string Sha256Hex(std::string_view data);
std::string HmacSha256(std::string_view key, std::string_view data);  // raw bytes
std::string Hex(std::string_view bytes);

// kSecret = HMAC chain "AWS4"+secret -> date -> region -> service -> "aws4_request".
std::string SigningKey(std::string_view secret, std::string_view date, std::string_view region,
                       std::string_view service);

struct CanonicalInput {
  std::string method;
  std::string path;  // decoded path ("/bucket/key")
  Params query;      // decoded, without X-Amz-Signature
  // Lower-case names with their values, for the signed headers only (in any order).
  std::vector<std::pair<std::string, std::string>> headers;
  std::vector<std::string> signed_headers;  // lower-case, as listed by the client
  std::string payload_hash;
};
std::string CanonicalRequest(const CanonicalInput& in);
std::string StringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request);

// The fields of an Authorization header or of presigned query parameters.
struct Credential {
  std::string access_key;
  std::string date;  // yyyymmdd
  std::string region;
  std::string service;
  std::string scope() const { return date + "/" + region + "/" + service + "/aws4_request"; }
};
struct AuthHeader {
  Credential credential;
  std::vector<std::string> signed_headers;
  std::string signature;
};
// Parses "AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…"; nullopt if malformed.
std::optional<AuthHeader> ParseAuthorization(std::string_view value);
std::optional<Credential> ParseCredential(std::string_view value);

// The x-amz-content-sha256 values that announce an aws-chunked body.
inline constexpr std::string_view kStreamingSigned = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
inline constexpr std::string_view kStreamingSignedTrailer =
    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
inline constexpr std::string_view kStreamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
// A payload hash as SigV4 writes one: 64 lower-case hex digits.
bool IsSha256Hex(std::string_view s);

// Signature of one aws-chunked chunk (STREAMING-AWS4-HMAC-SHA256-PAYLOAD).
std::string ChunkSignature(std::string_view signing_key, std::string_view amz_date,
                           std::string_view scope, std::string_view previous_signature,
                           std::string_view chunk_sha256_hex);

// Signature of the trailer of STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER (x-amz-trailer-signature):
// chained on the final (empty) chunk's signature, over the SHA-256 of the trailer lines in
// canonical form ("name:value\n" each, lower-case names, sorted).
std::string TrailerSignature(std::string_view signing_key, std::string_view amz_date,
                             std::string_view scope, std::string_view previous_signature,
                             std::string_view trailer_sha256_hex);

// "20130524T000000Z" -> seconds since the epoch; nullopt when malformed.
std::optional<int64_t> ParseAmzDate(std::string_view s);

// Constant-time comparison for signatures.
bool SafeEqual(std::string_view a, std::string_view b);

}  // namespace granary::s3
