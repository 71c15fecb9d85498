// The operator without an API server: golden files of every object it generates (from the
// samples in deploy/samples/), its decisions (readiness, health, deletion plan, metanode pool),
// and the CRD schemas (structural; samples accepted; invalid StoragePools rejected).
//
// Regenerate the golden files after an intended change:
//   GRANARY_UPDATE_GOLDEN=1 build/tests/operator_objects_test
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "common/version.h"
#include "operator/controllers/operator.h"
#include "tests/operator_test_support.h"

namespace granary::testing {
namespace {

namespace op = operators;
const std::string kSource = GRANARY_SOURCE_DIR;

Json Sample(const std::string& file) {
  auto docs = LoadYamlFile(kSource + "/deploy/samples/" + file);
  EXPECT_EQ(docs.size(), 1u) << file;
  Json o = docs.at(0);
  o["metadata"]["uid"] = "uid-" + o["metadata"].value("name", "");
  return o;
}

void ExpectGolden(const std::string& name, const Json& got) {
  std::string path = kSource + "/tests/operator_golden/" + name + ".json";
  if (std::getenv("GRANARY_UPDATE_GOLDEN")) {
    std::ofstream(path) << got.dump(2) << "\n";
    return;
  }
  std::ifstream in(path);
  ASSERT_TRUE(in) << "missing golden file " << path << " (GRANARY_UPDATE_GOLDEN=1 writes it)";
  Json want = Json::parse(in);
  EXPECT_EQ(got, want) << name << ": generated object differs from its golden file\n"
                       << Json::diff(want, got).dump(2);
}

class OperatorObjectsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = Sample("10-storagecluster.yaml");
    fast_ = Sample("20-storagepool-replicated.yaml");
    capacity_ = Sample("21-storagepool-ec.yaml");
    bucket_ = Sample("30-bucket.yaml");
  }
  Json cluster_, fast_, capacity_, bucket_;
};

TEST_F(OperatorObjectsTest, StorageClusterChildrenMatchGoldenFiles) {
  auto spec = op::ParseClusterSpec(cluster_);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  ExpectGolden("metanode-service", op::MetanodeService(cluster_, *spec));
  ExpectGolden("metanode-statefulset", op::MetanodeStatefulSet(cluster_, *spec));
  ExpectGolden("s3-service", op::S3Service(cluster_, *spec));
  ExpectGolden("s3-deployment", op::S3Deployment(cluster_, *spec));
  ExpectGolden("dashboard-service", op::DashboardService(cluster_));
  ExpectGolden("csi-controller-deployment", op::CsiControllerDeployment(cluster_, *spec));
  ExpectGolden("csi-node-daemonset", op::CsiNodeDaemonSet(cluster_, *spec));
  ExpectGolden("csidriver", op::CsiDriver(cluster_));
  ExpectGolden("csi-serviceaccount", op::CsiServiceAccount(cluster_));
  ExpectGolden("csi-clusterrolebinding", op::CsiClusterRoleBinding(cluster_, op::kCsiClusterRole));

  auto sts = op::MetanodeStatefulSet(cluster_, *spec);
  // The sample's metadata group of three: ids from the pod ordinals, peers at stable DNS names,
  // started together, at most one down by choice.
  EXPECT_EQ(sts["spec"]["replicas"], 3);
  EXPECT_EQ(sts["spec"]["podManagementPolicy"], "Parallel");
  auto args = sts["spec"]["template"]["spec"]["containers"][0]["args"];
  EXPECT_EQ(args[0], "metanode");
  const std::string peers =
      "1=granary-metanode-0.granary-metanode.granary.svc:7410,"
      "2=granary-metanode-1.granary-metanode.granary.svc:7410,"
      "3=granary-metanode-2.granary-metanode.granary.svc:7410";
  EXPECT_NE(std::find(args.begin(), args.end(), "--id-from-ordinal"), args.end()) << args;
  auto peers_flag = std::find(args.begin(), args.end(), "--peers");
  ASSERT_NE(peers_flag, args.end());
  EXPECT_EQ(*(peers_flag + 1), peers);
  auto pdb = op::MetanodePodDisruptionBudget(cluster_);
  EXPECT_EQ(pdb["spec"]["maxUnavailable"], 1);
  EXPECT_EQ(op::MetanodeKeySecretName(cluster_), "granary-metanode-key");
  auto driver = op::CsiDriver(cluster_);
  EXPECT_EQ(driver["spec"]["fsGroupPolicy"], "None");
  EXPECT_EQ(driver["spec"]["attachRequired"], false);
  EXPECT_EQ(op::MetanodeAddress(cluster_, 3),
            "granary-metanode-0.granary-metanode.granary.svc:7410,"
            "granary-metanode-1.granary-metanode.granary.svc:7410,"
            "granary-metanode-2.granary-metanode.granary.svc:7410");
  // The image is this build's version, never :latest (the sample sets none).
  EXPECT_EQ(sts["spec"]["template"]["spec"]["containers"][0]["image"],
            std::string("ghcr.io/granary/granary:") + granary::kVersion);
  EXPECT_EQ(sts["spec"]["volumeClaimTemplates"][0]["spec"].count("storageClassName"), 0u)
      << "no class named: the cluster's default";
  Json named = cluster_;
  named["spec"]["metanode"]["storage"]["storageClassName"] = "local-nvme";
  auto named_spec = op::ParseClusterSpec(named);
  ASSERT_TRUE(named_spec.ok());
  EXPECT_EQ(op::MetanodeStatefulSet(
                named, *named_spec)["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"],
            "local-nvme");
  // The CSI pods run as the cluster's own ServiceAccount, which the operator creates.
  EXPECT_EQ(op::CsiControllerDeployment(cluster_,
                                        *spec)["spec"]["template"]["spec"]["serviceAccountName"],
            "granary-csi");
  EXPECT_EQ(op::CsiClusterRoleBindingName(cluster_), "granary-csi:granary:granary");
}

