// The operator's locality work against the API test server and a real metanode + datanodes on
// loopback (docs/locality.md): a pod behind the `granary.io/locality` gate is released with a
// preferred node affinity toward the node holding its volume's data; a DatasetWarmup makes the
// data local to GPU nodes and reports progress; the next pod then prefers those too; deleting
// the DatasetWarmup frees the copies; without a metanode the gate opens anyway after a timeout.
#include <gtest/gtest.h>

#include "operator/controllers/operator.h"
#include "tests/ec_support.h"
#include "tests/kubeapi/kubeapi_server.h"
#include "tests/operator_test_support.h"

namespace granary::testing {
namespace {

namespace res = kube::resources;
namespace op = operators;
using kube::Json;

Json Node(const std::string& name, bool gpu) {
  Json n = {{"apiVersion", "v1"},
            {"kind", "Node"},
            {"metadata", {{"name", name}, {"labels", {{"kubernetes.io/hostname", name}}}}}};
  if (gpu) n["metadata"]["labels"]["nvidia.com/gpu.present"] = "true";
  return n;
}

Json GatedPod(const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata",
           {{"name", name}, {"namespace", "ml"}, {"labels", {{op::kLocalityLabel, "true"}}}}},
          {"spec",
           {{"schedulingGates", Json::array({{{"name", op::kLocalityGate}}})},
            {"containers", Json::array({{{"name", "train"}, {"image", "python:3.12-slim"}}})},
            {"volumes", Json::array({{{"name", "data"},
                                      {"persistentVolumeClaim", {{"claimName", "imagenet"}}}}})}}}};
}

