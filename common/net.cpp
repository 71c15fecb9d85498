#include "common/net.h"

#include <fmt/format.h>

#include <charconv>

namespace granary {

std::string HostPort::ToString() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

Result<HostPort> ParseHostPort(std::string_view text) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == text.size()) {
    return InvalidArgument(fmt::format("address '{}': expected HOST:PORT", text));
  }
  std::string_view host = text.substr(0, colon);
  if (host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  std::string_view port_text = text.substr(colon + 1);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() || port > 65535) {
    return InvalidArgument(fmt::format("address '{}': port '{}' is not 0..65535", text, port_text));
  }
  return HostPort{std::string(host), static_cast<uint16_t>(port)};
}

Result<std::vector<HostPort>> ParseHostPortList(std::string_view text) {
  std::vector<HostPort> out;
  while (!text.empty()) {
    size_t comma = text.find(',');
    auto hp = ParseHostPort(text.substr(0, comma));
    if (!hp.ok()) return hp.status();
    out.push_back(*hp);
    if (comma == std::string_view::npos) break;
    text = text.substr(comma + 1);
  }
  if (out.empty()) return InvalidArgument("address list is empty");
  return out;
}

}  // namespace granary
