#include "dashboard/io_view.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace granary::dashboard {

using nlohmann::json;

double Quantile(double q, std::span<const double> bounds, std::span<const double> counts) {
  double total = 0;
  for (double c : counts) total += c;
  if (total <= 0 || bounds.empty()) return 0;
  const double rank = q * total;
  double below = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (below + counts[i] >= rank && counts[i] > 0) {
      if (i >= bounds.size()) return bounds.back();  // the +Inf bucket
      const double lower = i == 0 ? 0.0 : bounds[i - 1];
      return lower + (bounds[i] - lower) * (rank - below) / counts[i];
    }
    below += counts[i];
  }
  return bounds.back();
}

namespace {

std::vector<double> Vec(const google::protobuf::RepeatedField<double>& f) {
  return {f.begin(), f.end()};
}

double Round(double v, double unit) { return std::round(v / unit) * unit; }

}  // namespace

json IoSeries(const IoHistoryReply& h) {
  const double step_s = h.step_ms() / 1000.0;
  const std::vector<double> bounds = Vec(h.latency_bounds());
  json t = json::array(), rb = json::array(), wb = json::array(), ri = json::array(),
       wi = json::array(), r50 = json::array(), r99 = json::array(), w50 = json::array(),
       w99 = json::array();
  int64_t expected = h.slots_size() > 0 ? h.slots(0).start_ms() : 0;
  for (const IoSlot& s : h.slots()) {
    // A missing slot (no heartbeat covered it: a new leader, no datanode) is a gap.
    for (; expected < s.start_ms(); expected += h.step_ms()) {
      t.push_back((expected + h.step_ms()) / 1000);
      for (json* a : {&rb, &wb, &ri, &wi, &r50, &r99, &w50, &w99}) a->push_back(nullptr);
    }
    expected = s.start_ms() + h.step_ms();
    t.push_back((s.start_ms() + h.step_ms()) / 1000);
    rb.push_back(Round(s.read_bytes() / step_s, 1));
    wb.push_back(Round(s.write_bytes() / step_s, 1));
    ri.push_back(Round(s.read_ops() / step_s, 0.01));
    wi.push_back(Round(s.write_ops() / step_s, 0.01));
    auto ms = [&](double q, const google::protobuf::RepeatedField<double>& counts) -> json {
      std::vector<double> c = Vec(counts);
      double total = 0;
      for (double v : c) total += v;
      if (total < 0.5) return nullptr;  // no requests: no latency, rather than 0 ms
      return Round(Quantile(q, bounds, c) * 1000, 0.001);
    };
    r50.push_back(ms(0.5, s.read_latency()));
    r99.push_back(ms(0.99, s.read_latency()));
    w50.push_back(ms(0.5, s.write_latency()));
    w99.push_back(ms(0.99, s.write_latency()));
  }
  return {{"step_ms", h.step_ms()}, {"t", t},
          {"read_Bps", rb},         {"write_Bps", wb},
          {"read_iops", ri},        {"write_iops", wi},
          {"read_p50_ms", r50},     {"read_p99_ms", r99},
          {"write_p50_ms", w50},    {"write_p99_ms", w99}};
}

json IoRecent(const IoHistoryReply& h, int64_t window_ms) {
  const std::vector<double> bounds = Vec(h.latency_bounds());
  double read_bytes = 0, write_bytes = 0, read_ops = 0, write_ops = 0, errors = 0;
  std::vector<double> read_latency(bounds.size() + 1, 0.0), write_latency(bounds.size() + 1, 0.0);
  int64_t covered = 0;
  for (const IoSlot& s : h.slots()) {
    if (s.start_ms() + h.step_ms() <= h.now_ms() - window_ms - h.step_ms()) continue;
    covered += h.step_ms();
    read_bytes += s.read_bytes();
    write_bytes += s.write_bytes();
    read_ops += s.read_ops();
    write_ops += s.write_ops();
    errors += s.errors();
    for (int i = 0; i < s.read_latency_size() && i < static_cast<int>(read_latency.size()); ++i)
      read_latency[i] += s.read_latency(i);
    for (int i = 0; i < s.write_latency_size() && i < static_cast<int>(write_latency.size()); ++i)
      write_latency[i] += s.write_latency(i);
  }
  const double seconds = covered / 1000.0;
  auto per_s = [&](double v, double unit) { return seconds > 0 ? Round(v / seconds, unit) : 0.0; };
  auto ms = [&](double q, const std::vector<double>& c) -> json {
    double total = 0;
    for (double v : c) total += v;
    if (total < 0.5) return nullptr;
    return Round(Quantile(q, bounds, c) * 1000, 0.001);
  };
  return {{"seconds", seconds},
          {"read_Bps", per_s(read_bytes, 1)},
          {"write_Bps", per_s(write_bytes, 1)},
          {"read_iops", per_s(read_ops, 0.01)},
          {"write_iops", per_s(write_ops, 0.01)},
          {"errors_per_s", per_s(errors, 0.001)},
          {"read_p50_ms", ms(0.5, read_latency)},
          {"read_p99_ms", ms(0.99, read_latency)},
          {"write_p50_ms", ms(0.5, write_latency)},
          {"write_p99_ms", ms(0.99, write_latency)}};
}

}  // namespace granary::dashboard