class OperatorLocalityE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    kubeapi::ServerOptions options;
    options.bearer_token = "t";
    options.bookmark_interval_ms = 200;
    auto s = kubeapi::KubeApiServer::Start(options);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
    client_ = NewClient();

    // Three nodes: node-a and node-b hold the pool's datanodes, node-c is a GPU node whose
    // datanode is outside the pool (warm copies only).
    ClusterOptions co;
    co.datanodes = 3;
    co.metanode_flags = {"--warmup-recheck-ms", "1000"};
    for (const char* labels : {"host=node-a,pool=fast", "host=node-b,pool=fast", "host=node-c"}) {
      co.datanode_flags.push_back(
          {"--labels", labels, "--workers", "2", "--maintenance-ms", "200"});
    }
    cluster_ = std::make_unique<LocalCluster>(std::move(co));
    cluster_->Start();
    client::ClientOptions o;
    o.meta = cluster_->meta_address();
    o.labels = "host=node-b";  // the ingestion job ran on node-b
    auto c = client::Client::Connect(o);
    ASSERT_TRUE(c.ok()) << c.status().ToString();
    writer_ = std::move(*c);
    PoolSpec spec;
    spec.set_name("fast");
    spec.set_redundancy(Redundancy::REPLICATED_POOL);
    spec.set_replicas(1);
    spec.set_failure_domain(FailureDomain::DOMAIN_HOST);
    spec.set_locality(Locality::WRITER_LOCAL);
    spec.set_pg_count(16);
    spec.set_block_size(1 << 20);
    (*spec.mutable_node_selector())["pool"] = "fast";
    ASSERT_TRUE(writer_->meta().PoolCreate(spec).ok());
    ASSERT_TRUE(writer_->meta().VolumeCreate("pvc-imagenet", "fast").ok());
    ASSERT_TRUE(writer_->Mkdir("pvc-imagenet", "train").ok());
    for (int i = 0; i < 3; ++i) {
      WriteFile(*writer_, "pvc-imagenet", "train/part-" + std::to_string(i),
                Pattern((3 << 20) + i, i));
    }

    for (auto [name, gpu] : {std::pair{"node-a", false}, {"node-b", false}, {"node-c", true}}) {
      ASSERT_TRUE(client_->Create(res::kNodes, Node(name, gpu)).ok());
    }
    Json pv = {
        {"apiVersion", "v1"},
        {"kind", "PersistentVolume"},
        {"metadata", {{"name", "pv-imagenet"}}},
        {"spec", {{"csi", {{"driver", op::kCsiDriverName}, {"volumeHandle", "pvc-imagenet"}}}}}};
    ASSERT_TRUE(client_->Create(op::resources::kPersistentVolumes, pv).ok());
    Json pvc = {{"apiVersion", "v1"},
                {"kind", "PersistentVolumeClaim"},
                {"metadata", {{"name", "imagenet"}, {"namespace", "ml"}}},
                {"spec", {{"volumeName", "pv-imagenet"}}}};
    ASSERT_TRUE(client_->Create(res::kPersistentVolumeClaims, pvc).ok());
  }

  void TearDown() override {
    manager_.reset();
    operator_.reset();
    op_client_.reset();
    client_.reset();
    if (server_) server_->Stop();
    writer_.reset();
    if (cluster_) cluster_->KillAll();
    cluster_.reset();
  }

  std::unique_ptr<kube::Client> NewClient() {
    kube::Config c;
    c.server = server_->url();
    c.token = "t";
    auto client = kube::Client::Create(c);
    EXPECT_TRUE(client.ok());
    return std::move(*client);
  }

  void StartOperator() {
    op_client_ = NewClient();
    runtime::ManagerOptions mo;
    mo.leader_election = false;
    metrics_ = std::make_unique<MetricsRegistry>();
    manager_ = std::make_unique<runtime::Manager>(*op_client_, mo, *metrics_);
    op::OperatorOptions oo;
    oo.meta_override = cluster_->meta_address();
    oo.meta_deadline = std::chrono::milliseconds(2000);
    oo.warmup_poll = std::chrono::milliseconds(200);
    oo.cluster_poll = std::chrono::milliseconds(1000);
    oo.locality_gate_timeout = std::chrono::milliseconds(3000);
    operator_ = std::make_unique<op::Operator>(*manager_, oo);
    ASSERT_TRUE(manager_->Start().ok());
  }

  std::optional<Json> Get(const kube::Resource& r, const std::string& ns, const std::string& name) {
    auto o = client_->Get(r, ns, name);
    if (!o.ok()) return std::nullopt;
    return *o;
  }

  // The pod once the operator released it (gate gone), or nullopt.
  std::optional<Json> Released(const std::string& name) {
    std::optional<Json> out;
    WaitUntil(
        [&] {
          out = Get(res::kPods, "ml", name);
          return out && !op::HasLocalityGate(*out);
        },
        seconds(20));
    if (out && op::HasLocalityGate(*out)) return std::nullopt;
    return out;
  }

  static Json Preferred(const Json& pod) {
    const Json::json_pointer path(
        "/spec/affinity/nodeAffinity/preferredDuringSchedulingIgnoredDuringExecution");
    return pod.contains(path) ? pod.at(path) : Json::array();
  }
  static std::string NodeOf(const Json& term) {
    return term["preference"]["matchFields"][0]["values"][0];
  }

  std::unique_ptr<kubeapi::KubeApiServer> server_;
  std::unique_ptr<kube::Client> client_, op_client_;
  std::unique_ptr<LocalCluster> cluster_;
  std::unique_ptr<client::Client> writer_;
  std::unique_ptr<MetricsRegistry> metrics_;
  std::unique_ptr<runtime::Manager> manager_;
  std::unique_ptr<op::Operator> operator_;
};

