// The on-disk format of one block file (docs/data-path.md "Block file format"). A block file is
// self-describing, so fsck can rebuild maps from datanodes alone:
//
//   [0, 4096)            header: magic "GRBK", format version, data length, crc count,
//                        CRC32C of the crc table, BlockInfo (key + origin + length) as
//                        protobuf, and a CRC32C of the header itself in its last 4 bytes
//   [4096, data_offset)  crc table: CRC32C of each 4 KiB of data (u32 little-endian), padded
//   [data_offset, +len)  the data, page-aligned in the file
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/aligned_buffer.h"
#include "common/crc32c.h"
#include "common/status.h"
#include "granary/data.pb.h"

namespace granary::datanode {

inline constexpr uint32_t kBlockMagic = 0x4752424B;  // "GRBK"
inline constexpr uint16_t kBlockFormatVersion = 1;
inline constexpr size_t kBlockHeaderSize = 4096;

inline uint64_t CrcCount(uint64_t length) { return (length + kCrcBlockSize - 1) / kCrcBlockSize; }
inline uint64_t CrcTableBytes(uint64_t length) { return RoundUpToPage(CrcCount(length) * 4); }
inline uint64_t DataOffset(uint64_t length) { return kBlockHeaderSize + CrcTableBytes(length); }

struct BlockMeta {
  BlockInfo info;              // key, origin, length
  std::vector<uint32_t> crcs;  // one per 4 KiB of data
  uint64_t data_offset() const { return DataOffset(info.length()); }
};

// Header page + crc table, ready to be written before the data (page-aligned, one buffer).
AlignedBuffer EncodeBlockPrefix(const BlockInfo& info, std::span<const uint32_t> crcs);

// Parses and checks the header page; `path` names the file in errors (CORRUPT on any mismatch).
Result<BlockMeta> DecodeBlockHeader(std::span<const uint8_t> header, const std::string& path);
// Fills meta->crcs from the crc table bytes and checks them against the header's table CRC.
Status DecodeCrcTable(std::span<const uint8_t> table, BlockMeta* meta, uint32_t table_crc,
                      const std::string& path);
// The table CRC recorded in a header page (valid after DecodeBlockHeader succeeded).
uint32_t HeaderTableCrc(std::span<const uint8_t> header);

}  // namespace granary::datanode
