#include "metanode/secrets.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace granary::metanode {

namespace {
constexpr size_t kKeyBytes = 32, kNonceBytes = 12, kTagBytes = 16;

struct CtxFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CtxFree>;

Status RandomBytes(std::string* out, size_t n) {
  out->resize(n);
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out->data()), static_cast<int>(n)) != 1) {
    return Internal("RAND_bytes failed");
  }
  return Status::Ok();
}
}  // namespace

std::string RandomToken(size_t length, std::string_view alphabet) {
  std::string raw;
  RandomBytes(&raw, length).PermitUnchecked();
  std::string out(length, ' ');
  for (size_t i = 0; i < length; ++i) {
    out[i] = alphabet[static_cast<uint8_t>(raw[i]) % alphabet.size()];
  }
  return out;
}

Result<SecretBox> SecretBox::Open(const std::string& path) {
  SecretBox box;
  if (path.empty()) {
    GRANARY_TRY(RandomBytes(&box.key_, kKeyBytes));
    return box;
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) {
    GRANARY_TRY(RandomBytes(&box.key_, kKeyBytes));
    // Written aside, then linked into place: several metanodes sharing one key file (the
    // members of `granary server --metanodes 3`) start together and must end with one key.
    std::string tmp = fmt::format("{}.tmp.{}", path, ::getpid());
    int wfd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (wfd < 0) return Internal(fmt::format("create {}: {}", tmp, std::strerror(errno)));
    bool ok = ::write(wfd, box.key_.data(), kKeyBytes) == static_cast<ssize_t>(kKeyBytes) &&
              ::fsync(wfd) == 0;
    ::close(wfd);
    const bool linked = ok && ::link(tmp.c_str(), path.c_str()) == 0;
    const int err = errno;
    ::unlink(tmp.c_str());
    if (linked) return box;
    if (!ok || err != EEXIST) {
      return Internal(fmt::format("write {}: {}", path, std::strerror(err)));
    }
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);  // another one won: use its key
  }
  if (fd < 0) return Internal(fmt::format("open {}: {}", path, std::strerror(errno)));
  box.key_.resize(kKeyBytes + 1);
  ssize_t n = ::read(fd, box.key_.data(), box.key_.size());
  ::close(fd);
  if (n != static_cast<ssize_t>(kKeyBytes)) {
    return Corrupt(
        fmt::format("secret key file {} holds {} bytes, expected {}", path, n, kKeyBytes));
  }
  box.key_.resize(kKeyBytes);
  return box;
}

Result<std::string> SecretBox::Seal(std::string_view plaintext, std::string_view context) const {
  std::string out;
  GRANARY_TRY(RandomBytes(&out, kNonceBytes));
  out.resize(kNonceBytes + plaintext.size() + kTagBytes);
  auto* nonce = reinterpret_cast<unsigned char*>(out.data());
  auto* ct = nonce + kNonceBytes;
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  bool ok =
      ctx &&
      EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                         reinterpret_cast<const unsigned char*>(key_.data()), nonce) == 1 &&
      EVP_EncryptUpdate(ctx.get(), nullptr, &len,
                        reinterpret_cast<const unsigned char*>(context.data()),
                        static_cast<int>(context.size())) == 1 &&
      EVP_EncryptUpdate(ctx.get(), ct, &len,
                        reinterpret_cast<const unsigned char*>(plaintext.data()),
                        static_cast<int>(plaintext.size())) == 1 &&
      EVP_EncryptFinal_ex(ctx.get(), ct + len, &len) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, ct + plaintext.size()) == 1;
  if (!ok) return Internal("AES-256-GCM seal failed");
  return out;
}

Result<std::string> SecretBox::Unseal(std::string_view sealed, std::string_view context) const {
  if (sealed.size() < kNonceBytes + kTagBytes) return Corrupt("sealed secret too short");
  const size_t n = sealed.size() - kNonceBytes - kTagBytes;
  const auto* nonce = reinterpret_cast<const unsigned char*>(sealed.data());
  const auto* ct = nonce + kNonceBytes;
  std::string tag(sealed.substr(kNonceBytes + n));
  std::string out(n, '\0');
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  bool ok =
      ctx &&
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr,
                         reinterpret_cast<const unsigned char*>(key_.data()), nonce) == 1 &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &len,
                        reinterpret_cast<const unsigned char*>(context.data()),
                        static_cast<int>(context.size())) == 1 &&
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len, ct,
                        static_cast<int>(n)) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) == 1 &&
      EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(out.data()) + len, &len) == 1;
  if (!ok) return Corrupt(fmt::format("secret of access key '{}' fails authentication", context));
  return out;
}

}  // namespace granary::metanode
