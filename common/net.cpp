#include "common/net.h"

#include <fmt/format.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

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

namespace {
// Binds a TCP socket to host:port (0 = any); returns the fd and the bound port, or -1.
int BindTcp(const std::string& host, uint16_t port, uint16_t* bound) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &addr.sin_addr) != 1 ||
      bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  *bound = ntohs(addr.sin_port);
  return fd;
}
}  // namespace

Result<uint16_t> FreePortPair(const std::string& host) {
  for (int attempt = 0; attempt < 100; ++attempt) {
    uint16_t port = 0, next = 0;
    int first = BindTcp(host, 0, &port);
    if (first < 0) return Unavailable(fmt::format("no free port on {}", host));
    int second = port < 65535 ? BindTcp(host, port + 1, &next) : -1;
    close(first);
    if (second >= 0) {
      close(second);
      return port;
    }
  }
  return Unavailable(fmt::format("no two adjacent free ports on {}", host));
}

}  // namespace granary