TEST_F(OperatorObjectsTest, StoragePoolChildrenMatchGoldenFiles) {
  auto cspec = op::ParseClusterSpec(cluster_);
  ASSERT_TRUE(cspec.ok());
  for (auto* pool : {&fast_, &capacity_}) {
    auto spec = op::ParsePoolSpec(*pool);
    ASSERT_TRUE(spec.ok()) << spec.status().ToString();
    std::string n = kube::NameOf(*pool);
    Json node = {{"metadata",
                  {{"name", "node-a"},
                   {"labels",
                    {{"topology.kubernetes.io/zone", "eu-1a"},
                     {"topology.granary.io/rack", "r7"},
                     {"nvidia.com/gpu.present", "true"},
                     {"granary.io/storage", "true"}}}}}};
    std::map<std::string, std::string> topology = {{"node-a", op::TopologyLabels(node, *spec, n)}};
    ExpectGolden("datanode-topology-" + n, op::DatanodeTopologyConfigMap(*pool, *spec, topology));
    ExpectGolden("datanode-daemonset-" + n, op::DatanodeDaemonSet(*pool, *spec, *cspec, cluster_));
    ExpectGolden("storageclass-" + n, op::PoolStorageClass(*pool, *spec));
    auto sc = op::PoolStorageClass(*pool, *spec);
    EXPECT_EQ(sc["metadata"]["name"], "granary-" + n);
    EXPECT_EQ(sc["volumeBindingMode"], "WaitForFirstConsumer");
    EXPECT_EQ(sc["allowVolumeExpansion"], true);
  }
  auto fast = op::ParsePoolSpec(fast_);
  Json node = {
      {"metadata",
       {{"name", "node-a"},
        {"labels",
         {{"topology.kubernetes.io/zone", "eu-1a"}, {"nvidia.com/gpu.present", "true"}}}}}};
  EXPECT_EQ(op::TopologyLabels(node, *fast, "fast"), "host=node-a,zone=eu-1a,gpu=true,pool=fast");
}

TEST_F(OperatorObjectsTest, BucketSecretMatchesGoldenFileAndCarriesTheFourVariables) {
  auto spec = op::ParseBucketSpec(bucket_);
  ASSERT_TRUE(spec.ok());
  Json secret =
      op::BucketSecret(bucket_, *spec, "AKID", "s3cr3t", "http://granary-s3.granary.svc:9000");
  ExpectGolden("bucket-secret", secret);
  EXPECT_EQ(secret["metadata"]["name"], "datasets-s3");
  EXPECT_EQ(secret["data"]["BUCKET_NAME"], op::Base64("ml-datasets"));
  EXPECT_EQ(op::Base64(""), "");
  EXPECT_EQ(op::Base64("f"), "Zg==");
  EXPECT_EQ(op::Base64("fo"), "Zm8=");
  EXPECT_EQ(op::Base64("foo"), "Zm9v");
}

TEST(OperatorDecisionsTest, ClusterIsReadyOnlyWhenEveryWorkloadIsReadyForItsGeneration) {
  op::ClusterSpec spec;
  auto ready_sts = [](int64_t gen, int64_t observed, int ready) {
    return Json{{"kind", "StatefulSet"},
                {"metadata", {{"generation", gen}}},
                {"spec", {{"replicas", 1}}},
                {"status", {{"observedGeneration", observed}, {"readyReplicas", ready}}}};
  };
  Json ds = {{"kind", "DaemonSet"},
             {"metadata", {{"generation", 1}}},
             {"status",
              {{"observedGeneration", 1},
               {"desiredNumberScheduled", 2},
               {"numberReady", 2},
               {"updatedNumberScheduled", 2}}}};
  auto c =
      op::ClusterReadiness(ready_sts(1, 1, 1), ready_sts(1, 1, 1), spec, ready_sts(1, 1, 1), ds);
  EXPECT_EQ(c.status, "True");
  c = op::ClusterReadiness(ready_sts(2, 1, 1), ready_sts(1, 1, 1), spec, ready_sts(1, 1, 1), ds);
  EXPECT_EQ(c.status, "False") << "an old generation's readiness does not count";
  EXPECT_EQ(c.message, "waiting for metanode");
  c = op::ClusterReadiness(std::nullopt, ready_sts(1, 1, 0), spec, std::nullopt, ds);
  EXPECT_EQ(c.message, "waiting for metanode, s3, csi-controller");
  spec.csi_enabled = false;
  c = op::ClusterReadiness(ready_sts(1, 1, 1), ready_sts(1, 1, 1), spec, std::nullopt,
                           std::nullopt);
  EXPECT_EQ(c.status, "True") << "CSI off: its workloads are not waited for";
}

