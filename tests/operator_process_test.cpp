// The `granary operator` binary as it runs in its Deployment: two replicas against the API test
// server process (its kubeconfig), one leader by the Lease, /healthz and /metrics on the admin
// port; SIGTERM on the leader releases the Lease and the standby reconciles.
#include <gtest/gtest.h>
#include <signal.h>

#include "operator/kube/client.h"
#include "tests/harness/process.h"

namespace granary::testing {
namespace {

namespace res = kube::resources;
using kube::Json;

struct Replica {
  std::unique_ptr<Process> process;
  std::string admin;
  std::string identity;
};

TEST(OperatorProcessTest, TwoReplicasOneLeaderAndTheStandbyTakesOverOnSigterm) {
  TempDir dir;
  std::string kubeconfig = (dir.path() / "kubeconfig").string();
  Process server({GRANARY_KUBEAPI_BINARY, "--kubeconfig", kubeconfig});
  ASSERT_TRUE(server.WaitForLine("event=kubeapi_listening", seconds(20))) << server.Output();
  auto config = kube::LoadKubeconfig(kubeconfig);
  ASSERT_TRUE(config.ok());
  auto client = kube::Client::Create(*config);
  ASSERT_TRUE(client.ok());

  std::vector<Replica> replicas;
  for (const char* id : {"op-a", "op-b"}) {
    Replica r;
    r.identity = id;
    r.process = std::make_unique<Process>(std::vector<std::string>{
        GranaryBinary(), "operator", "--kubeconfig", kubeconfig, "--admin", "127.0.0.1:0",
        "--identity", id, "--lease-namespace", "granary", "--lease-duration-ms", "1000",
        "--renew-deadline-ms", "800", "--retry-period-ms", "100", "--meta", "127.0.0.1:1"});
    auto line = r.process->WaitForLine("operator identity=\\S+ admin=(\\S+)", seconds(20));
    ASSERT_TRUE(line) << r.process->Output();
    r.admin = (*line)[1];
    replicas.push_back(std::move(r));
  }
  auto holder = [&]() -> std::string {
    auto lease = (*client)->Get(res::kLeases, "granary", "granary-operator");
    return lease.ok() ? (*lease)["spec"].value("holderIdentity", "") : "";
  };
  ASSERT_TRUE(WaitUntil([&] { return !holder().empty(); }, seconds(10)));
  std::string leader = holder();
  auto leader_metric = [](const Replica& r) {
    auto [code, body] = HttpGet(r.admin, "/metrics");
    return code == 200 && body.find("\ngranary_operator_leader 1") != std::string::npos;
  };
  for (auto& r : replicas) {
    auto [code, body] = HttpGet(r.admin, "/healthz");
    EXPECT_EQ(code, 200) << r.identity;
    if (r.identity == leader) {
      EXPECT_TRUE(WaitUntil([&] { return leader_metric(r); }, seconds(5)));
    } else {
      EXPECT_FALSE(leader_metric(r))
          << "the standby does not lead: " << HttpGet(r.admin, "/metrics").second
          << r.process->Output();
    }
  }

  Json sc = {{"apiVersion", "granary.io/v1alpha1"},
             {"kind", "StorageCluster"},
             {"metadata", {{"name", "granary"}, {"namespace", "granary"}}},
             {"spec", Json::object()}};
  ASSERT_TRUE((*client)->Create(res::kStorageClusters, sc).ok());
  EXPECT_TRUE(WaitUntil(
      [&] { return (*client)->Get(res::kStatefulSets, "granary", "granary-metanode").ok(); },
      seconds(20)));

  Replica& old_leader = replicas[0].identity == leader ? replicas[0] : replicas[1];
  Replica& standby = replicas[0].identity == leader ? replicas[1] : replicas[0];
  old_leader.process->Signal(SIGTERM);
  auto status = old_leader.process->Wait(seconds(20));
  ASSERT_TRUE(status);
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << old_leader.process->Output();
  ASSERT_TRUE(WaitUntil([&] { return holder() == standby.identity; }, seconds(10)));
  // The new leader repairs what changed while it stood by.
  ASSERT_TRUE((*client)->Delete(res::kServices, "granary", "granary-s3").ok());
  EXPECT_TRUE(WaitUntil(
      [&] { return (*client)->Get(res::kServices, "granary", "granary-s3").ok(); }, seconds(20)))
      << standby.process->Output();
  standby.process->Signal(SIGTERM);
  EXPECT_TRUE(standby.process->Wait(seconds(20)));
  server.Signal(SIGTERM);
  server.Wait(seconds(20));
}

}  // namespace
}  // namespace granary::testing
