// CRC32C (Castagnoli, RFC 3720) through ISA-L's crc32_iscsi. Data is checksummed per 4 KiB
// block: by the writer, by the datanode on receipt, by every reader and by the scrubber.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace granary {

inline constexpr size_t kCrcBlockSize = 4096;

// Standard CRC32C; pass a previous result as `crc` to continue over more bytes.
uint32_t Crc32c(const void* data, size_t length, uint32_t crc = 0);

// CRC32C of each kCrcBlockSize block of [data, data+length); the last block may be short.
std::vector<uint32_t> BlockCrcs(const void* data, size_t length);

// Appends to `out` instead of returning a new vector (hot paths reuse one).
void AppendBlockCrcs(const void* data, size_t length, std::vector<uint32_t>& out);

// Index of the first block whose CRC differs from `expected`, or -1 when all match (and the
// counts agree).
long FirstCrcMismatch(const void* data, size_t length, const uint32_t* expected,
                      size_t expected_count);

}  // namespace granary
