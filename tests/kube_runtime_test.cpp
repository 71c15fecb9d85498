// The controller runtime against the strict API test server: informers that converge through
// cut watches and compactions, a reconciler that backs off on errors, a small StorageCluster
// controller using every helper the operator will (owner references, finalizers, conditions,
// Events), and leader election between two instances on one Lease.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>

#include "operator/runtime/apply.h"
#include "operator/runtime/manager.h"
#include "operator/runtime/objects.h"
#include "tests/harness/test_support.h"
#include "tests/kube_test_support.h"

namespace granary::testing {
namespace {

namespace res = kube::resources;
using runtime::Clock;

Json StorageCluster(const std::string& name, int datanodes) {
  return {{"apiVersion", "granary.io/v1alpha1"},
          {"kind", "StorageCluster"},
          {"metadata", {{"name", name}, {"namespace", "default"}}},
          {"spec", {{"datanodes", datanodes}}}};
}

runtime::ManagerOptions NoElection() {
  runtime::ManagerOptions o;
  o.leader_election = false;
  return o;
}

using KubeRuntimeTest = KubeApiTest;

TEST_F(KubeRuntimeTest, InformerCacheConvergesThroughCutsAndCompaction) {
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(client_->Create(res::kConfigMaps, ConfigMap("c" + std::to_string(i))).ok());
  runtime::Informer informer(*client_, res::kConfigMaps,
                             {.ns = "default", .backoff_initial = milliseconds(20)});
  std::mutex mu;
  std::set<std::string> deleted;
  informer.AddHandler({nullptr, nullptr, [&](const Json& o) {
                         std::lock_guard lock(mu);
                         deleted.insert(kube::NameOf(o));
                       }});
  informer.Start();
  ASSERT_TRUE(
      WaitUntil([&] { return informer.HasSynced() && server_->open_watches() == 1; }, seconds(10)));
  EXPECT_EQ(informer.List().size(), 4u);

  server_->DropWatches();
  server_->Compact();
  ASSERT_TRUE(client_->Delete(res::kConfigMaps, "default", "c1").ok());
  ASSERT_TRUE(client_->Create(res::kConfigMaps, ConfigMap("c9")).ok());
  ASSERT_TRUE(WaitUntil(
      [&] {
        std::lock_guard lock(mu);
        return deleted.count("c1") && informer.Get("default/c9") && !informer.Get("default/c1");
      },
      seconds(10)))
      << "the relist after 410 reports the deletion it never saw as an event";
  EXPECT_GE(informer.reflector().lists(), 2u);
  informer.Stop();
}

TEST_F(KubeRuntimeTest, AFailingReconcileIsRetriedWithGrowingBackOff) {
  MetricsRegistry metrics;
  runtime::Manager manager(*client_, NoElection(), metrics);
  auto& informer = manager.AddInformer(res::kStorageClusters);
  std::mutex mu;
  std::vector<Clock::time_point> attempts;
  auto& controller = manager.AddController(
      {.name = "flaky", .rate_limit = {milliseconds(40), milliseconds(1000), 100, 100}},
      [&](const std::string& key) -> Result<runtime::ReconcileResult> {
        std::lock_guard lock(mu);
        attempts.push_back(Clock::now());
        if (attempts.size() <= 3) return Unavailable("datanode not answering");
        return runtime::ReconcileResult{};
      });
  controller.For(informer);
  ASSERT_TRUE(client_->Create(res::kStorageClusters, StorageCluster("sc", 3)).ok());
  ASSERT_TRUE(manager.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return controller.reconciles() >= 4; }, seconds(10)));
  std::lock_guard lock(mu);
  ASSERT_GE(attempts.size(), 4u);
  // Retries after 40, 80, 160 ms: each gap at least its back-off.
  for (int i = 1; i <= 3; ++i) {
    EXPECT_GE(attempts[i] - attempts[i - 1], milliseconds(40 << (i - 1))) << "retry " << i;
  }
  EXPECT_EQ(controller.failures(), 3u);
  EXPECT_EQ(controller.queue().Failures("default/sc"), 0) << "success forgets the back-off";
  EXPECT_NE(metrics.Exposition().find(
                "granary_operator_reconcile_total{controller=\"flaky\",result=\"error\"} 3"),
            std::string::npos)
      << metrics.Exposition();
  manager.Stop();
}

// A miniature of what the operator will do with a StorageCluster.
class MiniClusterController {
 public:
  static constexpr const char* kFinalizer = "granary.io/storagecluster";

