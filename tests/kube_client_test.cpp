// The Kubernetes client against the strict API test server: CRUD, conflicts, error decoding,
// selectors and pagination, the status subresource, finalizers, watches, the reflector's resume
// and relist, and both ways of finding the server (kubeconfig, in-cluster).
#include <cpprest/asyncrt_utils.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>

#include "operator/kube/config.h"
#include "operator/kube/reflector.h"
#include "tests/harness/test_support.h"
#include "tests/kube_test_support.h"

namespace granary::testing {
namespace {

namespace res = kube::resources;
using kube::WatchEvent;

Json Pod(const std::string& name, Json labels = Json::object()) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"namespace", "default"}, {"labels", labels}}},
          {"spec", {{"containers", Json::array({{{"name", "c"}, {"image", "busybox"}}})}}}};
}

using KubeClientTest = KubeApiTest;

TEST_F(KubeClientTest, CreateGetUpdateDeleteRoundTrip) {
  auto created = client_->Create(res::kConfigMaps, ConfigMap("cfg", {{"a", "1"}}));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_FALSE(kube::ResourceVersionOf(*created).empty());
  EXPECT_FALSE(kube::UidOf(*created).empty());

  auto got = client_->Get(res::kConfigMaps, "default", "cfg");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)["data"]["a"], "1");

  (*got)["data"]["a"] = "2";
  auto updated = client_->Update(res::kConfigMaps, *got);
  ASSERT_TRUE(updated.ok()) << updated.status().ToString();
  EXPECT_EQ((*updated)["data"]["a"], "2");
  EXPECT_NE(kube::ResourceVersionOf(*updated), kube::ResourceVersionOf(*got));

  auto patched = client_->MergePatch(res::kConfigMaps, "default", "cfg", {{"data", {{"b", "3"}}}});
  ASSERT_TRUE(patched.ok()) << patched.status().ToString();
  EXPECT_EQ((*patched)["data"], Json({{"a", "2"}, {"b", "3"}}));

  ASSERT_TRUE(client_->Delete(res::kConfigMaps, "default", "cfg").ok());
  EXPECT_EQ(client_->Get(res::kConfigMaps, "default", "cfg").status().code(), Code::NOT_FOUND);
}

TEST_F(KubeClientTest, StaleUpdateIsAConflictAndModifyRereadsAndRetries) {
  auto created = client_->Create(res::kConfigMaps, ConfigMap("cfg", {{"n", "0"}}));
  ASSERT_TRUE(created.ok());
  Json stale = *created;
  ASSERT_TRUE(
      client_->MergePatch(res::kConfigMaps, "default", "cfg", {{"data", {{"n", "1"}}}}).ok());
  stale["data"]["n"] = "9";
  auto conflict = client_->Update(res::kConfigMaps, stale);
  EXPECT_EQ(conflict.status().code(), Code::STALE_GENERATION);
  EXPECT_NE(conflict.status().message().find("Conflict (HTTP 409)"), std::string::npos)
      << conflict.status().message();
  EXPECT_NE(conflict.status().message().find("the object has been modified"), std::string::npos);

  // A competing writer gets in between the first read and write: Modify re-reads and wins on the
  // second attempt, on top of the competitor's change.
  int calls = 0;
  auto modified = client_->Modify(res::kConfigMaps, "default", "cfg", [&](Json& o) {
    if (calls++ == 0) {
      EXPECT_TRUE(
          client_->MergePatch(res::kConfigMaps, "default", "cfg", {{"data", {{"other", "x"}}}})
              .ok());
    }
    o["data"]["n"] = "2";
    return Status::Ok();
  });
  ASSERT_TRUE(modified.ok()) << modified.status().ToString();
  EXPECT_EQ(calls, 2);
  EXPECT_EQ((*modified)["data"], Json({{"n", "2"}, {"other", "x"}}));
}

