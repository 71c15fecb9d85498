#include "common/admin_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>

#include "tests/harness/test_support.h"

namespace granary {
namespace {

std::pair<int, std::string> Get(const HostPort& at, const std::string& path) {
  return granary::testing::HttpGet(at.ToString(), path);
}

TEST(AdminServerTest, ServesMetricsHealthAndExtraPathsOnAPickedPort) {
  MetricsRegistry registry;
  registry.GetCounter("granary_test_total", "Test.").Add(4);
  std::atomic<bool> healthy{true};
  auto server = AdminServer::Start({"127.0.0.1", 0}, registry, [&] { return healthy.load(); });
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  HostPort at = (*server)->address();
  EXPECT_NE(at.port, 0);

  auto [status, body] = Get(at, "/metrics");
  EXPECT_EQ(status, 200);
  EXPECT_NE(body.find("granary_test_total 4"), std::string::npos);
  EXPECT_EQ(Get(at, "/healthz"), (std::pair<int, std::string>{200, "ok\n"}));
  healthy = false;
  EXPECT_EQ(Get(at, "/healthz").first, 503);
  EXPECT_EQ(Get(at, "/nope").first, 404);
  (*server)->AddHandler("/readyz", [] { return std::pair<int, std::string>{200, "ready\n"}; });
  EXPECT_EQ(Get(at, "/readyz").second, "ready\n");
  (*server)->Stop();
  EXPECT_EQ(Get(at, "/healthz").first, -1);
}

TEST(AdminServerTest, ABusyPortIsUnavailable) {
  MetricsRegistry registry;
  auto first = AdminServer::Start({"127.0.0.1", 0}, registry);
  ASSERT_TRUE(first.ok());
  auto second = AdminServer::Start((*first)->address(), registry);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Code::UNAVAILABLE);
}

}  // namespace
}  // namespace granary
