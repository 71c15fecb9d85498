#include "common/frame.h"

#include <fmt/format.h>

#include <cstring>

namespace granary {
namespace {

void PutBe(uint8_t* p, uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) {
    p[i] = static_cast<uint8_t>(v);
    v >>= 8;
  }
}

uint64_t GetBe(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

std::array<uint8_t, kFixedHeaderSize> EncodeFixedHeader(const FrameHeader& header) {
  std::array<uint8_t, kFixedHeaderSize> out{};
  PutBe(&out[0], kFrameMagic, 4);
  PutBe(&out[4], header.version, 2);
  PutBe(&out[6], header.flags, 2);
  PutBe(&out[8], header.header_len, 4);
  PutBe(&out[12], 0, 4);
  PutBe(&out[16], header.payload_len, 8);
  return out;
}

Result<FrameHeader> DecodeFixedHeader(std::span<const uint8_t> bytes) {
  if (bytes.size() < kFixedHeaderSize) {
    return InvalidArgument(
        fmt::format("frame: {} bytes, fixed header needs {}", bytes.size(), kFixedHeaderSize));
  }
  const uint8_t* p = bytes.data();
  uint32_t magic = static_cast<uint32_t>(GetBe(p, 4));
  if (magic != kFrameMagic) {
    return InvalidArgument(fmt::format("frame: bad magic {:#010x}", magic));
  }
  FrameHeader h;
  h.version = static_cast<uint16_t>(GetBe(p + 4, 2));
  h.flags = static_cast<uint16_t>(GetBe(p + 6, 2));
  h.header_len = static_cast<uint32_t>(GetBe(p + 8, 4));
  uint32_t reserved = static_cast<uint32_t>(GetBe(p + 12, 4));
  h.payload_len = GetBe(p + 16, 8);
  if (h.version != kFrameVersion) {
    return InvalidArgument(fmt::format("frame: unsupported version {} (this build speaks {})",
                                       h.version, kFrameVersion));
  }
  if (reserved != 0) return InvalidArgument("frame: reserved field is not zero");
  if (h.header_len == 0 || h.header_len > kMaxFrameHeaderLen) {
    return InvalidArgument(
        fmt::format("frame: header length {} outside 1..{}", h.header_len, kMaxFrameHeaderLen));
  }
  if (h.payload_len > kMaxFramePayloadLen) {
    return InvalidArgument(fmt::format("frame: payload length {} over the limit {}", h.payload_len,
                                       kMaxFramePayloadLen));
  }
  return h;
}

std::string EncodeFramePrefix(const std::string& proto_header, uint64_t payload_len,
                              uint16_t flags) {
  FrameHeader h;
  h.flags = flags;
  h.header_len = static_cast<uint32_t>(proto_header.size());
  h.payload_len = payload_len;
  auto fixed = EncodeFixedHeader(h);
  std::string out(reinterpret_cast<const char*>(fixed.data()), fixed.size());
  out += proto_header;
  return out;
}

std::span<uint8_t> FrameReader::WritableSpan() {
  switch (state_) {
    case State::kFixed:
      return {fixed_.data() + filled_, kFixedHeaderSize - filled_};
    case State::kProto:
      return {reinterpret_cast<uint8_t*>(frame_.proto_header.data()) + filled_,
              frame_.header.header_len - filled_};
    case State::kPayload:
      return {frame_.payload.data() + filled_, frame_.header.payload_len - filled_};
    default:
      return {};
  }
}

Status FrameReader::Commit(size_t n) {
  if (state_ == State::kFailed) return error_;
  if (n > WritableSpan().size()) {
    error_ = Internal("frame: committed more bytes than were writable");
    state_ = State::kFailed;
    return error_;
  }
  filled_ += n;
  return Advance();
}

Status FrameReader::Advance() {
  // Moves through states whose remaining byte count is zero (e.g. an empty payload).
  while (true) {
    if (state_ == State::kFixed && filled_ == kFixedHeaderSize) {
      auto h = DecodeFixedHeader(fixed_);
      if (!h.ok()) {
        error_ = h.status();
        state_ = State::kFailed;
        return error_;
      }
      frame_ = Frame{};
      frame_.header = *h;
      frame_.proto_header.resize(h->header_len);
      filled_ = 0;
      state_ = State::kProto;
      continue;
    }
    if (state_ == State::kProto && filled_ == frame_.header.header_len) {
      frame_.payload = AlignedBuffer(frame_.header.payload_len);
      filled_ = 0;
      state_ = State::kPayload;
      continue;
    }
    if (state_ == State::kPayload && filled_ == frame_.header.payload_len) {
      filled_ = 0;
      state_ = State::kReady;
    }
    return Status::Ok();
  }
}

Result<size_t> FrameReader::Feed(std::span<const uint8_t> data) {
  size_t consumed = 0;
  while (consumed < data.size() && state_ != State::kReady) {
    if (state_ == State::kFailed) return error_;
    auto dst = WritableSpan();
    size_t n = std::min(dst.size(), data.size() - consumed);
    std::memcpy(dst.data(), data.data() + consumed, n);
    consumed += n;
    GRANARY_TRY(Commit(n));
  }
  if (state_ == State::kFailed) return error_;
  return consumed;
}

Frame FrameReader::TakeFrame() {
  Frame out = std::move(frame_);
  frame_ = Frame{};
  state_ = State::kFixed;
  filled_ = 0;
  return out;
}

}  // namespace granary
