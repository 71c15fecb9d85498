// Metadata failover time (docs/metadata-ha.md): a group of three `granary metanode` processes on
// loopback with default timeouts; the leader is killed -9 `--kills` times and the time from the
// kill to the first create that succeeds afterwards is measured (a client issuing creates
// continuously, following the leader). The killed member is restarted and caught up before the
// next kill. Prints one JSON object with p50/p99/max.
//   build/bench/meta_failover_bench [--kills 20] [--dir /tmp]
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <thread>

#include "client/meta_client.h"
#include "common/log.h"
#include "tests/harness/meta_group.h"

namespace {
using Clock = std::chrono::steady_clock;
}

int main(int argc, char** argv) {
  CLI::App app{"metadata failover benchmark"};
  int kills = 20;
  int election_timeout_ms = 1000;
  std::string base = std::filesystem::temp_directory_path().string();
  app.add_option("--kills", kills, "leader kills")->capture_default_str();
  app.add_option("--election-timeout-ms", election_timeout_ms, "the members' election timeout")
      ->capture_default_str();
  app.add_option("--dir", base, "where the members' data goes")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  granary::InitLogging("bench", "warn");
  namespace gt = granary::testing;

  gt::TempDir dir;
  gt::MetaGroupOptions go;
  go.dir = dir.str();
  go.election_timeout_ms = election_timeout_ms;
  gt::MetaGroupProcesses group(go);
  try {
    group.Start();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  granary::client::MetaClientOptions o;
  o.address = group.addresses();
  o.deadline = std::chrono::seconds(60);
  o.attempt_timeout = std::chrono::milliseconds(500);
  auto mc = granary::client::MetaClient::Connect(o);
  if (!mc.ok()) return 1;
  auto volume = (*mc)->VolumeCreate("failover");
  if (!volume.ok()) {
    std::fprintf(stderr, "volume: %s\n", volume.status().ToString().c_str());
    return 1;
  }
  std::vector<double> ms;
  uint64_t name = 0;
  for (int k = 0; k < kills; ++k) {
    const int leader = group.WaitLeader();
    if (leader == 0) break;
    group.Kill(leader);
    const auto killed = Clock::now();
    while (!(*mc)->Create(volume->root_ino(), "f" + std::to_string(name++)).ok()) {
      if (Clock::now() - killed > std::chrono::seconds(60)) break;
    }
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - killed).count());
    group.Restart(leader);
    // Caught up before the next kill: the restarted member answers and has applied the log.
    gt::WaitUntil(
        [&] {
          auto lead = (*mc)->GroupStatus();
          auto s = (*mc)->GroupStatus(group.address(leader));
          return lead.ok() && s.ok() && s->applied_index() >= lead->commit_index();
        },
        std::chrono::seconds(30));
  }
  std::vector<double> sorted = ms;
  std::sort(sorted.begin(), sorted.end());
  auto pct = [&](double p) {
    if (sorted.empty()) return 0.0;
    size_t i = std::min(sorted.size() - 1, static_cast<size_t>(p * sorted.size()));
    return sorted[i];
  };
  nlohmann::json out;
  out["bench"] = "meta_failover";
  out["kills"] = ms.size();
  out["election_timeout_ms"] = election_timeout_ms;
  out["failover_ms_p50"] = pct(0.5);
  out["failover_ms_p99"] = pct(0.99);
  out["failover_ms_max"] = sorted.empty() ? 0.0 : sorted.back();
  out["failover_ms"] = ms;
  std::printf("%s\n", out.dump().c_str());
  return ms.size() == static_cast<size_t>(kills) ? 0 : 1;
}
