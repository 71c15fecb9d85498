// The framed data protocol (DESIGN §4): a fixed 24-byte header, a protobuf header
// (granary.DataRequest / DataResponse), then a raw payload received into its own page-aligned
// buffer so that bytes go from the socket to disk without another copy.
//
//   offset 0  u32 magic "GRNY"   4  u16 version   6  u16 flags
//          8  u32 header_len    12  u32 reserved (0)   16  u64 payload_len      (big-endian)
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "common/aligned_buffer.h"
#include "common/status.h"

namespace granary {

inline constexpr uint32_t kFrameMagic = 0x47524E59;  // "GRNY"
inline constexpr uint16_t kFrameVersion = 1;
inline constexpr size_t kFixedHeaderSize = 24;
inline constexpr uint32_t kMaxFrameHeaderLen = 64 * 1024;
inline constexpr uint64_t kMaxFramePayloadLen = 64ull * 1024 * 1024;

struct FrameHeader {
  uint16_t version = kFrameVersion;
  uint16_t flags = 0;
  uint32_t header_len = 0;
  uint64_t payload_len = 0;
};

std::array<uint8_t, kFixedHeaderSize> EncodeFixedHeader(const FrameHeader& header);

// InvalidArgument naming the field for a bad magic, version, reserved field or length.
Result<FrameHeader> DecodeFixedHeader(std::span<const uint8_t> bytes);

// Fixed header + serialised protobuf header, ready to be followed by `payload_len` bytes.
std::string EncodeFramePrefix(const std::string& proto_header, uint64_t payload_len,
                              uint16_t flags = 0);

struct Frame {
  FrameHeader header;
  std::string proto_header;  // parse as DataRequest or DataResponse
  AlignedBuffer payload;     // page-aligned, payload_len bytes
};

// Incremental reader for a byte stream of frames. The caller reads from its socket straight into
// WritableSpan() — so the payload lands in an aligned buffer without a copy — then reports the
// count with Commit(). Any protocol error is sticky: the connection must be closed.
class FrameReader {
 public:
  // Where the next received bytes go; never empty while no frame is ready and no error is set.
  std::span<uint8_t> WritableSpan();
  Status Commit(size_t n);

  // Copying convenience for tests and fuzzing; consumes at most `data.size()` bytes and stops
  // after one frame completes. Returns bytes consumed.
  Result<size_t> Feed(std::span<const uint8_t> data);

  bool HasFrame() const { return state_ == State::kReady; }
  Frame TakeFrame();
  const Status& error() const { return error_; }
  // True when no bytes of a next frame have arrived (a clean place for the peer to hang up).
  bool AtFrameBoundary() const { return state_ == State::kFixed && filled_ == 0; }

 private:
  enum class State { kFixed, kProto, kPayload, kReady, kFailed };
  Status Advance();

  State state_ = State::kFixed;
  std::array<uint8_t, kFixedHeaderSize> fixed_{};
  size_t filled_ = 0;
  Frame frame_;
  Status error_;
};

}  // namespace granary
