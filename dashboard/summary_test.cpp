#include "dashboard/summary.h"

#include <gtest/gtest.h>

#include "dashboard/group.h"

namespace granary::dashboard {
namespace {

using nlohmann::json;

TEST(HumanBytesTest, PrintsIecUnitsWithOneDecimalBelowTen) {
  EXPECT_EQ(HumanBytes(0), "0B");
  EXPECT_EQ(HumanBytes(1536), "1.5KiB");
  EXPECT_EQ(HumanBytes(20.0 * 1024 * 1024 * 1024), "20GiB");
}

json Doc() {
  return json::parse(R"({
    "health": {"state": "error", "redundancy": "repairing",
               "problems": [{"severity": "error", "text": "1 datanode down"}]},
    "summary": {"datanodes": 3, "up": 2, "down": 1, "out": 0, "raw_bytes": 3221225472,
                "raw_used_bytes": 1048576, "logical_used_bytes": 2048, "pools": 1,
                "volumes": 1, "buckets": 0, "sessions": 0},
    "repair": {"epoch": 7, "pgs_total": 64, "pgs_degraded": 20, "pgs_moving": 0,
               "copies_bad": 0, "blocks_to_repair": 0, "nodes_repairing": 0},
    "scrub": {"nodes": 3, "pass_progress": 100.0, "nodes_behind": 0},
    "meta": {"reachable": true, "replicated": false,
             "members": [{"id": 0, "role": "leader", "admin_address": "127.0.0.1:7411"}]},
    "io": null, "io_error": "not yet",
    "pools": [{"name": "default", "redundancy": "replicated:3", "failure_domain": "datanode",
               "locality": "none", "pgs": 64, "pgs_degraded": 20, "placed": true,
               "usable_bytes": 1073741824, "used_bytes": 2048, "volumes": 1}]
  })");
}

TEST(RenderSummaryTest, PrintsTheAtAGlanceLinesAndEachProblem) {
  const std::string out = RenderSummary(Doc());
  EXPECT_NE(out.find("status=error redundancy=repairing epoch=7 dashboard=http://127.0.0.1:7411/"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("datanodes total=3 up=2 down=1 out=0 raw=3.0GiB"), std::string::npos) << out;
  EXPECT_NE(out.find("pool default redundancy=replicated:3"), std::string::npos) << out;
  EXPECT_NE(out.find("meta members=1 leader=alone"), std::string::npos) << out;
  EXPECT_NE(out.find("problem error: 1 datanode down"), std::string::npos) << out;
}

TEST(DashboardUrlTest, PrefersTheLeadersAdminAddress) {
  json s = {{"meta",
             {{"members",
               {{{"role", "follower"}, {"admin_address", "10.0.0.1:7411"}},
                {{"role", "leader"}, {"admin_address", "10.0.0.2:7411"}}}}}}};
  EXPECT_EQ(DashboardUrl(s), "http://10.0.0.2:7411/");
  EXPECT_EQ(DashboardUrl(json{{"meta", json::object()}}), "-");
}

TEST(DashboardMetaListTest, PutsThisMemberFirstThenTheOtherPeers) {
  EXPECT_EQ(DashboardMetaList("10.0.0.2:7410", "1=10.0.0.1:7410,2=10.0.0.2:7410,3=10.0.0.3:7410"),
            "10.0.0.2:7410,10.0.0.1:7410,10.0.0.3:7410");
  EXPECT_EQ(DashboardMetaList("127.0.0.1:7410", ""), "127.0.0.1:7410");
}

TEST(DashboardUrlTest, OfAGroupViewIsTheLeadersThenAnyMembers) {
  GroupView g;
  auto member = [](uint64_t id, std::string role, std::string admin_address) {
    MemberView m;
    m.id = id;
    m.role = std::move(role);
    m.admin_address = std::move(admin_address);
    return m;
  };
  g.members.push_back(member(1, "follower", "h1:7480"));
  EXPECT_EQ(DashboardUrl(g), "http://h1:7480/");
  g.members.push_back(member(2, "leader", "h2:7480"));
  EXPECT_EQ(DashboardUrl(g), "http://h2:7480/");
  EXPECT_EQ(DashboardUrl(GroupView{}), "");
}

}  // namespace
}  // namespace granary::dashboard
