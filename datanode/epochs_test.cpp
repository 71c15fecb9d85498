#include "datanode/epochs.h"

#include <gtest/gtest.h>

#include "placement/placement.h"

namespace granary::datanode {
namespace {

PoolSpec Pool(uint32_t id, uint32_t pgs) {
  PoolSpec p;
  p.set_id(id);
  p.set_name("p" + std::to_string(id));
  p.set_redundancy(REPLICATED_POOL);
  p.set_replicas(2);
  p.set_failure_domain(DOMAIN_DATANODE);
  p.set_pg_count(pgs);
  return p;
}

std::vector<placement::Node> Nodes(int n) {
  std::vector<placement::Node> nodes;
  for (int i = 1; i <= n; ++i) {
    placement::Node node;
    node.id = i;
    node.location.host = "h" + std::to_string(i);
    nodes.push_back(node);
  }
  return nodes;
}

TEST(EpochsTest, PerPgEpochsComeFromThePlacementMap) {
  std::vector<PoolSpec> pools = {Pool(1, 8)};
  auto nodes = Nodes(3);
  auto first = placement::PlacementMap::Build(nodes, pools);
  ASSERT_TRUE(first.ok()) << first.status().ToString();
  // A fourth node joins: some PGs move (their epoch changes), the others keep theirs.
  auto second = first->Update(Nodes(4));
  ASSERT_TRUE(second.ok()) << second.status().ToString();

  ClusterMap map;
  map.set_epoch(second->epoch());
  map.set_placement(second->Serialize());
  ClusterMapEpochs epochs([&](uint64_t) -> Result<ClusterMap> { return map; });
  ASSERT_TRUE(epochs.Refresh().ok());
  EXPECT_EQ(epochs.map_epoch(), second->epoch());
  int moved = 0;
  for (uint32_t pg = 0; pg < 8; ++pg) {
    auto want = second->PgEpoch(1, pg);
    ASSERT_TRUE(want.ok());
    EXPECT_EQ(epochs.PgEpoch(1, pg), *want) << "pg " << pg;
    moved += *want != first->epoch();
  }
  EXPECT_GT(moved, 0);
  EXPECT_EQ(epochs.PgEpoch(1, 8), std::nullopt);  // no such PG
  EXPECT_EQ(epochs.PgEpoch(2, 0), std::nullopt);  // no such pool
}

TEST(EpochsTest, MapWithoutPlacementGivesEveryPgTheMapEpoch) {
  ClusterMap map;
  map.set_epoch(7);
  int fetches = 0;
  ClusterMapEpochs epochs([&](uint64_t) -> Result<ClusterMap> {
    ++fetches;
    return map;
  });
  EXPECT_EQ(epochs.PgEpoch(1, 0), std::nullopt);
  ASSERT_TRUE(epochs.Refresh().ok());
  EXPECT_EQ(epochs.PgEpoch(1, 0), 7u);
  EXPECT_EQ(epochs.PgEpoch(9, 99), 7u);
  // An "unchanged" reply and an older map leave the view alone.
  ClusterMap unchanged;
  unchanged.set_unchanged(true);
  ASSERT_TRUE(epochs.Update(unchanged).ok());
  map.set_epoch(5);
  ASSERT_TRUE(epochs.Refresh().ok());
  EXPECT_EQ(epochs.PgEpoch(1, 0), 7u);
  EXPECT_EQ(fetches, 2);
}

TEST(EpochsTest, StaticEpochsOverrideTheDefault) {
  StaticEpochs e;
  EXPECT_EQ(e.PgEpoch(1, 1), std::nullopt);
  e.SetDefault(3);
  e.Set(1, 1, 9);
  EXPECT_EQ(e.PgEpoch(1, 1), 9u);
  EXPECT_EQ(e.PgEpoch(1, 2), 3u);
}

}  // namespace
}  // namespace granary::datanode
