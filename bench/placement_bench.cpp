// Mapping time of the placement library: a whole map (raw rendezvous only, and with the
// balancer), an Update after one datanode joins, serialisation, and per-PG lookups.
//   build/bench/placement_bench --benchmark_filter=Build
#include <benchmark/benchmark.h>

#include "placement/placement.h"
#include "placement/simulator.h"
#include "placement/synthetic_cluster.h"

namespace granary::placement {
namespace {

PoolSpec Pool(uint32_t pgs) {
  PoolSpec pool;
  pool.set_id(1);
  pool.set_name("bench");
  pool.set_redundancy(REPLICATED_POOL);
  pool.set_replicas(3);
  pool.set_failure_domain(DOMAIN_HOST);
  pool.set_pg_count(pgs);
  return pool;
}

// args: datanodes, PGs
void BM_BuildRaw(benchmark::State& state) {
  const auto nodes =
      synthetic::ClusterOfSize(static_cast<uint32_t>(state.range(0)), 4, 20, 0, 0, 1);
  const PoolSpec pool = Pool(static_cast<uint32_t>(state.range(1)));
  UpdateOptions options;
  options.balance = false;
  for (auto _ : state) {
    auto map = PlacementMap::Build(nodes, {pool}, options);
    benchmark::DoNotOptimize(map.ok());
  }
  state.SetItemsProcessed(state.iterations() * state.range(1));  // PGs mapped
}
BENCHMARK(BM_BuildRaw)->Args({1000, 16384})->Args({10000, 100000})->Unit(benchmark::kMillisecond);

void BM_BuildBalanced(benchmark::State& state) {
  const auto nodes =
      synthetic::ClusterOfSize(static_cast<uint32_t>(state.range(0)), 4, 20, 0, 0, 1);
  const PoolSpec pool = Pool(static_cast<uint32_t>(state.range(1)));
  for (auto _ : state) {
    auto map = PlacementMap::Build(nodes, {pool});
    benchmark::DoNotOptimize(map.ok());
  }
  state.SetItemsProcessed(state.iterations() * state.range(1));
}
BENCHMARK(BM_BuildBalanced)
    ->Args({1000, 16384})
    ->Args({10000, 100000})
    ->Unit(benchmark::kMillisecond);

void BM_UpdateOneJoin(benchmark::State& state) {
  auto nodes = synthetic::ClusterOfSize(static_cast<uint32_t>(state.range(0)), 4, 20, 0, 0, 1);
  auto base = PlacementMap::Build(nodes, {Pool(static_cast<uint32_t>(state.range(1)))});
  Node joiner = nodes.back();
  joiner.id += 1;
  joiner.location.host = "joined";
  nodes.push_back(joiner);
  UpdateOptions options;
  options.balance = false;
  for (auto _ : state) {
    auto map = base->Update(nodes, options);
    benchmark::DoNotOptimize(map.ok());
  }
}
BENCHMARK(BM_UpdateOneJoin)
    ->Args({1000, 16384})
    ->Args({10000, 100000})
    ->Unit(benchmark::kMillisecond);

void BM_SerializeDeserialize(benchmark::State& state) {
  auto map = PlacementMap::Build(synthetic::ClusterOfSize(10000, 4, 20, 0, 0, 1), {Pool(100000)});
  for (auto _ : state) {
    auto back = PlacementMap::Deserialize(map->Serialize());
    benchmark::DoNotOptimize(back.ok());
  }
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(map->Serialize().size()));
}
BENCHMARK(BM_SerializeDeserialize)->Unit(benchmark::kMillisecond);

void BM_MembersAndNearest(benchmark::State& state) {
  auto map = PlacementMap::Build(synthetic::ClusterOfSize(10000, 4, 20, 0, 0, 1), {Pool(100000)});
  const Location reader{"zone0", "rack3", "host70", true};
  PgIndex pg = 0;
  for (auto _ : state) {
    auto members = map->Members(1, pg);
    auto ordered = map->OrderByDistance(*members, reader);
    benchmark::DoNotOptimize(ordered.data());
    pg = (pg + 7919) % 100000;
  }
}
BENCHMARK(BM_MembersAndNearest);

}  // namespace
}  // namespace granary::placement
