#include "common/erasure.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace granary {
namespace {

struct Stripe {
  std::vector<std::vector<uint8_t>> fragments;
  std::vector<uint8_t*> pointers;
};

Stripe Encoded(const ReedSolomon& rs, size_t length, uint32_t seed) {
  Stripe s;
  int n = rs.data_count() + rs.parity_count();
  std::mt19937 rng(seed);
  s.fragments.assign(n, std::vector<uint8_t>(length));
  for (int i = 0; i < rs.data_count(); ++i) {
    for (auto& b : s.fragments[i]) b = static_cast<uint8_t>(rng());
  }
  for (auto& f : s.fragments) s.pointers.push_back(f.data());
  rs.Encode(s.pointers.data(), s.pointers.data() + rs.data_count(), length);
  return s;
}

TEST(ReedSolomonTest, RejectsOutOfRangeGeometry) {
  EXPECT_EQ(ReedSolomon::Create(0, 2).status().code(), Code::INVALID_ARGUMENT);
  EXPECT_EQ(ReedSolomon::Create(17, 2).status().code(), Code::INVALID_ARGUMENT);
  EXPECT_EQ(ReedSolomon::Create(4, 5).status().code(), Code::INVALID_ARGUMENT);
  EXPECT_TRUE(ReedSolomon::Create(16, 4).ok());
}

// Every combination of up to M lost fragments of 4+2 rebuilds byte-exact.
TEST(ReedSolomonTest, EveryLossOfUpToMFragmentsReconstructs) {
  auto rs = ReedSolomon::Create(4, 2);
  ASSERT_TRUE(rs.ok());
  const size_t length = 4096 + 17;
  Stripe original = Encoded(**rs, length, 1);
  const int n = 6;
  for (int mask = 0; mask < (1 << n); ++mask) {
    if (__builtin_popcount(mask) > 2) continue;
    Stripe damaged = original;
    damaged.pointers.clear();
    for (auto& f : damaged.fragments) damaged.pointers.push_back(f.data());
    std::vector<bool> present(n, true);
    for (int i = 0; i < n; ++i) {
      if (mask & (1 << i)) {
        present[i] = false;
        std::fill(damaged.fragments[i].begin(), damaged.fragments[i].end(), 0xEE);
      }
    }
    ASSERT_TRUE((*rs)->Reconstruct(damaged.pointers.data(), present, length).ok()) << mask;
    EXPECT_EQ(damaged.fragments, original.fragments) << "loss mask " << mask;
  }
}

TEST(ReedSolomonTest, TooManyLossesIsAnError) {
  auto rs = ReedSolomon::Create(8, 3);
  ASSERT_TRUE(rs.ok());
  Stripe s = Encoded(**rs, 1024, 2);
  std::vector<bool> present(11, true);
  present[0] = present[3] = present[5] = present[9] = false;
  EXPECT_EQ((*rs)->Reconstruct(s.pointers.data(), present, 1024).code(), Code::INVALID_ARGUMENT);
}

TEST(ReedSolomonTest, WideCodesReconstructDataAndParity) {
  auto rs = ReedSolomon::Create(16, 4);
  ASSERT_TRUE(rs.ok());
  Stripe original = Encoded(**rs, 8192, 3);
  Stripe damaged = original;
  damaged.pointers.clear();
  for (auto& f : damaged.fragments) damaged.pointers.push_back(f.data());
  std::vector<bool> present(20, true);
  for (int i : {0, 7, 15, 19}) {
    present[i] = false;
    std::fill(damaged.fragments[i].begin(), damaged.fragments[i].end(), 0);
  }
  ASSERT_TRUE((*rs)->Reconstruct(damaged.pointers.data(), present, 8192).ok());
  EXPECT_EQ(damaged.fragments, original.fragments);
}

// A reader that lost data fragments rebuilds only those; parity it did not ask for stays as is.
TEST(ReedSolomonTest, RebuildsOnlyTheWantedFragments) {
  auto rs = ReedSolomon::Create(8, 3);
  ASSERT_TRUE(rs.ok());
  Stripe original = Encoded(**rs, 4096 * 3, 4);
  Stripe damaged = original;
  damaged.pointers.clear();
  for (auto& f : damaged.fragments) damaged.pointers.push_back(f.data());
  std::vector<bool> present(11, true);
  std::vector<bool> want(11, false);
  for (int i : {2, 5, 9}) {
    present[i] = false;
    std::fill(damaged.fragments[i].begin(), damaged.fragments[i].end(), 0xAB);
  }
  want[2] = want[5] = true;
  ASSERT_TRUE((*rs)->Reconstruct(damaged.pointers.data(), present, want, 4096 * 3).ok());
  EXPECT_EQ(damaged.fragments[2], original.fragments[2]);
  EXPECT_EQ(damaged.fragments[5], original.fragments[5]);
  EXPECT_EQ(damaged.fragments[9], std::vector<uint8_t>(4096 * 3, 0xAB));

  want[0] = true;  // present fragments cannot be wanted
  EXPECT_EQ((*rs)->Reconstruct(damaged.pointers.data(), present, want, 4096).code(),
            Code::INVALID_ARGUMENT);
}

TEST(EcFragmentSizeTest, IsCeilOfBlockOverKInWholePages) {
  EXPECT_EQ(EcFragmentSize(4 << 20, 4), 1u << 20);
  EXPECT_EQ(EcFragmentSize(4 << 20, 8), 512u << 10);
  EXPECT_EQ(EcFragmentSize(4 << 20, 6), 700416u);  // ceil(4 MiB / 6) = 699051 -> 171 pages
  EXPECT_EQ(EcFragmentSize(1, 4), 4096u);
  EXPECT_EQ(EcFragmentSize(4 * 4096 + 1, 4), 8192u);
}

}  // namespace
}  // namespace granary
