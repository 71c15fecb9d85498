#include "common/log.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <cstdlib>
#include <string>

namespace granary {

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
  logger->set_level(spdlog::level::from_str(chosen));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
  spdlog::flush_every(std::chrono::seconds(1));
}

}  // namespace granary
