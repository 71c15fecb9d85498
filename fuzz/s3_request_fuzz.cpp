// libFuzzer target for the S3 gateway's request parsing: query strings, percent-decoding,
// Authorization headers (SigV4 and SigV2), dates, the SigV4 canonical request and the SigV2
// string to sign, the request documents and headers of ACLs, tagging, CORS (with rule
// matching) and DeleteObjects, and the aws-chunked body decoder (signed and unsigned framing,
// trailers with their checksums and signature) fed in arbitrary read sizes. Nothing may crash,
// hang or read out of bounds; decoded bytes never exceed the input.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "s3/documents.h"
#include "s3/internal.h"
#include "s3/sigv2.h"
#include "s3/sigv4.h"

namespace {

using namespace granary::s3;
using granary::ACL_FULL_CONTROL;
using granary::ACL_READ;
using granary::CorsConfig;
using granary::CorsRule;

class MemoryBody final : public RawBody {
 public:
  MemoryBody(std::string_view data, size_t step) : data_(data), step_(step ? step : 1) {}
  granary::Result<size_t> ReadSome(std::span<uint8_t> out) override {
    size_t n = std::min({out.size(), data_.size(), step_});
    std::memcpy(out.data(), data_.data(), n);
    data_.remove_prefix(n);
    return n;
  }

 private:
  std::string_view data_;
  size_t step_;
};

void FuzzParsers(std::string_view text) {
  auto q = ParseQuery(text);
  (void)UriDecode(text);
  (void)ParseAuthorization(text);
  (void)ParseCredential(text);
  (void)ParseAmzDate(text);
  (void)ParseChecksumAlgorithm(text);
  (void)CompositeChecksum(ChecksumAlgorithm::kCrc32c, {std::string(text), std::string(text)});
  if (q) {
    CanonicalInput in;
    in.method = "GET";
    in.path = std::string(text.substr(0, 64));
    in.query = *q;
    in.headers = {{"host", std::string(text)}};
    in.signed_headers = {"host"};
    in.payload_hash = "UNSIGNED-PAYLOAD";
    (void)CanonicalRequest(in);
  }
}

// SigV2: the header, its date, and a string to sign over the text as path, query and headers.
void FuzzSigV2(std::string_view text) {
  (void)ParseV2Authorization(text);
  (void)ParseV2Date(text);
  const size_t q = text.find('?');
  const std::string resource =
      V2CanonicalResource(text.substr(0, q), q == text.npos ? "" : text.substr(q + 1));
  std::vector<std::pair<std::string, std::string>> amz;
  const size_t nl = text.find('\n');
  if (nl != text.npos) {
    amz.emplace_back(std::string(text.substr(0, nl)), std::string(text.substr(nl + 1)));
  }
  amz.emplace_back("x-amz-date", std::string(text.substr(0, 32)));
  const std::string sts = V2StringToSign("PUT", text.substr(0, 24), text, "", amz, resource);
  (void)V2Signature(text, sts);
}

// The documents and header forms of ACLs, tags, CORS and DeleteObjects, and CORS matching.
void FuzzDocuments(std::string_view text) {
  (void)ParseAclXml(text);
  (void)ParseTaggingXml(text);
  (void)ParseTaggingHeader(text);
  (void)ParseDeleteXml(text);
  (void)CannedAcl(text, "OWNER", "BUCKET-OWNER", text.size() % 2 == 0);
  (void)GrantHeadersAcl({{ACL_READ, std::string(text)}, {ACL_FULL_CONTROL, std::string(text)}});
  auto cors = ParseCorsXml(text);
  const std::vector<std::string> headers = SplitHeaderList(text);
  if (auto* c = std::get_if<CorsConfig>(&cors)) {
    for (const char* m : {"GET", "PUT", "HEAD", "POST", "DELETE"}) {
      (void)MatchCors(*c, text, m, headers);
      (void)MatchCors(*c, "http://example.com", m, {});
    }
  } else {
    CorsConfig config;
    CorsRule& r = *config.add_rules();
    r.add_allowed_origins(std::string(text.substr(0, text.size() / 2)));
    r.add_allowed_methods("GET");
    r.add_allowed_headers(std::string(text.substr(text.size() / 2)));
    (void)MatchCors(config, text, "GET", headers);
  }
}

void FuzzChunked(std::string_view data, uint8_t mode, size_t step, size_t out_size) {
  static const char* kModes[] = {"STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
                                 "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
                                 "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", "UNSIGNED-PAYLOAD"};
  MemoryBody raw(data, step);
  Request req;
  req.raw = &raw;
  req.has_content_length = true;
  req.content_length = data.size();
  // The checksum the request announces: none, or one algorithm in x-amz-trailer (or, for the
  // non-trailer mode, as a header whose value must then match).
  static const char* kAlgs[] = {"crc32", "crc32c", "crc64nvme", "sha1", "sha256", "md5"};
  const int announce = (mode >> 2) % 7;
  if (announce > 0) {
    std::string name = std::string("x-amz-checksum-") + kAlgs[announce - 1];
    if (mode % 4 == 1 || mode % 4 == 2) {
      req.headers.all.emplace("x-amz-trailer", name);
    } else {
      req.headers.all.emplace(name, "AAAAAA==");
    }
  }
  Identity id;
  id.payload_hash = kModes[mode % 4];
  id.signing_key = std::string(32, 'k');
  id.amz_date = "20130524T000000Z";
  id.credential = {"AK", "20130524", "us-east-1", "s3"};
  id.seed_signature = std::string(64, '0');
  Body body(req, id, (mode & 0x40) ? std::optional(ChecksumAlgorithm::kSha1) : std::nullopt);
  std::string out(out_size ? out_size : 1, '\0');
  size_t total = 0;
  for (int i = 0; i < 100000; ++i) {
    auto n = body.Read(std::span<uint8_t>(reinterpret_cast<uint8_t*>(out.data()), out.size()));
    if (!n.ok() || *n == 0) break;
    total += *n;
    if (total > data.size()) __builtin_trap();  // decoding never invents bytes
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data) + 3, size - 3);
  // The first byte picks the target: odd bytes the parsers, even bytes the chunked decoder,
  // except 0xFE (SigV2) and 0xFC (documents), whose decoder variants other bytes cover too.
  if (data[0] & 1) {
    FuzzParsers(rest);
  } else if (data[0] == 0xFE) {
    FuzzSigV2(rest);
  } else if (data[0] == 0xFC) {
    FuzzDocuments(rest);
  } else {
    FuzzChunked(rest, data[0] >> 1, data[1] + 1, (data[2] + 1) * 16);
  }
  return 0;
}
