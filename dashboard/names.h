// How `granary admin` and the dashboard name enum values and pool shapes: one spelling, so a
// figure on the page reads exactly as the CLI prints it.
#pragma once

#include <fmt/format.h>

#include <map>
#include <string>
#include <string_view>

#include "granary/meta.pb.h"

namespace granary::dashboard {

inline std::string_view StateName(NodeState state) {
  switch (state) {
    case UP:
      return "up";
    case DOWN:
      return "down";
    case OUT:
      return "out";
    default:
      return "unknown";
  }
}

inline std::string Redundancy(const PoolSpec& p) {
  if (p.redundancy() == ERASURE_CODED_POOL) {
    return fmt::format("ec:{}+{}", p.data_chunks(), p.coding_chunks());
  }
  return fmt::format("replicated:{}", p.replicas());
}

inline std::string_view DomainName(FailureDomain d) {
  switch (d) {
    case DOMAIN_HOST:
      return "host";
    case DOMAIN_RACK:
      return "rack";
    case DOMAIN_ZONE:
      return "zone";
    default:
      return "datanode";
  }
}

inline std::string_view LocalityName(Locality l) {
  switch (l) {
    case WRITER_LOCAL:
      return "writer-local";
    case PREFER_GPU:
      return "prefer-gpu";
    default:
      return "none";
  }
}

// "k=v,k2=v2" in key order, "-" when there are none (`granary admin nodes`).
inline std::string LabelText(const google::protobuf::Map<std::string, std::string>& labels) {
  std::map<std::string, std::string> sorted(labels.begin(), labels.end());
  std::string out;
  for (const auto& [k, v] : sorted) out += fmt::format("{}{}={}", out.empty() ? "" : ",", k, v);
  return out.empty() ? "-" : out;
}

}  // namespace granary::dashboard
