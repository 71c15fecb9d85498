// Shared by the kube_* tests: an in-process API test server and a client pointed at it.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "operator/kube/client.h"
#include "tests/harness/process.h"
#include "tests/kubeapi/kubeapi_server.h"

namespace granary::testing {

using kube::Json;

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
