#include "common/log.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <array>
#include <cstdlib>
#include <string>

namespace granary {

namespace {
constexpr std::array<std::string_view, 6> kLevels = {"trace", "debug", "info",
                                                     "warn",  "error", "off"};
}  // namespace

bool IsLogLevel(std::string_view level) {
  for (auto l : kLevels) {
    if (l == level) return true;
  }
  return false;
}

void InitLogging(std::string_view role, std::string_view level) {
  auto logger = spdlog::stderr_logger_mt(std::string("granary-") + std::string(role));
  logger->set_pattern(
      std::string("ts=%Y-%m-%dT%H:%M:%S.%eZ level=%l role=") + std::string(role) + " %v",
      spdlog::pattern_time_type::utc);
  std::string chosen(level);
  if (chosen.empty()) {
    const char* env = std::getenv("GRANARY_LOG_LEVEL");
    chosen = env ? env : "info";
  }
  const bool known = IsLogLevel(chosen);
  logger->set_level(known ? spdlog::level::from_str(chosen) : spdlog::level::info);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  spdlog::flush_every(std::chrono::seconds(1));
  if (!known) {
    GLOG_WARN(
        "event=log_level_unknown level=\"{}\" using=info known=trace|debug|info|warn|error|off",
        chosen);
  }
}

bool PassSummary::Add(uint64_t work, uint64_t bytes, Clock::time_point now) {
  if (rounds_ == 0) since_ = now;
  ++rounds_;
  work_ += work;
  bytes_ += bytes;
  return work_ > 0 && (last_ == Clock::time_point::min() || now - last_ >= period_);
}

double PassSummary::seconds(Clock::time_point now) const {
  if (rounds_ == 0) return 0;
  return std::chrono::duration<double>(now - since_).count();
}

void PassSummary::Reset(Clock::time_point now) {
  last_ = now;
  rounds_ = work_ = bytes_ = 0;
}

}  // namespace granary