  MiniClusterController(runtime::Manager& m) : m_(m), client_(m.client()) {
    clusters_ = &m.AddInformer(res::kStorageClusters);
    config_maps_ = &m.AddInformer(res::kConfigMaps);
    controller_ = &m.AddController({.name = "storagecluster"},
                                   [this](const std::string& key) { return Reconcile(key); });
    controller_->For(*clusters_);
    controller_->Owns(*config_maps_, "StorageCluster");
  }

  Result<runtime::ReconcileResult> Reconcile(const std::string& key) {
    auto [ns, name] = kube::SplitKey(key);
    auto cached = clusters_->Get(key);
    if (!cached) return runtime::ReconcileResult{};  // gone: its ConfigMap went with it
    Json sc = *cached;
    if (runtime::IsBeingDeleted(sc)) {
      cleanups++;
      auto released = client_.Modify(res::kStorageClusters, ns, name, [](Json& o) {
        runtime::RemoveFinalizer(o, kFinalizer);
        return Status::Ok();
      });
      if (!released.ok() && released.status().code() != Code::NOT_FOUND) return released.status();
      return runtime::ReconcileResult{};
    }
    if (!runtime::HasFinalizer(sc, kFinalizer)) {
      auto added = client_.Modify(res::kStorageClusters, ns, name, [](Json& o) {
        runtime::AddFinalizer(o, kFinalizer);
        return Status::Ok();
      });
      if (!added.ok()) return added.status();
      sc = *added;
    }
    Json cm = {{"apiVersion", "v1"},
               {"kind", "ConfigMap"},
               {"metadata", {{"name", name + "-config"}, {"namespace", ns}}},
               {"data", {{"datanodes", std::to_string(sc["spec"].value("datanodes", 0))}}}};
    GRANARY_TRY(runtime::SetControllerReference(cm, sc));
    auto existing = config_maps_->Get(kube::KeyOf(cm));
    if (!existing) {
      auto created = client_.Create(res::kConfigMaps, cm);
      if (!created.ok() && created.status().code() != Code::ALREADY_EXISTS) return created.status();
      // A reconcile that ran before the informer saw our own create finds it already there:
      // one Event per object actually created.
      if (created.ok()) {
        m_.events().Normal(sc, "Created", "ConfigMap " + kube::NameOf(cm)).PermitUnchecked();
      }
    } else if ((*existing)["data"] != cm["data"]) {
      Json next = *existing;
      next["data"] = cm["data"];
      auto updated = client_.Update(res::kConfigMaps, next);  // 409: requeued, next read is fresh
      if (!updated.ok()) return updated.status();
    }
    auto status = client_.Modify(
        res::kStorageClusters, ns, name,
        [](Json& o) {
          runtime::SetCondition(o, {runtime::kReady, "True", "ConfigWritten", "config in place"});
          runtime::SetObservedGeneration(o);
          return Status::Ok();
        },
        /*status=*/true);
    if (!status.ok()) return status.status();
    return runtime::ReconcileResult{};
  }

  std::atomic<int> cleanups{0};

 private:
  runtime::Manager& m_;
  kube::Client& client_;
  runtime::Informer* clusters_;
  runtime::Informer* config_maps_;
  runtime::Controller* controller_;
};