TEST_F(KubeClientTest, ApiErrorsDecodeToGranaryCodesWithReasonAndMessage) {
  auto missing = client_->Get(res::kPods, "default", "nope");
  EXPECT_EQ(missing.status().code(), Code::NOT_FOUND);
  EXPECT_NE(missing.status().message().find("NotFound (HTTP 404): pods \"nope\" not found"),
            std::string::npos)
      << missing.status().message();

  ASSERT_TRUE(client_->Create(res::kPods, Pod("p")).ok());
  auto dup = client_->Create(res::kPods, Pod("p"));
  EXPECT_EQ(dup.status().code(), Code::ALREADY_EXISTS);
  EXPECT_NE(dup.status().message().find("AlreadyExists"), std::string::npos);

  Json nameless = Pod("");
  auto invalid = client_->Create(res::kPods, nameless);
  EXPECT_EQ(invalid.status().code(), Code::INVALID_ARGUMENT);
  EXPECT_NE(invalid.status().message().find("metadata.name: Required value"), std::string::npos);

  Json unversioned = Pod("p");
  auto no_rv = client_->Update(res::kPods, unversioned);
  EXPECT_EQ(no_rv.status().code(), Code::INVALID_ARGUMENT);

  auto intruder = NewClient("wrong-token");
  EXPECT_EQ(intruder->Get(res::kPods, "default", "p").status().code(), Code::PERMISSION_DENIED);

  kube::Config nowhere;
  nowhere.server = "http://127.0.0.1:1";
  auto refused = kube::Client::Create(nowhere);
  ASSERT_TRUE(refused.ok());
  EXPECT_EQ((*refused)->Get(res::kPods, "default", "p").status().code(), Code::UNAVAILABLE);

  EXPECT_EQ(kube::CodeFromApi(429, "TooManyRequests"), Code::UNAVAILABLE);
  EXPECT_EQ(kube::CodeFromApi(410, "Expired"), Code::STALE_EPOCH);
  EXPECT_EQ(kube::StatusFromApi(502, "<html>bad gateway</html>").code(), Code::UNAVAILABLE);
}

TEST_F(KubeClientTest, GenerationCountsSpecChangesOnlyAndStatusIsASubresource) {
  Json cluster = {{"apiVersion", "granary.io/v1alpha1"},
                  {"kind", "StorageCluster"},
                  {"metadata", {{"name", "sc"}, {"namespace", "default"}}},
                  {"spec", {{"datanodes", 3}}},
                  {"status", {{"phase", "ignored on create"}}}};
  auto created = client_->Create(res::kStorageClusters, cluster);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ(kube::GenerationOf(*created), 1);
  EXPECT_FALSE(created->contains("status"));

  auto labelled = client_->MergePatch(res::kStorageClusters, "default", "sc",
                                      {{"metadata", {{"labels", {{"a", "b"}}}}}});
  ASSERT_TRUE(labelled.ok());
  EXPECT_EQ(kube::GenerationOf(*labelled), 1);

  auto status =
      client_->MergePatch(res::kStorageClusters, "default", "sc",
                          {{"status", {{"phase", "Ready"}}}, {"spec", {{"datanodes", 9}}}},
                          /*status=*/true);
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_EQ(kube::GenerationOf(*status), 1);
  EXPECT_EQ((*status)["status"]["phase"], "Ready");
  EXPECT_EQ((*status)["spec"]["datanodes"], 3) << "the status subresource ignores spec";

  Json next = *status;
  next["spec"]["datanodes"] = 5;
  next["status"]["phase"] = "overwritten?";
  auto respec = client_->Update(res::kStorageClusters, next);
  ASSERT_TRUE(respec.ok());
  EXPECT_EQ(kube::GenerationOf(*respec), 2);
  EXPECT_EQ((*respec)["status"]["phase"], "Ready") << "the main resource ignores status";
}

TEST_F(KubeClientTest, DeleteWithFinalizersOnlyMarksUntilTheyAreRemoved) {
  Json pool = {{"apiVersion", "granary.io/v1alpha1"},
               {"kind", "StoragePool"},
               {"metadata", {{"name", "fast"}, {"finalizers", {"granary.io/pool"}}}},
               {"spec", {{"media", "nvme"}}}};
  ASSERT_TRUE(client_->Create(res::kStoragePools, pool).ok());
  ASSERT_TRUE(client_->Delete(res::kStoragePools, "", "fast").ok());
  auto marked = client_->Get(res::kStoragePools, "", "fast");
  ASSERT_TRUE(marked.ok()) << "a finalizer keeps the object";
  EXPECT_TRUE((*marked)["metadata"].contains("deletionTimestamp"));

  Json more = *marked;
  more["metadata"]["finalizers"].push_back("late/finalizer");
  EXPECT_EQ(client_->Update(res::kStoragePools, more).status().code(), Code::INVALID_ARGUMENT);

  auto released = client_->MergePatch(res::kStoragePools, "", "fast",
                                      {{"metadata", {{"finalizers", nullptr}}}});
  ASSERT_TRUE(released.ok()) << released.status().ToString();
  EXPECT_EQ(client_->Get(res::kStoragePools, "", "fast").status().code(), Code::NOT_FOUND);
}

