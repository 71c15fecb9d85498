#include "common/metrics.h"

#include <fmt/format.h>

#include <stdexcept>

namespace granary {

const std::vector<double>& Histogram::LatencyBounds() {
  static const std::vector<double> bounds{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                          0.005,   0.01,   0.025,   0.05,   0.1,   0.25,
                                          0.5,     1.0,    2.5,     10.0};
  return bounds;
}

Histogram::Histogram()
    : bounds_(LatencyBounds()), counts_(new std::atomic<uint64_t>[bounds_.size()]) {
  for (size_t i = 0; i < bounds_.size(); ++i) counts_[i] = 0;
}

void Histogram::Observe(double seconds) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (seconds <= bounds_[i]) counts_[i].fetch_add(1, std::memory_order_relaxed);
  }
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(static_cast<uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

double Histogram::sum() const { return sum_micros_.load(std::memory_order_relaxed) / 1e6; }

MetricsRegistry::Family& MetricsRegistry::FamilyLocked(const std::string& name,
                                                       const std::string& help, const char* type) {
  auto& f = families_[name];
  if (f.type.empty()) {
    f.type = type;
    f.help = help;
  } else if (f.type != type) {
    throw std::logic_error(fmt::format("metric {} registered as {} and {}", name, f.type, type));
  }
  return f;
}

Counter& MetricsRegistry::GetCounter(const std::string& name, const std::string& help,
                                     const std::string& labels) {
  std::lock_guard lock(mu_);
  auto& slot = FamilyLocked(name, help, "counter").counters[labels];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Gauge& MetricsRegistry::GetGauge(const std::string& name, const std::string& help,
                                 const std::string& labels) {
  std::lock_guard lock(mu_);
  auto& slot = FamilyLocked(name, help, "gauge").gauges[labels];
  if (!slot) slot = std::make_unique<Gauge>();
  return *slot;
}

Histogram& MetricsRegistry::GetHistogram(const std::string& name, const std::string& help,
                                         const std::string& labels) {
  std::lock_guard lock(mu_);
  auto& slot = FamilyLocked(name, help, "histogram").histograms[labels];
  if (!slot) slot = std::make_unique<Histogram>();
  return *slot;
}

namespace {
std::string WithLabels(const std::string& name, const std::string& labels,
                       const std::string& extra = "") {
  std::string all = labels;
  if (!extra.empty()) all += (all.empty() ? "" : ",") + extra;
  return all.empty() ? name : fmt::format("{}{{{}}}", name, all);
}
}  // namespace

std::string MetricsRegistry::Exposition() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, f.help, name, f.type);
    for (const auto& [labels, c] : f.counters) {
      out += fmt::format("{} {}\n", WithLabels(name, labels), c->value());
    }
    for (const auto& [labels, g] : f.gauges) {
      if (g->fractional()) {
        out += fmt::format("{} {:.6f}\n", WithLabels(name, labels), g->value() / 1e9);
      } else {
        out += fmt::format("{} {}\n", WithLabels(name, labels), g->value());
      }
    }
    for (const auto& [labels, h] : f.histograms) {
      for (size_t i = 0; i < h->bounds().size(); ++i) {
        out += fmt::format(
            "{} {}\n",
            WithLabels(name + "_bucket", labels, fmt::format("le=\"{}\"", h->bounds()[i])),
            h->bucket_count(i));
      }
      out +=
          fmt::format("{} {}\n", WithLabels(name + "_bucket", labels, "le=\"+Inf\""), h->count());
      out += fmt::format("{} {}\n", WithLabels(name + "_sum", labels), h->sum());
      out += fmt::format("{} {}\n", WithLabels(name + "_count", labels), h->count());
    }
  }
  return out;
}

MetricsRegistry& Metrics() {
  static MetricsRegistry* registry = new MetricsRegistry();  // never destroyed: used at exit
  return *registry;
}

}  // namespace granary
