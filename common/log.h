// One event per line, key=value (CONVENTIONS): write events as
//   GLOG_INFO("event=block_written slice={} block={} bytes={}", s, b, n);
// InitLogging sets the line prefix "ts=… level=… role=…".
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace granary {

// Level: trace|debug|info|warn|error; also read from GRANARY_LOG_LEVEL when `level` is empty.
void InitLogging(std::string_view role, std::string_view level = "");

}  // namespace granary

#define GLOG_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
#define GLOG_INFO(...) SPDLOG_INFO(__VA_ARGS__)
#define GLOG_WARN(...) SPDLOG_WARN(__VA_ARGS__)
#define GLOG_ERROR(...) SPDLOG_ERROR(__VA_ARGS__)
