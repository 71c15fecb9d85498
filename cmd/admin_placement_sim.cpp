// `granary admin placement-sim`: maps a synthetic cluster with the placement library and prints
// balance before and after the balancer, and member movement when datanodes join or leave,
// against the optimum. Readable lines first, then one JSON object on the last line.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "cmd/process.h"
#include "cmd/roles.h"
#include "common/topology.h"
#include "placement/placement.h"
#include "placement/simulator.h"
#include "placement/synthetic_cluster.h"

namespace granary::cmd {

namespace {

int Fail(const Status& status) { return ReportFailure("admin placement-sim", status); }

Result<PoolSpec> SimulatedPool(const std::string& redundancy, const std::string& domain,
                               uint32_t pgs, uint64_t seed) {
  PoolSpec pool;
  // The pool id seeds the rendezvous draws, so --seed changes the whole mapping.
  pool.set_id(static_cast<uint32_t>(seed));
  pool.set_name("sim");
  pool.set_pg_count(pgs);
  unsigned a = 0, b = 0;
  if (std::sscanf(redundancy.c_str(), "replicated:%u", &a) == 1) {
    pool.set_redundancy(REPLICATED_POOL);
    pool.set_replicas(a);
  } else if (std::sscanf(redundancy.c_str(), "ec:%u+%u", &a, &b) == 2) {
    pool.set_redundancy(ERASURE_CODED_POOL);
    pool.set_data_chunks(a);
    pool.set_coding_chunks(b);
  } else {
    return InvalidArgument(
        fmt::format("redundancy '{}': expected replicated:N or ec:K+M", redundancy));
  }
  auto level = ParseDomainLevel(domain);
  GRANARY_TRY(level);
  static constexpr FailureDomain kDomains[] = {DOMAIN_DATANODE, DOMAIN_HOST, DOMAIN_RACK,
                                               DOMAIN_ZONE};
  pool.set_failure_domain(kDomains[static_cast<int>(*level)]);
  GRANARY_TRY(placement::PoolWidth(pool));
  return pool;
}

nlohmann::json StatsJson(const placement::BalanceStats& s) {
  return {{"max_over_mean", s.max_over_mean},
          {"min_over_mean", s.min_over_mean},
          {"stddev_over_mean", s.stddev_over_mean},
          {"overrides", s.overrides}};
}

nlohmann::json ChurnJson(const placement::ChurnFigures& f) {
  const double n = f.events > 0 ? f.events : 1;
  return {{"events", f.events},
          {"moved_avg", f.moved / n},
          {"optimal_avg", f.optimal / n},
          {"moved_over_optimal", f.ratio()},
          {"moved_elsewhere_avg", f.moved_elsewhere / n}};
}

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

int RunAdminPlacementSim(int argc, char** argv) {
  CLI::App app{"granary admin placement-sim: PG placement on a synthetic cluster"};
  uint32_t datanodes = 1000, pgs = 4096, per_host = 1, hosts_per_rack = 20, racks_per_zone = 0;
  uint32_t joins = 100, leaves = 100;
  uint64_t seed = 1;
  double tolerance = 0.05, weight_spread = 0;
  std::string redundancy = "replicated:3", domain = "host";
  app.add_option("--datanodes", datanodes, "datanodes in the cluster")
      ->check(CLI::Range(1u, 1u << 20));
  app.add_option("--pgs", pgs, "PGs in the pool")->check(CLI::Range(1u, 1u << 20));
  app.add_option("--redundancy", redundancy, "replicated:N | ec:K+M");
  app.add_option("--seed", seed, "seeds the mapping (pool id), weights and churn");
  app.add_option("--datanodes-per-host", per_host, "datanodes on each host");
  app.add_option("--hosts-per-rack", hosts_per_rack, "hosts in each rack");
  app.add_option("--racks-per-zone", racks_per_zone, "racks in each zone (0: one zone)");
  app.add_option("--failure-domain", domain, "datanode | host | rack | zone");
  app.add_option("--weight-spread", weight_spread,
                 "datanode weights uniform in [1, 1 + spread] (0: all equal)");
  app.add_option("--tolerance", tolerance, "balancer target: within this fraction of the share");
  app.add_option("--joins", joins, "datanode joins to average over");
  app.add_option("--leaves", leaves, "datanode leaves to average over");
  CLI11_PARSE(app, argc, argv);

  auto pool = SimulatedPool(redundancy, domain, pgs, seed);
  if (!pool.ok()) return Fail(pool.status());
  const std::vector<placement::Node> nodes = placement::synthetic::ClusterOfSize(
      datanodes, per_host, hosts_per_rack, racks_per_zone, weight_spread, seed);

  auto start = std::chrono::steady_clock::now();
  placement::UpdateOptions raw_only;
  raw_only.balance = false;
  auto raw = placement::PlacementMap::Build(nodes, {*pool}, raw_only);
  if (!raw.ok()) return Fail(raw.status());
  const double map_seconds = Seconds(start);
  auto before = raw->Stats(pool->id());
  if (!before.ok()) return Fail(before.status());

  start = std::chrono::steady_clock::now();
  auto balanced = raw->Balance(tolerance);
  if (!balanced.ok()) return Fail(balanced.status());
  const double balance_seconds = Seconds(start);
  auto after = balanced->Stats(pool->id());
  if (!after.ok()) return Fail(after.status());
  const placement::MoveCount balance_moves =
      placement::CountMoves(*raw, *balanced, pool->id(), placement::kNoNode, placement::kNoNode);

  placement::ChurnOptions churn;
  churn.seed = seed;
  churn.tolerance = tolerance;
  churn.kind = placement::Churn::kJoin;
  churn.events = joins;
  start = std::chrono::steady_clock::now();
  auto joined = placement::MeasureChurn(*balanced, churn);
  if (!joined.ok()) return Fail(joined.status());
  const double churn_seconds = joins > 0 ? Seconds(start) / joins : 0;
  churn.kind = placement::Churn::kLeave;
  churn.events = leaves;
  auto left = placement::MeasureChurn(*balanced, churn);
  if (!left.ok()) return Fail(left.status());
  const size_t bytes = balanced->Serialize().size();

  auto line = [](const char* what, const placement::BalanceStats& s) {
    std::printf("%-30s max/mean %.4f  min/mean %.4f  stddev/mean %.4f  overrides %llu\n", what,
                s.max_over_mean, s.min_over_mean, s.stddev_over_mean,
                static_cast<unsigned long long>(s.overrides));
  };
  auto churn_line = [](const char* what, const placement::ChurnFigures& f) {
    const double n = f.events > 0 ? f.events : 1;
    std::printf(
        "%-30s %u events: moved %.1f members/event, optimal %.1f, ratio %.4f, "
        "moved elsewhere %.2f/event\n",
        what, f.events, f.moved / n, f.optimal / n, f.ratio(), f.moved_elsewhere / n);
  };
  std::printf(
      "cluster: %u datanodes (%u per host, %u hosts per rack, %s), pool %s, %u PGs, "
      "failure domain %s, seed %llu\n",
      datanodes, per_host, hosts_per_rack,
      racks_per_zone == 0 ? "one zone" : fmt::format("{} racks per zone", racks_per_zone).c_str(),
      redundancy.c_str(), pgs, domain.c_str(), static_cast<unsigned long long>(seed));
  std::printf(
      "mapping: %.3f s; balancing: %.3f s, %llu members moved; one join (update + balance): "
      "%.3f s\n",
      map_seconds, balance_seconds, static_cast<unsigned long long>(balance_moves.moved),
      churn_seconds);
  line("before balancing:", *before);
  line("after balancing:", *after);
  churn_line("joins (update only):", joined->update);
  churn_line("joins (update + balance):", joined->rebalanced);
  churn_line("joins (raw rendezvous only):", joined->raw_rendezvous);
  churn_line("leaves (update only):", left->update);
  churn_line("leaves (update + balance):", left->rebalanced);
  churn_line("leaves (raw rendezvous only):", left->raw_rendezvous);
  std::printf("serialised map: %zu bytes\n", bytes);

  nlohmann::json out = {
      {"datanodes", datanodes},
      {"pgs", pgs},
      {"redundancy", redundancy},
      {"failure_domain", domain},
      {"seed", seed},
      {"datanodes_per_host", per_host},
      {"hosts_per_rack", hosts_per_rack},
      {"racks_per_zone", racks_per_zone},
      {"weight_spread", weight_spread},
      {"tolerance", tolerance},
      {"map_seconds", map_seconds},
      {"balance_seconds", balance_seconds},
      {"join_seconds", churn_seconds},
      {"balance_moves", balance_moves.moved},
      {"before", StatsJson(*before)},
      {"after", StatsJson(*after)},
      {"join", ChurnJson(joined->update)},
      {"join_with_balance", ChurnJson(joined->rebalanced)},
      {"leave", ChurnJson(left->update)},
      {"leave_with_balance", ChurnJson(left->rebalanced)},
      {"join_raw_rendezvous", ChurnJson(joined->raw_rendezvous)},
      {"leave_raw_rendezvous", ChurnJson(left->raw_rendezvous)},
      {"serialized_bytes", bytes},
  };
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace granary::cmd
