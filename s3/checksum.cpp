// S3 additional checksums (checksum.h): zlib's CRC32, ISA-L's CRC32C (common/crc32c.h),
// CRC-64/NVME by table, OpenSSL's SHA-1 / SHA-256.
#include "s3/checksum.h"

#include <openssl/evp.h>
#include <strings.h>
#include <zlib.h>

#include <array>
#include <cstring>

#include "common/crc32c.h"
#include "s3/internal.h"

namespace granary::s3 {

namespace {

struct AlgorithmInfo {
  ChecksumAlgorithm alg;
  const char* name;
  const char* lower;
  size_t size;
};
constexpr AlgorithmInfo kAlgorithms[] = {
    {ChecksumAlgorithm::kCrc32, "CRC32", "crc32", 4},
    {ChecksumAlgorithm::kCrc32c, "CRC32C", "crc32c", 4},
    {ChecksumAlgorithm::kCrc64Nvme, "CRC64NVME", "crc64nvme", 8},
    {ChecksumAlgorithm::kSha1, "SHA1", "sha1", 20},
    {ChecksumAlgorithm::kSha256, "SHA256", "sha256", 32},
};

const AlgorithmInfo& Info(ChecksumAlgorithm a) { return kAlgorithms[static_cast<int>(a)]; }

// Slicing-by-8 tables of the reflected CRC-64/NVME polynomial.
using Crc64Tables = std::array<std::array<uint64_t, 256>, 8>;
const Crc64Tables& Tables() {
  static const Crc64Tables t = [] {
    constexpr uint64_t kPoly = 0x9A6C9329AC4BC9B5ull;  // 0xAD93D23594C93659 bit-reversed
    Crc64Tables t{};
    for (uint64_t i = 0; i < 256; ++i) {
      uint64_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ kPoly : c >> 1;
      t[0][i] = c;
    }
    for (int s = 1; s < 8; ++s) {
      for (int i = 0; i < 256; ++i) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
    }
    return t;
  }();
  return t;
}

std::string BigEndian(uint64_t v, size_t bytes) {
  std::string out(bytes, '\0');
  for (size_t i = 0; i < bytes; ++i) out[bytes - 1 - i] = static_cast<char>(v >> (8 * i));
  return out;
}

}  // namespace

std::optional<ChecksumAlgorithm> ParseChecksumAlgorithm(std::string_view name) {
  for (const auto& a : kAlgorithms) {
    if (name.size() == std::strlen(a.name) && strncasecmp(name.data(), a.name, name.size()) == 0) {
      return a.alg;
    }
  }
  return std::nullopt;
}

std::string_view AlgorithmName(ChecksumAlgorithm a) { return Info(a).name; }
std::string ChecksumHeader(ChecksumAlgorithm a) {
  return std::string("x-amz-checksum-") + Info(a).lower;
}
std::string ChecksumElement(ChecksumAlgorithm a) { return std::string("Checksum") + Info(a).name; }
size_t DigestSize(ChecksumAlgorithm a) { return Info(a).size; }

uint64_t Crc64Nvme(const void* data, size_t length, uint64_t crc) {
  const Crc64Tables& t = Tables();
  auto* p = static_cast<const uint8_t*>(data);
  uint64_t c = ~crc;
  while (length >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);  // little-endian host (x86-64, arm64)
    c ^= v;
    c = t[7][c & 0xff] ^ t[6][(c >> 8) & 0xff] ^ t[5][(c >> 16) & 0xff] ^ t[4][(c >> 24) & 0xff] ^
        t[3][(c >> 32) & 0xff] ^ t[2][(c >> 40) & 0xff] ^ t[1][(c >> 48) & 0xff] ^ t[0][c >> 56];
    p += 8;
    length -= 8;
  }
  while (length-- > 0) c = (c >> 8) ^ t[0][(c ^ *p++) & 0xff];
  return ~c;
}

struct Checksummer::Sha {
  explicit Sha(const EVP_MD* md) : digest(md) {}
  Digest digest;
};

Checksummer::Checksummer(ChecksumAlgorithm a) : alg_(a) {
  if (a == ChecksumAlgorithm::kSha1) sha_ = std::make_unique<Sha>(EVP_sha1());
  if (a == ChecksumAlgorithm::kSha256) sha_ = std::make_unique<Sha>(EVP_sha256());
}
Checksummer::~Checksummer() = default;

void Checksummer::Update(const void* data, size_t n) {
  switch (alg_) {
    case ChecksumAlgorithm::kCrc32: {
      // zlib takes uInt lengths.
      auto* p = static_cast<const Bytef*>(data);
      while (n > 0) {
        uInt step = n > (1u << 30) ? (1u << 30) : static_cast<uInt>(n);
        crc_ = crc32(static_cast<uLong>(crc_), p, step);
        p += step;
        n -= step;
      }
      break;
    }
    case ChecksumAlgorithm::kCrc32c:
      crc_ = Crc32c(data, n, static_cast<uint32_t>(crc_));
      break;
    case ChecksumAlgorithm::kCrc64Nvme:
      crc_ = Crc64Nvme(data, n, crc_);
      break;
    case ChecksumAlgorithm::kSha1:
    case ChecksumAlgorithm::kSha256:
      sha_->digest.Update(data, n);
      break;
  }
}

std::string Checksummer::Final() {
  if (sha_) return sha_->digest.Final();
  return BigEndian(crc_, DigestSize(alg_));
}

std::string ComputeChecksum(ChecksumAlgorithm a, std::string_view data) {
  Checksummer c(a);
  c.Update(data.data(), data.size());
  return c.Final();
}

std::optional<std::string> CompositeChecksum(ChecksumAlgorithm a,
                                             const std::vector<std::string>& part_values_b64) {
  Checksummer c(a);
  for (const std::string& v : part_values_b64) {
    auto raw = Base64Decode(v);
    if (!raw || raw->size() != DigestSize(a)) return std::nullopt;
    c.Update(raw->data(), raw->size());
  }
  return Base64(c.Final()) + "-" + std::to_string(part_values_b64.size());
}

}  // namespace granary::s3
