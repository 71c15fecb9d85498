// AWS Signature Version 2 for S3 (docs/s3.md "Authentication"): the header form
// (`Authorization: AWS AKID:signature`) and the query form (AWSAccessKeyId, Signature,
// Expires) that boto3's default presigner still emits. S3 Developer Guide, "Signing and
// authenticating REST requests": Signature = base64(HMAC-SHA1(secret, StringToSign)). Pure
// functions over strings, so they are unit-tested against AWS's published examples and fuzzed.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace granary::s3 {

struct V2Authorization {
  std::string access_key;
  std::string signature;  // base64, as sent
};
// "AWS AKID:signature"; nullopt when malformed.
std::optional<V2Authorization> ParseV2Authorization(std::string_view value);

// CanonicalizedResource: `path` as sent on the wire (percent-encoded, with "/bucket" in front
// for virtual-host requests), then the sub-resources of `raw_query` that S3 signs (acl, uploadId,
// response-content-type, ...), sorted by name, values percent-decoded, "name" or "name=value"
// as sent ("uploads" vs "uploads="). `bare_empty`: an empty value is written "name" whether or
// not the query had '=' (what aws-sdk-go and rclone sign).
std::string V2CanonicalResource(std::string_view path, std::string_view raw_query,
                                bool bare_empty = false);

// StringToSign = VERB \n Content-MD5 \n Content-Type \n Date-or-Expires \n
// CanonicalizedAmzHeaders CanonicalizedResource. `amz_headers`: every x-amz-* header (any case,
// repeated names allowed); they are lower-cased, sorted, trimmed, and a repeated name's values
// joined with ','.
std::string V2StringToSign(std::string_view method, std::string_view content_md5,
                           std::string_view content_type, std::string_view date,
                           const std::vector<std::pair<std::string, std::string>>& amz_headers,
                           std::string_view canonical_resource);

// base64(HMAC-SHA1(secret, string_to_sign)).
std::string V2Signature(std::string_view secret, std::string_view string_to_sign);

// A SigV2 Date or x-amz-date: RFC 1123 ("Tue, 27 Mar 2007 19:36:42 GMT" or "+0000"), or SigV4's
// "20070327T193642Z". Seconds since the epoch, or nullopt.
std::optional<int64_t> ParseV2Date(std::string_view text);

}  // namespace granary::s3
