// Shared by the kube_* tests: an in-process API test server and a client pointed at it.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <thread>

#include "operator/kube/client.h"
#include "tests/kubeapi/kubeapi_server.h"

namespace granary::testing {

using kube::Json;
using std::chrono::milliseconds;
using std::chrono::seconds;

// Polls `condition` until it holds or `timeout` passes (the harness's WaitUntil, without
// linking the multi-process harness and the granary binary it needs).
inline bool WaitUntil(const std::function<bool()>& condition, milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto delay = milliseconds(1);
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(delay);  // polling interval, not synchronisation
    delay = std::min(delay * 2, milliseconds(20));
  }
  return true;
}

class KubeApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kubeapi::ServerOptions options;
    options.bearer_token = "test-token";
    options.bookmark_interval_ms = 200;
    auto s = kubeapi::KubeApiServer::Start(options);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
    client_ = NewClient();
  }
  void TearDown() override {
    client_.reset();
    if (server_) server_->Stop();
  }

  std::unique_ptr<kube::Client> NewClient(std::string token = "test-token") {
    kube::Config c;
    c.server = server_->url();
    c.token = std::move(token);
    auto client = kube::Client::Create(c);
    EXPECT_TRUE(client.ok()) << client.status().ToString();
    return std::move(*client);
  }

  static Json ConfigMap(const std::string& name, Json data = Json::object(),
                        Json labels = Json::object()) {
    return {{"apiVersion", "v1"},
            {"kind", "ConfigMap"},
            {"metadata", {{"name", name}, {"namespace", "default"}, {"labels", labels}}},
            {"data", data}};
  }

  std::unique_ptr<kubeapi::KubeApiServer> server_;
  std::unique_ptr<kube::Client> client_;
};

}  // namespace granary::testing
