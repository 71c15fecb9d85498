// The operator's reconcilers against the strict API test server (in process) and a real metanode
// + datanode (processes on loopback) for the metanode calls: apply → children and Ready statuses;
// a pool edit rolls the DaemonSet; Bucket deletion removes the metanode bucket, its key and the
// Secret; cut watches and a 410 → relist and converge; two operators → one leader; invalid specs
// → Degraded, never a crash loop.
#include <gtest/gtest.h>

#include <memory>

#include "client/meta_client.h"
#include "operator/controllers/operator.h"
#include "tests/harness/process.h"
#include "tests/kubeapi/kubeapi_server.h"
#include "tests/operator_test_support.h"

namespace granary::testing {
namespace {

namespace res = kube::resources;
namespace op = operators;
using kube::Json;

Json Cluster() {
  return {{"apiVersion", "granary.io/v1alpha1"},
          {"kind", "StorageCluster"},
          {"metadata", {{"name", "granary"}, {"namespace", "granary"}}},
          {"spec", {{"image", "granary:test"}, {"s3", {{"replicas", 1}}}}}};
}

Json Pool(const std::string& name = "fast") {
  return {{"apiVersion", "granary.io/v1alpha1"},
          {"kind", "StoragePool"},
          {"metadata", {{"name", name}}},
          {"spec",
           {{"clusterRef", {{"name", "granary"}, {"namespace", "granary"}}},
            {"datanodes", {{"nodeSelector", {{"granary.io/storage", "true"}}}}},
            {"redundancy", {{"replicated", {{"size", 1}}}}},
            {"failureDomain", "datanode"}}}};
}

Json Bucket(const std::string& reclaim = "Delete") {
  return {{"apiVersion", "granary.io/v1alpha1"},
          {"kind", "Bucket"},
          {"metadata", {{"name", "datasets"}, {"namespace", "ml"}}},
          {"spec", {{"pool", "fast"}, {"reclaimPolicy", reclaim}, {"quotaBytes", 1 << 30}}}};
}

Json Node(const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", "Node"},
          {"metadata",
           {{"name", name},
            {"labels", {{"granary.io/storage", "true"}, {"topology.kubernetes.io/zone", "z1"}}}}}};
}

std::string Unbase64(const std::string& in) {
  static const std::string kTable =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t v = 0;
  int bits = 0;
  for (char c : in) {
    if (c == '=') break;
    v = (v << 6) | static_cast<uint32_t>(kTable.find(c));
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((v >> bits) & 0xff);
    }
  }
  return out;
}