TEST(OperatorDecisionsTest, PoolHealth) {
  auto ds = [](int desired, int ready) {
    return Json{
        {"kind", "DaemonSet"},
        {"metadata", {{"generation", 1}}},
        {"status",
         {{"observedGeneration", 1}, {"desiredNumberScheduled", desired}, {"numberReady", ready}}}};
  };
  EXPECT_EQ(op::PoolHealthOf(ds(3, 3), true).health, "Healthy");
  EXPECT_EQ(op::PoolHealthOf(ds(3, 2), true).health, "Degraded");
  EXPECT_EQ(op::PoolHealthOf(ds(3, 0), true).health, "Progressing");
  EXPECT_EQ(op::PoolHealthOf(ds(3, 3), false).health, "Progressing") << "not in the metanode yet";
  EXPECT_EQ(op::PoolHealthOf(std::nullopt, true).health, "Progressing");

  // The metanode's placement decides: a pool its PG map does not hold takes no writes.
  granary::PoolPlacement unplaced;
  unplaced.set_name("fast");
  unplaced.set_placed(false);
  unplaced.set_width(3);
  unplaced.set_failure_domains(1);
  unplaced.set_message("needs 3 hosts, has 1");
  auto h = op::PoolHealthOf(ds(1, 1), true, &unplaced);
  EXPECT_EQ(h.health, "Degraded");
  EXPECT_EQ(h.reason, "NotPlaced");
  EXPECT_NE(h.message.find("needs 3 hosts, has 1"), std::string::npos) << h.message;
  h = op::PoolHealthOf(ds(3, 0), true, &unplaced);
  EXPECT_EQ(h.health, "Progressing") << "datanodes still starting: not yet a verdict";
  EXPECT_NE(h.message.find("needs 3 hosts, has 1"), std::string::npos) << "but the reason shows";
  granary::PoolPlacement placed;
  placed.set_placed(true);
  placed.set_pgs(256);
  EXPECT_EQ(op::PoolHealthOf(ds(3, 3), true, &placed).health, "Healthy");
  placed.set_pgs_degraded(12);
  h = op::PoolHealthOf(ds(3, 3), true, &placed);
  EXPECT_EQ(h.health, "Degraded");
  EXPECT_EQ(h.reason, "PgsDegraded");
  EXPECT_NE(h.message.find("12 of 256 PGs"), std::string::npos) << h.message;

  // Copies reported corrupt: the pool serves, one fault closer to loss, until they are replaced.
  placed.set_pgs_degraded(0);
  h = op::PoolHealthOf(ds(3, 3), true, &placed, op::BadCopies{.copies = 2, .pgs = 1});
  EXPECT_EQ(h.health, "Degraded");
  EXPECT_EQ(h.reason, "BadCopies");
  EXPECT_NE(h.message.find("2 copies in 1 PGs"), std::string::npos) << h.message;
  EXPECT_EQ(op::PoolHealthOf(ds(3, 3), true, &placed, op::BadCopies{}).health, "Healthy");
}

TEST(OperatorDecisionsTest, ABucketMayUseOnlyABucketItsOwnNamespaceOwns) {
  granary::Bucket b;
  b.set_name("ml-datasets");
  b.set_owner("AK1");
  b.set_owner_namespace("ml");
  EXPECT_TRUE(op::ClaimBucket(b, "ml", "").allowed) << "its namespace's, any Bucket of it";
  auto refused = op::ClaimBucket(b, "other-team", "AK1");
  EXPECT_FALSE(refused.allowed) << "another namespace, even holding the owner key's id";
  EXPECT_NE(refused.message.find("belongs to namespace ml"), std::string::npos);
  b.clear_owner_namespace();  // made over S3, by granary admin, or before owners were recorded
  EXPECT_TRUE(op::ClaimBucket(b, "ml", "AK1").allowed) << "the Bucket whose key created it";
  EXPECT_FALSE(op::ClaimBucket(b, "ml", "AK2").allowed);
  EXPECT_FALSE(op::ClaimBucket(b, "ml", "").allowed);
}

