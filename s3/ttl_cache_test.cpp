#include "s3/ttl_cache.h"

#include <gtest/gtest.h>

namespace granary::s3 {
namespace {

TEST(TtlCacheTest, KeepsAFetchedValueUntilItIsForgotten) {
  TtlCache<std::string> cache(std::chrono::hours(1));
  int fetches = 0;
  auto fetch = [&]() -> Result<std::string> { return "v" + std::to_string(++fetches); };
  EXPECT_EQ(*cache.Get("a", fetch), "v1");
  EXPECT_EQ(*cache.Get("a", fetch), "v1");
  EXPECT_EQ(*cache.Get("b", fetch), "v2");
  cache.Forget("a");
  EXPECT_EQ(*cache.Get("a", fetch), "v3");
  EXPECT_EQ(fetches, 3);
}

TEST(TtlCacheTest, ErrorsAreReturnedButNotKept) {
  TtlCache<std::string> cache(std::chrono::hours(1));
  int fetches = 0;
  auto missing = [&]() -> Result<std::string> {
    ++fetches;
    return NotFound("no key a");
  };
  EXPECT_EQ(cache.Get("a", missing).status().code(), Code::NOT_FOUND);
  EXPECT_EQ(cache.Get("a", missing).status().code(), Code::NOT_FOUND);
  EXPECT_EQ(fetches, 2);
}

TEST(TtlCacheTest, AnExpiredValueIsFetchedAgain) {
  TtlCache<int> cache(std::chrono::seconds(0));
  int fetches = 0;
  auto fetch = [&]() -> Result<int> { return ++fetches; };
  EXPECT_EQ(*cache.Get("a", fetch), 1);
  EXPECT_EQ(*cache.Get("a", fetch), 2);
}

}  // namespace
}  // namespace granary::s3