TEST_F(KubeRuntimeTest, ControllerOwnsChildrenReportsConditionsAndHonoursItsFinalizer) {
  MetricsRegistry metrics;
  runtime::Manager manager(*client_, NoElection(), metrics);
  MiniClusterController mini(manager);
  ASSERT_TRUE(manager.Start().ok());
  ASSERT_TRUE(client_->Create(res::kStorageClusters, StorageCluster("sc", 3)).ok());

  auto observed = [&](int64_t generation) {
    auto sc = client_->Get(res::kStorageClusters, "default", "sc");
    return sc.ok() && runtime::IsConditionTrue(*sc, runtime::kReady) &&
           (*sc)["status"].value("observedGeneration", 0) == generation &&
           runtime::FindCondition(*sc, runtime::kReady)->value("observedGeneration", 0) ==
               generation;
  };
  ASSERT_TRUE(WaitUntil([&] { return observed(1); }, seconds(10)));
  auto cm = client_->Get(res::kConfigMaps, "default", "sc-config");
  ASSERT_TRUE(cm.ok());
  EXPECT_EQ((*cm)["data"]["datanodes"], "3");
  auto sc = client_->Get(res::kStorageClusters, "default", "sc");
  EXPECT_TRUE(runtime::IsControlledBy(*cm, *sc));
  EXPECT_TRUE(runtime::HasFinalizer(*sc, MiniClusterController::kFinalizer));
  auto events = client_->List(res::kEvents, "default");
  ASSERT_TRUE(events.ok());
  ASSERT_EQ(events->items.size(), 1u);
  EXPECT_EQ(events->items[0]["reason"], "Created");
  EXPECT_EQ(events->items[0]["involvedObject"]["uid"], kube::UidOf(*sc));

  // A spec change bumps the generation; the controller catches up and says so.
  ASSERT_TRUE(
      client_->MergePatch(res::kStorageClusters, "default", "sc", {{"spec", {{"datanodes", 5}}}})
          .ok());
  ASSERT_TRUE(WaitUntil([&] { return observed(2); }, seconds(10)));
  EXPECT_EQ((*client_->Get(res::kConfigMaps, "default", "sc-config"))["data"]["datanodes"], "5");

  // Someone edits the owned ConfigMap: the owner is reconciled and puts it back.
  ASSERT_TRUE(
      client_
          ->MergePatch(res::kConfigMaps, "default", "sc-config", {{"data", {{"datanodes", "0"}}}})
          .ok());
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto c = client_->Get(res::kConfigMaps, "default", "sc-config");
        return c.ok() && (*c)["data"]["datanodes"] == "5";
      },
      seconds(10)));

  // Deletion waits for the controller's cleanup, then the owned ConfigMap goes too.
  ASSERT_TRUE(client_->Delete(res::kStorageClusters, "default", "sc").ok());
  ASSERT_TRUE(WaitUntil(
      [&] {
        return client_->Get(res::kStorageClusters, "default", "sc").status().code() ==
                   Code::NOT_FOUND &&
               client_->Get(res::kConfigMaps, "default", "sc-config").status().code() ==
                   Code::NOT_FOUND;
      },
      seconds(10)));
  EXPECT_GE(mini.cleanups.load(), 1);
  manager.Stop();
}

TEST_F(KubeRuntimeTest, CreateOrUpdateWritesOnlyWhatDiffersAndKeepsOthersKeys) {
  Json desired = {
      {"apiVersion", "apps/v1"},
      {"kind", "DaemonSet"},
      {"metadata",
       {{"name", "datanode"}, {"namespace", "default"}, {"labels", {{"app", "granary"}}}}},
      {"spec", {{"template", {{"image", "granary:1"}}}}}};
  auto first = runtime::CreateOrUpdate(*client_, res::kDaemonSets, desired);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  EXPECT_TRUE(first->changed);
  // Another writer adds its own label and the kubelet-side status appears.
  ASSERT_TRUE(client_
                  ->MergePatch(res::kDaemonSets, "default", "datanode",
                               {{"metadata", {{"labels", {{"team", "storage"}}}}}})
                  .ok());
  ASSERT_TRUE(server_->MarkReady("apps", "daemonsets", "default", "datanode", 2).ok());
  uint64_t rv = server_->resource_version();
  auto same = runtime::CreateOrUpdate(*client_, res::kDaemonSets, desired);
  ASSERT_TRUE(same.ok());
  EXPECT_FALSE(same->changed) << "nothing the controller manages differs: no write";
  EXPECT_EQ(server_->resource_version(), rv);

  desired["spec"]["template"]["image"] = "granary:2";
  auto rolled = runtime::CreateOrUpdate(*client_, res::kDaemonSets, desired);
  ASSERT_TRUE(rolled.ok());
  EXPECT_TRUE(rolled->changed);
  EXPECT_EQ(rolled->object["spec"]["template"]["image"], "granary:2");
  EXPECT_EQ(rolled->object["metadata"]["labels"]["team"], "storage");
  EXPECT_EQ(rolled->object["status"]["numberReady"], 2);
  EXPECT_EQ(kube::GenerationOf(rolled->object), 2);
}

TEST_F(KubeRuntimeTest, AdminEndpointServesHealthReadinessAndMetrics) {
  MetricsRegistry metrics;
  runtime::Manager manager(*client_, NoElection(), metrics);
  manager.AddInformer(res::kPods);
  manager.AddController({.name = "noop"}, [](const std::string&) {
    return Result<runtime::ReconcileResult>(runtime::ReconcileResult{});
  });
  ASSERT_TRUE(manager.Start().ok());
  std::string admin = manager.admin_address().ToString();
  EXPECT_EQ(HttpGet(admin, "/healthz").first, 200);
  ASSERT_TRUE(WaitUntil([&] { return HttpGet(admin, "/readyz").first == 200; }, seconds(10)));
  auto [code, body] = HttpGet(admin, "/metrics");
  EXPECT_EQ(code, 200);
  EXPECT_NE(body.find("granary_operator_workqueue_depth{controller=\"noop\"}"), std::string::npos)
      << body;
  EXPECT_NE(body.find("granary_operator_leader 1"), std::string::npos) << body;
  manager.Stop();
}