TEST_F(KubeClientTest, OwnedObjectsGoWithTheirOwnerUnlessOrphaned) {
  auto owner = client_->Create(res::kConfigMaps, ConfigMap("owner"));
  ASSERT_TRUE(owner.ok());
  Json child = ConfigMap("child");
  child["metadata"]["ownerReferences"] = {{{"apiVersion", "v1"},
                                           {"kind", "ConfigMap"},
                                           {"name", "owner"},
                                           {"uid", kube::UidOf(*owner)},
                                           {"controller", true}}};
  ASSERT_TRUE(client_->Create(res::kConfigMaps, child).ok());
  ASSERT_TRUE(client_->Delete(res::kConfigMaps, "default", "owner", {"Background", ""}).ok());
  EXPECT_EQ(client_->Get(res::kConfigMaps, "default", "child").status().code(), Code::NOT_FOUND);
}

TEST_F(KubeClientTest, ListFollowsContinueAndFiltersBySelectors) {
  for (int i = 0; i < 7; ++i) {
    Json labels = {{"app", "granary"}, {"tier", i % 2 ? "meta" : "data"}};
    ASSERT_TRUE(client_->Create(res::kPods, Pod("p" + std::to_string(i), labels)).ok());
  }
  ASSERT_TRUE(client_->Create(res::kPods, Pod("other", {{"app", "else"}})).ok());
  uint64_t before = client_->requests();
  auto all = client_->List(res::kPods, "default", {.label_selector = "app=granary", .limit = 2});
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->items.size(), 7u);
  EXPECT_EQ(client_->requests() - before, 4u) << "7 items in pages of 2";
  EXPECT_EQ(all->items[0]["kind"], "Pod");

  auto meta = client_->List(res::kPods, "", {.label_selector = "app=granary,tier in (meta)"});
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(meta->items.size(), 3u);
  auto not_data = client_->List(res::kPods, "default", {.label_selector = "tier!=data"});
  ASSERT_TRUE(not_data.ok());
  EXPECT_EQ(not_data->items.size(), 4u);  // three meta pods and "other" without a tier
  auto by_name = client_->List(res::kPods, "default", {.field_selector = "metadata.name=p3"});
  ASSERT_TRUE(by_name.ok());
  ASSERT_EQ(by_name->items.size(), 1u);
  EXPECT_EQ(kube::NameOf(by_name->items[0]), "p3");
  auto elsewhere = client_->List(res::kPods, "kube-system");
  ASSERT_TRUE(elsewhere.ok());
  EXPECT_TRUE(elsewhere->items.empty());
  EXPECT_EQ(client_->List(res::kPods, "default", {.label_selector = "tier in (x"}).status().code(),
            Code::INVALID_ARGUMENT);
}

TEST_F(KubeClientTest, ContinueTokenExpiresAfterCompaction) {
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(client_->Create(res::kPods, Pod("p" + std::to_string(i))).ok());
  kubeapi::ServerOptions open;  // a second server without a token for raw HTTP
  auto raw = kubeapi::KubeApiServer::Start(open);
  ASSERT_TRUE(raw.ok());
  kube::Config c;
  c.server = (*raw)->url();
  auto rc = kube::Client::Create(c);
  ASSERT_TRUE(rc.ok());
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE((*rc)->Create(res::kPods, Pod("p" + std::to_string(i))).ok());
  std::string addr = (*raw)->url().substr(7);
  auto [code, body] = HttpGet(addr, "/api/v1/namespaces/default/pods?limit=1");
  ASSERT_EQ(code, 200);
  std::string token = Json::parse(body)["metadata"]["continue"];
  (*raw)->Compact();
  auto [gone, status] = HttpGet(addr, "/api/v1/namespaces/default/pods?limit=1&continue=" + token);
  EXPECT_EQ(gone, 410);
  EXPECT_EQ(Json::parse(status)["reason"], "Expired");
  // Garbage is a 400, and the server lives on.
  EXPECT_EQ(HttpGet(addr, "/api/v1/namespaces/default/pods?limit=abc").first, 400);
  EXPECT_EQ(HttpGet(addr, "/api/v1/namespaces/default/pods?continue=x/y%zz").first, 400);
  EXPECT_EQ(HttpGet(addr, "/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=x").first, -1);
  EXPECT_EQ(HttpGet(addr, "/api/v1/namespaces/default/pods").first, 200);
}

