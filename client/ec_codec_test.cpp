#include "client/ec_codec.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "client/slice_plan.h"

namespace granary::client {
namespace {

std::vector<uint8_t> Bytes(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  std::mt19937 rng(seed);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

// The block, as the reader sees it, from data fragments: fragment i holds bytes [i*F, (i+1)*F).
std::vector<uint8_t> Join(const std::vector<std::vector<uint8_t>>& fragments, int k, size_t size) {
  std::vector<uint8_t> out;
  for (int i = 0; i < k; ++i) out.insert(out.end(), fragments[i].begin(), fragments[i].end());
  out.resize(size);
  return out;
}

std::vector<std::vector<uint8_t>> Copies(const EcCodec::Encoded& e) {
  std::vector<std::vector<uint8_t>> out;
  for (auto f : e.fragments) out.emplace_back(f.begin(), f.end());
  return out;
}

// Every erasure pattern of up to M fragments rebuilds the lost data and parity byte-exact.
void ExpectEveryLossRebuilds(const EcCodec& codec, const std::vector<std::vector<uint8_t>>& good) {
  const int n = codec.n();
  for (uint32_t mask = 1; mask < (1u << n); ++mask) {
    if (__builtin_popcount(mask) > codec.m()) continue;
    auto damaged = good;
    std::vector<bool> present(n, true), want(n, false);
    std::vector<uint8_t*> ptrs;
    for (int i = 0; i < n; ++i) {
      if (mask & (1u << i)) {
        present[i] = false;
        want[i] = true;
        std::fill(damaged[i].begin(), damaged[i].end(), 0x5A);
      }
      ptrs.push_back(damaged[i].data());
    }
    ASSERT_TRUE(codec.Decode(ptrs.data(), present, want, good[0].size()).ok()) << mask;
    ASSERT_EQ(damaged, good) << "loss mask " << mask;
  }
}

TEST(EcCodecTest, BlocksAroundFragmentAndStripeBoundariesEncodeAndRebuild) {
  for (auto [k, m] : {std::pair{4, 2}, std::pair{8, 3}, std::pair{6, 3}}) {
    auto codec = EcCodec::Get(k, m);
    ASSERT_TRUE(codec.ok());
    const size_t page = 4096;
    const size_t stripe = k * page;
    for (size_t size : {size_t{1}, page - 1, page, page + 1, stripe - 1, stripe, stripe + 1,
                        3 * stripe + 7, size_t{1} << 20, (size_t{1} << 20) + 1}) {
      SCOPED_TRACE(testing::Message() << k << "+" << m << " size " << size);
      auto block = Bytes(size, static_cast<uint32_t>(size));
      EcCodec::Encoded e = (*codec)->Encode(block);
      ASSERT_EQ(e.fragment_size, EcFragmentSize(size, k));
      ASSERT_EQ(e.fragments.size(), static_cast<size_t>(k + m));
      for (auto f : e.fragments) ASSERT_EQ(f.size(), e.fragment_size);
      auto fragments = Copies(e);
      EXPECT_EQ(Join(fragments, k, size), block);
      // Padding past the block's end is zeros (the format says so; readers may rely on it).
      std::vector<uint8_t> joined;
      for (int i = 0; i < k; ++i)
        joined.insert(joined.end(), fragments[i].begin(), fragments[i].end());
      EXPECT_TRUE(
          std::all_of(joined.begin() + size, joined.end(), [](uint8_t b) { return b == 0; }));
      if (k == 4 || size == stripe + 1) ExpectEveryLossRebuilds(**codec, fragments);
    }
  }
}

// A block that is a whole number of fragments is encoded without copying a data byte.
TEST(EcCodecTest, WholeFragmentsAreViewsIntoTheBlock) {
  auto codec = EcCodec::Get(4, 2);
  ASSERT_TRUE(codec.ok());
  auto block = Bytes(4 << 20, 1);
  EcCodec::Encoded e = (*codec)->Encode(block);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(e.fragments[i].data(), block.data() + i * (1 << 20));
  EXPECT_EQ(e.storage.size(), 2u << 20);  // parity only
}

TEST(EcCodecTest, SameShapeSharesOneCodec) {
  auto a = EcCodec::Get(8, 3);
  auto b = EcCodec::Get(8, 3);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(a->get(), b->get());
  EXPECT_EQ(EcCodec::Get(17, 1).status().code(), Code::INVALID_ARGUMENT);
}

TEST(EcCodecTest, SlicesOfAtLeastOneStripeAreErasureCodedAndTheirShortTailReplicated) {
  PoolSpec ec;
  ec.set_redundancy(Redundancy::ERASURE_CODED_POOL);
  ec.set_data_chunks(4);
  ec.set_coding_chunks(2);
  PoolSpec rep;
  rep.set_redundancy(Redundancy::REPLICATED_POOL);
  const uint32_t b = 1 << 20;
  EXPECT_EQ(SliceEncoding(ec, b - 1, b), Encoding::REPLICATED);
  EXPECT_EQ(SliceEncoding(ec, b, b), Encoding::ERASURE_CODED);
  EXPECT_EQ(SliceEncoding(rep, 64 * b, b), Encoding::REPLICATED);
  EXPECT_TRUE(BlockIsErasureCoded(Encoding::ERASURE_CODED, 2 * b + 5, b, 1));
  EXPECT_FALSE(BlockIsErasureCoded(Encoding::ERASURE_CODED, 2 * b + 5, b, 2));
  EXPECT_FALSE(BlockIsErasureCoded(Encoding::REPLICATED, 2 * b, b, 0));
}

}  // namespace
}  // namespace granary::client
