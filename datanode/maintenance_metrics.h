// The maintenance worker's metrics (internal to datanode/: maintenance.cpp, suspects.cpp,
// scrub.cpp).
#pragma once

#include <fmt/format.h>

#include "common/metrics.h"
#include "granary/meta.pb.h"

namespace granary::datanode {

struct MaintenanceMetrics {
  Counter& repaired_blocks = Metrics().GetCounter("granary_datanode_repaired_blocks_total",
                                                  "Blocks rebuilt on this node by repair");
  Counter& repaired_bytes = Metrics().GetCounter("granary_datanode_repaired_bytes_total",
                                                 "Bytes rebuilt on this node by repair");
  Counter& scrubbed_bytes =
      Metrics().GetCounter("granary_datanode_scrubbed_bytes_total", "Bytes verified by scrub");
  Counter& scrub_corrupt = Metrics().GetCounter("granary_datanode_scrub_corrupt_total",
                                                "Corrupt block copies found by scrub");
  Counter& reclaimed =
      Metrics().GetCounter("granary_datanode_reclaimed_blocks_total",
                           "Blocks deleted because their slice is dead or this node left their PG");
  Gauge& reconciled_epoch = Metrics().GetGauge(
      "granary_datanode_reconciled_epoch",
      "Map epoch of the last completed reconcile (dead slices and left PGs dropped)");
  Gauge& pending =
      Metrics().GetGauge("granary_datanode_repair_pending_blocks", "Blocks this node lacks");
  Gauge& suspects =
      Metrics().GetGauge("granary_datanode_suspect_copies",
                         "Copies on this node reported corrupt and not yet verified or replaced");
  Gauge& quarantined = Metrics().GetGauge("granary_datanode_quarantined_copies",
                                          "Copies this node refuses to serve until settled");
  Gauge& scrub_pass_bytes = Metrics().GetGauge("granary_datanode_scrub_pass_bytes",
                                               "Bytes the running scrub pass verifies");
  Gauge& scrub_done_bytes = Metrics().GetGauge("granary_datanode_scrub_pass_done_bytes",
                                               "Bytes the running scrub pass has verified");
  Gauge& scrub_oldest = Metrics().GetGauge(
      "granary_datanode_scrub_oldest_unscrubbed_seconds",
      "Age of the block verified longest ago (estimate: passes are paced evenly)");
  Gauge& scrub_behind = Metrics().GetGauge(
      "granary_datanode_scrub_behind",
      "1 when the scrub pass cannot finish within its period at the scrub throttle");
  Counter& warm_bytes =
      Metrics().GetCounter("granary_datanode_warm_bytes_total",
                           "Bytes copied here as warm-up copies (docs/locality.md)");
  Counter& warm_slices = Metrics().GetCounter("granary_datanode_warm_slices_total",
                                              "Slices copied here as warm-up copies and reported");
  Counter& scrub_passes =
      Metrics().GetCounter("granary_datanode_scrub_passes_total", "Scrub passes completed");
  Counter& Settled(SuspectOutcome outcome) {
    const char* name = outcome == OUTCOME_REPLACED        ? "replaced"
                       : outcome == OUTCOME_VERIFIED_GOOD ? "verified_good"
                                                          : "not_held";
    return Metrics().GetCounter("granary_datanode_suspects_settled_total",
                                "Suspect copies this node settled, by outcome",
                                fmt::format("outcome=\"{}\"", name));
  }
};

inline MaintenanceMetrics& M() {
  static MaintenanceMetrics m;
  return m;
}

}  // namespace granary::datanode
