// S3 additional checksums against the catalogue check values (the digest of "123456789") and
// the streaming / composite rules.
#include "s3/checksum.h"

#include <gtest/gtest.h>

#include <string>

#include "s3/internal.h"
#include "s3/sigv4.h"

namespace granary::s3 {
namespace {

constexpr std::string_view kCheck = "123456789";

std::string HexOf(ChecksumAlgorithm a, std::string_view data) {
  return Hex(ComputeChecksum(a, data));
}

TEST(ChecksumTest, EachAlgorithmMatchesItsCheckValue) {
  EXPECT_EQ(HexOf(ChecksumAlgorithm::kCrc32, kCheck), "cbf43926");
  EXPECT_EQ(HexOf(ChecksumAlgorithm::kCrc32c, kCheck), "e3069283");
  EXPECT_EQ(HexOf(ChecksumAlgorithm::kCrc64Nvme, kCheck), "ae8b14860a799888");
  EXPECT_EQ(HexOf(ChecksumAlgorithm::kSha1, kCheck), "f7c3bc1d808e04732adf679965ccc34ca7ae3441");
  EXPECT_EQ(HexOf(ChecksumAlgorithm::kSha256, kCheck),
            "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225");
}

TEST(ChecksumTest, Crc64NvmeMatchesTheNvmeCheckValue) {
  EXPECT_EQ(Crc64Nvme(kCheck.data(), kCheck.size()), 0xAE8B14860A799888ull);
  EXPECT_EQ(Crc64Nvme("", 0), 0u);
}

TEST(ChecksumTest, EmptyBodiesHaveAwsValues) {
  // What S3 returns for an empty object.
  EXPECT_EQ(Base64(ComputeChecksum(ChecksumAlgorithm::kCrc32, "")), "AAAAAA==");
  EXPECT_EQ(Base64(ComputeChecksum(ChecksumAlgorithm::kCrc64Nvme, "")), "AAAAAAAAAAA=");
  EXPECT_EQ(Base64(ComputeChecksum(ChecksumAlgorithm::kSha256, "")),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
}

TEST(ChecksumTest, StreamingInPiecesEqualsOneCall) {
  std::string data;
  for (int i = 0; i < 100000; ++i) data.push_back(static_cast<char>(i * 131 + (i >> 7)));
  for (auto a :
       {ChecksumAlgorithm::kCrc32, ChecksumAlgorithm::kCrc32c, ChecksumAlgorithm::kCrc64Nvme,
        ChecksumAlgorithm::kSha1, ChecksumAlgorithm::kSha256}) {
    Checksummer c(a);
    size_t pos = 0, step = 1;
    while (pos < data.size()) {
      size_t n = std::min(step, data.size() - pos);
      c.Update(data.data() + pos, n);
      pos += n;
      step = step * 3 + 1;  // odd sizes cross the 8-byte slicing boundary
    }
    EXPECT_EQ(c.Final(), ComputeChecksum(a, data)) << AlgorithmName(a);
    EXPECT_EQ(c.Final().size(), DigestSize(a));
  }
}

TEST(ChecksumTest, NamesParseCaseInsensitivelyAndUnknownOnesDoNot) {
  EXPECT_EQ(ParseChecksumAlgorithm("crc32c"), ChecksumAlgorithm::kCrc32c);
  EXPECT_EQ(ParseChecksumAlgorithm("CRC64NVME"), ChecksumAlgorithm::kCrc64Nvme);
  EXPECT_EQ(ParseChecksumAlgorithm("Sha256"), ChecksumAlgorithm::kSha256);
  EXPECT_FALSE(ParseChecksumAlgorithm("md5"));
  EXPECT_FALSE(ParseChecksumAlgorithm("crc32cc"));
  EXPECT_FALSE(ParseChecksumAlgorithm(""));
  EXPECT_EQ(ChecksumHeader(ChecksumAlgorithm::kCrc64Nvme), "x-amz-checksum-crc64nvme");
  EXPECT_EQ(ChecksumElement(ChecksumAlgorithm::kSha1), "ChecksumSHA1");
}

TEST(ChecksumTest, CompositeIsTheChecksumOfThePartDigestsWithTheirCount) {
  const auto a = ChecksumAlgorithm::kCrc32;
  std::string p1 = ComputeChecksum(a, "part one"), p2 = ComputeChecksum(a, "part two");
  auto composite = CompositeChecksum(a, {Base64(p1), Base64(p2)});
  ASSERT_TRUE(composite);
  EXPECT_EQ(*composite, Base64(ComputeChecksum(a, p1 + p2)) + "-2");
  EXPECT_FALSE(CompositeChecksum(a, {Base64(p1), "not base64"}));
  EXPECT_FALSE(CompositeChecksum(a, {Base64(ComputeChecksum(ChecksumAlgorithm::kSha1, "x"))}));
}

TEST(ChecksumTest, TrailerSignatureChainsOnThePreviousSignature) {
  // String to sign: AWS4-HMAC-SHA256-TRAILER, date, scope, previous signature, hash of the
  // canonical trailer lines.
  const std::string key = SigningKey("secret", "20130524", "us-east-1", "s3");
  const std::string scope = "20130524/us-east-1/s3/aws4_request";
  const std::string prev(64, 'a');
  const std::string lines = "x-amz-checksum-crc32c:sOO8/Q==\n";
  std::string sig = TrailerSignature(key, "20130524T000000Z", scope, prev, Sha256Hex(lines));
  EXPECT_EQ(sig, Hex(HmacSha256(key, "AWS4-HMAC-SHA256-TRAILER\n20130524T000000Z\n" + scope + "\n" +
                                         prev + "\n" + Sha256Hex(lines))));
  EXPECT_NE(sig, TrailerSignature(key, "20130524T000000Z", scope, std::string(64, 'b'),
                                  Sha256Hex(lines)));
}

}  // namespace
}  // namespace granary::s3
