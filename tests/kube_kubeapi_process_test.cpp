// granary-kubeapi as a process, as the operator's end-to-end tests will start it: it writes a
// kubeconfig the client reads, serves the API, exposes the test hooks over HTTP and stops on
// SIGTERM.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include "operator/kube/client.h"
#include "tests/harness/process.h"

namespace granary::testing {
namespace {

namespace res = kube::resources;
using kube::Json;

// POST `path` to "HOST:PORT" (HTTP/1.0): the status code, -1 when nothing answers.
int HttpPost(const std::string& address, const std::string& path, const std::string& token) {
  auto colon = address.rfind(':');
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  inet_pton(AF_INET, address.substr(0, colon).c_str(), &a.sin_addr);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  std::string req = "POST " + path + " HTTP/1.0\r\nHost: x\r\nAuthorization: Bearer " + token +
                    "\r\nContent-Length: 0\r\n\r\n";
  (void)!write(fd, req.data(), req.size());
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) resp.append(buf, n);
  close(fd);
  return resp.size() > 12 ? std::stoi(resp.substr(9, 3)) : -1;
}

TEST(KubeApiProcessTest, ServesAKubeconfigClientAndTestHooksThenStopsOnSigterm) {
  TempDir dir;
  std::string kubeconfig = (dir.path() / "kubeconfig").string();
  Process server({GRANARY_KUBEAPI_BINARY, "--token", "s3cret", "--kubeconfig", kubeconfig});
  auto line = server.WaitForLine("event=kubeapi_listening url=http://(\\S+)", seconds(20));
  ASSERT_TRUE(line) << server.Output();
  std::string address = (*line)[1];

  auto config = kube::LoadKubeconfig(kubeconfig);
  ASSERT_TRUE(config.ok()) << config.status().ToString();
  EXPECT_EQ(config->token, "s3cret");
  auto client = kube::Client::Create(*config);
  ASSERT_TRUE(client.ok());
  Json ds = {{"apiVersion", "apps/v1"},
             {"kind", "DaemonSet"},
             {"metadata", {{"name", "datanode"}, {"namespace", "default"}}},
             {"spec", {{"template", Json::object()}}}};
  ASSERT_TRUE((*client)->Create(res::kDaemonSets, ds).ok());
  EXPECT_EQ(HttpPost(address,
                     "/testing/ready?group=apps&resource=daemonsets&namespace=default&name=datanode"
                     "&replicas=2",
                     "s3cret"),
            200);
  auto got = (*client)->Get(res::kDaemonSets, "default", "datanode");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)["status"]["numberReady"], 2);
  EXPECT_EQ(HttpPost(address, "/testing/ready?resource=pods&namespace=default&name=none", "s3cret"),
            404);
  EXPECT_EQ(HttpPost(address, "/testing/compact", "wrong"), 401);

  auto list = (*client)->List(res::kDaemonSets, "default");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(HttpPost(address, "/testing/compact", "s3cret"), 200);
  EXPECT_EQ((*client)
                ->Watch(res::kDaemonSets, "default", {list->resource_version, "", "", true, 5})
                .status()
                .code(),
            Code::STALE_EPOCH);

  server.Signal(SIGTERM);
  auto status = server.Wait(seconds(10));
  ASSERT_TRUE(status);
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
}

}  // namespace
}  // namespace granary::testing
