// `granary s3`: a stateless S3 gateway over libgranary (DESIGN §7, docs/s3.md). HTTP/1.1 on
// Boost.Beast, optional TLS, AWS SigV4; every object is a file of its bucket's volume.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"

namespace granary::s3 {

struct GatewayOptions {
  std::string meta = "127.0.0.1:7410";
  std::string listen = "127.0.0.1:9000";  // port 0 picks one
  std::string domain;                     // virtual-host style: BUCKET.<domain>
  std::string tls_cert, tls_key;          // both set: HTTPS
  std::string region = "us-east-1";
  // Connections served at once (one thread each: libgranary calls block); more wait to be
  // accepted.
  int max_connections = 64;
  // Objects larger than this in one PUT are EntityTooLarge (S3's limit is 5 GiB).
  uint64_t max_put_bytes = 5ull << 30;
  // Accepted clock skew of a header-signed request.
  int max_skew_seconds = 15 * 60;
  // Buffered per upload before it is flushed to datanodes.
  uint64_t write_buffer_bytes = 8ull << 20;
  // Full buffers per upload flushing while the body is still received (docs/durability.md
  // "Write-behind"): an upload holds at most (write_behind + 1) × write_buffer_bytes, so the
  // 64 connections at most 1 GiB.
  uint32_t write_behind = 1;
};

class Gateway {
 public:
  static Result<std::unique_ptr<Gateway>> Start(GatewayOptions options);
  ~Gateway();
  // "http://HOST:PORT" (or https).
  std::string endpoint() const;
  std::string address() const;  // HOST:PORT as bound
  void Stop();

 private:
  struct Impl;
  explicit Gateway(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace granary::s3