TEST_F(KubeClientTest, WatchStreamsChangesInOrderWithBookmarks) {
  auto list = client_->List(res::kConfigMaps, "default");
  ASSERT_TRUE(list.ok());
  auto watch =
      client_->Watch(res::kConfigMaps, "default", {.resource_version = list->resource_version});
  ASSERT_TRUE(watch.ok()) << watch.status().ToString();
  ASSERT_TRUE(client_->Create(res::kConfigMaps, ConfigMap("w", {{"v", "1"}})).ok());
  ASSERT_TRUE(client_->MergePatch(res::kConfigMaps, "default", "w", {{"data", {{"v", "2"}}}}).ok());
  ASSERT_TRUE(client_->Delete(res::kConfigMaps, "default", "w").ok());
  std::vector<WatchEvent::Type> types;
  std::string last_rv;
  while (types.size() < 3) {
    auto e = (*watch)->Next();
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    ASSERT_TRUE(e->has_value());
    if ((*e)->type == WatchEvent::Type::kBookmark) continue;
    types.push_back((*e)->type);
    last_rv = kube::ResourceVersionOf((*e)->object);
  }
  EXPECT_EQ(types,
            (std::vector<WatchEvent::Type>{WatchEvent::Type::kAdded, WatchEvent::Type::kModified,
                                           WatchEvent::Type::kDeleted}));
  server_->SendBookmarks();
  auto bookmark = (*watch)->Next();
  ASSERT_TRUE(bookmark.ok() && bookmark->has_value());
  EXPECT_EQ((*bookmark)->type, WatchEvent::Type::kBookmark);
  EXPECT_EQ(kube::ResourceVersionOf((*bookmark)->object), last_rv);
}

TEST_F(KubeClientTest, WatchFromACompactedVersionIsGone) {
  ASSERT_TRUE(client_->Create(res::kConfigMaps, ConfigMap("a")).ok());
  auto list = client_->List(res::kConfigMaps, "default");
  ASSERT_TRUE(list.ok());
  auto open =
      client_->Watch(res::kConfigMaps, "default", {.resource_version = list->resource_version});
  ASSERT_TRUE(open.ok());
  server_->Compact();
  auto expired = (*open)->Next();
  EXPECT_EQ(expired.status().code(), Code::STALE_EPOCH) << expired.status().ToString();
  auto late =
      client_->Watch(res::kConfigMaps, "default", {.resource_version = list->resource_version});
  EXPECT_EQ(late.status().code(), Code::STALE_EPOCH);
}

TEST_F(KubeClientTest, CancelUnblocksAWaitingWatch) {
  auto watch = client_->Watch(res::kConfigMaps, "default",
                              {.allow_bookmarks = false, .timeout_seconds = 60});
  ASSERT_TRUE(watch.ok());
  std::thread canceller([&] {
    ASSERT_TRUE(WaitUntil([&] { return server_->open_watches() == 1; }, seconds(10)));
    (*watch)->Cancel();
  });
  auto start = std::chrono::steady_clock::now();
  auto e = (*watch)->Next();
  canceller.join();
  EXPECT_FALSE(e.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - start, seconds(10));
}

// The reflector: a list, then a watch that survives cuts (resuming, no relist) and a
// compaction (relist), ending with the same state as the server.
class ReflectorTest : public KubeApiTest {
 protected:
  void StartReflector() {
    kube::ReflectorOptions o;
    o.ns = "default";
    o.backoff_initial = milliseconds(20);
    reflector_ = std::make_unique<kube::Reflector>(
        *client_, res::kConfigMaps, o,
        kube::Reflector::Sink{[this](std::vector<Json> items, const std::string&) {
                                std::lock_guard lock(mu_);
                                state_.clear();
                                for (auto& i : items) state_[kube::NameOf(i)] = i["data"];
                              },
                              [this](const kube::WatchEvent& e) {
                                std::lock_guard lock(mu_);
                                if (e.type == WatchEvent::Type::kDeleted) {
                                  state_.erase(kube::NameOf(e.object));
                                } else {
                                  state_[kube::NameOf(e.object)] = e.object["data"];
                                }
                              }});
    reflector_->Start();
  }
  void TearDown() override {
    reflector_.reset();
    KubeApiTest::TearDown();
  }
  bool Converged() {
    auto list = client_->List(res::kConfigMaps, "default");
    if (!list.ok()) return false;
    std::map<std::string, Json> truth;
    for (auto& i : list->items) truth[kube::NameOf(i)] = i["data"];
    std::lock_guard lock(mu_);
    return truth == state_;
  }

