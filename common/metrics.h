// A small metrics registry with Prometheus text exposition (served on /metrics by AdminServer).
// Metrics are created once (at start-up) and updated lock-free.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace granary {

class Counter {
 public:
  void Add(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void Set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void Add(int64_t d) { value_.fetch_add(d, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }
  // A fractional value (a ratio in [0, 1]), kept to 1e-9 and exposed as a decimal. A gauge is
  // either integral or fractional, decided by its first Set/SetFraction.
  void SetFraction(double v) {
    fractional_.store(true, std::memory_order_relaxed);
    value_.store(static_cast<int64_t>(v * 1e9), std::memory_order_relaxed);
  }
  bool fractional() const { return fractional_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
  std::atomic<bool> fractional_{false};
};

// Cumulative histogram of seconds (latencies); fixed buckets from 50 µs to 10 s.
class Histogram {
 public:
  Histogram();
  // The bucket upper bounds (seconds) every Histogram uses: 50 µs to 10 s, then +Inf.
  static const std::vector<double>& LatencyBounds();
  void Observe(double seconds);
  const std::vector<double>& bounds() const { return bounds_; }
  uint64_t bucket_count(size_t i) const { return counts_[i].load(std::memory_order_relaxed); }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;
  std::atomic<uint64_t> count_{0};
  std::atomic<uint64_t> sum_micros_{0};
};

class MetricsRegistry {
 public:
  // The same (name, labels) returns the same metric. `labels` is Prometheus label text without
  // braces, e.g. `op="write"`. Names follow Prometheus rules (granary_…_total for counters).
  Counter& GetCounter(const std::string& name, const std::string& help,
                      const std::string& labels = "");
  Gauge& GetGauge(const std::string& name, const std::string& help, const std::string& labels = "");
  Histogram& GetHistogram(const std::string& name, const std::string& help,
                          const std::string& labels = "");

  // Prometheus text format 0.0.4.
  std::string Exposition() const;

 private:
  struct Family {
    std::string help;
    std::string type;
    std::map<std::string, std::unique_ptr<Counter>> counters;
    std::map<std::string, std::unique_ptr<Gauge>> gauges;
    std::map<std::string, std::unique_ptr<Histogram>> histograms;
  };
  Family& FamilyLocked(const std::string& name, const std::string& help, const char* type);

  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
};

// The process-wide registry every role exposes.
MetricsRegistry& Metrics();

}  // namespace granary
