// Helpers shared by the erasure-coding and locality tests: a LocalCluster with extra pools, files
// written and read through libgranary, and the client's own counters.
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "client/cluster_view.h"
#include "client/granary.h"
#include "client/meta_client.h"
#include "common/metrics.h"
#include "tests/harness/cluster.h"

namespace granary::testing {

inline std::vector<uint8_t> Pattern(size_t n, uint64_t seed) {
  std::vector<uint8_t> v(n);
  std::mt19937_64 rng(seed);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t x = rng();
    std::memcpy(&v[i], &x, 8);
  }
  for (; i < n; ++i) v[i] = static_cast<uint8_t>(rng());
  return v;
}

inline uint64_t CounterValue(const std::string& name, const std::string& labels = "") {
  return Metrics().GetCounter(name, "", labels).value();
}

inline uint64_t ReadBytes(const char* distance) {
  return CounterValue("granary_client_read_bytes_total", fmt::format("distance=\"{}\"", distance));
}

inline uint64_t Rebuilt(const char* reason) {
  return CounterValue("granary_client_ec_fragments_rebuilt_total",
                      fmt::format("reason=\"{}\"", reason));
}

// A libgranary client of `cluster` on the host its `labels` name ("host=h2"), as a reader there.
inline std::unique_ptr<client::Client> ConnectWithLabels(const LocalCluster& cluster,
                                                         const std::string& labels) {
  client::ClientOptions o;
  o.meta = cluster.meta_address();
  o.labels = labels;
  o.operation_timeout = std::chrono::seconds(60);
  o.request_timeout = std::chrono::seconds(10);
  auto c = client::Client::Connect(o);
  EXPECT_TRUE(c.ok()) << c.status().ToString();
  return std::move(*c);
}

// Creates pool `name` and a volume of the same name in it.
inline void CreatePoolAndVolume(client::MetaClient& meta, PoolSpec spec) {
  auto pool = meta.PoolCreate(spec);
  ASSERT_TRUE(pool.ok()) << pool.status().ToString();
  auto volume = meta.VolumeCreate(spec.name(), spec.name());
  ASSERT_TRUE(volume.ok()) << volume.status().ToString();
}

inline PoolSpec EcPool(const std::string& name, uint32_t k, uint32_t m, uint32_t block_size) {
  PoolSpec spec;
  spec.set_name(name);
  spec.set_redundancy(Redundancy::ERASURE_CODED_POOL);
  spec.set_data_chunks(k);
  spec.set_coding_chunks(m);
  spec.set_failure_domain(FailureDomain::DOMAIN_DATANODE);
  spec.set_pg_count(16);
  spec.set_block_size(block_size);
  return spec;
}

// Writes `data` in pieces that line up with nothing in particular, then closes (durable).
inline void WriteFile(client::Client& c, const std::string& volume, const std::string& path,
                      const std::vector<uint8_t>& data) {
  auto f = c.Open(volume, path, {.create = true, .truncate = true});
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  const size_t chunk = (3 << 20) + 4097;
  for (size_t off = 0; off < data.size(); off += chunk) {
    size_t n = std::min(chunk, data.size() - off);
    Status s = (*f)->Pwrite({data.data() + off, n}, off);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  Status s = (*f)->Close();
  ASSERT_TRUE(s.ok()) << volume << "/" << path << ": " << s.ToString();
}

// The whole file, read in 1.5 MiB requests; empty (with a test failure) on any error.
inline std::vector<uint8_t> ReadFile(client::Client& c, const std::string& volume,
                                     const std::string& path) {
  auto f = c.Open(volume, path);
  EXPECT_TRUE(f.ok()) << f.status().ToString();
  if (!f.ok()) return {};
  std::vector<uint8_t> out((*f)->size());
  const size_t chunk = 3 << 19;
  for (size_t off = 0; off < out.size(); off += chunk) {
    size_t want = std::min(chunk, out.size() - off);
    auto n = (*f)->Pread({out.data() + off, want}, off);
    EXPECT_TRUE(n.ok()) << volume << "/" << path << " at " << off << ": " << n.status().ToString();
    if (!n.ok()) return {};
    EXPECT_EQ(*n, want);
  }
  EXPECT_TRUE((*f)->Close().ok());
  return out;
}

// Index of the LocalCluster datanode serving `data_address`, or -1.
inline int DatanodeIndex(LocalCluster& cluster, const std::string& data_address) {
  for (int i = 0; i < cluster.datanode_count(); ++i) {
    if (cluster.datanode_data_address(i) == data_address) return i;
  }
  return -1;
}

}  // namespace granary::testing
