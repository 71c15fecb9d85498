// The request body pipeline: aws-chunked decoding (signed, unsigned, trailers), payload hash,
// chunk and trailer signatures, Content-MD5 and x-amz-checksum-* (internal.h: Body). Depends on
// nothing but OpenSSL, zlib and checksum.cpp, so the fuzz target builds it alone.
#include <fmt/format.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include "s3/internal.h"

namespace granary::s3 {

Digest::Digest(const EVP_MD* md) : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, md, nullptr); }
Digest::~Digest() { EVP_MD_CTX_free(ctx_); }
void Digest::Update(const void* data, size_t n) { EVP_DigestUpdate(ctx_, data, n); }
std::string Digest::Final() {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_, md, &len);
  return std::string(reinterpret_cast<char*>(md), len);
}

std::string Base64(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(bytes.data()),
                          static_cast<int>(bytes.size()));
  out.resize(n);
  return out;
}

std::optional<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0 || text.empty()) return std::nullopt;
  std::string out(text.size() / 4 * 3 + 1, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return std::nullopt;
  size_t pad = 0;
  if (text.ends_with("=="))
    pad = 2;
  else if (text.ends_with("="))
    pad = 1;
  out.resize(n - pad);
  return out;
}

// ---------------------------------------------------------------- body

Body::Body(Request& req, const Identity& id, std::optional<ChecksumAlgorithm> compute,
           bool header_checksums)
    : req_(req), id_(id), md5_(EVP_md5()) {
  const std::string& mode = id.payload_hash;
  chunked_ = mode == kStreamingSigned || mode == kStreamingSignedTrailer ||
             mode == kStreamingUnsignedTrailer;
  signed_chunks_ = mode == kStreamingSigned || mode == kStreamingSignedTrailer;
  trailer_ = mode == kStreamingSignedTrailer || mode == kStreamingUnsignedTrailer;
  if (IsSha256Hex(mode)) sha_ = std::make_unique<Digest>(EVP_sha256());
  if (chunked_) {
    prev_signature_ = id.seed_signature;
    buf_.resize(64 << 10);
    if (auto* d = req.headers.Find("x-amz-decoded-content-length")) {
      try {
        length_ = std::stoull(*d);
      } catch (...) {
      }
    }
  } else if (req.has_content_length) {
    length_ = req.content_length;
  }
  setup_error_ = SetupChecksum(compute, header_checksums);
}