TEST(OperatorDecisionsTest, AFailingWorkloadIsNamedWithTheApiServersMessage) {
  Json deployment = {{"kind", "Deployment"},
                     {"metadata", {{"name", "granary-csi-controller"}}},
                     {"status",
                      {{"conditions",
                        {{{"type", "ReplicaFailure"},
                          {"status", "True"},
                          {"message", "pods \"x\" is forbidden: serviceaccount missing"}}}}}}};
  EXPECT_EQ(op::WorkloadFailure(deployment, {}),
            "Deployment granary-csi-controller: pods \"x\" is forbidden: serviceaccount missing");
  Json ds = {{"kind", "DaemonSet"}, {"metadata", {{"name", "granary-csi-node"}}}};
  auto event = [](const std::string& kind, const std::string& name, const std::string& time,
                  const std::string& msg) {
    return Json{{"type", "Warning"},
                {"reason", "FailedCreate"},
                {"lastTimestamp", time},
                {"involvedObject", {{"kind", kind}, {"name", name}}},
                {"message", msg}};
  };
  std::vector<Json> events = {event("DaemonSet", "granary-csi-node", "2026-01-01T00:00:02Z", "new"),
                              event("DaemonSet", "granary-csi-node", "2026-01-01T00:00:01Z", "old"),
                              event("DaemonSet", "other", "2026-01-01T00:00:03Z", "not ours")};
  EXPECT_EQ(op::WorkloadFailure(ds, events), "DaemonSet granary-csi-node: new");
  EXPECT_EQ(op::WorkloadFailure(ds, {}), std::nullopt);
  // A Deployment's pods are its ReplicaSets' (<deployment>-<hash>), not another Deployment's.
  Json s3 = {{"kind", "Deployment"}, {"metadata", {{"name", "granary-s3"}}}};
  EXPECT_EQ(op::WorkloadFailure(s3, {event("ReplicaSet", "granary-s3-5d8f9", "t", "refused")}),
            "Deployment granary-s3: refused");
  EXPECT_EQ(op::WorkloadFailure(s3, {event("ReplicaSet", "granary-s3-extra-5d8f9", "t", "no")}),
            std::nullopt);
}

TEST(OperatorDecisionsTest, APendingMetanodeClaimSaysWhatToDo) {
  Json claim = {{"metadata", {{"name", "data-granary-metanode-0"}}},
                {"spec", Json::object()},
                {"status", {{"phase", "Pending"}}}};
  auto hint = op::MetanodeClaimHint(claim);
  ASSERT_TRUE(hint);
  EXPECT_NE(hint->find("no default StorageClass"), std::string::npos) << *hint;
  EXPECT_NE(hint->find("spec.metanode.storage.storageClassName"), std::string::npos);
  claim["spec"]["storageClassName"] = "local-nvme";
  EXPECT_NE(op::MetanodeClaimHint(claim)->find("Pending on StorageClass local-nvme"),
            std::string::npos);
  claim["status"]["phase"] = "Bound";
  EXPECT_FALSE(op::MetanodeClaimHint(claim));
  EXPECT_FALSE(op::MetanodeClaimHint(std::nullopt));
}

TEST(OperatorDecisionsTest, PoolStatusCountsItsBadCopiesOnly) {
  granary::ClusterStatusReply status;
  auto add = [&](uint32_t pool, uint32_t pg, uint64_t copies) {
    auto* p = status.add_pgs_with_bad_copies();
    p->set_pool_id(pool);
    p->set_pg(pg);
    p->set_copies(copies);
  };
  add(1, 3, 2);
  add(1, 9, 1);
  add(2, 3, 5);
  const op::BadCopies bad = op::BadCopiesOf(status, 1);
  EXPECT_EQ(bad.copies, 3u);
  EXPECT_EQ(bad.pgs, 2u);
  EXPECT_EQ(op::BadCopiesOf(status, 7).copies, 0u);
}

TEST(OperatorDecisionsTest, BucketDeletionFollowsTheReclaimPolicy) {
  op::BucketSpec s;
  s.reclaim_policy = "Retain";
  EXPECT_FALSE(op::PlanBucketDeletion(s).delete_bucket);
  EXPECT_FALSE(op::PlanBucketDeletion(s).delete_key);
  s.reclaim_policy = "Delete";
  EXPECT_TRUE(op::PlanBucketDeletion(s).delete_bucket);
  EXPECT_TRUE(op::PlanBucketDeletion(s).delete_key);
  // An export owns no data: its record always goes (else the PVC can never be deleted).
  s.from_volume_claim = "checkpoints";
  for (const char* policy : {"Retain", "Delete"}) {
    s.reclaim_policy = policy;
    EXPECT_TRUE(op::PlanBucketDeletion(s).delete_bucket) << policy;
    EXPECT_TRUE(op::PlanBucketDeletion(s).delete_key) << policy;
  }
}

TEST_F(OperatorObjectsTest, MetanodePoolFromStoragePoolAndDrift) {
  auto fast = op::ParsePoolSpec(fast_);
  auto cap = op::ParsePoolSpec(capacity_);
  auto a = op::MetaPoolSpec("fast", *fast);
  EXPECT_EQ(a.redundancy(), REPLICATED_POOL);
  EXPECT_EQ(a.replicas(), 3u);
  EXPECT_EQ(a.failure_domain(), DOMAIN_HOST);
  EXPECT_EQ(a.locality(), PREFER_GPU);
  EXPECT_EQ(a.node_selector().at("pool"), "fast");
  auto b = op::MetaPoolSpec("capacity", *cap);
  EXPECT_EQ(b.redundancy(), ERASURE_CODED_POOL);
  EXPECT_EQ(b.data_chunks(), 4u);
  EXPECT_EQ(b.coding_chunks(), 2u);
  EXPECT_EQ(b.failure_domain(), DOMAIN_ZONE);
  EXPECT_FALSE(op::PoolDrift(a, a));
  EXPECT_TRUE(op::PoolDrift(a, b));
}