  std::mutex mu_;
  std::map<std::string, Json> state_;
  std::unique_ptr<kube::Reflector> reflector_;
};

TEST_F(ReflectorTest, ACutWatchResumesFromTheLastVersionWithoutRelisting) {
  ASSERT_TRUE(client_->Create(res::kConfigMaps, ConfigMap("a", {{"v", "1"}})).ok());
  StartReflector();
  ASSERT_TRUE(WaitUntil([&] { return Converged() && server_->open_watches() == 1; }, seconds(10)));
  for (int round = 0; round < 3; ++round) {
    uint64_t watches = reflector_->watches();
    server_->DropWatches();
    std::string name = "after-cut-" + std::to_string(round);
    ASSERT_TRUE(client_->Create(res::kConfigMaps, ConfigMap(name, {{"v", "x"}})).ok());
    ASSERT_TRUE(
        WaitUntil([&] { return reflector_->watches() > watches && Converged(); }, seconds(10)));
  }
  ASSERT_TRUE(client_->Delete(res::kConfigMaps, "default", "a").ok());
  ASSERT_TRUE(WaitUntil([&] { return Converged(); }, seconds(10)));
  EXPECT_EQ(reflector_->lists(), 1u) << "a resumable watch never relists";
}

TEST_F(ReflectorTest, CompactionForcesARelistThatConverges) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(client_->Create(res::kConfigMaps, ConfigMap("c" + std::to_string(i))).ok());
  }
  StartReflector();
  ASSERT_TRUE(WaitUntil([&] { return Converged() && server_->open_watches() == 1; }, seconds(10)));
  // Changes the reflector cannot see as events: the watch is cut first, the history compacted
  // while it is away, so its resume point is gone (410) and only a relist catches up.
  server_->DropWatches();
  server_->Compact();
  ASSERT_TRUE(client_->Delete(res::kConfigMaps, "default", "c0").ok());
  ASSERT_TRUE(client_->Create(res::kConfigMaps, ConfigMap("new", {{"k", "v"}})).ok());
  ASSERT_TRUE(WaitUntil([&] { return reflector_->lists() >= 2 && Converged(); }, seconds(10)));
  EXPECT_EQ(reflector_->last_error().code(), Code::STALE_EPOCH);
}

TEST(KubeConfigTest, KubeconfigReadsServerCaTokenAndClientCertificate) {
  TempDir dir;
  {
    std::ofstream(dir.path() / "ca.pem") << "CA-FROM-FILE";
    std::ofstream(dir.path() / "token") << "file-token\n";
    std::ofstream k(dir.path() / "config");
    k << "apiVersion: v1\nkind: Config\ncurrent-context: prod\n"
      << "clusters:\n"
      << "- name: prod\n  cluster:\n    server: https://10.0.0.1:6443/\n"
      << "    certificate-authority-data: Q0EtREFUQQ==\n"  // "CA-DATA"
      << "- name: lab\n  cluster:\n    server: https://lab:6443\n"
      << "    certificate-authority: ca.pem\n    insecure-skip-tls-verify: true\n"
      << "users:\n"
      << "- name: admin\n  user:\n    client-certificate-data: Q0VSVA==\n"  // "CERT"
      << "    client-key-data: S0VZ\n"                                      // "KEY"
      << "- name: robot\n  user:\n    tokenFile: " << (dir.path() / "token").string() << "\n"
      << "contexts:\n"
      << "- name: prod\n  context:\n    cluster: prod\n    user: admin\n    namespace: granary\n"
      << "- name: lab\n  context:\n    cluster: lab\n    user: robot\n";
  }
  std::string path = (dir.path() / "config").string();
  auto prod = kube::LoadKubeconfig(path);
  ASSERT_TRUE(prod.ok()) << prod.status().ToString();
  EXPECT_EQ(prod->server, "https://10.0.0.1:6443");
  EXPECT_EQ(prod->ca_pem, "CA-DATA");
  EXPECT_EQ(prod->client_cert_pem, "CERT");
  EXPECT_EQ(prod->client_key_pem, "KEY");
  EXPECT_EQ(prod->ns, "granary");
  EXPECT_FALSE(prod->insecure_skip_tls_verify);

  auto lab = kube::LoadKubeconfig(path, "lab");
  ASSERT_TRUE(lab.ok()) << lab.status().ToString();
  EXPECT_EQ(lab->ca_pem, "CA-FROM-FILE");
  EXPECT_TRUE(lab->insecure_skip_tls_verify);
  EXPECT_EQ(lab->token, "file-token");
  EXPECT_EQ(lab->ns, "default");

  EXPECT_EQ(kube::LoadKubeconfig(path, "nope").status().code(), Code::NOT_FOUND);
  EXPECT_EQ(kube::LoadKubeconfig((dir.path() / "absent").string()).status().code(),
            Code::INVALID_ARGUMENT);
}