// Two candidates for one Lease, with short timings (the Lease's own unit is whole seconds).
class LeaderElectionTest : public KubeApiTest {
 protected:
  struct Candidate {
    std::unique_ptr<kube::Client> client;
    std::unique_ptr<runtime::LeaderElector> elector;
    std::atomic<int> started{0};
    std::atomic<int> stopped{0};
  };

  std::unique_ptr<Candidate> NewCandidate(const std::string& identity) {
    auto c = std::make_unique<Candidate>();
    c->client = NewClient();
    runtime::LeaderElectionOptions o;
    o.identity = identity;
    o.lease_duration = milliseconds(1000);
    o.renew_deadline = milliseconds(600);
    o.retry_period = milliseconds(100);
    Candidate* raw = c.get();
    c->elector = std::make_unique<runtime::LeaderElector>(
        *c->client, o,
        runtime::LeaderElector::Callbacks{[this, raw] {
                                            raw->started++;
                                            int now = ++leaders_;
                                            int seen = max_leaders_.load();
                                            while (now > seen &&
                                                   !max_leaders_.compare_exchange_weak(seen, now)) {
                                            }
                                          },
                                          [this, raw] {
                                            raw->stopped++;
                                            --leaders_;
                                          }});
    return c;
  }

  std::atomic<int> leaders_{0};
  std::atomic<int> max_leaders_{0};
};

TEST_F(LeaderElectionTest, ExactlyOneLeaderAndFailoverWhenItStopsRenewing) {
  auto a = NewCandidate("a");
  auto b = NewCandidate("b");
  a->elector->Start();
  b->elector->Start();
  ASSERT_TRUE(
      WaitUntil([&] { return a->elector->IsLeader() || b->elector->IsLeader(); }, seconds(10)));
  Candidate* leader = a->elector->IsLeader() ? a.get() : b.get();
  Candidate* standby = leader == a.get() ? b.get() : a.get();
  // The standby keeps trying for several lease renewals and never wins while the leader renews.
  ASSERT_TRUE(WaitUntil([&] { return standby->elector->holder() == leader->elector->identity(); },
                        seconds(10)));
  int64_t renewals_seen = 0;
  std::string last_renew;
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto lease =
            server_->Object("coordination.k8s.io", "leases", "default", "granary-operator");
        if (!lease.ok()) return false;
        std::string r = (*lease)["spec"]["renewTime"];
        if (r != last_renew) renewals_seen++, last_renew = r;
        return renewals_seen >= 12;  // > one lease duration of renewals every 100 ms
      },
      seconds(10)));
  EXPECT_FALSE(standby->elector->IsLeader());
  EXPECT_EQ(max_leaders_.load(), 1);

  // The leader dies without releasing: the standby takes over once the Lease has expired.
  auto crashed = Clock::now();
  leader->elector->Stop(/*release=*/false);
  EXPECT_EQ(leader->stopped.load(), 1) << "a stopped leader stops reconciling";
  ASSERT_TRUE(WaitUntil([&] { return standby->elector->IsLeader(); }, seconds(10)));
  EXPECT_GE(Clock::now() - crashed, milliseconds(900)) << "not before the lease expired";
  EXPECT_EQ(max_leaders_.load(), 1);
  auto lease = server_->Object("coordination.k8s.io", "leases", "default", "granary-operator");
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ((*lease)["spec"]["holderIdentity"], standby->elector->identity());
  EXPECT_EQ((*lease)["spec"]["leaseTransitions"], 1);
  EXPECT_EQ((*lease)["spec"]["leaseDurationSeconds"], 1);
}

TEST_F(LeaderElectionTest, AReleasedLeaseIsTakenOverWithoutWaitingForExpiry) {
  auto a = NewCandidate("a");
  a->elector->Start();
  ASSERT_TRUE(WaitUntil([&] { return a->elector->IsLeader(); }, seconds(10)));
  auto b = NewCandidate("b");
  b->elector->Start();
  ASSERT_TRUE(WaitUntil([&] { return b->elector->holder() == "a"; }, seconds(10)));
  auto released = Clock::now();
  a->elector->Stop(/*release=*/true);
  ASSERT_TRUE(WaitUntil([&] { return b->elector->IsLeader(); }, seconds(10)));
  EXPECT_LT(Clock::now() - released, milliseconds(900));
  EXPECT_EQ(max_leaders_.load(), 1);
}