TEST_F(OperatorObjectsTest, SpecsTheSchemaCannotRejectAreInvalidArgumentsWithAClearMessage) {
  Json p = fast_;
  p["spec"]["redundancy"] = {{"replicated", {{"size", 3}}},
                             {"erasureCoded", {{"dataChunks", 4}, {"codingChunks", 2}}}};
  auto r = op::ParsePoolSpec(p);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::INVALID_ARGUMENT);
  EXPECT_NE(r.status().message().find("exactly one of replicated and erasureCoded"),
            std::string::npos);
  p = fast_;
  p["spec"]["thresholds"] = {{"nearlyFullRatio", 0.97}, {"fullRatio", 0.9}};
  r = op::ParsePoolSpec(p);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nearlyFullRatio"), std::string::npos);
  p = fast_;
  p["spec"]["datanodes"]["storage"] = {{"devices", {"/dev/nvme1n1"}}};
  r = op::ParsePoolSpec(p);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("raw devices are not supported"), std::string::npos);
  Json c = cluster_;
  c["spec"]["metanode"]["replicas"] = 4;  // written past the schema: an even group
  EXPECT_EQ(op::ParseClusterSpec(c).status().message(),
            "spec.metanode.replicas: must be 1, 3 or 5");
  Json b = bucket_;
  b["spec"]["bucketName"] = "Not_Valid";
  EXPECT_EQ(op::ParseBucketSpec(b).status().code(), Code::INVALID_ARGUMENT);
}

// ---------------------------------------------------------------- CRD schemas

class CrdSchemaTest : public ::testing::Test {
 protected:
  static Json SchemaOf(const std::string& file) {
    auto docs = LoadYamlFile(kSource + "/crds/" + file);
    EXPECT_EQ(docs.size(), 1u);
    return docs.at(0)["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
  }
  static std::vector<std::string> Check(const Json& schema, const Json& object) {
    std::vector<std::string> errors;
    Validate(schema["properties"]["spec"], object.value("spec", Json()), ".spec", errors);
    if (object.contains("metadata") && object["metadata"].contains("name") &&
        schema["properties"]["metadata"].contains("properties"))
      Validate(schema["properties"]["metadata"]["properties"]["name"], object["metadata"]["name"],
               ".metadata.name", errors);
    return errors;
  }
  static std::string Join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& e : v) s += e + "\n";
    return s;
  }
};

TEST_F(CrdSchemaTest, SchemasAreStructuralWithStatusSubresourceAndPrinterColumns) {
  for (const char* f : {"storagecluster.yaml", "storagepool.yaml", "bucket.yaml"}) {
    auto crd = LoadYamlFile(kSource + "/crds/" + f).at(0);
    EXPECT_EQ(crd["spec"]["group"], "granary.io");
    auto& v = crd["spec"]["versions"][0];
    EXPECT_EQ(v["name"], "v1alpha1");
    EXPECT_TRUE(v["subresources"].contains("status")) << f;
    EXPECT_GE(v["additionalPrinterColumns"].size(), 3u) << f;
    std::vector<std::string> errors;
    CheckStructural(v["schema"]["openAPIV3Schema"], f, errors);
    EXPECT_TRUE(errors.empty()) << Join(errors);
  }
  EXPECT_EQ(LoadYamlFile(kSource + "/crds/storagepool.yaml").at(0)["spec"]["scope"], "Cluster");
}

TEST_F(CrdSchemaTest, EverySampleIsAccepted) {
  struct Case {
    const char* crd;
    const char* sample;
  };
  for (auto c :
       {Case{"storagecluster.yaml", "10-storagecluster.yaml"},
        Case{"storagepool.yaml", "20-storagepool-replicated.yaml"},
        Case{"storagepool.yaml", "21-storagepool-ec.yaml"}, Case{"bucket.yaml", "30-bucket.yaml"},
        Case{"storagecluster.yaml", "single-node/10-storagecluster.yaml"},
        Case{"storagepool.yaml", "single-node/20-storagepool.yaml"},
        Case{"bucket.yaml", "single-node/30-bucket.yaml"}}) {
    auto errors = Check(SchemaOf(c.crd), Sample(c.sample));
    EXPECT_TRUE(errors.empty()) << c.sample << ":\n" << Join(errors);
  }
  Json named = Sample("10-storagecluster.yaml");
  named["spec"]["metanode"]["storage"]["storageClassName"] = "local-nvme";
  EXPECT_TRUE(Check(SchemaOf("storagecluster.yaml"), named).empty());
  named["spec"]["metanode"]["storage"]["storageClassName"] = "";
  EXPECT_NE(Join(Check(SchemaOf("storagecluster.yaml"), named)).find("storageClassName"),
            std::string::npos);
}

// Every sample set (deploy/samples/ and its single-node variant) is the same kind of objects,
// all validated above, and the single-node pool is one a single datanode can place.
TEST_F(CrdSchemaTest, TheSingleNodeSamplesArePlaceableOnOneNode) {
  auto pool = op::ParsePoolSpec(Sample("single-node/20-storagepool.yaml"));
  ASSERT_TRUE(pool.ok()) << pool.status().ToString();
  EXPECT_TRUE(pool->replicated);
  EXPECT_EQ(pool->size, 1);
  EXPECT_TRUE(pool->node_selector.empty()) << "no node label to set on a dev box";
  auto bucket = op::ParseBucketSpec(Sample("single-node/30-bucket.yaml"));
  ASSERT_TRUE(bucket.ok());
  EXPECT_EQ(bucket->pool, "local");
  auto training = LoadYamlFile(kSource + "/deploy/samples/single-node/40-training.yaml");
  ASSERT_EQ(training.size(), 2u);
  EXPECT_EQ(training[0]["spec"]["storageClassName"], "granary-local");
  auto production = LoadYamlFile(kSource + "/deploy/samples/40-training.yaml");
  EXPECT_EQ(training[1]["spec"], production[1]["spec"]) << "the same training pod";
}

