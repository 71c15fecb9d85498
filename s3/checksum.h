// S3's additional checksums (x-amz-checksum-crc32 / -crc32c / -crc64nvme / -sha1 / -sha256,
// docs/s3.md "Checksums"): names, streaming digests, and the COMPOSITE rule of multipart
// objects. Values travel as base64 of the big-endian digest.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace granary::s3 {

enum class ChecksumAlgorithm { kCrc32, kCrc32c, kCrc64Nvme, kSha1, kSha256 };

// "CRC32", "crc32c", ... (case-insensitive) -> the algorithm; nullopt when unknown.
std::optional<ChecksumAlgorithm> ParseChecksumAlgorithm(std::string_view name);
// S3's message for an algorithm name ParseChecksumAlgorithm does not know.
inline constexpr const char* kUnsupportedChecksumAlgorithm =
    "Checksum algorithm provided is unsupported. Please try again with any of the valid types: "
    "[CRC32, CRC32C, CRC64NVME, SHA1, SHA256]";
// Upper-case name as AWS spells it ("CRC64NVME").
std::string_view AlgorithmName(ChecksumAlgorithm a);
// The header carrying the value: "x-amz-checksum-crc32".
std::string ChecksumHeader(ChecksumAlgorithm a);
// The XML element of ListParts / CompleteMultipartUpload: "ChecksumCRC32".
std::string ChecksumElement(ChecksumAlgorithm a);
// Digest size in bytes (4, 4, 8, 20, 32).
size_t DigestSize(ChecksumAlgorithm a);

// CRC-64/NVME (poly 0xAD93D23594C93659, reflected, init and xorout all ones). Hand-written
// (slicing-by-8): Debian 12's ISA-L 2.30 predates crc64_rocksoft_refl (added in 2.31).
// Pass a previous result as `crc` to continue over more bytes.
uint64_t Crc64Nvme(const void* data, size_t length, uint64_t crc = 0);

// One algorithm computed incrementally; Final returns the raw big-endian digest.
class Checksummer {
 public:
  explicit Checksummer(ChecksumAlgorithm a);
  ~Checksummer();
  Checksummer(const Checksummer&) = delete;
  Checksummer& operator=(const Checksummer&) = delete;
  ChecksumAlgorithm algorithm() const { return alg_; }
  void Update(const void* data, size_t n);
  std::string Final();

 private:
  ChecksumAlgorithm alg_;
  uint64_t crc_ = 0;
  struct Sha;
  std::unique_ptr<Sha> sha_;
};

// Raw digest of `data` in one call.
std::string ComputeChecksum(ChecksumAlgorithm a, std::string_view data);

// A verified or computed checksum: the algorithm and the base64 value ("…-N" when composite).
struct Checksum {
  ChecksumAlgorithm algorithm = ChecksumAlgorithm::kCrc32;
  std::string value;
  bool composite = false;
};

// A multipart object's COMPOSITE checksum: base64(ALG(concat(raw part digests))) + "-N".
// nullopt when a part value is not base64 of the algorithm's digest size.
std::optional<std::string> CompositeChecksum(ChecksumAlgorithm a,
                                             const std::vector<std::string>& part_values_b64);

}  // namespace granary::s3
