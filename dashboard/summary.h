// `granary admin status`: the dashboard's at-a-glance view in a terminal, rendered from the same
// status document (status.h) the page reads.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace granary::dashboard {

// A few key=value lines (docs/dashboard.md "granary admin status"): status, datanodes, PGs and
// repair, scrub, metadata group, I/O of the last minute, one line per pool, volumes and
// buckets, then each problem.
std::string RenderSummary(const nlohmann::json& status);

// 1536 -> "1.5KiB" (IEC, one decimal below 10, none above), as the page prints sizes.
std::string HumanBytes(double bytes);

// The dashboard's URL from the status document's metadata members (the leader's first).
std::string DashboardUrl(const nlohmann::json& status);

}  // namespace granary::dashboard