namespace {

S3Error InvalidRequest(std::string message) {
  return Err(400, "InvalidRequest", std::move(message));
}

std::string Trimmed(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return std::string(v);
}

std::string Lower(std::string_view v) {
  std::string out(v);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "x-amz-checksum-crc32" -> kCrc32; nullopt for other names (x-amz-checksum-mode, ...).
std::optional<ChecksumAlgorithm> AlgorithmOfHeader(std::string_view name) {
  constexpr std::string_view kPrefix = "x-amz-checksum-";
  if (!name.starts_with(kPrefix)) return std::nullopt;
  return ParseChecksumAlgorithm(name.substr(kPrefix.size()));
}

}  // namespace

std::optional<S3Error> Body::SetupChecksum(std::optional<ChecksumAlgorithm> compute,
                                           bool header_checksums) {
  constexpr const char* kSingleChecksum =
      "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.";
  std::optional<ChecksumAlgorithm> alg;
  const std::string* value = nullptr;
  for (auto& [name, v] : req_.headers.all) {
    auto a = AlgorithmOfHeader(name);
    if (!a || !header_checksums) continue;
    if (alg) {
      return InvalidRequest(kSingleChecksum);
    }
    alg = a;
    value = &v;
  }
  if (auto* t = req_.headers.Find("x-amz-trailer")) {
    const std::string name = Lower(Trimmed(*t));
    auto a = AlgorithmOfHeader(name);
    if (!a) {
      return InvalidRequest(fmt::format(
          "The value specified in the x-amz-trailer header is not supported: '{}'", *t));
    }
    if (!trailer_) {
      return InvalidRequest(
          "x-amz-trailer needs a STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or "
          "STREAMING-UNSIGNED-PAYLOAD-TRAILER payload");
    }
    if (alg) {
      return InvalidRequest(kSingleChecksum);
    }
    alg = a;
    checksum_in_trailer_ = true;
  }
  std::optional<ChecksumAlgorithm> sdk;
  if (auto* s = req_.headers.Find("x-amz-sdk-checksum-algorithm")) {
    sdk = ParseChecksumAlgorithm(Trimmed(*s));
    if (!sdk) {
      return InvalidRequest(kUnsupportedChecksumAlgorithm);
    }
    if (alg && *alg != *sdk) {
      return InvalidRequest("Value for x-amz-sdk-checksum-algorithm header is invalid.");
    }
  }
  if (compute && alg && *alg != *compute) {
    return InvalidRequest(fmt::format(
        "Checksum Type mismatch occurred, expected checksum Type: {}, actual checksum Type: {}",
        Lower(AlgorithmName(*compute)), Lower(AlgorithmName(*alg))));
  }
  if (value) {
    auto raw = Base64Decode(Trimmed(*value));
    if (!raw || raw->size() != DigestSize(*alg)) {
      return InvalidRequest(fmt::format("Value for {} header is invalid.", ChecksumHeader(*alg)));
    }
    want_checksum_ = std::move(*raw);
  }
  if (!alg) alg = sdk ? sdk : compute;
  if (alg) checksummer_ = std::make_unique<Checksummer>(*alg);
  return std::nullopt;
}

Status Body::Fail(S3Error e) {
  error_ = std::move(e);
  failed_ = true;
  return InvalidArgument(error_.message);
}

Result<size_t> Body::Read(std::span<uint8_t> out) {
  if (done_) return size_t{0};
  if (failed_) return InvalidArgument(error_.message);
  if (setup_error_) return Fail(*setup_error_);
  auto n = chunked_ ? ReadChunked(out) : ReadRaw(out);
  if (!n.ok()) return n;
  if (*n > 0) {
    md5_.Update(out.data(), *n);
    if (checksummer_) checksummer_->Update(out.data(), *n);
    delivered_ += *n;
    if (length_ && delivered_ > *length_) {
      return Fail(Err(400, "IncompleteBody", "more bytes than the declared length"));
    }
    return n;
  }
  done_ = true;
  GRANARY_TRY(FinishChecks());
  return size_t{0};
}

Result<size_t> Body::ReadRaw(std::span<uint8_t> out) {
  auto n = req_.raw->ReadSome(out);
  if (!n.ok()) {
    return Fail(Err(400, "IncompleteBody",
                    "You did not provide the number of bytes specified by the Content-Length"));
  }
  if (*n > 0 && sha_) sha_->Update(out.data(), *n);
  return n;
}

Status Body::Refill() {
  if (buf_pos_ != buf_end_) return Status::Ok();
  auto n = req_.raw->ReadSome(std::span<uint8_t>(buf_.data(), buf_.size()));
  if (!n.ok() || *n == 0) {
    return Fail(Err(400, "IncompleteBody", "the aws-chunked body ended early"));
  }
  buf_pos_ = 0;
  buf_end_ = *n;
  return Status::Ok();
}

Result<std::string> Body::ReadLine() {
  std::string line;
  while (true) {
    GRANARY_TRY(Refill());
    char c = static_cast<char>(buf_[buf_pos_++]);
    if (c == '\n') {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      return line;
    }
    line.push_back(c);
    if (line.size() > 4096) {
      return Fail(Err(400, "InvalidChunkSizeError", "aws-chunked framing line too long"));
    }
  }
}

Result<size_t> Body::ReadChunked(std::span<uint8_t> out) {
  if (last_chunk_seen_) return size_t{0};
  size_t filled = 0;
  while (filled < out.size()) {
    if (!in_chunk_) {
      auto line = ReadLine();
      GRANARY_TRY(line);
      std::string_view l = *line;
      size_t semi = l.find(';');
      std::string_view hex = l.substr(0, semi);
      uint64_t size = 0;
      if (hex.empty() || hex.size() > 15) {
        return Fail(Err(400, "InvalidChunkSizeError", "bad aws-chunked chunk size"));
      }
      for (char c : hex) {
        int v = (c >= '0' && c <= '9')   ? c - '0'
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                         : -1;
        if (v < 0) return Fail(Err(400, "InvalidChunkSizeError", "bad aws-chunked chunk size"));
        size = size * 16 + v;
      }
      chunk_signature_.clear();
      if (semi != std::string_view::npos) {
        std::string_view ext = l.substr(semi + 1);
        constexpr std::string_view kSig = "chunk-signature=";
        if (ext.starts_with(kSig)) chunk_signature_ = std::string(ext.substr(kSig.size()));
      }
      if (signed_chunks_ && chunk_signature_.size() != 64) {
        return Fail(Err(403, "SignatureDoesNotMatch", "aws-chunked chunk without a signature"));
      }
      chunk_sha_ = std::make_unique<Digest>(EVP_sha256());
      chunk_left_ = size;
      in_chunk_ = true;
      if (size == 0) {
        if (signed_chunks_) {
          std::string want = ChunkSignature(id_.signing_key, id_.amz_date, id_.credential.scope(),
                                            prev_signature_, Sha256Hex(""));
          if (!SafeEqual(want, chunk_signature_)) {
            return Fail(Err(403, "SignatureDoesNotMatch", "final chunk signature mismatch"));
          }
          prev_signature_ = chunk_signature_;  // the trailer signature chains on it
        }
        // Trailer headers (x-amz-checksum-*, x-amz-trailer-signature) up to an empty line; a
        // body without trailers ends with one empty line too.
        for (int i = 0; i < 64; ++i) {
          auto t = ReadLine();
          GRANARY_TRY(t);
          if (t->empty()) {
            GRANARY_TRY(CheckTrailers());
            last_chunk_seen_ = true;
            return filled;
          }
          GRANARY_TRY(ParseTrailerLine(*t));
        }
        return Fail(Err(400, "MalformedTrailerError", "too many trailer lines"));
      }
      continue;
    }
    size_t want = std::min<uint64_t>(chunk_left_, out.size() - filled);
    GRANARY_TRY(Refill());
    size_t n = std::min(want, buf_end_ - buf_pos_);
    std::memcpy(out.data() + filled, buf_.data() + buf_pos_, n);
    chunk_sha_->Update(buf_.data() + buf_pos_, n);
    buf_pos_ += n;
    filled += n;
    chunk_left_ -= n;
    if (chunk_left_ == 0) {
      auto crlf = ReadLine();
      GRANARY_TRY(crlf);
      if (!crlf->empty()) return Fail(Err(400, "IncompleteBody", "chunk longer than its size"));
      if (signed_chunks_) {
        std::string want_sig = ChunkSignature(id_.signing_key, id_.amz_date, id_.credential.scope(),
                                              prev_signature_, Hex(chunk_sha_->Final()));
        if (!SafeEqual(want_sig, chunk_signature_)) {
          return Fail(Err(403, "SignatureDoesNotMatch", "chunk signature mismatch"));
        }
        prev_signature_ = chunk_signature_;
      }
      in_chunk_ = false;
    }
  }
  return filled;
}

Status Body::ParseTrailerLine(std::string_view line) {
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Fail(Err(400, "MalformedTrailerError",
                    "The request contained trailing data that was not well-formed or did not "
                    "conform to our published schema."));
  }
  std::string name = Lower(Trimmed(line.substr(0, colon)));
  std::string value = Trimmed(line.substr(colon + 1));
  if (name == "x-amz-trailer-signature") {
    trailer_signature_ = std::move(value);
  } else {
    trailers_.emplace_back(std::move(name), std::move(value));
  }
  return Status::Ok();
}

