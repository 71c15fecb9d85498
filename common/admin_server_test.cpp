#include "common/admin_server.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>

namespace granary {
namespace {

// A minimal HTTP/1.0 GET over a plain socket: status line and body.
std::pair<int, std::string> Get(const HostPort& at, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(at.port);
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return {-1, ""};
  }
  std::string req = "GET " + path + " HTTP/1.0\r\nHost: x\r\n\r\n";
  (void)!write(fd, req.data(), req.size());
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) resp.append(buf, n);
  close(fd);
  int status = resp.size() > 12 ? std::stoi(resp.substr(9, 3)) : -1;
  size_t body = resp.find("\r\n\r\n");
  return {status, body == std::string::npos ? "" : resp.substr(body + 4)};
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
