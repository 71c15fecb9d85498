#include "s3/sigv2.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <ctime>

#include "s3/sigv4.h"

namespace granary::s3 {

namespace {

// The query parameters S3 signs in a SigV2 CanonicalizedResource: the S3 Developer Guide's
// list of sub-resources and response overrides, as botocore's HmacV1Auth (QSAOfInterest) signs
// them. A name missing here on one side and present on the other breaks the signature, so the
// list follows the client most users sign with; s3cmd's is a subset of it.
constexpr std::array<std::string_view, 35> kSubresources = {
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
};

std::string_view Trim(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

}  // namespace

std::optional<V2Authorization> ParseV2Authorization(std::string_view value) {
  if (!value.starts_with("AWS ")) return std::nullopt;
  value.remove_prefix(4);
  value = Trim(value);
  // The access key has no ':'; the signature (base64) neither.
  const size_t colon = value.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == value.size()) {
    return std::nullopt;
  }
  V2Authorization a{std::string(value.substr(0, colon)), std::string(value.substr(colon + 1))};
  if (a.access_key.find(' ') != std::string::npos) return std::nullopt;
  return a;
}

std::string V2CanonicalResource(std::string_view path, std::string_view raw_query,
                                bool bare_empty) {
  std::vector<std::pair<std::string, std::string>> signed_params;  // name, "name[=value]"
  while (!raw_query.empty()) {
    const size_t amp = raw_query.find('&');
    std::string_view item = raw_query.substr(0, amp);
    raw_query = amp == std::string_view::npos ? std::string_view() : raw_query.substr(amp + 1);
    const size_t eq = item.find('=');
    std::string_view name = item.substr(0, eq);
    if (std::find(kSubresources.begin(), kSubresources.end(), name) == kSubresources.end()) {
      continue;
    }
    std::string text(name);
    if (eq != std::string_view::npos && !(bare_empty && eq + 1 == item.size())) {
      std::string_view raw_value = item.substr(eq + 1);
      auto value = UriDecode(raw_value);
      text += "=" + (value ? *value : std::string(raw_value));
    }
    signed_params.emplace_back(std::string(name), std::move(text));
  }
  std::stable_sort(signed_params.begin(), signed_params.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string out(path);
  for (size_t i = 0; i < signed_params.size(); ++i) {
    out += i == 0 ? "?" : "&";
    out += signed_params[i].second;
  }
  return out;
}

std::string V2StringToSign(std::string_view method, std::string_view content_md5,
                           std::string_view content_type, std::string_view date,
                           const std::vector<std::pair<std::string, std::string>>& amz_headers,
                           std::string_view canonical_resource) {
  std::vector<std::pair<std::string, std::string>> headers;
  for (const auto& [name, value] : amz_headers) {
    std::string lower(name);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto it = std::find_if(headers.begin(), headers.end(),
                           [&](const auto& h) { return h.first == lower; });
    if (it == headers.end()) {
      headers.emplace_back(std::move(lower), std::string(Trim(value)));
    } else {
      it->second += "," + std::string(Trim(value));
    }
  }
  std::sort(headers.begin(), headers.end());
  std::string out(method);
  out += "\n";
  out += Trim(content_md5);
  out += "\n";
  out += Trim(content_type);
  out += "\n";
  out += Trim(date);
  out += "\n";
  for (const auto& [name, value] : headers) out += name + ":" + value + "\n";
  out += canonical_resource;
  return out;
}

std::string V2Signature(std::string_view secret, std::string_view string_to_sign) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha1(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(string_to_sign.data()), string_to_sign.size(), md,
       &len);
  std::string out(4 * ((len + 2) / 3) + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), md, static_cast<int>(len));
  out.resize(n);
  return out;
}

std::optional<int64_t> ParseV2Date(std::string_view text) {
  text = Trim(text);
  if (auto amz = ParseAmzDate(text)) return amz;
  std::string s(text);
  for (const char* format :
       {"%a, %d %b %Y %H:%M:%S GMT", "%a, %d %b %Y %H:%M:%S +0000", "%a, %d %b %Y %H:%M:%S UTC"}) {
    std::tm tm{};
    const char* end = strptime(s.c_str(), format, &tm);
    if (end && *end == '\0') return static_cast<int64_t>(timegm(&tm));
  }
  return std::nullopt;
}

}  // namespace granary::s3
