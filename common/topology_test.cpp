#include "common/topology.h"

#include <gtest/gtest.h>

#include "common/net.h"

namespace granary {
namespace {

TEST(TopologyTest, ParsesLabelsAndLocation) {
  auto labels = ParseLabels("zone=a,rack=r1,host=h1,gpu=true");
  ASSERT_TRUE(labels.ok());
  EXPECT_EQ(labels->at("rack"), "r1");
  EXPECT_EQ(FormatLabels(*labels), "gpu=true,host=h1,rack=r1,zone=a");
  Location loc = Location::FromLabels(*labels, "ignored");
  EXPECT_EQ(loc.host, "h1");
  EXPECT_TRUE(loc.gpu);
  EXPECT_EQ(Location::FromLabels({}, "me").host, "me");
}

TEST(TopologyTest, BadLabelsAreInvalidArgument) {
  EXPECT_EQ(ParseLabels("zone").status().code(), Code::INVALID_ARGUMENT);
  EXPECT_EQ(ParseLabels("=x").status().code(), Code::INVALID_ARGUMENT);
  EXPECT_TRUE(ParseLabels("").ok());
}

TEST(TopologyTest, DistanceOrdersHostRackZoneElsewhere) {
  Location reader{"z1", "r1", "h1", false};
  EXPECT_EQ(Distance(reader, {"z1", "r1", "h1", false}), 0);
  EXPECT_EQ(Distance(reader, {"z1", "r1", "h2", false}), 1);
  EXPECT_EQ(Distance(reader, {"z1", "r2", "h1", false}), 2);
  EXPECT_EQ(Distance(reader, {"z2", "r1", "h1", false}), 3);
}

TEST(TopologyTest, DomainLevelsParse) {
  EXPECT_EQ(*ParseDomainLevel("rack"), DomainLevel::kRack);
  EXPECT_EQ(DomainLevelName(DomainLevel::kZone), "zone");
  EXPECT_EQ(ParseDomainLevel("planet").status().code(), Code::INVALID_ARGUMENT);
}

TEST(NetTest, ParsesHostPortForms) {
  auto hp = ParseHostPort("127.0.0.1:7410");
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->host, "127.0.0.1");
  EXPECT_EQ(hp->port, 7410);
  auto v6 = ParseHostPort("[::1]:80");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->ToString(), "[::1]:80");
  EXPECT_FALSE(ParseHostPort("nohost").ok());
  EXPECT_FALSE(ParseHostPort("h:70000").ok());
  EXPECT_FALSE(ParseHostPort("h:12x").ok());
  auto list = ParseHostPortList("a:1,b:2");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->size(), 2u);
}

}  // namespace
}  // namespace granary