class OperatorE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    kubeapi::ServerOptions options;
    options.bearer_token = "t";
    options.bookmark_interval_ms = 200;
    auto s = kubeapi::KubeApiServer::Start(options);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
    client_ = NewClient();

    // What the operator deploys, on loopback: a metanode and one datanode started with the labels
    // the datanode DaemonSet gives it.
    metanode_ = std::make_unique<Process>(
        std::vector<std::string>{GranaryBinary(), "metanode", "--data", dir_.str() + "/meta",
                                 "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"});
    auto m = metanode_->WaitForLine("listening meta=(\\S+)", seconds(30));
    ASSERT_TRUE(m) << metanode_->Output();
    meta_address_ = (*m)[1];
    datanode_ = std::make_unique<Process>(std::vector<std::string>{
        GranaryBinary(), "datanode", "--data", dir_.str() + "/dn", "--listen", "127.0.0.1:0",
        "--data-listen", "127.0.0.1:0", "--meta", meta_address_, "--labels",
        "host=node-a,zone=z1,pool=fast"});
    ASSERT_TRUE(datanode_->WaitForLine("listening control=", seconds(30))) << datanode_->Output();
    client::MetaClientOptions mo;
    mo.address = meta_address_;
    mo.deadline = std::chrono::milliseconds(10000);
    auto meta = client::MetaClient::Connect(mo);
    ASSERT_TRUE(meta.ok());
    meta_ = std::move(*meta);
    ASSERT_TRUE(client_->Create(res::kNodes, Node("node-a")).ok());
  }

  void TearDown() override {
    managers_.clear();  // operators stop before their server
    operators_.clear();
    clients_.clear();
    client_.reset();
    if (server_) server_->Stop();
    for (auto& d : extra_datanodes_) d->Kill();
    if (datanode_) datanode_->Kill();
    if (metanode_) metanode_->Kill();
  }

  std::unique_ptr<kube::Client> NewClient() {
    kube::Config c;
    c.server = server_->url();
    c.token = "t";
    auto client = kube::Client::Create(c);
    EXPECT_TRUE(client.ok());
    return std::move(*client);
  }

  // An operator instance (its own client, as a separate replica would have).
  runtime::Manager& StartOperator(bool leader_election = false, const std::string& id = "op-1") {
    clients_.push_back(NewClient());
    runtime::ManagerOptions mo;
    mo.leader_election = leader_election;
    mo.lease.ns = "granary";
    mo.lease.identity = id;
    mo.lease.lease_duration = milliseconds(1000);
    mo.lease.renew_deadline = milliseconds(800);
    mo.lease.retry_period = milliseconds(100);
    metrics_.push_back(std::make_unique<MetricsRegistry>());
    managers_.push_back(std::make_unique<runtime::Manager>(*clients_.back(), mo, *metrics_.back()));
    op::OperatorOptions oo;
    oo.meta_override = meta_address_;
    oo.pool_poll = milliseconds(500);
    oo.cluster_poll = milliseconds(500);
    operators_.push_back(std::make_unique<op::Operator>(*managers_.back(), oo));
    EXPECT_TRUE(managers_.back()->Start().ok());
    return *managers_.back();
  }

  // Another datanode on loopback, as the pool's DaemonSet would start it on another node.
  void StartDatanode(const std::string& labels) {
    extra_datanodes_.push_back(std::make_unique<Process>(std::vector<std::string>{
        GranaryBinary(), "datanode", "--data",
        dir_.str() + "/dn" + std::to_string(extra_datanodes_.size() + 1), "--listen", "127.0.0.1:0",
        "--data-listen", "127.0.0.1:0", "--meta", meta_address_, "--labels", labels}));
    ASSERT_TRUE(extra_datanodes_.back()->WaitForLine("listening control=", seconds(30)))
        << extra_datanodes_.back()->Output();
  }

  std::optional<Json> ConditionOf(const kube::Resource& r, const std::string& ns,
                                  const std::string& name, const char* type) {
    auto o = Get(r, ns, name);
    if (!o) return std::nullopt;
    return runtime::FindCondition(*o, type);
  }

  // True once condition `type` of the object has `status` and its message contains `text`.
  bool ConditionSays(const kube::Resource& r, const std::string& ns, const std::string& name,
                     const char* type, const std::string& status, const std::string& text) {
    auto c = ConditionOf(r, ns, name, type);
    return c && c->value("status", "") == status &&
           c->value("message", "").find(text) != std::string::npos;
  }

  bool HasEvent(const std::string& ns, const std::string& reason, const std::string& text = "") {
    auto events = client_->List(res::kEvents, ns);
    if (!events.ok()) return false;
    for (const auto& e : events->items)
      if (e.value("reason", "") == reason && e.value("message", "").find(text) != std::string::npos)
        return true;
    return false;
  }

  std::optional<Json> Get(const kube::Resource& r, const std::string& ns, const std::string& name) {
    auto o = client_->Get(r, ns, name);
    if (!o.ok()) return std::nullopt;
    return *o;
  }

  bool ReadyAt(const kube::Resource& r, const std::string& ns, const std::string& name) {
    auto o = Get(r, ns, name);
    if (!o) return false;
    auto c = runtime::FindCondition(*o, runtime::kReady);
    return c && (*c)["status"] == "True" &&
           c->value("observedGeneration", int64_t{0}) == kube::GenerationOf(*o) &&
           (*o)["status"].value("observedGeneration", int64_t{0}) == kube::GenerationOf(*o);
  }

  // Marks every workload the operator made ready, as kubelets and controllers would.
  void MarkWorkloadsReady(const std::vector<std::string>& pools = {"fast"}) {
    std::vector<std::pair<std::string, std::string>> workloads = {
        {"statefulsets", "granary-metanode"},
        {"deployments", "granary-s3"},
        {"deployments", "granary-csi-controller"},
        {"daemonsets", "granary-csi-node"}};
    for (const auto& p : pools) workloads.emplace_back("daemonsets", "granary-datanode-" + p);
    for (const auto& [plural, name] : workloads) {
      ASSERT_TRUE(WaitUntil(
          [&] { return server_->MarkReady("apps", plural, "granary", name).ok(); }, seconds(20)))
          << plural << " " << name << " never created";
    }
  }

  void ApplyAllAndConverge() {
    ASSERT_TRUE(client_->Create(res::kStorageClusters, Cluster()).ok());
    ASSERT_TRUE(client_->Create(res::kStoragePools, Pool()).ok());
    ASSERT_TRUE(client_->Create(res::kBuckets, Bucket()).ok());
    MarkWorkloadsReady();
    ASSERT_TRUE(WaitUntil([&] { return ReadyAt(res::kStorageClusters, "granary", "granary"); },
                          seconds(20)))
        << Get(res::kStorageClusters, "granary", "granary")->dump(2);
    ASSERT_TRUE(WaitUntil([&] { return ReadyAt(res::kStoragePools, "", "fast"); }, seconds(20)))
        << Get(res::kStoragePools, "", "fast")->dump(2);
    ASSERT_TRUE(WaitUntil([&] { return ReadyAt(res::kBuckets, "ml", "datasets"); }, seconds(20)))
        << Get(res::kBuckets, "ml", "datasets")->dump(2);
  }

  TempDir dir_;
  std::unique_ptr<kubeapi::KubeApiServer> server_;
  std::unique_ptr<kube::Client> client_;
  std::unique_ptr<Process> metanode_, datanode_;
  std::vector<std::unique_ptr<Process>> extra_datanodes_;
  std::string meta_address_;
  std::unique_ptr<client::MetaClient> meta_;
  std::vector<std::unique_ptr<kube::Client>> clients_;
  std::vector<std::unique_ptr<MetricsRegistry>> metrics_;
  std::vector<std::unique_ptr<op::Operator>> operators_;
  std::vector<std::unique_ptr<runtime::Manager>> managers_;
};

