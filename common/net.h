// HOST:PORT parsing shared by every --listen/--meta/--admin flag.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace granary {

struct HostPort {
  std::string host;
  uint16_t port = 0;
  std::string ToString() const;
};

// "127.0.0.1:7410", "[::1]:80", "localhost:0". InvalidArgument for anything else.
Result<HostPort> ParseHostPort(std::string_view text);
// "h1:1,h2:2" (the --meta list).
Result<std::vector<HostPort>> ParseHostPortList(std::string_view text);

// A port P on `host` such that P and P+1 were both free a moment ago (a metanode member serves
// on P and runs Raft on P+1). Racy by nature: for tests and `granary server`.
Result<uint16_t> FreePortPair(const std::string& host = "127.0.0.1");

}  // namespace granary
