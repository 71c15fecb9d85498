// GPU locality on the live data path: datanodes labelled on hosts h1..h4, a client that says it
// runs on h2 (ClientOptions.labels, as --labels / GRANARY_LABELS), a writer-local pool. The
// client's granary_client_read_bytes_total{distance} counters tell where its bytes came from.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "tests/ec_support.h"

namespace granary::testing {
namespace {

class LiveLocalityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ClusterOptions options;
    options.datanodes = 4;
    for (int i = 0; i < 4; ++i) {
      // h3 has GPUs (for the prefer-gpu pool).
      options.datanode_flags.push_back({"--labels",
                                        fmt::format("host=h{}{}", i + 1, i == 2 ? ",gpu=true" : ""),
                                        "--workers", "2"});
    }
    cluster_ = std::make_unique<LocalCluster>(std::move(options));
    cluster_->Start();
    client_ = Connect("host=h2");
    PoolSpec spec;
    spec.set_name("near");
    spec.set_redundancy(Redundancy::REPLICATED_POOL);
    spec.set_replicas(3);
    spec.set_failure_domain(FailureDomain::DOMAIN_HOST);
    spec.set_locality(Locality::WRITER_LOCAL);
    spec.set_pg_count(16);
    spec.set_block_size(1 << 20);
    CreatePoolAndVolume(client_->meta(), spec);
  }

  std::unique_ptr<client::Client> Connect(const std::string& labels) {
    return ConnectWithLabels(*cluster_, labels);
  }

  uint64_t AllReadBytes() {
    return ReadBytes("local") + ReadBytes("rack") + ReadBytes("zone") + ReadBytes("remote");
  }

  std::unique_ptr<LocalCluster> cluster_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(LiveLocalityTest, WriterLocalFilesAreReadFromTheWritersHostAndSurviveItsLoss) {
  const std::vector<uint64_t> sizes = {(6 << 20) + 11, 6 << 20, 300000, 1, (9 << 20) + 4097};
  for (size_t i = 0; i < sizes.size(); ++i) {
    WriteFile(*client_, "near", fmt::format("f{}", i), Pattern(sizes[i], i));
  }
  // Each file's stripe is PGs whose primary is h2's datanode (index 1).
  ASSERT_TRUE(client_->cluster().Refresh().ok());
  for (size_t i = 0; i < sizes.size(); ++i) {
    auto attr = client_->Resolve("near", fmt::format("f{}", i));
    ASSERT_TRUE(attr.ok());
    ASSERT_GT(attr->layout().pgs_size(), 0) << "file " << i << " got no writer-local layout";
    for (uint32_t b = 0; b < 4; ++b) {
      auto t = client_->cluster().Locate(attr->layout(), 1000 + b, b);
      ASSERT_TRUE(t.ok());
      EXPECT_EQ(t->members[0].data_address, cluster_->datanode_data_address(1));
    }
  }

  const uint64_t local_before = ReadBytes("local");
  const uint64_t all_before = AllReadBytes();
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_TRUE(ReadFile(*client_, "near", fmt::format("f{}", i)) == Pattern(sizes[i], i));
  }
  const double local = static_cast<double>(ReadBytes("local") - local_before);
  const double all = static_cast<double>(AllReadBytes() - all_before);
  ASSERT_GT(all, 0);
  EXPECT_GE(local / all, 0.95) << local << " of " << all << " bytes came from h2";

  // h2's datanode dies: reads continue from the other hosts, byte-exact.
  cluster_->KillDatanode(1);
  const uint64_t local_after_kill = ReadBytes("local");
  const uint64_t all_after_kill = AllReadBytes();
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_TRUE(ReadFile(*client_, "near", fmt::format("f{}", i)) == Pattern(sizes[i], i))
        << "file " << i << " after h2's datanode died";
  }
  EXPECT_EQ(ReadBytes("local"), local_after_kill);
  EXPECT_GT(AllReadBytes(), all_after_kill);
}

// A writer on a host without a datanode in the pool gets the ordinary seeded stripe.
TEST_F(LiveLocalityTest, WriterOnAHostWithoutDatanodesGetsTheSeededLayout) {
  auto elsewhere = Connect("host=h9");
  WriteFile(*elsewhere, "near", "far", Pattern(2 << 20, 9));
  auto attr = elsewhere->Resolve("near", "far");
  ASSERT_TRUE(attr.ok());
  EXPECT_EQ(attr->layout().pgs_size(), 0);
  const uint64_t local_before = ReadBytes("local");
  EXPECT_TRUE(ReadFile(*elsewhere, "near", "far") == Pattern(2 << 20, 9));
  EXPECT_EQ(ReadBytes("local"), local_before);
}

// prefer-gpu: in every PG that has a member on the GPU host h3, that member leads the write
// chain, and a reader on h3 gets those blocks from its own host.
TEST_F(LiveLocalityTest, PreferGpuPoolLeadsWithTheGpuHostAndItsReadersReadLocally) {
  PoolSpec spec;
  spec.set_name("gpu");
  spec.set_redundancy(Redundancy::REPLICATED_POOL);
  spec.set_replicas(2);
  spec.set_failure_domain(FailureDomain::DOMAIN_HOST);
  spec.set_locality(Locality::PREFER_GPU);
  spec.set_pg_count(16);
  spec.set_block_size(1 << 20);
  CreatePoolAndVolume(client_->meta(), spec);
  auto on_gpu = Connect("host=h3,gpu=true");
  const auto data = Pattern(16 << 20, 3);
  WriteFile(*on_gpu, "gpu", "weights", data);

  auto attr = on_gpu->Resolve("gpu", "weights");
  ASSERT_TRUE(attr.ok());
  auto map = on_gpu->meta().ReadMap(attr->ino());
  ASSERT_TRUE(map.ok());
  ASSERT_TRUE(on_gpu->cluster().Refresh().ok());
  const std::string h3 = cluster_->datanode_data_address(2);
  uint64_t local_bytes = 0;
  for (const Extent& e : map->extents()) {
    for (uint64_t b = 0; b * (1 << 20) < e.slice_length(); ++b) {
      auto t = on_gpu->cluster().Locate(attr->layout(), e.slice_id(), b);
      ASSERT_TRUE(t.ok());
      bool has_h3 = false;
      for (const auto& m : t->members) has_h3 = has_h3 || m.data_address == h3;
      if (!has_h3) continue;
      EXPECT_EQ(t->members[0].data_address, h3) << "a gpu member must lead its PG";
      local_bytes += std::min<uint64_t>(1 << 20, e.slice_length() - b * (1 << 20));
    }
  }
  ASSERT_GT(local_bytes, 0u) << "no block landed on the GPU host";
  const uint64_t before = ReadBytes("local");
  EXPECT_TRUE(ReadFile(*on_gpu, "gpu", "weights") == data);
  EXPECT_EQ(ReadBytes("local") - before, local_bytes);
}

}  // namespace
}  // namespace granary::testing