TEST_F(OperatorE2ETest, ApplyClusterPoolAndBucketCreatesOwnedObjectsAndConvergesToReady) {
  StartOperator();
  ApplyAllAndConverge();
  auto sc = *Get(res::kStorageClusters, "granary", "granary");
  EXPECT_TRUE(runtime::HasFinalizer(sc, op::kClusterFinalizer));
  for (auto [r, name] :
       {std::pair{&res::kStatefulSets, "granary-metanode"},
        std::pair{&res::kServices, "granary-metanode"}, std::pair{&res::kServices, "granary-s3"},
        std::pair{&res::kDeployments, "granary-s3"},
        std::pair{&res::kDeployments, "granary-csi-controller"},
        std::pair{&res::kDaemonSets, "granary-csi-node"}}) {
    auto o = Get(*r, "granary", name);
    ASSERT_TRUE(o) << r->kind << " " << name;
    EXPECT_TRUE(runtime::IsControlledBy(*o, sc)) << r->kind << " " << name;
  }
  auto pool = *Get(res::kStoragePools, "", "fast");
  auto ds = Get(res::kDaemonSets, "granary", "granary-datanode-fast");
  ASSERT_TRUE(ds);
  EXPECT_TRUE(runtime::IsControlledBy(*ds, pool));
  EXPECT_EQ((*ds)["spec"]["template"]["spec"]["nodeSelector"]["granary.io/storage"], "true");
  auto topo = Get(res::kConfigMaps, "granary", "granary-datanode-fast-topology");
  ASSERT_TRUE(topo);
  EXPECT_EQ((*topo)["data"]["node-a"], "host=node-a,zone=z1,pool=fast");
  auto sclass = Get(op::resources::kStorageClasses, "", "granary-fast");
  ASSERT_TRUE(sclass);
  EXPECT_TRUE(runtime::IsControlledBy(*sclass, pool));
  auto driver = Get(op::resources::kCSIDrivers, "", op::kCsiDriverName);
  ASSERT_TRUE(driver);
  EXPECT_EQ((*driver)["spec"]["fsGroupPolicy"], "None");

  // The pool exists in the metanode with the StoragePool's redundancy; capacity comes from the
  // datanode that carries the pool's label.
  auto pools = meta_->PoolList();
  ASSERT_TRUE(pools.ok());
  bool found = false;
  for (const auto& p : *pools) {
    if (p.name() != "fast") continue;
    found = true;
    EXPECT_EQ(p.redundancy(), REPLICATED_POOL);
    EXPECT_EQ(p.replicas(), 1u);
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(pool["status"]["health"], "Healthy");
  EXPECT_EQ(pool["status"]["datanodesReady"], 1);
  ASSERT_TRUE(WaitUntil(
      [&] {
        return (*Get(res::kStoragePools, "", "fast"))["status"].value("capacityBytes",
                                                                      uint64_t{0}) > 0;
      },
      seconds(20)))
      << Get(res::kStoragePools, "", "fast")->dump(2) << meta_->ClusterStatus()->DebugString();

  // The bucket and its key in the metanode; the Secret a notebook's envFrom reads.
  auto bucket = *Get(res::kBuckets, "ml", "datasets");
  EXPECT_TRUE(runtime::HasFinalizer(bucket, op::kBucketFinalizer));
  auto mb = meta_->BucketGet("ml-datasets");
  ASSERT_TRUE(mb.ok()) << mb.status().ToString();
  std::string akid = bucket["status"]["accessKeyId"];
  EXPECT_EQ(mb->owner(), akid);
  auto secret = Get(res::kSecrets, "ml", "datasets-s3");
  ASSERT_TRUE(secret);
  EXPECT_TRUE(runtime::IsControlledBy(*secret, bucket));
  auto key = meta_->KeyGetSecret(akid);
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(Unbase64((*secret)["data"]["AWS_ACCESS_KEY_ID"]), akid);
  EXPECT_EQ(Unbase64((*secret)["data"]["AWS_SECRET_ACCESS_KEY"]), key->secret_key());
  EXPECT_EQ(Unbase64((*secret)["data"]["AWS_ENDPOINT_URL"]), "http://granary-s3.granary.svc:9000");
  EXPECT_EQ(Unbase64((*secret)["data"]["BUCKET_NAME"]), "ml-datasets");

  auto volume = meta_->VolumeGet("ml-datasets");
  ASSERT_TRUE(volume.ok());
  EXPECT_EQ(volume->quota_bytes(), 1u << 30) << "the quota lands on the bucket's volume";

  auto events = client_->List(res::kEvents, "ml");
  ASSERT_TRUE(events.ok());
  bool created_event = false;
  for (const auto& e : events->items) created_event |= e["reason"] == "BucketCreated";
  EXPECT_TRUE(created_event);
}

TEST_F(OperatorE2ETest, EditingThePoolRollsItsDaemonSetAndStatusFollowsTheGeneration) {
  StartOperator();
  ApplyAllAndConverge();
  auto edited = client_->Modify(res::kStoragePools, "", "fast", [](Json& p) {
    p["spec"]["datanodes"]["storage"] = {{"hostPath", "/mnt/nvme/granary"}};
    p["spec"]["datanodes"]["tolerations"] = {{{"key", "dedicated"}, {"operator", "Exists"}}};
    return Status::Ok();
  });
  ASSERT_TRUE(edited.ok());
  EXPECT_EQ(kube::GenerationOf(*edited), 2);
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto ds = Get(res::kDaemonSets, "granary", "granary-datanode-fast");
        return ds &&
               (*ds)["spec"]["template"]["spec"]["volumes"][0]["hostPath"]["path"] ==
                   "/mnt/nvme/granary" &&
               (*ds)["spec"]["template"]["spec"]["tolerations"][0]["key"] == "dedicated";
      },
      seconds(20)));
  // The DaemonSet's new generation is not ready until its controller says so.
  ASSERT_TRUE(server_->MarkReady("apps", "daemonsets", "granary", "granary-datanode-fast").ok());
  EXPECT_TRUE(WaitUntil([&] { return ReadyAt(res::kStoragePools, "", "fast"); }, seconds(20)));
}

TEST_F(OperatorE2ETest, DeletingTheBucketRemovesTheMetanodeBucketItsKeyAndTheSecret) {
  StartOperator();
  ApplyAllAndConverge();
  std::string akid = (*Get(res::kBuckets, "ml", "datasets"))["status"]["accessKeyId"];
  ASSERT_TRUE(client_->Delete(res::kBuckets, "ml", "datasets").ok());
  ASSERT_TRUE(WaitUntil([&] { return !Get(res::kBuckets, "ml", "datasets"); }, seconds(20)))
      << "the finalizer is released";
  auto b = meta_->BucketGet("ml-datasets");
  EXPECT_EQ(b.status().code(), Code::NOT_FOUND);
  EXPECT_EQ(meta_->KeyGetSecret(akid).status().code(), Code::NOT_FOUND);
  EXPECT_FALSE(Get(res::kSecrets, "ml", "datasets-s3"));

  // Retain keeps the bucket in the metanode; only the Secret goes.
  ASSERT_TRUE(client_->Create(res::kBuckets, Bucket("Retain")).ok());
  ASSERT_TRUE(WaitUntil([&] { return ReadyAt(res::kBuckets, "ml", "datasets"); }, seconds(20)));
  ASSERT_TRUE(client_->Delete(res::kBuckets, "ml", "datasets").ok());
  ASSERT_TRUE(WaitUntil([&] { return !Get(res::kBuckets, "ml", "datasets"); }, seconds(20)));
  EXPECT_TRUE(meta_->BucketGet("ml-datasets").ok());
  EXPECT_FALSE(Get(res::kSecrets, "ml", "datasets-s3"));
}

