// How `granary admin` and the dashboard name enum values and pool shapes: one spelling, so a
// figure on the page reads exactly as the CLI prints it.
#pragma once

#include <fmt/format.h>

#include <algorithm>
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

// The scrub line's sums over every datanode (`granary admin repair`, the dashboard).
struct ScrubTotals {
  uint64_t pass_bytes = 0;
  uint64_t done_bytes = 0;
  int64_t oldest_unscrubbed_ms = 0;
  int64_t period_ms = 0;
  int behind = 0;
  // Share of the current passes done, in percent (100 with nothing to scrub).
  double progress() const {
    return pass_bytes == 0 ? 100.0 : 100.0 * static_cast<double>(done_bytes) / pass_bytes;
  }
};

inline ScrubTotals SumScrub(const ClusterStatusReply& r) {
  ScrubTotals t;
  for (const NodeScrub& n : r.scrub()) {
    t.pass_bytes += n.scrub().pass_bytes();
    t.done_bytes += std::min(n.scrub().done_bytes(), n.scrub().pass_bytes());
    t.oldest_unscrubbed_ms = std::max(t.oldest_unscrubbed_ms, n.scrub().oldest_unscrubbed_ms());
    t.period_ms = std::max(t.period_ms, n.scrub().period_ms());
    t.behind += n.scrub().behind() ? 1 : 0;
  }
  return t;
}

}  // namespace granary::dashboard
