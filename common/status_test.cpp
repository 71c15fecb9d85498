#include "common/status.h"

#include <gtest/gtest.h>

#include "common/rpc_status.h"

namespace granary {
namespace {

Result<int> Half(int x) {
  if (x % 2) return InvalidArgument("odd");
  return x / 2;
}

Status Quarter(int x, int& out) {
  auto h = Half(x);
  GRANARY_TRY(h);
  auto q = Half(*h);
  GRANARY_TRY(q);
  out = *q;
  return Status::Ok();
}

TEST(StatusTest, OkByDefaultAndCarriesCodeAndMessage) {
  EXPECT_TRUE(Status().ok());
  Status s = NotFound("lookup /a");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Code::NOT_FOUND);
  EXPECT_EQ(s.ToString(), "NotFound: lookup /a");
}

TEST(StatusTest, ContextIsPrependedByEachLayer) {
  Status s = Status(Code::NO_SPACE, "write /data/b1: ENOSPC").WithContext("write block 3 on dn2");
  EXPECT_EQ(s.message(), "write block 3 on dn2: write /data/b1: ENOSPC");
  EXPECT_EQ(s.code(), Code::NO_SPACE);
  EXPECT_TRUE(Status::Ok().WithContext("ignored").ok());
}

TEST(StatusTest, TryPropagatesTheFirstError) {
  int out = 0;
  EXPECT_TRUE(Quarter(8, out).ok());
  EXPECT_EQ(out, 2);
  Status s = Quarter(6, out);
  EXPECT_EQ(s.code(), Code::INVALID_ARGUMENT);
}

TEST(StatusTest, ResultHoldsValueOrStatus) {
  Result<std::string> r = std::string("x");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, "x");
  Result<std::string> e = Corrupt("crc mismatch");
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), Code::CORRUPT);
}

TEST(RpcStatusTest, CodeSurvivesAGrpcHop) {
  for (int c = Code_MIN; c <= Code_MAX; ++c) {
    if (c == Code::OK) continue;
    Status s(static_cast<Code>(c), "context");
    Status back = FromGrpcStatus(ToGrpcStatus(s));
    EXPECT_EQ(back.code(), s.code()) << CodeName(s.code());
    EXPECT_EQ(back.message(), "context");
  }
  EXPECT_TRUE(FromGrpcStatus(ToGrpcStatus(Status::Ok())).ok());
}

TEST(RpcStatusTest, ForeignStatusMapsByGrpcCode) {
  Status s = FromGrpcStatus(grpc::Status(grpc::StatusCode::UNAVAILABLE, "connection refused"));
  EXPECT_EQ(s.code(), Code::UNAVAILABLE);
  EXPECT_NE(s.message().find("connection refused"), std::string::npos);
}

}  // namespace
}  // namespace granary
