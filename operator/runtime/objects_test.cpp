#include "operator/runtime/objects.h"

#include <gtest/gtest.h>

namespace granary::runtime {
namespace {

Json Obj(const std::string& kind, const std::string& name, const std::string& ns,
         const std::string& uid) {
  Json o = {{"apiVersion", "granary.io/v1alpha1"},
            {"kind", kind},
            {"metadata", {{"name", name}, {"uid", uid}, {"generation", 3}}}};
  if (!ns.empty()) o["metadata"]["namespace"] = ns;
  return o;
}

TEST(ObjectsTest, ControllerReferenceNamesTheOwnerOnce) {
  Json owner = Obj("StorageCluster", "sc", "ns1", "u1");
  Json child = Obj("DaemonSet", "dn", "ns1", "");
  ASSERT_TRUE(SetControllerReference(child, owner).ok());
  ASSERT_TRUE(SetControllerReference(child, owner).ok());
  EXPECT_EQ(child["metadata"]["ownerReferences"].size(), 1u);
  auto c = ControllerOf(child);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->kind, "StorageCluster");
  EXPECT_EQ(c->uid, "u1");
  EXPECT_TRUE(IsControlledBy(child, owner));

  Json other = Obj("StorageCluster", "sc2", "ns1", "u2");
  EXPECT_EQ(SetControllerReference(child, other).code(), Code::INVALID_ARGUMENT);
  Json elsewhere = Obj("Pod", "p", "ns2", "");
  EXPECT_EQ(SetControllerReference(elsewhere, owner).code(), Code::INVALID_ARGUMENT);
  Json pool = Obj("StoragePool", "fast", "", "u3");  // cluster-scoped owns anything
  EXPECT_TRUE(SetControllerReference(elsewhere, pool).ok());
  Json unsaved = Obj("StorageCluster", "new", "ns1", "");
  EXPECT_EQ(SetControllerReference(child, unsaved).code(), Code::INVALID_ARGUMENT);
}

TEST(ObjectsTest, FinalizersAddAndRemoveReportChanges) {
  Json o = Obj("Bucket", "b", "ns", "u");
  EXPECT_FALSE(HasFinalizer(o, "granary.io/bucket"));
  EXPECT_TRUE(AddFinalizer(o, "granary.io/bucket"));
  EXPECT_FALSE(AddFinalizer(o, "granary.io/bucket"));
  EXPECT_TRUE(HasFinalizer(o, "granary.io/bucket"));
  EXPECT_TRUE(RemoveFinalizer(o, "granary.io/bucket"));
  EXPECT_FALSE(RemoveFinalizer(o, "granary.io/bucket"));
  EXPECT_FALSE(IsBeingDeleted(o));
  o["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z";
  EXPECT_TRUE(IsBeingDeleted(o));
}

TEST(ObjectsTest, ConditionsCarryObservedGenerationAndKeepTransitionTime) {
  Json o = Obj("StorageCluster", "sc", "ns", "u");
  EXPECT_TRUE(SetCondition(o, {kReady, "False", "Deploying", "0/3 datanodes"}));
  auto c = FindCondition(o, kReady);
  ASSERT_TRUE(c);
  EXPECT_EQ((*c)["observedGeneration"], 3);
  o["status"]["conditions"][0]["lastTransitionTime"] = "2000-01-01T00:00:00Z";
  EXPECT_FALSE(SetCondition(o, {kReady, "False", "Deploying", "0/3 datanodes"}))
      << "nothing changed: nothing to write";
  EXPECT_TRUE(SetCondition(o, {kReady, "False", "Deploying", "1/3 datanodes"}));
  EXPECT_EQ(FindCondition(o, kReady)->value("lastTransitionTime", ""), "2000-01-01T00:00:00Z")
      << "same status keeps its transition time";
  EXPECT_TRUE(SetCondition(o, {kReady, "True", "Ready", "3/3"}));
  EXPECT_NE(FindCondition(o, kReady)->value("lastTransitionTime", ""), "2000-01-01T00:00:00Z");
  EXPECT_TRUE(IsConditionTrue(o, kReady));
  EXPECT_TRUE(SetCondition(o, {kDegraded, "False", "Healthy", ""}));
  EXPECT_EQ(o["status"]["conditions"].size(), 2u);
  EXPECT_TRUE(SetObservedGeneration(o));
  EXPECT_FALSE(SetObservedGeneration(o));
  EXPECT_EQ(o["status"]["observedGeneration"], 3);
}

TEST(ObjectsTest, MicroTimeHasSixFractionDigits) {
  std::string t = NowMicroTime();
  ASSERT_EQ(t.size(), 27u) << t;
  EXPECT_EQ(t[19], '.');
  EXPECT_EQ(t.back(), 'Z');
}

}  // namespace
}  // namespace granary::runtime