TEST(KubeConfigTest, InClusterReadsTheServiceAccount) {
  TempDir sa;
  std::ofstream(sa.path() / "token") << "sa-token\n";
  std::ofstream(sa.path() / "ca.crt") << "CLUSTER-CA";
  std::ofstream(sa.path() / "namespace") << "granary-system";
  unsetenv("KUBERNETES_SERVICE_HOST");
  EXPECT_EQ(kube::InClusterConfig(sa.str()).status().code(), Code::PRECONDITION_FAILED);
  setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  auto c = kube::InClusterConfig(sa.str());
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->server, "https://[fd00::1]:443");
  EXPECT_EQ(c->token, "sa-token");
  EXPECT_EQ(c->ca_pem, "CLUSTER-CA");
  EXPECT_EQ(c->ns, "granary-system");
  EXPECT_EQ(c->token_file, sa.str() + "/token");
}

}  // namespace
}  // namespace granary::testing

namespace granary::testing {
namespace {

TEST_F(KubeClientTest, MarkReadyPlaysTheKubeletAndWorkloadControllers) {
  namespace res = kube::resources;
  Json ds = {{"apiVersion", "apps/v1"},
             {"kind", "DaemonSet"},
             {"metadata", {{"name", "datanode"}, {"namespace", "default"}}},
             {"spec", {{"template", Json::object()}}}};
  Json sts = {{"apiVersion", "apps/v1"},
              {"kind", "StatefulSet"},
              {"metadata", {{"name", "metanode"}, {"namespace", "default"}}},
              {"spec", {{"replicas", 1}}}};
  ASSERT_TRUE(client_->Create(res::kDaemonSets, ds).ok());
  ASSERT_TRUE(client_->Create(res::kStatefulSets, sts).ok());
  ASSERT_TRUE(client_->Create(res::kPods, Pod("p")).ok());
  ASSERT_TRUE(server_->MarkReady("apps", "daemonsets", "default", "datanode", 3).ok());
  ASSERT_TRUE(server_->MarkReady("apps", "statefulsets", "default", "metanode").ok());
  ASSERT_TRUE(server_->MarkReady("", "pods", "default", "p").ok());
  EXPECT_EQ(server_->MarkReady("", "pods", "default", "absent").code(), Code::NOT_FOUND);
  auto d = client_->Get(res::kDaemonSets, "default", "datanode");
  EXPECT_EQ((*d)["status"]["numberReady"], 3);
  EXPECT_EQ((*d)["status"]["desiredNumberScheduled"], 3);
  EXPECT_EQ((*d)["status"]["observedGeneration"], 1);
  auto s = client_->Get(res::kStatefulSets, "default", "metanode");
  EXPECT_EQ((*s)["status"]["readyReplicas"], 1);
  auto p = client_->Get(res::kPods, "default", "p");
  EXPECT_EQ((*p)["status"]["phase"], "Running");
  EXPECT_EQ((*p)["status"]["conditions"][0], Json({{"type", "Ready"}, {"status", "True"}}));
}

TEST_F(KubeClientTest, CustomResourceDefinitionsRegisterNewResources) {
  kube::Resource crds{"apiextensions.k8s.io", "v1", "customresourcedefinitions",
                      "CustomResourceDefinition", false};
  Json crd = {{"apiVersion", "apiextensions.k8s.io/v1"},
              {"kind", "CustomResourceDefinition"},
              {"metadata", {{"name", "widgets.example.com"}}},
              {"spec",
               {{"group", "example.com"},
                {"scope", "Cluster"},
                {"names", {{"plural", "widgets"}, {"kind", "Widget"}}},
                {"versions", {{{"name", "v1"}, {"subresources", {{"status", Json::object()}}}}}}}}};
  kube::Resource widgets{"example.com", "v1", "widgets", "Widget", false};
  EXPECT_EQ(client_->List(widgets, "").status().code(), Code::NOT_FOUND);
  ASSERT_TRUE(client_->Create(crds, crd).ok());
  Json w = {{"apiVersion", "example.com/v1"}, {"kind", "Widget"}, {"metadata", {{"name", "w"}}}};
  ASSERT_TRUE(client_->Create(widgets, w).ok());
  auto got = client_->Get(widgets, "", "w");
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(kube::GenerationOf(*got), 1);
}

}  // namespace
}  // namespace granary::testing

