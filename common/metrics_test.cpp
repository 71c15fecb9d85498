#include "common/metrics.h"

#include <gtest/gtest.h>

namespace granary {
namespace {

TEST(MetricsTest, ExposesCountersGaugesAndHistogramsInPrometheusText) {
  MetricsRegistry r;
  r.GetCounter("granary_ops_total", "Operations.", "op=\"write\"").Add(3);
  r.GetCounter("granary_ops_total", "Operations.", "op=\"write\"").Add(2);
  r.GetGauge("granary_queue_depth", "Queued requests.").Set(7);
  r.GetHistogram("granary_latency_seconds", "Latency.").Observe(0.003);
  std::string text = r.Exposition();
  EXPECT_NE(text.find("# TYPE granary_ops_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("granary_ops_total{op=\"write\"} 5\n"), std::string::npos);
  EXPECT_NE(text.find("granary_queue_depth 7\n"), std::string::npos);
  EXPECT_NE(text.find("granary_latency_seconds_bucket{le=\"0.0025\"} 0\n"), std::string::npos);
  EXPECT_NE(text.find("granary_latency_seconds_bucket{le=\"0.005\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("granary_latency_seconds_count 1\n"), std::string::npos);
}

TEST(MetricsTest, OneNameCannotHaveTwoTypes) {
  MetricsRegistry r;
  r.GetCounter("x_total", "x");
  EXPECT_THROW(r.GetGauge("x_total", "x"), std::logic_error);
}

}  // namespace
}  // namespace granary
