// A linearizability checker for a single register (Wing & Gong's search with Lowe's memoisation,
// as Porcupine and Knossos do it): is there a total order of the operations, consistent with
// their real-time order, in which every read returns the latest write? Writes carry unique
// values. An operation whose outcome is unknown (timed out, connection lost) never "returns":
// it may take effect at any point after its call, or not at all.
#pragma once

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <unordered_set>
#include <vector>

namespace granary::testing {

struct RegisterOp {
  bool write = false;
  std::string value;  // written, or read ("" = the register was never written)
  int64_t call_ns = 0;
  int64_t return_ns = std::numeric_limits<int64_t>::max();  // max = outcome unknown
};

class RegisterHistory {
 public:
  void Add(RegisterOp op) { ops_.push_back(std::move(op)); }
  size_t size() const { return ops_.size(); }

  // True when some linearization exists. Reads with an unknown outcome observed nothing and
  // are dropped; writes with an unknown outcome are kept (they may have happened).
  bool Linearizable(const std::string& initial = "") const {
    std::vector<RegisterOp> ops;
    for (const auto& op : ops_) {
      if (!op.write && op.return_ns == std::numeric_limits<int64_t>::max()) continue;
      ops.push_back(op);
    }
    const size_t n = ops.size();
    // Events in time order; a call sorts before a return at the same instant.
    struct Event {
      int64_t t;
      bool is_return;
      size_t op;
    };
    std::vector<Event> events;
    for (size_t i = 0; i < n; ++i) {
      events.push_back({ops[i].call_ns, false, i});
      events.push_back({ops[i].return_ns, true, i});
    }
    std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
      if (a.t != b.t) return a.t < b.t;
      return !a.is_return && b.is_return;
    });
    // A doubly linked list of events, so linearized operations can be lifted out and put back.
    std::vector<int> next(events.size() + 1), prev(events.size() + 1);
    std::vector<size_t> call_of(n), return_of(n);
    const int head = static_cast<int>(events.size());  // sentinel
    for (size_t i = 0; i < events.size(); ++i) {
      (events[i].is_return ? return_of : call_of)[events[i].op] = i;
    }
    for (int i = 0; i <= head; ++i) {
      next[i] = i + 1 <= head - 1 ? i + 1 : -1;
      prev[i] = i - 1;
    }
    next[head] = events.empty() ? -1 : 0;
    if (!events.empty()) prev[0] = head;
    auto lift = [&](int e) {
      if (prev[e] >= 0) next[prev[e]] = next[e];
      if (next[e] >= 0) prev[next[e]] = prev[e];
    };
    auto unlift = [&](int e) {
      if (prev[e] >= 0) next[prev[e]] = e;
      if (next[e] >= 0) prev[next[e]] = e;
    };
    std::vector<uint64_t> done((n + 63) / 64, 0);
    auto key = [&](const std::string& state) {
      std::string k(reinterpret_cast<const char*>(done.data()), done.size() * 8);
      return k + '\0' + state;
    };
    std::unordered_set<std::string> seen;
    struct Frame {
      int call_event;
      std::string state;
    };
    std::vector<Frame> stack;
    std::string state = initial;
    int e = next[head];
    while (e >= 0) {
      const Event& ev = events[e];
      if (!ev.is_return) {
        const RegisterOp& op = ops[ev.op];
        const bool ok = op.write || op.value == state;
        std::string after = op.write ? op.value : state;
        if (ok) {
          done[ev.op / 64] |= uint64_t{1} << (ev.op % 64);
          if (seen.insert(key(after)).second) {
            stack.push_back({e, state});
            state = std::move(after);
            lift(e);
            lift(static_cast<int>(return_of[ev.op]));
            e = next[head];
            continue;
          }
          done[ev.op / 64] &= ~(uint64_t{1} << (ev.op % 64));
        }
        e = next[e];
      } else {
        // An operation returned before anything made it valid: undo the last choice.
        if (stack.empty()) return false;
        Frame f = std::move(stack.back());
        stack.pop_back();
        const size_t op = events[f.call_event].op;
        state = std::move(f.state);
        done[op / 64] &= ~(uint64_t{1} << (op % 64));
        unlift(static_cast<int>(return_of[op]));
        unlift(f.call_event);
        e = next[f.call_event];
      }
    }
    return true;
  }

 private:
  std::vector<RegisterOp> ops_;
};

}  // namespace granary::testing
