#include "dashboard/summary.h"

#include <fmt/format.h>

#include <cmath>

namespace granary::dashboard {

using nlohmann::json;

std::string HumanBytes(double bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int unit = 0;
  while (std::fabs(bytes) >= 1024 && unit < 6) {
    bytes /= 1024;
    ++unit;
  }
  if (unit == 0) return fmt::format("{:.0f}B", bytes);
  return std::fabs(bytes) < 10 ? fmt::format("{:.1f}{}", bytes, kUnits[unit])
                               : fmt::format("{:.0f}{}", bytes, kUnits[unit]);
}

std::string DashboardUrl(const json& status) {
  const json& members = status["meta"].value("members", json::array());
  std::string any;
  for (const json& m : members) {
    const std::string admin = m.value("admin_address", "");
    if (admin.empty()) continue;
    if (m.value("role", "") == "leader") return "http://" + admin + "/";
    if (any.empty()) any = "http://" + admin + "/";
  }
  return any.empty() ? "-" : any;
}

namespace {

std::string Ms(const json& v) {
  return v.is_number() ? fmt::format("{:.2f}", v.get<double>()) : "-";
}

}  // namespace

std::string RenderSummary(const json& s) {
  std::string out;
  const json& health = s["health"];
  const json& sum = s["summary"];
  const json& repair = s["repair"];
  out += fmt::format("status={} redundancy={} epoch={} dashboard={}\n",
                     health["state"].get<std::string>(), health["redundancy"].get<std::string>(),
                     repair["epoch"].get<uint64_t>(), DashboardUrl(s));
  out += fmt::format("datanodes total={} up={} down={} out={} raw={} raw-used={}\n",
                     sum["datanodes"].get<uint64_t>(), sum["up"].get<uint64_t>(),
                     sum["down"].get<uint64_t>(), sum["out"].get<uint64_t>(),
                     HumanBytes(sum["raw_bytes"].get<double>()),
                     HumanBytes(sum["raw_used_bytes"].get<double>()));
  out += fmt::format(
      "pgs total={} degraded={} moving={} copies-bad={} blocks-to-repair={} nodes-repairing={}\n",
      repair["pgs_total"].get<uint64_t>(), repair["pgs_degraded"].get<uint64_t>(),
      repair["pgs_moving"].get<uint64_t>(), repair["copies_bad"].get<uint64_t>(),
      repair["blocks_to_repair"].get<uint64_t>(), repair["nodes_repairing"].get<uint64_t>());
  const json& scrub = s["scrub"];
  out += fmt::format("scrub nodes={} pass-progress={:.1f}% nodes-behind={}\n",
                     scrub["nodes"].get<int>(), scrub["pass_progress"].get<double>(),
                     scrub["nodes_behind"].get<int>());
  const json& meta = s["meta"];
  if (!meta.value("reachable", false)) {
    out += fmt::format("meta error=\"{}\"\n", meta.value("error", ""));
  } else if (!meta.value("replicated", false)) {
    out += "meta members=1 leader=alone\n";
  } else {
    int up = 0;
    std::string leader = "none";
    uint64_t term = 0;
    for (const json& m : meta["members"]) {
      up += m.value("role", "down") != "down";
      if (m.value("role", "") == "leader") {
        leader = std::to_string(m["id"].get<uint64_t>());
        term = m["term"].get<uint64_t>();
      }
    }
    out += fmt::format("meta members={} up={} leader={} term={}\n", meta["members"].size(), up,
                       leader, term);
  }
  const json& io = s["io"];
  if (io.is_object()) {
    out += fmt::format(
        "io read={}/s write={}/s read-iops={:.1f} write-iops={:.1f} read-p99-ms={} "
        "write-p99-ms={} seconds={:.0f}\n",
        HumanBytes(io["read_Bps"].get<double>()), HumanBytes(io["write_Bps"].get<double>()),
        io["read_iops"].get<double>(), io["write_iops"].get<double>(), Ms(io["read_p99_ms"]),
        Ms(io["write_p99_ms"]), io["seconds"].get<double>());
  } else {
    out += fmt::format("io unknown ({})\n", s.value("io_error", ""));
  }
  for (const json& p : s["pools"]) {
    out += fmt::format(
        "pool {} redundancy={} failure-domain={} locality={} pgs={} degraded={} placed={} "
        "usable={} used={} volumes={}\n",
        p["name"].get<std::string>(), p["redundancy"].get<std::string>(),
        p["failure_domain"].get<std::string>(), p["locality"].get<std::string>(),
        p["pgs"].get<uint64_t>(), p["pgs_degraded"].get<uint64_t>(),
        p["placed"].get<bool>() ? "yes" : "no", HumanBytes(p["usable_bytes"].get<double>()),
        HumanBytes(p["used_bytes"].get<double>()), p["volumes"].get<uint64_t>());
  }
  out += fmt::format("volumes={} buckets={} used={}\n", sum["volumes"].get<uint64_t>(),
                     sum["buckets"].get<uint64_t>(),
                     HumanBytes(sum["logical_used_bytes"].get<double>()));
  for (const json& p : health["problems"]) {
    out += fmt::format("problem {}: {}\n", p["severity"].get<std::string>(),
                       p["text"].get<std::string>());
  }
  return out;
}

}  // namespace granary::dashboard
