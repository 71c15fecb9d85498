#include "common/error_table.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <set>

namespace granary {
namespace {

// Fails when a code is added to code.proto without a row in the table.
TEST(ErrorTableTest, EveryCodeHasItsOwnCompleteMapping) {
  const auto* descriptor = Code_descriptor();
  std::set<std::string_view> names;
  for (int i = 0; i < descriptor->value_count(); ++i) {
    auto code = static_cast<Code>(descriptor->value(i)->number());
    const ErrorMapping& m = MapError(code);
    EXPECT_EQ(m.code, code) << descriptor->value(i)->name();
    EXPECT_FALSE(m.name.empty());
    EXPECT_TRUE(names.insert(m.name).second) << "duplicate name " << m.name;
    if (code == Code::OK) {
      EXPECT_EQ(m.errno_value, 0);
      EXPECT_EQ(m.http_status, 200);
      continue;
    }
    EXPECT_GT(m.errno_value, 0) << m.name;
    EXPECT_FALSE(m.s3_code.empty()) << m.name;
    EXPECT_GE(m.http_status, 400) << m.name;
    EXPECT_NE(m.grpc_code, grpc::StatusCode::OK) << m.name;
  }
  EXPECT_EQ(static_cast<int>(names.size()), descriptor->value_count());
}

TEST(ErrorTableTest, DoorsSeeTheConventionalErrors) {
  EXPECT_EQ(MapError(Code::NOT_FOUND).errno_value, ENOENT);
  EXPECT_EQ(MapError(Code::NOT_EMPTY).errno_value, ENOTEMPTY);
  EXPECT_EQ(MapError(Code::CROSS_VOLUME).errno_value, EXDEV);
  EXPECT_EQ(MapError(Code::QUOTA_EXCEEDED).errno_value, EDQUOT);
  EXPECT_EQ(MapError(Code::NO_SPACE).errno_value, ENOSPC);
  EXPECT_EQ(MapError(Code::NAME_TOO_LONG).s3_code, "KeyTooLongError");
  EXPECT_EQ(MapError(Code::PRECONDITION_FAILED).http_status, 412);
  EXPECT_EQ(MapError(Code::PERMISSION_DENIED).s3_code, "AccessDenied");
  EXPECT_EQ(MapError(Code::ALREADY_EXISTS).grpc_code, grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(MapError(Code::INVALID_ARGUMENT).grpc_code, grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(ErrorTableTest, UnknownCodeMapsToInternal) {
  EXPECT_EQ(MapError(static_cast<Code>(999)).code, Code::INTERNAL);
}

}  // namespace
}  // namespace granary