TEST_F(OperatorE2ETest, ABucketFromAVolumeExportsThePvcsVolumeAndNeverDeletesIt) {
  StartOperator();
  ApplyAllAndConverge();
  auto vol = meta_->VolumeCreate("pvc-0001", "fast");
  ASSERT_TRUE(vol.ok()) << vol.status().ToString();
  auto pv = [](const std::string& name, const std::string& driver) {
    return Json{{"apiVersion", "v1"},
                {"kind", "PersistentVolume"},
                {"metadata", {{"name", name}}},
                {"spec", {{"csi", {{"driver", driver}, {"volumeHandle", "pvc-0001"}}}}}};
  };
  auto pvc = [](const std::string& name, const std::string& pv_name) {
    return Json{{"apiVersion", "v1"},
                {"kind", "PersistentVolumeClaim"},
                {"metadata", {{"name", name}, {"namespace", "ml"}}},
                {"spec", {{"volumeName", pv_name}}}};
  };
  ASSERT_TRUE(
      client_->Create(op::resources::kPersistentVolumes, pv("pv-a", op::kCsiDriverName)).ok());
  ASSERT_TRUE(
      client_->Create(op::resources::kPersistentVolumes, pv("pv-b", "ebs.csi.aws.com")).ok());
  ASSERT_TRUE(client_->Create(res::kPersistentVolumeClaims, pvc("checkpoints", "pv-a")).ok());
  ASSERT_TRUE(client_->Create(res::kPersistentVolumeClaims, pvc("foreign", "pv-b")).ok());

  // The default reclaim policy, Retain: it keeps what a bucket owns, and an export owns nothing.
  Json exported = Bucket("Retain");
  exported["metadata"]["name"] = "export";
  exported["spec"]["fromVolume"] = {{"claimName", "checkpoints"}};
  ASSERT_TRUE(client_->Create(res::kBuckets, exported).ok());
  ASSERT_TRUE(WaitUntil([&] { return ReadyAt(res::kBuckets, "ml", "export"); }, seconds(20)))
      << Get(res::kBuckets, "ml", "export")->dump(2);
  auto b = meta_->BucketGet("ml-export");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->volume_id(), vol->id());
  EXPECT_FALSE(b->owns_volume());
  std::string akid = (*Get(res::kBuckets, "ml", "export"))["status"]["accessKeyId"];
  // While exported, the PVC's volume cannot go (what the CSI DeleteVolume of the PVC would hit).
  EXPECT_EQ(meta_->VolumeDelete("pvc-0001").code(), Code::PRECONDITION_FAILED);
  ASSERT_TRUE(client_->Delete(res::kBuckets, "ml", "export").ok());
  ASSERT_TRUE(WaitUntil([&] { return !Get(res::kBuckets, "ml", "export"); }, seconds(20)));
  EXPECT_EQ(meta_->BucketGet("ml-export").status().code(), Code::NOT_FOUND)
      << "deleting an export removes it whatever reclaimPolicy says";
  EXPECT_EQ(meta_->KeyGetSecret(akid).status().code(), Code::NOT_FOUND);
  EXPECT_TRUE(meta_->VolumeGet("pvc-0001").ok()) << "an exported volume outlives its bucket";
  EXPECT_TRUE(meta_->VolumeDelete("pvc-0001").ok()) << "and the PVC can be deleted afterwards";

  Json foreign = Bucket();
  foreign["metadata"]["name"] = "foreign";
  foreign["spec"]["fromVolume"] = {{"claimName", "foreign"}};
  ASSERT_TRUE(client_->Create(res::kBuckets, foreign).ok());
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto f = Get(res::kBuckets, "ml", "foreign");
        return f && runtime::IsConditionTrue(*f, runtime::kDegraded) &&
               (*runtime::FindCondition(*f, runtime::kDegraded))["message"].get<std::string>().find(
                   "is not a Granary volume") != std::string::npos;
      },
      seconds(20)));
}

// `kubectl apply -f crds/` then `kubectl apply -f <dir>/`, in file order (YAML files only, as
// kubectl does; subdirectories are other sets). Returns the number of objects created.
int ApplyCrdsAndSamples(kube::Client& client, const std::string& dir) {
  const std::string src = GRANARY_SOURCE_DIR;
  kube::Resource crds{"apiextensions.k8s.io", "v1", "customresourcedefinitions",
                      "CustomResourceDefinition", false};
  for (const char* f : {"storagecluster.yaml", "storagepool.yaml", "bucket.yaml"})
    for (const auto& doc : LoadYamlFile(src + "/crds/" + f)) {
      auto created = client.Create(crds, doc);
      EXPECT_TRUE(created.ok() || created.status().code() == Code::ALREADY_EXISTS) << f;
    }
  const std::map<std::string, const kube::Resource*> by_kind = {
      {"Namespace", &res::kNamespaces},
      {"StorageCluster", &res::kStorageClusters},
      {"StoragePool", &res::kStoragePools},
      {"Bucket", &res::kBuckets},
      {"Pod", &res::kPods},
      {"PersistentVolumeClaim", &res::kPersistentVolumeClaims}};
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(src + "/" + dir))
    if (e.is_regular_file() && e.path().extension() == ".yaml") files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  int applied = 0;
  for (const auto& f : files) {
    for (const auto& doc : LoadYamlFile(f)) {
      auto it = by_kind.find(doc.value("kind", ""));
      EXPECT_NE(it, by_kind.end()) << f << ": no mapping for " << doc.value("kind", "");
      if (it == by_kind.end()) continue;
      auto created = client.Create(*it->second, doc);
      EXPECT_TRUE(created.ok()) << f << ": " << created.status().ToString();
      ++applied;
    }
  }
  return applied;
}