namespace granary::testing {
namespace {

TEST_F(KubeClientTest, ASelectorWatchSeesObjectsLeaveAndEnterTheSelection) {
  namespace res = kube::resources;
  ASSERT_TRUE(client_->Create(res::kConfigMaps, ConfigMap("m", {}, {{"role", "meta"}})).ok());
  kube::WatchOptions o;
  o.label_selector = "role=meta";
  auto watch = client_->Watch(res::kConfigMaps, "default", o);
  ASSERT_TRUE(watch.ok());
  auto next = [&]() -> std::pair<kube::WatchEvent::Type, std::string> {
    while (true) {
      auto e = (*watch)->Next();
      if (!e.ok() || !e->has_value()) return {kube::WatchEvent::Type::kBookmark, "end"};
      if ((*e)->type != kube::WatchEvent::Type::kBookmark) {
        return {(*e)->type, kube::NameOf((*e)->object)};
      }
    }
  };
  EXPECT_EQ(next(), std::pair(kube::WatchEvent::Type::kAdded, std::string("m")));
  ASSERT_TRUE(client_
                  ->MergePatch(res::kConfigMaps, "default", "m",
                               {{"metadata", {{"labels", {{"role", "data"}}}}}})
                  .ok());
  EXPECT_EQ(next(), std::pair(kube::WatchEvent::Type::kDeleted, std::string("m")));
  ASSERT_TRUE(client_->Create(res::kConfigMaps, ConfigMap("other", {}, {{"role", "data"}})).ok());
  ASSERT_TRUE(client_
                  ->MergePatch(res::kConfigMaps, "default", "m",
                               {{"metadata", {{"labels", {{"role", "meta"}}}}}})
                  .ok());
  EXPECT_EQ(next(), std::pair(kube::WatchEvent::Type::kAdded, std::string("m")));
}

}  // namespace
}  // namespace granary::testing

namespace granary::testing {
namespace {

namespace res = kube::resources;

std::string Slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A throwaway PKI made with the openssl CLI: a CA, a server certificate for 127.0.0.1, a client
// certificate, and an unrelated CA.
struct TestPki {
  TempDir dir;
  std::string ca, server_cert, server_key, client_cert, client_key, other_ca;

