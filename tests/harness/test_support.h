// Small header-only helpers shared by unit and multi-process tests (no link dependencies, so
// any test binary can include them).
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/aligned_buffer.h"

namespace granary::testing {

// A temporary directory removed (recursively) on every path out of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "granary-test-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

// `n` pseudo-random bytes from `seed` in a page-aligned buffer.
// Pages of the file at `path` in the page cache (mincore over a mapping of it); 0 when it
// cannot be mapped.
inline size_t CachedPages(const std::string& path) {
  std::error_code ec;
  const auto size = static_cast<size_t>(std::filesystem::file_size(path, ec));
  if (ec || size == 0) return 0;
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  void* map = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (map == MAP_FAILED) return 0;
  std::vector<unsigned char> resident((size + 4095) / 4096);
  mincore(map, size, resident.data());
  munmap(map, size);
  size_t pages = 0;
  for (unsigned char r : resident) pages += r & 1;
  return pages;
}

// Whether files under `dir` can be opened with O_DIRECT (not on tmpfs, for one).
inline bool DirectIoSupported(const std::string& dir) {
  const std::string probe = dir + "/.direct-io-probe";
  int fd = open(probe.c_str(), O_CREAT | O_WRONLY | O_DIRECT | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  close(fd);
  unlink(probe.c_str());
  return true;
}

inline AlignedBuffer RandomBytes(size_t n, uint32_t seed) {
  AlignedBuffer b(n);
  std::mt19937 rng(seed);
  for (size_t i = 0; i < n; ++i) b.data()[i] = static_cast<uint8_t>(rng());
  return b;
}

// GET `path` from an IPv4 "HOST:PORT" over HTTP/1.0 (reply timeout 10 s): {status, body}, or
// {-1, ""} when nothing listens.
inline std::pair<int, std::string> HttpGet(const std::string& address, const std::string& path) {
  auto colon = address.rfind(':');
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(std::stoi(address.substr(colon + 1))));
  inet_pton(AF_INET, address.substr(0, colon).c_str(), &a.sin_addr);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return {-1, ""};
  }
  std::string req = "GET " + path + " HTTP/1.0\r\nHost: x\r\n\r\n";
  (void)!write(fd, req.data(), req.size());
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) resp.append(buf, n);
  close(fd);
  int status = resp.size() > 12 ? std::stoi(resp.substr(9, 3)) : -1;
  size_t body = resp.find("\r\n\r\n");
  return {status, body == std::string::npos ? "" : resp.substr(body + 4)};
}

}  // namespace granary::testing