// The production samples on the one datanode this test has (host node-a, pool fast): everything
// is created and the cluster gets Ready, but neither pool can be placed, and they say so
// instead of reporting Healthy while every write fails.
TEST_F(OperatorE2ETest, TheCrdsAndSamplesAreWhatAUserApplies) {
  StartOperator();
  EXPECT_EQ(ApplyCrdsAndSamples(*client_, "deploy/samples"), 9);
  for (const char* pool : {"fast", "capacity"}) {
    EXPECT_TRUE(WaitUntil(
        [&] {
          return Get(res::kDaemonSets, "granary", std::string("granary-datanode-") + pool) &&
                 Get(op::resources::kStorageClasses, "", std::string("granary-") + pool);
        },
        seconds(20)))
        << pool;
  }
  MarkWorkloadsReady({"fast", "capacity"});
  EXPECT_TRUE(
      WaitUntil([&] { return ReadyAt(res::kStorageClusters, "granary", "granary"); }, seconds(20)));
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto b = Get(res::kBuckets, "ml", "datasets");
        return b && runtime::HasFinalizer(*b, op::kBucketFinalizer) &&
               runtime::FindCondition(*b, runtime::kReady).has_value();
      },
      seconds(20)));
  // The notebook reads the Secret the Bucket produces.
  auto notebook = Get(res::kPods, "ml", "notebook");
  ASSERT_TRUE(notebook);
  EXPECT_EQ((*notebook)["spec"]["containers"][0]["envFrom"][0]["secretRef"]["name"], "datasets-s3");

  EXPECT_TRUE(WaitUntil(
      [&] {
        return ConditionSays(res::kStoragePools, "", "fast", runtime::kReady, "False",
                             "needs 3 hosts, has 1") &&
               ConditionSays(res::kStoragePools, "", "capacity", runtime::kReady, "False",
                             "needs 6 zones, has 0");
      },
      seconds(20)))
      << Get(res::kStoragePools, "", "fast")->dump(2)
      << Get(res::kStoragePools, "", "capacity")->dump(2);
  auto fast = *Get(res::kStoragePools, "", "fast");
  EXPECT_EQ(fast["status"]["health"], "Degraded");
  EXPECT_EQ((*runtime::FindCondition(fast, runtime::kReady))["reason"], "NotPlaced");
  EXPECT_TRUE(runtime::IsConditionTrue(fast, runtime::kDegraded));
  // A cluster-scoped object's events go to namespace default, as kubectl describe looks for them.
  EXPECT_TRUE(HasEvent("default", "NotPlaced", "needs 3 hosts, has 1"));
}

// deploy/samples/single-node/ on one node: its pool is placed and everything gets Ready.
TEST_F(OperatorE2ETest, TheSingleNodeSamplesGetReadyOnOneNode) {
  StartDatanode("host=node-a,zone=z1,pool=local");
  StartOperator();
  EXPECT_EQ(ApplyCrdsAndSamples(*client_, "deploy/samples/single-node"), 8);
  MarkWorkloadsReady({"local"});
  EXPECT_TRUE(
      WaitUntil([&] { return ReadyAt(res::kStorageClusters, "granary", "granary"); }, seconds(20)))
      << Get(res::kStorageClusters, "granary", "granary")->dump(2);
  EXPECT_TRUE(WaitUntil([&] { return ReadyAt(res::kStoragePools, "", "local"); }, seconds(20)))
      << Get(res::kStoragePools, "", "local")->dump(2);
  EXPECT_EQ((*Get(res::kStoragePools, "", "local"))["status"]["health"], "Healthy");
  EXPECT_TRUE(WaitUntil([&] { return ReadyAt(res::kBuckets, "ml", "datasets"); }, seconds(20)))
      << Get(res::kBuckets, "ml", "datasets")->dump(2);
  EXPECT_TRUE(Get(res::kSecrets, "ml", "datasets-s3"));
  auto pvc = Get(res::kPersistentVolumeClaims, "ml", "checkpoints");
  ASSERT_TRUE(pvc);
  EXPECT_EQ((*pvc)["spec"]["storageClassName"], "granary-local");
  EXPECT_TRUE(Get(op::resources::kStorageClasses, "", "granary-local"));
}

TEST_F(OperatorE2ETest, CutWatchesAndA410RelistAndConverge) {
  StartOperator();
  ApplyAllAndConverge();
  server_->DropWatches();
  server_->Compact();
  // Changes made while the watches were down: a deleted Secret, a deleted DaemonSet, a new Bucket.
  ASSERT_TRUE(client_->Delete(res::kSecrets, "ml", "datasets-s3").ok());
  ASSERT_TRUE(client_->Delete(res::kDaemonSets, "granary", "granary-csi-node").ok());
  Json second = Bucket();
  second["metadata"]["name"] = "checkpoints";
  ASSERT_TRUE(client_->Create(res::kBuckets, second).ok());
  EXPECT_TRUE(WaitUntil(
      [&] {
        return Get(res::kSecrets, "ml", "datasets-s3") &&
               Get(res::kDaemonSets, "granary", "granary-csi-node") &&
               ReadyAt(res::kBuckets, "ml", "checkpoints");
      },
      seconds(30)));
  EXPECT_TRUE(meta_->BucketGet("ml-checkpoints").ok());
}

TEST_F(OperatorE2ETest, TwoOperatorReplicasElectOneLeaderAndTheStandbyTakesOver) {
  auto& a = StartOperator(true, "op-a");
  auto& b = StartOperator(true, "op-b");
  ASSERT_TRUE(WaitUntil([&] { return a.IsLeader() || b.IsLeader(); }, seconds(10)));
  EXPECT_NE(a.IsLeader(), b.IsLeader()) << "exactly one leader";
  auto& leader = a.IsLeader() ? a : b;
  auto& standby = a.IsLeader() ? b : a;
  ASSERT_TRUE(client_->Create(res::kStorageClusters, Cluster()).ok());
  ASSERT_TRUE(
      WaitUntil([&] { return Get(res::kStatefulSets, "granary", "granary-metanode").has_value(); },
                seconds(20)));
  leader.Stop();  // releases the Lease
  ASSERT_TRUE(WaitUntil([&] { return standby.IsLeader(); }, seconds(10)));
  ASSERT_TRUE(client_->Create(res::kStoragePools, Pool()).ok());
  EXPECT_TRUE(WaitUntil(
      [&] { return Get(res::kDaemonSets, "granary", "granary-datanode-fast").has_value(); },
      seconds(20)))
      << "the new leader reconciles";
  auto lease = Get(res::kLeases, "granary", "granary-operator");
  ASSERT_TRUE(lease);
  EXPECT_EQ((*lease)["spec"]["holderIdentity"], standby.identity());
}