  bool Make() {
    std::string d = dir.str();
    std::string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    std::ofstream(dir.path() / "san.ext") << "subjectAltName=IP:127.0.0.1\n";
    std::string script =
        "set -e; cd " + d + ";" + "openssl req -x509 " + ec +
        " -keyout ca.key -out ca.crt -subj /CN=test-ca -days 1;" + "openssl req -x509 " + ec +
        " -keyout o.key -out other.crt -subj /CN=other -days 1;" + "openssl req " + ec +
        " -keyout server.key -out server.csr -subj /CN=kubeapi;" +
        "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial " +
        "-out server.crt -days 1 -extfile san.ext;" + "openssl req " + ec +
        " -keyout client.key -out client.csr -subj /CN=granary-operator;" +
        "openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial " +
        "-out client.crt -days 1";
    if (std::system(("(" + script + ") >/dev/null 2>&1").c_str()) != 0) return false;
    ca = Slurp(dir.path() / "ca.crt");
    other_ca = Slurp(dir.path() / "other.crt");
    server_cert = Slurp(dir.path() / "server.crt");
    server_key = Slurp(dir.path() / "server.key");
    client_cert = Slurp(dir.path() / "client.crt");
    client_key = Slurp(dir.path() / "client.key");
    return true;
  }
};

class KubeTlsTest : public ::testing::Test {
 protected:
  void Start(bool client_ca) {
    ASSERT_TRUE(pki_.Make()) << "openssl could not make the test certificates";
    kubeapi::ServerOptions o;
    o.bearer_token = "sa-token";
    o.tls_cert_pem = pki_.server_cert;
    o.tls_key_pem = pki_.server_key;
    if (client_ca) o.client_ca_pem = pki_.ca;
    auto s = kubeapi::KubeApiServer::Start(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    server_ = std::move(*s);
  }
  Status Probe(const kube::Config& c) {
    auto client = kube::Client::Create(c);
    if (!client.ok()) return client.status();
    return (*client)->List(res::kPods, "default").status();
  }

  TestPki pki_;
  std::unique_ptr<kubeapi::KubeApiServer> server_;
};

TEST_F(KubeTlsTest, InClusterConfigSpeaksHttpsWithTheServiceAccountCaAndToken) {
  Start(false);
  TempDir sa;
  std::ofstream(sa.path() / "token") << "sa-token\n";
  std::ofstream(sa.path() / "ca.crt") << pki_.ca;
  setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", std::to_string(server_->port()).c_str(), 1);
  auto c = kube::InClusterConfig(sa.str());
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  auto client = kube::Client::Create(*c);
  ASSERT_TRUE(client.ok());
  Json cm = {{"apiVersion", "v1"},
             {"kind", "ConfigMap"},
             {"metadata", {{"name", "tls"}, {"namespace", "default"}}}};
  auto created = (*client)->Create(res::kConfigMaps, cm);
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  auto list = (*client)->List(res::kConfigMaps, "default");
  ASSERT_TRUE(list.ok());
  auto watch = (*client)->Watch(res::kConfigMaps, "default", {.resource_version = "0"});
  ASSERT_TRUE(watch.ok()) << watch.status().ToString();
  auto first = (*watch)->Next();
  ASSERT_TRUE(first.ok() && first->has_value()) << first.status().ToString();
  EXPECT_EQ(kube::NameOf((*first)->object), "tls");
}

TEST_F(KubeTlsTest, AnUntrustedServerIsRefusedUnlessVerificationIsSkipped) {
  Start(false);
  kube::Config c;
  c.server = server_->url();
  c.token = "sa-token";
  c.ca_pem = pki_.other_ca;
  EXPECT_EQ(Probe(c).code(), Code::UNAVAILABLE);
  c.insecure_skip_tls_verify = true;
  EXPECT_TRUE(Probe(c).ok()) << Probe(c).ToString();
}

TEST_F(KubeTlsTest, AKubeconfigClientCertificateAuthenticates) {
  Start(true);
  TempDir dir;
  auto b64 = [](const std::string& s) {
    std::vector<unsigned char> bytes(s.begin(), s.end());
    return utility::conversions::to_base64(bytes);
  };
  {
    std::ofstream k(dir.path() / "config");
    k << "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
      << "clusters:\n- name: k\n  cluster:\n    server: " << server_->url() << "\n"
      << "    certificate-authority-data: " << b64(pki_.ca) << "\n"
      << "users:\n- name: op\n  user:\n    client-certificate-data: " << b64(pki_.client_cert)
      << "\n    client-key-data: " << b64(pki_.client_key) << "\n"
      << "contexts:\n- name: c\n  context:\n    cluster: k\n    user: op\n";
  }
  auto c = kube::LoadKubeconfig((dir.path() / "config").string());
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_TRUE(c->token.empty());
  EXPECT_TRUE(Probe(*c).ok()) << Probe(*c).ToString();
  kube::Config anonymous = *c;
  anonymous.client_cert_pem.clear();
  anonymous.client_key_pem.clear();
  EXPECT_EQ(Probe(anonymous).code(), Code::PERMISSION_DENIED);
}

}  // namespace
}  // namespace granary::testing
