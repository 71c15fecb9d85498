#include "common/topology.h"

#include <fmt/format.h>
#include <unistd.h>

#include <array>

namespace granary {

Result<DomainLevel> ParseDomainLevel(std::string_view name) {
  if (name == "datanode") return DomainLevel::kDatanode;
  if (name == "host") return DomainLevel::kHost;
  if (name == "rack") return DomainLevel::kRack;
  if (name == "zone") return DomainLevel::kZone;
  return InvalidArgument(
      fmt::format("failure domain '{}': expected datanode, host, rack or zone", name));
}

std::string_view DomainLevelName(DomainLevel level) {
  static constexpr std::array<std::string_view, 4> kNames = {"datanode", "host", "rack", "zone"};
  return kNames[static_cast<size_t>(level)];
}

Result<Labels> ParseLabels(std::string_view text) {
  Labels labels;
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view pair = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return InvalidArgument(fmt::format("label '{}': expected key=value", pair));
    }
    labels[std::string(pair.substr(0, eq))] = std::string(pair.substr(eq + 1));
  }
  return labels;
}

std::string FormatLabels(const Labels& labels) {
  std::string out;
  for (const auto& [k, v] : labels) {
    if (!out.empty()) out += ',';
    out += k + "=" + v;
  }
  return out;
}

Location Location::FromLabels(const Labels& labels, std::string_view default_host) {
  Location loc;
  auto get = [&](const char* key) {
    auto it = labels.find(key);
    return it == labels.end() ? std::string() : it->second;
  };
  loc.zone = get("zone");
  loc.rack = get("rack");
  loc.host = get("host");
  if (loc.host.empty()) loc.host = std::string(default_host);
  std::string gpu = get("gpu");
  loc.gpu = gpu == "true" || gpu == "1" || gpu == "yes";
  return loc;
}

int Distance(const Location& reader, const Location& node) {
  if (reader.zone != node.zone) return 3;
  if (reader.rack != node.rack) return 2;
  if (reader.host != node.host) return 1;
  return 0;
}

std::string LocalHostname() {
  std::array<char, 256> buf{};
  if (gethostname(buf.data(), buf.size() - 1) != 0) return "localhost";
  return buf.data();
}

}  // namespace granary