TEST_F(OperatorE2ETest, InvalidSpecsPastTheSchemaAreDegradedNotACrashLoop) {
  StartOperator();
  ASSERT_TRUE(client_->Create(res::kStorageClusters, Cluster()).ok());
  Json bad = Pool("raw");
  bad["spec"]["datanodes"]["storage"] = {{"devices", {"/dev/nvme1n1"}}};
  ASSERT_TRUE(client_->Create(res::kStoragePools, bad).ok());
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto p = Get(res::kStoragePools, "", "raw");
        return p && runtime::IsConditionTrue(*p, runtime::kDegraded);
      },
      seconds(20)));
  auto p = *Get(res::kStoragePools, "", "raw");
  EXPECT_NE((*runtime::FindCondition(p, runtime::kDegraded))["message"].get<std::string>().find(
                "raw devices are not supported"),
            std::string::npos);
  EXPECT_FALSE(runtime::IsConditionTrue(p, runtime::kReady));
  EXPECT_FALSE(Get(res::kDaemonSets, "granary", "granary-datanode-raw"));
  // Fixing the spec clears Degraded.
  ASSERT_TRUE(client_
                  ->Modify(res::kStoragePools, "", "raw",
                           [](Json& o) {
                             o["spec"]["datanodes"]["storage"] = {{"hostPath", "/var/lib/raw"}};
                             return Status::Ok();
                           })
                  .ok());
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto q = Get(res::kStoragePools, "", "raw");
        return q && !runtime::IsConditionTrue(*q, runtime::kDegraded) &&
               Get(res::kDaemonSets, "granary", "granary-datanode-raw");
      },
      seconds(20)));
}

// Issue 19: a Bucket in another namespace naming ml-datasets got a READ_WRITE grant and wrote
// into it. A Bucket may only use a bucket its own namespace owns; anything else is refused.
TEST_F(OperatorE2ETest, ABucketOfAnotherNamespaceNamingAForeignBucketIsRefusedAndGetsNoKey) {
  StartOperator();
  ApplyAllAndConverge();
  auto owner = *Get(res::kBuckets, "ml", "datasets");
  auto mb = meta_->BucketGet("ml-datasets");
  ASSERT_TRUE(mb.ok());
  EXPECT_EQ(mb->owner_namespace(), "ml") << "the metanode records the owning namespace";
  EXPECT_EQ(mb->owner_uid(), kube::UidOf(owner));
  auto keys_named = [&](const std::string& name) {
    auto keys = meta_->KeyList();  // named: a range-for over *temporary would dangle
    EXPECT_TRUE(keys.ok());
    int n = 0;
    for (const auto& k : *keys) n += k.name() == name;
    return n;
  };

  Json thief = Bucket("Delete");
  thief["metadata"] = {{"name", "thief"}, {"namespace", "other-team"}};
  thief["spec"]["bucketName"] = "ml-datasets";
  ASSERT_TRUE(client_->Create(res::kBuckets, thief).ok());
  ASSERT_TRUE(WaitUntil(
      [&] {
        return ConditionSays(res::kBuckets, "other-team", "thief", runtime::kDegraded, "True",
                             "belongs to namespace ml");
      },
      seconds(20)))
      << Get(res::kBuckets, "other-team", "thief")->dump(2);
  auto t = *Get(res::kBuckets, "other-team", "thief");
  EXPECT_EQ((*runtime::FindCondition(t, runtime::kDegraded))["reason"], "BucketOwnedElsewhere");
  EXPECT_FALSE(runtime::IsConditionTrue(t, runtime::kReady));
  EXPECT_EQ(t["status"].value("accessKeyId", ""), "") << "no key";
  EXPECT_EQ(keys_named("bucket:other-team/thief"), 0) << "no key in the metanode either";
  EXPECT_FALSE(Get(res::kSecrets, "other-team", "thief-s3")) << "no Secret";
  EXPECT_EQ(meta_->BucketGet("ml-datasets")->grants_size(), 0) << "no grant";
  EXPECT_TRUE(HasEvent("other-team", "BucketOwnedElsewhere", "belongs to namespace ml"));
  // Deleting it (reclaimPolicy Delete) leaves the owner's bucket alone.
  ASSERT_TRUE(client_->Delete(res::kBuckets, "other-team", "thief").ok());
  ASSERT_TRUE(WaitUntil([&] { return !Get(res::kBuckets, "other-team", "thief"); }, seconds(20)));
  EXPECT_TRUE(meta_->BucketGet("ml-datasets").ok());

  // A bucket made outside Kubernetes (over S3, with granary admin) cannot be claimed either.
  auto key = meta_->KeyCreate("admin");
  ASSERT_TRUE(key.ok());
  ASSERT_TRUE(meta_->BucketCreate("admin-made", key->access_key(), "", "fast").ok());
  Json claim = Bucket("Delete");
  claim["metadata"]["name"] = "claim";
  claim["spec"]["bucketName"] = "admin-made";
  ASSERT_TRUE(client_->Create(res::kBuckets, claim).ok());
  EXPECT_TRUE(WaitUntil(
      [&] {
        return ConditionSays(res::kBuckets, "ml", "claim", runtime::kDegraded, "True",
                             "no Bucket of namespace ml created it");
      },
      seconds(20)))
      << Get(res::kBuckets, "ml", "claim")->dump(2);
  EXPECT_FALSE(Get(res::kSecrets, "ml", "claim-s3"));

  // The owning namespace may use it from another Bucket (or the same one recreated after a
  // Retain deletion): a grant for that Bucket's own key.
  Json second = Bucket("Retain");
  second["metadata"]["name"] = "second";
  second["spec"]["bucketName"] = "ml-datasets";
  ASSERT_TRUE(client_->Create(res::kBuckets, second).ok());
  ASSERT_TRUE(WaitUntil([&] { return ReadyAt(res::kBuckets, "ml", "second"); }, seconds(20)))
      << Get(res::kBuckets, "ml", "second")->dump(2);
  std::string second_key = (*Get(res::kBuckets, "ml", "second"))["status"]["accessKeyId"];
  auto granted = meta_->BucketGet("ml-datasets");
  ASSERT_EQ(granted->grants_size(), 1);
  EXPECT_EQ(granted->grants(0).access_key(), second_key);
  EXPECT_EQ(granted->grants(0).access(), READ_WRITE);
}

