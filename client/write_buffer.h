// Dirty bytes of one open file between pwrite and flush (DESIGN §4: write-back per open file,
// committed at flush/close). Runs of contiguous bytes in page-aligned buffers; overlapping and
// adjacent writes merge, so a sequential writer grows one run.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <vector>

#include "common/aligned_buffer.h"

namespace granary::client {

class WriteBuffer {
 public:
  struct Run {
    uint64_t offset = 0;
    AlignedBuffer data;  // size() = bytes in the run; capacity grows by doubling
    uint64_t end() const { return offset + data.size(); }
  };

  // `stream_capacity`: the first run of an empty buffer started by a large write (a streaming
  // writer) reserves this much, so growing it to a full buffer copies nothing.
  explicit WriteBuffer(size_t stream_capacity = 0) : stream_capacity_(stream_capacity) {}

  void Write(uint64_t offset, std::span<const uint8_t> bytes);

  // Copies dirty bytes over `out`, which holds file bytes [offset, offset + out.size()) as
  // read from storage (read-your-writes before a flush).
  void Overlay(uint64_t offset, std::span<uint8_t> out) const;

  // Drops dirty bytes at or beyond `size` (a truncate while data is buffered).
  void Truncate(uint64_t size);

  // Hands out every run (ordered by offset) and empties the buffer.
  std::vector<Run> TakeRuns();

  uint64_t bytes() const { return bytes_; }
  bool empty() const { return runs_.empty(); }
  // One past the last dirty byte, 0 when empty.
  uint64_t end() const;

 private:
  std::map<uint64_t, Run> runs_;  // keyed by offset; runs never overlap or touch
  uint64_t bytes_ = 0;
  size_t stream_capacity_;
};

}  // namespace granary::client