TEST_F(KubeRuntimeTest, TwoInstancesShareOneLeaseOnlyTheLeaderReconcilesAndFailsOver) {
  struct Instance {
    std::unique_ptr<kube::Client> client;
    MetricsRegistry metrics;
    std::unique_ptr<runtime::Manager> manager;
    runtime::Controller* controller = nullptr;
    std::atomic<int> reconciled{0};
  };
  auto make = [&](const std::string& identity) {
    auto in = std::make_unique<Instance>();
    in->client = NewClient();
    runtime::ManagerOptions o;
    o.admin.host.clear();
    o.lease.identity = identity;
    o.lease.lease_duration = milliseconds(1000);
    o.lease.renew_deadline = milliseconds(600);
    o.lease.retry_period = milliseconds(100);
    in->manager = std::make_unique<runtime::Manager>(*in->client, o, in->metrics);
    auto& informer = in->manager->AddInformer(res::kStorageClusters);
    Instance* raw = in.get();
    in->controller = &in->manager->AddController(
        {.name = "sc"}, [raw](const std::string&) -> Result<runtime::ReconcileResult> {
          raw->reconciled++;
          return runtime::ReconcileResult{};
        });
    in->controller->For(informer);
    return in;
  };
  auto a = make("instance-a");
  auto b = make("instance-b");
  ASSERT_TRUE(a->manager->Start().ok());
  ASSERT_TRUE(b->manager->Start().ok());
  bool overlap = false;
  auto leaders = [&] {
    bool ra = a->manager && a->controller->running();
    bool rb = b->manager && b->controller->running();
    overlap |= ra && rb;
    return int(ra) + int(rb);
  };
  ASSERT_TRUE(WaitUntil(
      [&] { return leaders() == 1 && a->manager->Ready() && b->manager->Ready(); }, seconds(10)));
  Instance* leader = a->manager->IsLeader() ? a.get() : b.get();
  Instance* standby = leader == a.get() ? b.get() : a.get();
  ASSERT_TRUE(client_->Create(res::kStorageClusters, StorageCluster("sc", 1)).ok());
  ASSERT_TRUE(
      WaitUntil([&] { return leader->reconciled.load() >= 1 && leaders() == 1; }, seconds(10)));
  EXPECT_EQ(standby->reconciled.load(), 0) << "a standby caches but never reconciles";
  EXPECT_TRUE(standby->manager->Ready()) << "a standby's cache is warm";

  auto died = Clock::now();
  leader->manager->Stop(/*release_lease=*/false);  // as if the process died
  leader->manager.reset();  // and is gone: nothing on its way out may release the Lease
  ASSERT_TRUE(
      WaitUntil([&] { return standby->manager->IsLeader() && leaders() == 1; }, seconds(10)));
  EXPECT_GE(Clock::now() - died, milliseconds(900)) << "only once the Lease expired";
  ASSERT_TRUE(WaitUntil([&] { return standby->reconciled.load() >= 1; }, seconds(10)))
      << "the new leader looks at every object once";
  EXPECT_FALSE(overlap) << "never two instances reconciling at once";
  standby->manager->Stop();
}

TEST_F(KubeRuntimeTest, ALeaderThatLosesItsLeaseStopsReconciling) {
  MetricsRegistry metrics;
  runtime::ManagerOptions o;
  o.admin.host.clear();
  o.lease.identity = "first";
  o.lease.lease_duration = milliseconds(1000);
  o.lease.renew_deadline = milliseconds(600);
  o.lease.retry_period = milliseconds(100);
  runtime::Manager manager(*client_, o, metrics);
  auto& c = manager.AddController({.name = "guarded"}, [](const std::string&) {
    return Result<runtime::ReconcileResult>(runtime::ReconcileResult{});
  });
  ASSERT_TRUE(manager.Start().ok());
  ASSERT_TRUE(WaitUntil([&] { return manager.IsLeader() && c.running(); }, seconds(10)));
  // Another instance (or an operator by hand) takes the Lease over.
  auto stolen = client_->Modify(res::kLeases, "default", "granary-operator", [](Json& lease) {
    lease["spec"]["holderIdentity"] = "intruder";
    lease["spec"]["renewTime"] = runtime::NowMicroTime();
    return Status::Ok();
  });
  ASSERT_TRUE(stolen.ok()) << stolen.status().ToString();
  ASSERT_TRUE(WaitUntil([&] { return !manager.IsLeader() && !c.running(); }, seconds(5)));
  EXPECT_NE(metrics.Exposition().find("granary_operator_leader 0"), std::string::npos);
  manager.Stop();
}

}  // namespace
}  // namespace granary::testing