TEST_F(CrdSchemaTest, InvalidStoragePoolsAreRejected) {
  Json schema = SchemaOf("storagepool.yaml");
  Json base = Sample("20-storagepool-replicated.yaml");
  struct Case {
    const char* what;
    std::function<void(Json&)> edit;
    const char* expect;
  };
  std::vector<Case> cases = {
      {"both redundancies",
       [](Json& p) {
         p["spec"]["redundancy"]["erasureCoded"] = {{"dataChunks", 4}, {"codingChunks", 2}};
       },
       ".spec.redundancy: must match exactly one of oneOf, matched 2"},
      {"no redundancy", [](Json& p) { p["spec"]["redundancy"] = Json::object(); },
       ".spec.redundancy: must match exactly one of oneOf, matched 0"},
      {"replicated size 0", [](Json& p) { p["spec"]["redundancy"]["replicated"]["size"] = 0; },
       ".spec.redundancy.replicated.size: must be >= 1"},
      {"size as a string", [](Json& p) { p["spec"]["redundancy"]["replicated"]["size"] = "3"; },
       ".spec.redundancy.replicated.size: must be an integer"},
      {"ec without codingChunks",
       [](Json& p) {
         p["spec"]["redundancy"] = {{"erasureCoded", {{"dataChunks", 4}}}};
       },
       ".spec.redundancy.erasureCoded: required field codingChunks"},
      {"unknown failure domain", [](Json& p) { p["spec"]["failureDomain"] = "region"; },
       ".spec.failureDomain: unsupported value \"region\""},
      {"unknown locality", [](Json& p) { p["spec"]["locality"]["mode"] = "nearest"; },
       ".spec.locality.mode: unsupported value"},
      {"relative hostPath", [](Json& p) { p["spec"]["datanodes"]["storage"]["hostPath"] = "data"; },
       ".spec.datanodes.storage.hostPath: does not match"},
      {"fullRatio above 1", [](Json& p) { p["spec"]["thresholds"]["fullRatio"] = 1.5; },
       ".spec.thresholds.fullRatio: must be <= 1"},
      {"no clusterRef", [](Json& p) { p["spec"].erase("clusterRef"); },
       ".spec: required field clusterRef"},
      {"typo", [](Json& p) { p["spec"]["redundnacy"] = 1; }, ".spec: unknown field redundnacy"},
      {"bad name", [](Json& p) { p["metadata"]["name"] = "Fast_Pool"; },
       ".metadata.name: does not match"},
  };
  for (const auto& c : cases) {
    Json p = base;
    c.edit(p);
    auto errors = Check(schema, p);
    std::string all = Join(errors);
    EXPECT_NE(all.find(c.expect), std::string::npos) << c.what << ": got\n" << all;
  }
  Json cluster = Sample("10-storagecluster.yaml");
  cluster["spec"]["metanode"]["replicas"] = 2;  // a group of 2 survives nothing more than 1
  EXPECT_NE(Join(Check(SchemaOf("storagecluster.yaml"), cluster))
                .find(".spec.metanode.replicas: unsupported value 2, allowed [1,3,5]"),
            std::string::npos)
      << Join(Check(SchemaOf("storagecluster.yaml"), cluster));
}

}  // namespace
}  // namespace granary::testing

