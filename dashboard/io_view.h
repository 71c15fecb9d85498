// The data path's throughput, IOPS and latency percentiles from the leader's history
// (metanode/io_history.h) as the dashboard's charts and `granary admin status` show them.
#pragma once

#include <nlohmann/json.hpp>
#include <span>

#include "granary/meta.pb.h"

namespace granary::dashboard {

// The q-quantile (0 < q < 1), in seconds, of requests counted per latency bucket (`counts`:
// one per bound, then +Inf), interpolated linearly inside the bucket as Prometheus'
// histogram_quantile does. 0 without requests; the last bound when q falls past it.
double Quantile(double q, std::span<const double> bounds, std::span<const double> counts);

// {"step_ms", "t": [slot end, s since the epoch], "read_Bps", "write_Bps", "read_iops",
//  "write_iops", "read_p50_ms", "read_p99_ms", "write_p50_ms", "write_p99_ms"} with null where a
// slot is missing (a gap, not a zero), from `since_ms` on.
nlohmann::json IoSeries(const IoHistoryReply& history);

// The last `window_ms` summed (the at-a-glance figures): bytes and requests per second,
// p50/p99 in ms; "seconds" says how much history there was.
nlohmann::json IoRecent(const IoHistoryReply& history, int64_t window_ms = 60000);

}  // namespace granary::dashboard
