#include "s3/sigv4.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <ctime>

namespace granary::s3 {

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string Trim(std::string_view v) {
  // Trim and collapse inner runs of spaces, as SigV4's canonical headers want.
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::optional<std::string> UriDecode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out.push_back(in[i]);
      continue;
    }
    if (i + 2 >= in.size()) return std::nullopt;
    int hi = HexValue(in[i + 1]), lo = HexValue(in[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

std::string UriEncode(std::string_view in, bool keep_slash) {
  static const char* digits = "0123456789ABCDEF";
  std::string out;
  out.reserve(in.size() * 3 / 2);
  for (unsigned char c : in) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(digits[c >> 4]);
      out.push_back(digits[c & 15]);
    }
  }
  return out;
}

std::optional<Params> ParseQuery(std::string_view query) {
  Params out;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view item = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (item.empty()) continue;
    size_t eq = item.find('=');
    auto name = UriDecode(item.substr(0, eq));
    auto value = UriDecode(eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1));
    if (!name || !value) return std::nullopt;
    out.emplace_back(std::move(*name), std::move(*value));
  }
  return out;
}

std::string Hex(std::string_view bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), md);
  return Hex(std::string_view(reinterpret_cast<char*>(md), sizeof md));
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), md, &len);
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string SigningKey(std::string_view secret, std::string_view date, std::string_view region,
                       std::string_view service) {
  std::string k = HmacSha256("AWS4" + std::string(secret), date);
  k = HmacSha256(k, region);
  k = HmacSha256(k, service);
  return HmacSha256(k, "aws4_request");
}

std::string CanonicalRequest(const CanonicalInput& in) {
  std::string out = in.method + "\n" + UriEncode(in.path, true) + "\n";
  std::vector<std::pair<std::string, std::string>> q;
  for (const auto& [k, v] : in.query) q.emplace_back(UriEncode(k, false), UriEncode(v, false));
  std::sort(q.begin(), q.end());
  for (size_t i = 0; i < q.size(); ++i) {
    if (i) out += "&";
    out += q[i].first + "=" + q[i].second;
  }
  out += "\n";
  for (const std::string& name : in.signed_headers) {
    std::string value;
    bool first = true;
    for (const auto& [k, v] : in.headers) {
      if (k != name) continue;
      if (!first) value += ",";
      value += Trim(v);
      first = false;
    }
    out += name + ":" + value + "\n";
  }
  out += "\n";
  for (size_t i = 0; i < in.signed_headers.size(); ++i) {
    if (i) out += ";";
    out += in.signed_headers[i];
  }
  out += "\n" + in.payload_hash;
  return out;
}

std::string StringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request) {
  return "AWS4-HMAC-SHA256\n" + std::string(amz_date) + "\n" + std::string(scope) + "\n" +
         Sha256Hex(canonical_request);
}

std::optional<Credential> ParseCredential(std::string_view value) {
  // AKID/yyyymmdd/region/service/aws4_request; the access key itself has no '/'.
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    size_t slash = value.find('/', start);
    parts.emplace_back(
        value.substr(start, slash == std::string_view::npos ? value.npos : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (parts.size() != 5 || parts[4] != "aws4_request" || parts[0].empty() || parts[1].size() != 8) {
    return std::nullopt;
  }
  return Credential{parts[0], parts[1], parts[2], parts[3]};
}

std::optional<AuthHeader> ParseAuthorization(std::string_view value) {
  constexpr std::string_view kAlgo = "AWS4-HMAC-SHA256";
  if (!value.starts_with(kAlgo)) return std::nullopt;
  value.remove_prefix(kAlgo.size());
  AuthHeader h;
  bool have_cred = false, have_signed = false, have_sig = false;
  while (!value.empty()) {
    size_t comma = value.find(',');
    std::string item = Trim(value.substr(0, comma));
    value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
    size_t eq = item.find('=');
    if (eq == std::string::npos) continue;
    std::string_view k(item.data(), eq), v(item.data() + eq + 1, item.size() - eq - 1);
    if (k == "Credential") {
      auto c = ParseCredential(v);
      if (!c) return std::nullopt;
      h.credential = *c;
      have_cred = true;
    } else if (k == "SignedHeaders") {
      size_t s = 0;
      while (s <= v.size()) {
        size_t semi = v.find(';', s);
        std::string_view name = v.substr(s, semi == std::string_view::npos ? v.npos : semi - s);
        if (name.empty()) return std::nullopt;
        h.signed_headers.emplace_back(name);
        if (semi == std::string_view::npos) break;
        s = semi + 1;
      }
      have_signed = true;
    } else if (k == "Signature") {
      h.signature = std::string(v);
      have_sig = true;
    }
  }
  if (!have_cred || !have_signed || !have_sig || h.signature.size() != 64) return std::nullopt;
  return h;
}

std::string ChunkSignature(std::string_view signing_key, std::string_view amz_date,
                           std::string_view scope, std::string_view previous_signature,
                           std::string_view chunk_sha256_hex) {
  static const std::string kEmpty = Sha256Hex("");
  std::string sts = "AWS4-HMAC-SHA256-PAYLOAD\n" + std::string(amz_date) + "\n" +
                    std::string(scope) + "\n" + std::string(previous_signature) + "\n" + kEmpty +
                    "\n" + std::string(chunk_sha256_hex);
  return Hex(HmacSha256(signing_key, sts));
}

std::string TrailerSignature(std::string_view signing_key, std::string_view amz_date,
                             std::string_view scope, std::string_view previous_signature,
                             std::string_view trailer_sha256_hex) {
  std::string sts = "AWS4-HMAC-SHA256-TRAILER\n" + std::string(amz_date) + "\n" +
                    std::string(scope) + "\n" + std::string(previous_signature) + "\n" +
                    std::string(trailer_sha256_hex);
  return Hex(HmacSha256(signing_key, sts));
}

std::optional<int64_t> ParseAmzDate(std::string_view s) {
  if (s.size() != 16 || s[8] != 'T' || s[15] != 'Z') return std::nullopt;
  auto num = [&](size_t at, size_t n) -> int {
    int v = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return -1;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  std::tm tm{};
  tm.tm_year = num(0, 4) - 1900;
  tm.tm_mon = num(4, 2) - 1;
  tm.tm_mday = num(6, 2);
  tm.tm_hour = num(9, 2);
  tm.tm_min = num(11, 2);
  tm.tm_sec = num(13, 2);
  if (tm.tm_year < 0 || tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
      tm.tm_hour < 0 || tm.tm_hour > 23 || tm.tm_min < 0 || tm.tm_min > 59 || tm.tm_sec < 0 ||
      tm.tm_sec > 60) {
    return std::nullopt;
  }
  return static_cast<int64_t>(timegm(&tm));
}

bool IsSha256Hex(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool SafeEqual(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace granary::s3