// Issue 19: the sample pools on one host reported Healthy while every write failed. Health and
// Ready come from the metanode's placement.
TEST_F(OperatorE2ETest, PoolHealthFollowsTheMetanodesPlacement) {
  StartOperator();
  ASSERT_TRUE(client_->Create(res::kStorageClusters, Cluster()).ok());
  Json wide = Pool();
  wide["spec"]["redundancy"] = {{"replicated", {{"size", 3}}}};
  wide["spec"]["failureDomain"] = "host";
  ASSERT_TRUE(client_->Create(res::kStoragePools, wide).ok());
  ASSERT_TRUE(WaitUntil(
      [&] {
        return server_->MarkReady("apps", "daemonsets", "granary", "granary-datanode-fast").ok();
      },
      seconds(20)));
  ASSERT_TRUE(WaitUntil(
      [&] {
        return ConditionSays(res::kStoragePools, "", "fast", runtime::kReady, "False",
                             "needs 3 hosts, has 1");
      },
      seconds(20)))
      << Get(res::kStoragePools, "", "fast")->dump(2);
  auto pool = *Get(res::kStoragePools, "", "fast");
  EXPECT_EQ(pool["status"]["health"], "Degraded");
  EXPECT_EQ((*runtime::FindCondition(pool, runtime::kReady))["reason"], "NotPlaced");
  EXPECT_TRUE(runtime::IsConditionTrue(pool, runtime::kDegraded));

  // Two more hosts join: the metanode places the pool and its health follows.
  StartDatanode("host=node-b,zone=z1,pool=fast");
  StartDatanode("host=node-c,zone=z1,pool=fast");
  ASSERT_TRUE(server_->MarkReady("apps", "daemonsets", "granary", "granary-datanode-fast", 3).ok());
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto p = Get(res::kStoragePools, "", "fast");
        return ReadyAt(res::kStoragePools, "", "fast") && (*p)["status"]["health"] == "Healthy" &&
               !runtime::IsConditionTrue(*p, runtime::kDegraded);
      },
      seconds(20)))
      << Get(res::kStoragePools, "", "fast")->dump(2);
}

// Issue 19: the chart made ServiceAccount granary-csi only in its own namespace, so CSI pods of a
// StorageCluster elsewhere were forbidden. The operator gives every cluster its own.
TEST_F(OperatorE2ETest, TheCsiPodsGetAServiceAccountAndBindingInTheClustersNamespace) {
  StartOperator();
  ApplyAllAndConverge();
  auto sc = *Get(res::kStorageClusters, "granary", "granary");
  auto sa = Get(op::resources::kServiceAccounts, "granary", "granary-csi");
  ASSERT_TRUE(sa);
  EXPECT_TRUE(runtime::IsControlledBy(*sa, sc));
  auto crb = Get(op::resources::kClusterRoleBindings, "", "granary-csi:granary:granary");
  ASSERT_TRUE(crb);
  EXPECT_EQ((*crb)["roleRef"]["kind"], "ClusterRole");
  EXPECT_EQ((*crb)["roleRef"]["name"], "granary-csi") << "the chart's ClusterRole, nothing else";
  EXPECT_EQ(
      (*crb)["subjects"],
      Json::parse(R"([{"kind":"ServiceAccount","name":"granary-csi","namespace":"granary"}])"));
  auto ctrl = *Get(res::kDeployments, "granary", "granary-csi-controller");
  auto node = *Get(res::kDaemonSets, "granary", "granary-csi-node");
  EXPECT_EQ(ctrl["spec"]["template"]["spec"]["serviceAccountName"], "granary-csi");
  EXPECT_EQ(node["spec"]["template"]["spec"]["serviceAccountName"], "granary-csi");

  // The binding is cluster-scoped (no owner reference can collect it): the finalizer does.
  ASSERT_TRUE(client_->Delete(res::kStorageClusters, "granary", "granary").ok());
  EXPECT_TRUE(WaitUntil(
      [&] {
        return !Get(res::kStorageClusters, "granary", "granary") &&
               !Get(op::resources::kClusterRoleBindings, "", "granary-csi:granary:granary") &&
               !Get(op::resources::kCSIDrivers, "", op::kCsiDriverName);
      },
      seconds(20)));
}

// A child the API server refuses (here PodSecurity admission on the privileged CSI node
// DaemonSet) is a Degraded condition with the server's message, not Deploying forever.
TEST_F(OperatorE2ETest, AWorkloadTheApiServerRefusesIsReportedWithItsMessage) {
  const std::string refusal =
      "daemonsets.apps \"{name}\" is forbidden: violates PodSecurity \"baseline:latest\": "
      "privileged (container \"csi\" must not set securityContext.privileged=true)";
  server_->RefuseWrites("apps", "daemonsets", "granary", 403, "Forbidden", refusal);
  StartOperator();
  ASSERT_TRUE(client_->Create(res::kStorageClusters, Cluster()).ok());
  ASSERT_TRUE(WaitUntil(
      [&] {
        return ConditionSays(res::kStorageClusters, "granary", "granary", runtime::kDegraded,
                             "True", "daemonsets.apps \"granary-csi-node\" is forbidden");
      },
      seconds(20)))
      << Get(res::kStorageClusters, "granary", "granary")->dump(2);
  auto sc = *Get(res::kStorageClusters, "granary", "granary");
  EXPECT_EQ(sc["status"]["phase"], "Degraded");
  EXPECT_EQ((*runtime::FindCondition(sc, runtime::kDegraded))["reason"], "ApplyRefused");
  EXPECT_NE((*runtime::FindCondition(sc, runtime::kDegraded))["message"].get<std::string>().find(
                "violates PodSecurity"),
            std::string::npos);
  EXPECT_TRUE(HasEvent("granary", "ApplyRefused", "violates PodSecurity"));

  // The policy is relaxed: the operator's retries get through and the cluster converges.
  server_->ClearRefusals();
  ASSERT_TRUE(client_
                  ->Modify(res::kStorageClusters, "granary", "granary",
                           [](Json& o) {
                             o["metadata"]["annotations"]["touched"] = "1";
                             return Status::Ok();
                           })
                  .ok());
  MarkWorkloadsReady({});
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto c = Get(res::kStorageClusters, "granary", "granary");
        return ReadyAt(res::kStorageClusters, "granary", "granary") &&
               !runtime::IsConditionTrue(*c, runtime::kDegraded) &&
               (*c)["status"]["phase"] == "Ready";
      },
      seconds(30)))
      << Get(res::kStorageClusters, "granary", "granary")->dump(2);
}

