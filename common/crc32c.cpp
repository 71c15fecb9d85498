#include "common/crc32c.h"

#include <isa-l/crc.h>

namespace granary {

uint32_t Crc32c(const void* data, size_t length, uint32_t crc) {
  // ISA-L works on the raw register; RFC 3720 pre- and post-inverts it.
  auto* p = static_cast<unsigned char*>(const_cast<void*>(data));
  uint32_t state = ~crc;
  while (length > 0) {
    int step = length > (1u << 30) ? (1 << 30) : static_cast<int>(length);
    state = crc32_iscsi(p, step, state);
    p += step;
    length -= step;
  }
  return ~state;
}

void AppendBlockCrcs(const void* data, size_t length, std::vector<uint32_t>& out) {
  auto* p = static_cast<const unsigned char*>(data);
  out.reserve(out.size() + (length + kCrcBlockSize - 1) / kCrcBlockSize);
  for (size_t off = 0; off < length; off += kCrcBlockSize) {
    size_t n = length - off < kCrcBlockSize ? length - off : kCrcBlockSize;
    out.push_back(Crc32c(p + off, n));
  }
}

std::vector<uint32_t> BlockCrcs(const void* data, size_t length) {
  std::vector<uint32_t> out;
  AppendBlockCrcs(data, length, out);
  return out;
}

long FirstCrcMismatch(const void* data, size_t length, const uint32_t* expected,
                      size_t expected_count) {
  auto* p = static_cast<const unsigned char*>(data);
  size_t blocks = (length + kCrcBlockSize - 1) / kCrcBlockSize;
  for (size_t i = 0; i < blocks; ++i) {
    if (i >= expected_count) return static_cast<long>(i);
    size_t off = i * kCrcBlockSize;
    size_t n = length - off < kCrcBlockSize ? length - off : kCrcBlockSize;
    if (Crc32c(p + off, n) != expected[i]) return static_cast<long>(i);
  }
  return blocks == expected_count ? -1 : static_cast<long>(blocks);
}

}  // namespace granary
