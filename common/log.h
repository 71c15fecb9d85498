// One event per line, key=value (CONVENTIONS): write events as
//   GLOG_INFO("event=block_written slice={} block={} bytes={}", s, b, n);
// InitLogging sets the line prefix "ts=… level=… role=…".
//
// What each level means (docs/dashboard.md "Logs"): error — something failed that an operator
// must look at; warn — degraded or retried; info — a state change (started, node down, pool
// created) or a summary of periodic work that did something, at most one per minute per kind;
// debug — every round of a periodic pass, including those that found nothing to do.
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <string_view>

namespace granary {

// Level: trace|debug|info|warn|error|off; also read from GRANARY_LOG_LEVEL when `level` is
// empty. An unknown level logs at info and says so (spdlog alone would silently log nothing).
void InitLogging(std::string_view role, std::string_view level = "");

// Whether `level` names a log level InitLogging takes.
bool IsLogLevel(std::string_view level);

// Totals of a periodic pass (repair, scrub, garbage collection, reconcile) for its info summary:
// each round is logged at debug by the caller; Add() returns true when a summary line is due —
// some round did work since the last summary and at least `period` has passed since it. The
// caller then logs totals at info and calls Reset(). One thread (the pass's own).
class PassSummary {
 public:
  using Clock = std::chrono::steady_clock;
  explicit PassSummary(Clock::duration period = std::chrono::minutes(1)) : period_(period) {}

  bool Add(uint64_t work, uint64_t bytes = 0, Clock::time_point now = Clock::now());
  uint64_t rounds() const { return rounds_; }
  uint64_t work() const { return work_; }
  uint64_t bytes() const { return bytes_; }
  // Seconds the totals cover.
  double seconds(Clock::time_point now = Clock::now()) const;
  void Reset(Clock::time_point now = Clock::now());

 private:
  Clock::duration period_;
  // The first summary may come at once: the period counts from the last one logged.
  Clock::time_point last_ = Clock::time_point::min();
  Clock::time_point since_ = Clock::time_point::min();
  uint64_t rounds_ = 0, work_ = 0, bytes_ = 0;
};

}  // namespace granary

// spdlog's SPDLOG_DEBUG compiles to nothing unless SPDLOG_ACTIVE_LEVEL is lowered before its
// first include, which no header here can promise: call the logger, which tests the runtime
// level before formatting anything.
#define GLOG_DEBUG(...) ::spdlog::debug(__VA_ARGS__)
#define GLOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define GLOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define GLOG_ERROR(...) ::spdlog::error(__VA_ARGS__)
