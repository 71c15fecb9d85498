// Access-key secrets at rest. SigV4 is an HMAC keyed by the secret itself, so the S3 gateway
// needs the plaintext secret to verify a request: a one-way hash (as for passwords) cannot work.
// Secrets are therefore stored sealed with AES-256-GCM under a key kept in a 0600 file in the
// data dir (docs/metadata.md): a copy of the RocksDB files or a backup alone reveals no secret.
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"

namespace granary::metanode {

class SecretBox {
 public:
  // Loads `path` (32 bytes), creating it with mode 0600 when absent. An empty path keeps a
  // random key in memory (tests).
  static Result<SecretBox> Open(const std::string& path);

  // nonce(12) | ciphertext | tag(16); `context` (the access key id) is authenticated too.
  Result<std::string> Seal(std::string_view plaintext, std::string_view context) const;
  Result<std::string> Unseal(std::string_view sealed, std::string_view context) const;

 private:
  std::string key_;
};

// Random printable tokens for generated access keys and secrets.
std::string RandomToken(size_t length, std::string_view alphabet);

}  // namespace granary::metanode
