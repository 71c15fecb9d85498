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
    operators_.push_back(std::make_unique<op::Operator>(*managers_.back(), oo));
    EXPECT_TRUE(managers_.back()->Start().ok());
    return *managers_.back();
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
  void MarkWorkloadsReady() {
    for (auto [group, plural, name] : {std::tuple{"apps", "statefulsets", "granary-metanode"},
                                       std::tuple{"apps", "deployments", "granary-s3"},
                                       std::tuple{"apps", "deployments", "granary-csi-controller"},
                                       std::tuple{"apps", "daemonsets", "granary-csi-node"},
                                       std::tuple{"apps", "daemonsets", "granary-datanode-fast"}}) {
      ASSERT_TRUE(WaitUntil([&] { return server_->MarkReady(group, plural, "granary", name).ok(); },
                            seconds(20)))
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

  Json exported = Bucket("Delete");
  exported["metadata"]["name"] = "export";
  exported["spec"]["fromVolume"] = {{"claimName", "checkpoints"}};
  ASSERT_TRUE(client_->Create(res::kBuckets, exported).ok());
  ASSERT_TRUE(WaitUntil([&] { return ReadyAt(res::kBuckets, "ml", "export"); }, seconds(20)))
      << Get(res::kBuckets, "ml", "export")->dump(2);
  auto b = meta_->BucketGet("ml-export");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->volume_id(), vol->id());
  EXPECT_FALSE(b->owns_volume());
  ASSERT_TRUE(client_->Delete(res::kBuckets, "ml", "export").ok());
  ASSERT_TRUE(WaitUntil([&] { return !Get(res::kBuckets, "ml", "export"); }, seconds(20)));
  EXPECT_EQ(meta_->BucketGet("ml-export").status().code(), Code::NOT_FOUND);
  EXPECT_TRUE(meta_->VolumeGet("pvc-0001").ok()) << "an exported volume outlives its bucket";

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

// `kubectl apply -f crds/` then `kubectl apply -f deploy/samples/`, in file order.
TEST_F(OperatorE2ETest, TheCrdsAndSamplesAreWhatAUserApplies) {
  const std::string src = GRANARY_SOURCE_DIR;
  kube::Resource crds{"apiextensions.k8s.io", "v1", "customresourcedefinitions",
                      "CustomResourceDefinition", false};
  for (const char* f : {"storagecluster.yaml", "storagepool.yaml", "bucket.yaml"})
    for (const auto& doc : LoadYamlFile(src + "/crds/" + f))
      ASSERT_TRUE(client_->Create(crds, doc).ok()) << f;
  StartOperator();
  const std::map<std::string, const kube::Resource*> by_kind = {
      {"Namespace", &res::kNamespaces},
      {"StorageCluster", &res::kStorageClusters},
      {"StoragePool", &res::kStoragePools},
      {"Bucket", &res::kBuckets},
      {"Pod", &res::kPods},
      {"PersistentVolumeClaim", &res::kPersistentVolumeClaims}};
  std::vector<std::string> files;
  for (const auto& e : std::filesystem::directory_iterator(src + "/deploy/samples"))
    files.push_back(e.path().string());
  std::sort(files.begin(), files.end());
  int applied = 0;
  for (const auto& f : files) {
    for (const auto& doc : LoadYamlFile(f)) {
      auto it = by_kind.find(doc.value("kind", ""));
      ASSERT_NE(it, by_kind.end()) << f << ": no mapping for " << doc.value("kind", "");
      auto created = client_->Create(*it->second, doc);
      ASSERT_TRUE(created.ok()) << f << ": " << created.status().ToString();
      ++applied;
    }
  }
  EXPECT_EQ(applied, 9);
  for (const char* pool : {"fast", "capacity"}) {
    EXPECT_TRUE(WaitUntil(
        [&] {
          return Get(res::kDaemonSets, "granary", std::string("granary-datanode-") + pool) &&
                 Get(op::resources::kStorageClasses, "", std::string("granary-") + pool);
        },
        seconds(20)))
        << pool;
  }
  MarkWorkloadsReady();
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

}  // namespace
}  // namespace granary::testing
