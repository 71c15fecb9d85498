// S3's request documents and the header forms of the same settings, parsed into what the
// metanode stores (docs/s3.md): ACLs (x-amz-acl, x-amz-grant-*, AccessControlPolicy), object
// tags (x-amz-tagging, Tagging), CORS rules (CORSConfiguration) and their evaluation,
// DeleteObjects' Delete. Pure functions over strings and pugixml, so the fuzz target builds them
// alone (fuzz/s3_request_fuzz.cpp).
#pragma once

#include <map>
#include <optional>
#include <pugixml.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "granary/meta.pb.h"
#include "s3/error.h"

namespace granary::s3 {

// Loads an S3 request document keeping every character of its text: pugixml drops
// whitespace-only text by default, which turned a key of one space into an empty key.
// Document type declarations are not expanded (no entities but the five predefined ones).
bool LoadXml(pugi::xml_document& doc, std::string_view xml);
// 400 MalformedXML, S3's words.
S3Error MalformedXml();

// ---------------------------------------------------------------- ACLs

// What an operation needs of a bucket or object ACL (S3 User Guide, "Access control list (ACL)
// overview", "Permissions you can grant").
enum class Permission { kRead, kWrite, kReadAcp, kWriteAcp };
using Acl = std::vector<AclGrant>;

// The grants of a canned ACL (x-amz-acl) for a resource owned by `owner` in a bucket owned by
// `bucket_owner`. bucket-owner-read / -full-control on a bucket are ignored, as S3 does.
// Unknown names: 400 InvalidArgument; aws-exec-read: 501 NotImplemented.
std::variant<Acl, S3Error> CannedAcl(std::string_view name, const std::string& owner,
                                     const std::string& bucket_owner, bool for_bucket);
// x-amz-grant-read/-write/-read-acp/-write-acp/-full-control: `id="KEY", uri="GROUP-URI"`
// lists, one per header (permission, value).
std::variant<Acl, S3Error> GrantHeadersAcl(
    const std::vector<std::pair<AclPermission, std::string>>& headers);
// An AccessControlPolicy document (PutBucketAcl / PutObjectAcl): 400 MalformedACLError when it
// is not one.
std::variant<Acl, S3Error> ParseAclXml(std::string_view xml);
// Whether `acl` grants `p` to the requester (`access_key`, or anonymous).
bool AclAllows(const google::protobuf::RepeatedPtrField<AclGrant>& acl,
               const std::string& access_key, bool anonymous, Permission p);
const char* GroupUri(AclGroup g);
const char* PermissionName(AclPermission p);
// A grant list equivalent to bucket-owner-full-control (what an owner-enforced bucket accepts).
bool IsOwnerFullControl(const Acl& acl, const std::string& bucket_owner);

// ---------------------------------------------------------------- tags

using Tags = std::map<std::string, std::string>;
// A Tagging document (PutObjectTagging); validated as below.
std::variant<Tags, S3Error> ParseTaggingXml(std::string_view xml);
// x-amz-tagging: URL query form "k1=v1&k2" ('+' is a space); validated as below.
std::variant<Tags, S3Error> ParseTaggingHeader(std::string_view value);
// S3's limits (S3 User Guide, "Categorizing your storage using tags"): at most 10 tags, keys of
// 1..128 and values of 0..256 UTF-16 units, no "aws:" prefix, letters, digits, spaces and
// _ . : / = + - @ only.
std::optional<S3Error> CheckTags(const std::vector<std::pair<std::string, std::string>>& tags);

// ---------------------------------------------------------------- CORS

// A CORSConfiguration document (PutBucketCors; S3 API Reference, CORSRule).
std::variant<CorsConfig, S3Error> ParseCorsXml(std::string_view xml);
// The first rule allowing `origin` to use `method` with `request_headers` (lower-case names), as
// S3 evaluates a preflight: origins and headers may hold one '*' (matching any run of
// characters, or none), origins match case-sensitively, header names case-insensitively.
struct CorsMatch {
  const CorsRule* rule = nullptr;
  bool any_origin = false;  // matched by "*": answered "*", without credentials
};
std::optional<CorsMatch> MatchCors(const CorsConfig& config, std::string_view origin,
                                   std::string_view method,
                                   const std::vector<std::string>& request_headers);
// "a, B ,c" -> {"a", "b", "c"}: a comma-separated header list, lower-cased.
std::vector<std::string> SplitHeaderList(std::string_view value);

// ---------------------------------------------------------------- DeleteObjects

struct DeleteDocument {
  bool quiet = false;
  std::vector<std::string> keys;  // exactly as sent
};
std::variant<DeleteDocument, S3Error> ParseDeleteXml(std::string_view xml);

}  // namespace granary::s3
