#include "common/crc32c.h"

#include <gtest/gtest.h>

#include <numeric>
#include <string>
#include <vector>

namespace granary {
namespace {

// RFC 3720 appendix B.4 test vectors.
TEST(Crc32cTest, MatchesRfc3720Vectors) {
  std::vector<uint8_t> zeros(32, 0);
  EXPECT_EQ(Crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);
  std::vector<uint8_t> ones(32, 0xFF);
  EXPECT_EQ(Crc32c(ones.data(), ones.size()), 0x62A8AB43u);
  std::vector<uint8_t> inc(32);
  std::iota(inc.begin(), inc.end(), 0);
  EXPECT_EQ(Crc32c(inc.data(), inc.size()), 0x46DD794Eu);
  std::string check = "123456789";
  EXPECT_EQ(Crc32c(check.data(), check.size()), 0xE3069283u);
}

TEST(Crc32cTest, ChainsAcrossSplits) {
  std::string s = "hello, granary: a longer string to split at every point";
  uint32_t whole = Crc32c(s.data(), s.size());
  for (size_t i = 0; i <= s.size(); ++i) {
    EXPECT_EQ(Crc32c(s.data() + i, s.size() - i, Crc32c(s.data(), i)), whole) << i;
  }
}

TEST(Crc32cTest, BlockCrcsCoverEach4KiBAndAShortTail) {
  std::vector<uint8_t> data(3 * kCrcBlockSize + 100, 7);
  auto crcs = BlockCrcs(data.data(), data.size());
  ASSERT_EQ(crcs.size(), 4u);
  EXPECT_EQ(crcs[0], Crc32c(data.data(), kCrcBlockSize));
  EXPECT_EQ(crcs[3], Crc32c(data.data() + 3 * kCrcBlockSize, 100));
  EXPECT_EQ(FirstCrcMismatch(data.data(), data.size(), crcs.data(), crcs.size()), -1);
  data[2 * kCrcBlockSize + 5] ^= 1;
  EXPECT_EQ(FirstCrcMismatch(data.data(), data.size(), crcs.data(), crcs.size()), 2);
  EXPECT_EQ(FirstCrcMismatch(data.data(), data.size(), crcs.data(), 2), 2);
}

}  // namespace
}  // namespace granary