namespace granary::testing {
namespace {

TEST(OperatorApplyTest, ChildrenAreRewrittenOnlyWhenTheOperatorOrSomeoneElseChangedThem) {
  Json desired = Json::parse(R"({
    "apiVersion": "apps/v1", "kind": "DaemonSet",
    "metadata": {"name": "dn", "namespace": "g", "labels": {"a": "1"}},
    "spec": {"template": {"spec": {"nodeSelector": {"disk": "nvme"},
                                   "containers": [{"name": "dn", "image": "granary:1"}]}}}})");
  Json want = operators::WithDesiredHash(desired);
  // As a real API server stores it: defaults filled in everywhere, its own metadata.
  Json live = want;
  live["metadata"]["resourceVersion"] = "7";
  live["metadata"]["uid"] = "u";
  live["spec"]["revisionHistoryLimit"] = 10;
  live["spec"]["template"]["spec"]["dnsPolicy"] = "ClusterFirst";
  live["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] =
      "/dev/termination-log";
  live["status"] = {{"numberReady", 1}};
  Json merged = live;
  operators::MergeChild(merged, want);
  EXPECT_EQ(merged, live) << "server defaults alone never cause a write";

  Json edited = live;  // someone changed the image by hand
  edited["spec"]["template"]["spec"]["containers"][0]["image"] = "granary:0";
  merged = edited;
  operators::MergeChild(merged, want);
  EXPECT_EQ(merged["spec"]["template"]["spec"]["containers"][0]["image"], "granary:1");

  Json fewer = desired;  // the operator stopped setting a field: it must disappear
  fewer["spec"]["template"]["spec"].erase("nodeSelector");
  merged = live;
  operators::MergeChild(merged, operators::WithDesiredHash(fewer));
  EXPECT_FALSE(merged["spec"]["template"]["spec"].contains("nodeSelector"));
  EXPECT_EQ(merged["metadata"]["resourceVersion"], "7") << "the update carries the live version";
}

}  // namespace

TEST(OperatorDecisionsTest, MetadataQuorumFollowsTheLeadersViewOfTheGroup) {
  EXPECT_EQ(op::MetadataQuorumOf(nullptr, 1, 3).reason, "NoLeader");
  granary::MetaGroupStatus g;
  g.set_replicated(true);
  g.set_leader_id(2);
  g.set_term(7);
  for (uint64_t id : {1, 2, 3}) {
    auto* m = g.add_members();
    m->set_id(id);
    m->set_voter(true);
  }
  auto all = op::MetadataQuorumOf(&g, 3, 3);
  EXPECT_EQ(all.status, "True");
  EXPECT_EQ(all.reason, "AllMembersUp");
  EXPECT_EQ(all.message, "leader 2, 3 of 3 members answer, term 7");
  EXPECT_EQ(op::MetadataQuorumOf(&g, 2, 3).reason, "Degraded");
  EXPECT_EQ(op::MetadataQuorumOf(&g, 1, 3).status, "False");
  granary::MetaGroupStatus alone;
  EXPECT_EQ(op::MetadataQuorumOf(&alone, 1, 1).reason, "Standalone");
}

TEST(OperatorDecisionsTest, MembershipGrowsFirstAndOneStepAtATime) {
  granary::MetaGroupStatus g;
  g.set_replicated(true);
  g.add_members()->set_id(1);
  auto step = op::NextMembershipStep(g, 3);
  EXPECT_EQ(step.kind, op::MembershipStep::kAdd);
  EXPECT_EQ(step.id, 2u);
  g.add_members()->set_id(2);
  g.add_members()->set_id(3);
  EXPECT_EQ(op::NextMembershipStep(g, 3).kind, op::MembershipStep::kNone);
  step = op::NextMembershipStep(g, 1);
  EXPECT_EQ(step.kind, op::MembershipStep::kRemove);
  EXPECT_EQ(step.id, 2u);
}

// ------------------------------------------------------------------ locality (docs/locality.md)

Json LocalitySample(const std::string& file, size_t index = 0) {
  auto docs = LoadYamlFile(kSource + "/deploy/samples/locality/" + file);
  EXPECT_GT(docs.size(), index) << file;
  return docs.at(index);
}

TEST(OperatorLocalityTest, PreferredTermsFavourTheHostsHoldingMostDataNeverRequired) {
  // 10 GiB logical; node-b holds all of it, node-a 40 %, node-c 5 %, node-d a sliver, "-" none.
  const uint64_t total = 10ull << 30;
  std::vector<op::HostShare> shares = {{"node-a", 4ull << 30}, {"node-b", total},
                                       {"node-c", total / 20}, {"node-d", 1000},
                                       {"-", total},           {"node-e", 0}};
  Json terms = op::LocalityPreferredTerms(shares, total);
  ASSERT_EQ(terms.size(), op::kMaxLocalityTerms);
  EXPECT_EQ(terms[0]["weight"], 100);
  EXPECT_EQ(terms[0]["preference"]["matchFields"][0],
            (Json{{"key", "metadata.name"}, {"operator", "In"}, {"values", {"node-b"}}}));
  EXPECT_EQ(terms[1]["weight"], 40);
  EXPECT_EQ(terms[2]["weight"], 5);
  EXPECT_EQ(op::LocalitySummary(shares, total), "node-b=100%,node-a=40%,node-c=5%");
  EXPECT_TRUE(op::LocalityPreferredTerms({}, 0).empty());
  // A sliver still counts as a preference (weights are 1..100).
  EXPECT_EQ(op::LocalityPreferredTerms({{"node-d", 1}}, total)[0]["weight"], 1);
}

TEST(OperatorLocalityTest, TheTrainingSampleIsReleasedWithAHintAndKeepsItsOwnAffinity) {
  Json pod = LocalitySample("30-training.yaml");
  ASSERT_TRUE(op::HasLocalityGate(pod));
  EXPECT_EQ(pod["metadata"]["labels"][op::kLocalityLabel], "true");
  pod["spec"]["schedulingGates"].push_back({{"name", "example.com/quota"}});
  Json own = {{"weight", 7},
              {"preference",
               {{"matchExpressions",
                 Json::array({{{"key", "zone"}, {"operator", "In"}, {"values", {"a"}}}})}}}};
  pod["spec"]["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] =
      Json::array({own});
  const uint64_t total = 1000;
  std::vector<op::HostShare> shares = {{"gpu-1", 1000}, {"gpu-2", 620}};
  Json terms = op::LocalityPreferredTerms(shares, total);
  ASSERT_TRUE(op::ReleaseWithHint(pod, terms, op::LocalitySummary(shares, total)));
  EXPECT_FALSE(op::HasLocalityGate(pod));
  ASSERT_EQ(pod["spec"]["schedulingGates"].size(), 1u) << "other gates stay";
  auto& preferred =
      pod["spec"]["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"];
  ASSERT_EQ(preferred.size(), 3u);
  EXPECT_EQ(preferred[0], own) << "the pod's own preference is kept first";
  EXPECT_FALSE(pod["spec"]["affinity"]["nodeAffinity"].contains(
      "requiredDuringSchedulingIgnoredDuringExecution"))
      << "locality never constrains where a pod may run";
  EXPECT_EQ(pod["metadata"]["annotations"][op::kLocalityAnnotation], "gpu-1=100%,gpu-2=62%");
  EXPECT_FALSE(op::ReleaseWithHint(pod, terms, op::LocalitySummary(shares, total)))
      << "releasing twice changes nothing";
  pod["spec"]["schedulingGates"] = Json::array({{{"name", op::kLocalityGate}}});
  ASSERT_TRUE(op::ReleaseWithHint(pod, terms, op::LocalitySummary(shares, total)));
  EXPECT_FALSE(pod["spec"].contains("schedulingGates")) << "an empty gate list is removed";
  ExpectGolden("locality-training-pod", pod);
}

TEST(OperatorLocalityTest, DatasetWarmupSpecHostsAndStatus) {
  Json dw = LocalitySample("20-datasetwarmup.yaml");
  auto spec = op::ParseDatasetWarmupSpec(dw);
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->claim_name, "imagenet");
  EXPECT_EQ(spec->path, "/train");
  EXPECT_EQ(op::MetaWarmupName(dw), "ml/imagenet-gpu");
  auto node = [](const std::string& name, bool gpu) {
    Json n = {{"metadata", {{"name", name}, {"labels", Json::object()}}}};
    if (gpu) n["metadata"]["labels"]["nvidia.com/gpu.present"] = "true";
    return n;
  };
  std::vector<Json> nodes = {node("gpu-2", true), node("cpu-1", false), node("gpu-1", true)};
  EXPECT_EQ(op::WarmupHosts(*spec, nodes), (std::vector<std::string>{"gpu-1", "gpu-2"}));
  spec->nodes = {"cpu-1", "gpu-1"};
  EXPECT_EQ(op::WarmupHosts(*spec, nodes), (std::vector<std::string>{"cpu-1", "gpu-1", "gpu-2"}));
  Json bad = dw;
  bad["spec"].erase("nodeSelector");
  EXPECT_EQ(op::ParseDatasetWarmupSpec(bad).status().code(), Code::INVALID_ARGUMENT);
  bad["spec"].erase("claimName");
  EXPECT_EQ(op::ParseDatasetWarmupSpec(bad).status().code(), Code::INVALID_ARGUMENT);

  granary::Warmup w;
  w.set_name("ml/imagenet-gpu");
  w.set_volume("pvc-1");
  w.set_path("/train");
  w.add_hosts("gpu-1");
  w.set_state(granary::WARMUP_COPYING);
  w.set_bytes(4000);
  w.set_done_bytes(1000);
  auto* h = w.add_host_progress();
  h->set_host("gpu-1");
  h->set_bytes(4000);
  h->set_local_bytes(600);
  h->set_warm_bytes(400);
  op::WarmupStatus st = op::WarmupStatusOf(w);
  EXPECT_EQ(st.fields["phase"], "Copying");
  EXPECT_EQ(st.fields["progress"], "25.0%");
  EXPECT_EQ(st.fields["nodes"][0]["progress"], "25.0%");
  EXPECT_EQ(st.ready, "False");
  w.set_state(granary::WARMUP_STOPPED);
  w.set_message("host gpu-1: datanode 3 is out of space (ENOSPC)");
  st = op::WarmupStatusOf(w);
  EXPECT_EQ(st.fields["phase"], "Stopped");
  EXPECT_TRUE(st.stopped);
  EXPECT_EQ(st.message, w.message());
  w.set_state(granary::WARMUP_READY);
  EXPECT_EQ(op::WarmupStatusOf(w).ready, "True");
}

TEST(OperatorLocalityTest, LocalitySamplesMatchTheirSchemas) {
  auto schema = LoadYamlFile(kSource + "/crds/datasetwarmup.yaml")
                    .at(0)["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
  std::vector<std::string> errors;
  CheckStructural(schema, "datasetwarmup.yaml", errors);
  Json dw = LocalitySample("20-datasetwarmup.yaml");
  Validate(schema["properties"]["spec"], dw["spec"], ".spec", errors);
  Json bad = dw;
  bad["spec"]["nodez"] = "x";
  std::vector<std::string> bad_errors;
  Validate(schema["properties"]["spec"], bad["spec"], ".spec", bad_errors);
  EXPECT_FALSE(bad_errors.empty()) << "a typo in the spec is caught";
  std::string all;
  for (const auto& e : errors) all += e + "\n";
  EXPECT_TRUE(errors.empty()) << all;
  EXPECT_EQ(LoadYamlFile(kSource + "/crds/datasetwarmup.yaml"),
            LoadYamlFile(kSource + "/charts/granary/crds/datasetwarmup.yaml"))
      << "the chart ships the same CRD";
  EXPECT_EQ(LocalitySample("10-dataset.yaml")["spec"]["storageClassName"], "granary-fast");
}

}  // namespace granary::testing
