#include "metanode/io_history.h"

#include <algorithm>

#include "common/metrics.h"

namespace granary::metanode {

namespace {

// Times are milliseconds since the epoch: positive.
int64_t FloorTo(int64_t t, int64_t step) { return t - t % step; }

// Non-cumulative bucket counts of the difference between two cumulative latency vectors.
std::vector<double> BucketDeltas(const google::protobuf::RepeatedField<uint64_t>& before,
                                 const google::protobuf::RepeatedField<uint64_t>& after,
                                 size_t buckets) {
  std::vector<double> out(buckets, 0.0);
  if (static_cast<size_t>(after.size()) != buckets || before.size() != after.size()) return out;
  double previous = 0;
  for (size_t i = 0; i < buckets; ++i) {
    const double cumulative = static_cast<double>(after[i] - before[i]);
    out[i] = std::max(0.0, cumulative - previous);
    previous = cumulative;
  }
  return out;
}

bool WentBack(const IoCounters& before, const IoCounters& after) {
  if (after.read_ops() < before.read_ops() || after.write_ops() < before.write_ops() ||
      after.read_bytes() < before.read_bytes() || after.write_bytes() < before.write_bytes() ||
      after.errors() < before.errors()) {
    return true;
  }
  if (after.read_latency_size() != before.read_latency_size() ||
      after.write_latency_size() != before.write_latency_size()) {
    return true;
  }
  for (int i = 0; i < after.read_latency_size(); ++i) {
    if (after.read_latency(i) < before.read_latency(i)) return true;
  }
  for (int i = 0; i < after.write_latency_size(); ++i) {
    if (after.write_latency(i) < before.write_latency(i)) return true;
  }
  return false;
}

}  // namespace

IoHistory::IoHistory(IoHistoryOptions options)
    : options_(options), buckets_(Histogram::LatencyBounds().size() + 1), ring_(options.slots) {}

IoHistory::Slot& IoHistory::SlotFor(int64_t start_ms) {
  const size_t index = static_cast<size_t>((start_ms / options_.step_ms) % ring_.size());
  Slot& slot = ring_[index];
  if (slot.start_ms != start_ms) {
    slot = Slot{};
    slot.start_ms = start_ms;
    slot.read_latency.assign(buckets_, 0.0);
    slot.write_latency.assign(buckets_, 0.0);
  }
  return slot;
}

void IoHistory::Spread(const IoCounters& before, const IoCounters& after, int64_t from_ms,
                       int64_t to_ms) {
  const double read_ops = static_cast<double>(after.read_ops() - before.read_ops());
  const double write_ops = static_cast<double>(after.write_ops() - before.write_ops());
  const double read_bytes = static_cast<double>(after.read_bytes() - before.read_bytes());
  const double write_bytes = static_cast<double>(after.write_bytes() - before.write_bytes());
  const double errors = static_cast<double>(after.errors() - before.errors());
  const auto read_latency = BucketDeltas(before.read_latency(), after.read_latency(), buckets_);
  const auto write_latency = BucketDeltas(before.write_latency(), after.write_latency(), buckets_);
  const int64_t span = options_.step_ms * static_cast<int64_t>(ring_.size());
  if (to_ms <= from_ms) from_ms = to_ms - 1;  // clock stepped back: all into the last slot
  const double whole = static_cast<double>(to_ms - from_ms);
  // What happened before the ring's hour is dropped with its share.
  const int64_t begin = std::max(from_ms, to_ms - span);
  for (int64_t start = FloorTo(begin, options_.step_ms); start < to_ms; start += options_.step_ms) {
    const int64_t overlap = std::min(to_ms, start + options_.step_ms) - std::max(begin, start);
    if (overlap <= 0) continue;
    const double f = static_cast<double>(overlap) / whole;
    Slot& slot = SlotFor(start);
    slot.read_ops += read_ops * f;
    slot.write_ops += write_ops * f;
    slot.read_bytes += read_bytes * f;
    slot.write_bytes += write_bytes * f;
    slot.errors += errors * f;
    for (size_t i = 0; i < buckets_; ++i) {
      slot.read_latency[i] += read_latency[i] * f;
      slot.write_latency[i] += write_latency[i] * f;
    }
  }
}

void IoHistory::Record(uint32_t node_id, const IoCounters& counters, int64_t now_ms) {
  std::lock_guard lock(mu_);
  Node& node = nodes_[node_id];
  if (!node.recent.empty()) {
    const Seen& last = node.recent.back();
    if (WentBack(last.counters, counters)) {
      node.recent.clear();  // restarted: a new baseline
    } else {
      Spread(last.counters, counters, last.at_ms, now_ms);
    }
  }
  node.recent.push_back({now_ms, counters});
  // Keep one heartbeat older than the rate window, so the window is always covered.
  while (node.recent.size() > 2 && node.recent[1].at_ms <= now_ms - options_.rate_window_ms) {
    node.recent.pop_front();
  }
}

IoHistoryReply IoHistory::Snapshot(int64_t since_ms, int64_t now_ms) const {
  std::lock_guard lock(mu_);
  IoHistoryReply reply;
  reply.set_now_ms(now_ms);
  reply.set_step_ms(options_.step_ms);
  for (double b : Histogram::LatencyBounds()) reply.add_latency_bounds(b);
  // A slot is complete once every node heard from recently has reported past its end.
  int64_t complete_until = now_ms;
  for (const auto& [id, node] : nodes_) {
    if (node.recent.empty()) continue;
    const Seen& last = node.recent.back();
    if (last.at_ms < now_ms - options_.silent_ms) continue;
    complete_until = std::min(complete_until, last.at_ms);
  }
  std::vector<const Slot*> slots;
  for (const Slot& s : ring_) {
    if (s.start_ms < 0 || s.start_ms < since_ms) continue;
    if (s.start_ms + options_.step_ms > complete_until) continue;
    if (s.start_ms < now_ms - options_.step_ms * static_cast<int64_t>(ring_.size())) continue;
    slots.push_back(&s);
  }
  std::sort(slots.begin(), slots.end(),
            [](const Slot* a, const Slot* b) { return a->start_ms < b->start_ms; });
  for (const Slot* s : slots) {
    IoSlot& out = *reply.add_slots();
    out.set_start_ms(s->start_ms);
    out.set_read_ops(s->read_ops);
    out.set_write_ops(s->write_ops);
    out.set_read_bytes(s->read_bytes);
    out.set_write_bytes(s->write_bytes);
    out.set_errors(s->errors);
    for (double v : s->read_latency) out.add_read_latency(v);
    for (double v : s->write_latency) out.add_write_latency(v);
  }
  for (const auto& [id, node] : nodes_) {
    NodeIoRate& rate = *reply.add_nodes();
    rate.set_node_id(id);
    if (node.recent.size() < 2) continue;
    const Seen& first = node.recent.front();
    const Seen& last = node.recent.back();
    // A node that stopped reporting serves nothing now, as far as anyone can tell.
    if (last.at_ms < now_ms - options_.silent_ms || last.at_ms <= first.at_ms) continue;
    const double seconds = (last.at_ms - first.at_ms) / 1000.0;
    rate.set_read_bytes_per_s((last.counters.read_bytes() - first.counters.read_bytes()) / seconds);
    rate.set_write_bytes_per_s((last.counters.write_bytes() - first.counters.write_bytes()) /
                               seconds);
    rate.set_read_ops_per_s((last.counters.read_ops() - first.counters.read_ops()) / seconds);
    rate.set_write_ops_per_s((last.counters.write_ops() - first.counters.write_ops()) / seconds);
  }
  return reply;
}

}  // namespace granary::metanode