Status Body::CheckTrailers() {
  if (signed_chunks_ && trailer_) {
    // STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: the trailer is signed, chained on the final
    // chunk's signature, over its lines in canonical form (sorted "name:value\n").
    auto sorted = trailers_;
    std::sort(sorted.begin(), sorted.end());
    std::string canonical;
    for (auto& [k, v] : sorted) canonical += k + ":" + v + "\n";
    std::string want = TrailerSignature(id_.signing_key, id_.amz_date, id_.credential.scope(),
                                        prev_signature_, Sha256Hex(canonical));
    if (trailer_signature_.empty() || !SafeEqual(want, trailer_signature_)) {
      return Fail(Err(403, "SignatureDoesNotMatch",
                      "The request signature we calculated does not match the signature you "
                      "provided (x-amz-trailer-signature)."));
    }
  }
  const std::string declared = checksummer_ && checksum_in_trailer_
                                   ? ChecksumHeader(checksummer_->algorithm())
                                   : std::string();
  for (auto& [name, value] : trailers_) {
    auto a = AlgorithmOfHeader(name);
    if (!a) continue;
    if (name != declared) {
      return Fail(
          InvalidRequest(fmt::format("The trailer sends {} but x-amz-trailer named {}", name,
                                     declared.empty() ? std::string("no checksum") : declared)));
    }
    if (want_checksum_) {
      return Fail(InvalidRequest(fmt::format("The trailer sends {} twice", name)));
    }
    auto raw = Base64Decode(value);
    if (!raw || raw->size() != DigestSize(*a)) {
      return Fail(InvalidRequest(fmt::format("Value for {} trailing header is invalid.", name)));
    }
    want_checksum_ = std::move(*raw);
  }
  if (!declared.empty() && !want_checksum_) {
    return Fail(InvalidRequest(
        fmt::format("x-amz-trailer names {} but the trailer did not send it", declared)));
  }
  return Status::Ok();
}

Status Body::FinishChecks() {
  md5_result_ = md5_.Final();
  if (length_ && delivered_ != *length_) {
    return Fail(Err(400, "IncompleteBody",
                    "You did not provide the number of bytes specified by the Content-Length"));
  }
  if (sha_ && Hex(sha_->Final()) != id_.payload_hash) {
    return Fail(
        Err(400, "XAmzContentSHA256Mismatch",
            "The provided 'x-amz-content-sha256' header does not match what was computed."));
  }
  if (auto* md5 = req_.headers.Find("content-md5")) {
    auto want = Base64Decode(*md5);
    if (!want || want->size() != 16) {
      return Fail(Err(400, "InvalidDigest", "The Content-MD5 you specified was invalid."));
    }
    if (*want != md5_result_) {
      return Fail(
          Err(400, "BadDigest", "The Content-MD5 you specified did not match what we received."));
    }
  }
  if (checksummer_) {
    const ChecksumAlgorithm alg = checksummer_->algorithm();
    std::string got = checksummer_->Final();
    if (want_checksum_ && *want_checksum_ != got) {
      return Fail(Err(400, "BadDigest",
                      fmt::format("The {} you specified did not match the calculated checksum.",
                                  AlgorithmName(alg))));
    }
    checksum_ = Checksum{alg, Base64(got), false};
  }
  return Status::Ok();
}

}  // namespace granary::s3