// Pods a workload cannot create (a missing ServiceAccount, an admission refusal) show up as the
// workload controllers report them: a Deployment's ReplicaFailure condition, a DaemonSet's
// FailedCreate event. The cluster says which workload and why, with the server's words.
TEST_F(OperatorE2ETest, PodsTheApiServerRefusesDegradeTheClusterWithTheServersMessage) {
  StartOperator();
  ASSERT_TRUE(client_->Create(res::kStorageClusters, Cluster()).ok());
  MarkWorkloadsReady({});
  ASSERT_TRUE(
      WaitUntil([&] { return ReadyAt(res::kStorageClusters, "granary", "granary"); }, seconds(20)));
  const std::string forbidden =
      "pods \"granary-csi-controller-5d8f9-\" is forbidden: error looking up service account "
      "granary/granary-csi: serviceaccount \"granary-csi\" not found";
  ASSERT_TRUE(client_
                  ->Modify(
                      res::kDeployments, "granary", "granary-csi-controller",
                      [&](Json& o) {
                        o["status"]["readyReplicas"] = 0;
                        o["status"]["conditions"] = {{{"type", "ReplicaFailure"},
                                                      {"status", "True"},
                                                      {"reason", "FailedCreate"},
                                                      {"message", forbidden}}};
                        return Status::Ok();
                      },
                      /*status=*/true)
                  .ok());
  ASSERT_TRUE(client_
                  ->Modify(
                      res::kDaemonSets, "granary", "granary-csi-node",
                      [&](Json& o) {
                        o["status"]["numberReady"] = 0;
                        return Status::Ok();
                      },
                      /*status=*/true)
                  .ok());
  Json event = {{"apiVersion", "v1"},
                {"kind", "Event"},
                {"metadata", {{"name", "granary-csi-node.1"}, {"namespace", "granary"}}},
                {"involvedObject",
                 {{"kind", "DaemonSet"}, {"name", "granary-csi-node"}, {"namespace", "granary"}}},
                {"type", "Warning"},
                {"reason", "FailedCreate"},
                {"lastTimestamp", "2026-01-01T00:00:00Z"},
                {"message",
                 "Error creating: pods \"granary-csi-node-x7k2p\" is forbidden: error looking up "
                 "service account granary/granary-csi: serviceaccount \"granary-csi\" not found"}};
  ASSERT_TRUE(client_->Create(res::kEvents, event).ok());
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto c = ConditionOf(res::kStorageClusters, "granary", "granary", runtime::kDegraded);
        if (!c || (*c)["status"] != "True") return false;
        std::string m = (*c)["message"];
        return (*c)["reason"] == "WorkloadFailed" &&
               m.find("Deployment granary-csi-controller: " + forbidden) != std::string::npos &&
               m.find("DaemonSet granary-csi-node: Error creating") != std::string::npos;
      },
      seconds(20)))
      << Get(res::kStorageClusters, "granary", "granary")->dump(2);
  EXPECT_EQ((*Get(res::kStorageClusters, "granary", "granary"))["status"]["phase"], "Degraded");
}

// spec.metanode.storage.storageClassName reaches the metanode's claim; without one and without a
// default StorageClass the claim stays Pending, and the cluster says so instead of waiting mutely.
TEST_F(OperatorE2ETest, TheMetanodeClaimNamesItsStorageClassAndAPendingClaimIsExplained) {
  StartOperator();
  Json c = Cluster();
  c["spec"]["metanode"] = {{"storage", {{"size", "20Gi"}, {"storageClassName", "local-nvme"}}}};
  ASSERT_TRUE(client_->Create(res::kStorageClusters, c).ok());
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto sts = Get(res::kStatefulSets, "granary", "granary-metanode");
        return sts && (*sts)["spec"]["volumeClaimTemplates"][0]["spec"].value("storageClassName",
                                                                              "") == "local-nvme";
      },
      seconds(20)));
  ASSERT_TRUE(client_
                  ->Modify(res::kStorageClusters, "granary", "granary",
                           [](Json& o) {
                             o["spec"]["metanode"]["storage"].erase("storageClassName");
                             return Status::Ok();
                           })
                  .ok());
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto sts = Get(res::kStatefulSets, "granary", "granary-metanode");
        return sts &&
               !(*sts)["spec"]["volumeClaimTemplates"][0]["spec"].contains("storageClassName");
      },
      seconds(20)));
  // What the StatefulSet controller creates, left Pending: no default StorageClass.
  Json claim = {
      {"apiVersion", "v1"},
      {"kind", "PersistentVolumeClaim"},
      {"metadata", {{"name", "data-granary-metanode-0"}, {"namespace", "granary"}}},
      {"spec",
       {{"accessModes", {"ReadWriteOnce"}}, {"resources", {{"requests", {{"storage", "20Gi"}}}}}}}};
  ASSERT_TRUE(client_->Create(res::kPersistentVolumeClaims, claim).ok());
  ASSERT_TRUE(client_
                  ->Modify(
                      res::kPersistentVolumeClaims, "granary", "data-granary-metanode-0",
                      [](Json& o) {
                        o["status"]["phase"] = "Pending";
                        return Status::Ok();
                      },
                      /*status=*/true)
                  .ok());
  EXPECT_TRUE(WaitUntil(
      [&] {
        return ConditionSays(res::kStorageClusters, "granary", "granary", runtime::kReady, "False",
                             "data-granary-metanode-0 is Pending and names no StorageClass");
      },
      seconds(20)))
      << Get(res::kStorageClusters, "granary", "granary")->dump(2);
}

}  // namespace
}  // namespace granary::testing