TEST_F(OperatorLocalityE2ETest, GatedPodsPreferTheNodesHoldingTheirDataAndAWarmupAddsGpuNodes) {
  StartOperator();
  // Writer-local with one copy: all of the dataset is on node-b.
  ASSERT_TRUE(client_->Create(res::kPods, GatedPod("train-1")).ok());
  auto pod = Released("train-1");
  ASSERT_TRUE(pod) << Get(res::kPods, "ml", "train-1")->dump(2);
  Json terms = Preferred(*pod);
  ASSERT_EQ(terms.size(), 1u) << pod->dump(2);
  EXPECT_EQ(NodeOf(terms[0]), "node-b");
  EXPECT_EQ(terms[0]["weight"], 100);
  EXPECT_FALSE((*pod)["spec"]["affinity"]["nodeAffinity"].contains(
      "requiredDuringSchedulingIgnoredDuringExecution"));
  EXPECT_EQ((*pod)["metadata"]["annotations"][op::kLocalityAnnotation], "node-b=100%");

  // A pod without the gate is never touched (nor one without the label: not even watched).
  Json plain = GatedPod("plain");
  plain["spec"].erase("schedulingGates");
  ASSERT_TRUE(client_->Create(res::kPods, plain).ok());

  // Warm the dataset onto the GPU nodes.
  Json dw = LoadYamlFile(std::string(GRANARY_SOURCE_DIR) +
                         "/deploy/samples/locality/20-datasetwarmup.yaml")
                .at(0);
  ASSERT_TRUE(client_->Create(op::resources::kDatasetWarmups, dw).ok());
  std::optional<Json> warm;
  ASSERT_TRUE(WaitUntil(
      [&] {
        warm = Get(op::resources::kDatasetWarmups, "ml", "imagenet-gpu");
        return warm && warm->value("status", Json::object()).value("phase", "") == "Ready";
      },
      seconds(60)))
      << (warm ? warm->dump(2) : "gone");
  EXPECT_EQ((*warm)["status"]["progress"], "100.0%");
  EXPECT_EQ((*warm)["status"]["warmupName"], "ml/imagenet-gpu");
  EXPECT_EQ((*warm)["status"]["nodes"][0]["node"], "node-c");
  EXPECT_TRUE(runtime::IsConditionTrue(*warm, runtime::kReady));
  EXPECT_TRUE(runtime::HasFinalizer(*warm, op::kWarmupFinalizer));
  auto loc = writer_->meta().VolumeLocality("pvc-imagenet", "/train");
  ASSERT_TRUE(loc.ok());
  ASSERT_GE(loc->hosts_size(), 2);

  ASSERT_TRUE(client_->Create(res::kPods, GatedPod("train-2")).ok());
  pod = Released("train-2");
  ASSERT_TRUE(pod);
  terms = Preferred(*pod);
  ASSERT_EQ(terms.size(), 2u) << pod->dump(2);
  EXPECT_EQ(NodeOf(terms[0]), "node-b");
  EXPECT_EQ(NodeOf(terms[1]), "node-c");
  EXPECT_EQ(terms[1]["weight"], 100) << "every block is readable on the warmed node too";

  auto untouched = Get(res::kPods, "ml", "plain");
  ASSERT_TRUE(untouched);
  EXPECT_FALSE((*untouched)["spec"].contains("affinity"));

  // Deleting the DatasetWarmup deletes the warm-up (finalizer) and its copies.
  ASSERT_TRUE(client_->Delete(op::resources::kDatasetWarmups, "ml", "imagenet-gpu").ok());
  ASSERT_TRUE(WaitUntil([&] { return !Get(op::resources::kDatasetWarmups, "ml", "imagenet-gpu"); },
                        seconds(20)));
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto list = writer_->meta().WarmupList();
        return list.ok() && list->empty();
      },
      seconds(20)));
  EXPECT_TRUE(
      WaitUntil([&] { return BlockFilesOf(cluster_->datanode_dir(2)).files == 0; }, seconds(30)));
}

TEST_F(OperatorLocalityE2ETest, WithoutAMetanodeTheGateOpensAfterATimeoutWithoutAHint) {
  StartOperator();
  cluster_->KillMetanode();
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(client_->Create(res::kPods, GatedPod("train-x")).ok());
  auto pod = Released("train-x");
  ASSERT_TRUE(pod) << "locality must never keep a pod from being scheduled";
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(2500));
  EXPECT_TRUE(Preferred(*pod).empty());
  EXPECT_EQ((*pod)["metadata"]["annotations"][op::kLocalityAnnotation].get<std::string>().rfind(
                "unknown", 0),
            0u);
}

TEST_F(OperatorLocalityE2ETest, AnInvalidOrUnboundDatasetWarmupSaysWhy) {
  StartOperator();
  Json dw = {{"apiVersion", "granary.io/v1alpha1"},
             {"kind", "DatasetWarmup"},
             {"metadata", {{"name", "unbound"}, {"namespace", "ml"}}},
             {"spec", {{"claimName", "missing"}, {"nodes", {"node-c"}}}}};
  ASSERT_TRUE(client_->Create(op::resources::kDatasetWarmups, dw).ok());
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto o = Get(op::resources::kDatasetWarmups, "ml", "unbound");
        auto c = o ? runtime::FindCondition(*o, runtime::kReady) : std::nullopt;
        return c && c->value("reason", "") == "VolumeNotReady" &&
               c->value("message", "").find("missing not found") != std::string::npos;
      },
      seconds(20)));
  Json bad = dw;
  bad["metadata"]["name"] = "nonodes";
  bad["spec"] = {{"claimName", "imagenet"}};
  ASSERT_TRUE(client_->Create(op::resources::kDatasetWarmups, bad).ok());
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto o = Get(op::resources::kDatasetWarmups, "ml", "nonodes");
        return o && runtime::IsConditionTrue(*o, runtime::kDegraded);
      },
      seconds(20)));
}

}  // namespace
}  // namespace granary::testing
