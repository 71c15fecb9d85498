#include "datanode/block_file.h"

#include <fmt/format.h>

#include <bit>
#include <cstring>

#include "common/crc32c.h"

namespace granary::datanode {
namespace {

// Header layout (little-endian):
//   0 u32 magic  4 u16 version  6 u16 reserved  8 u64 data length  16 u32 crc count
//   20 u32 crc-table CRC32C  24 u32 info length  28 info bytes … 4092 u32 header CRC32C
constexpr size_t kInfoOffset = 28;
constexpr size_t kHeaderCrcOffset = kBlockHeaderSize - 4;

void Put32(uint8_t* p, uint32_t v) { std::memcpy(p, &v, 4); }
void Put64(uint8_t* p, uint64_t v) { std::memcpy(p, &v, 8); }
uint32_t Get32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t Get64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
static_assert(std::endian::native == std::endian::little, "block format is little-endian");

}  // namespace

AlignedBuffer EncodeBlockPrefix(const BlockInfo& info, std::span<const uint32_t> crcs) {
  uint64_t length = info.length();
  AlignedBuffer buf(DataOffset(length));
  std::memset(buf.data(), 0, buf.size());
  uint8_t* h = buf.data();
  Put32(h, kBlockMagic);
  h[4] = kBlockFormatVersion & 0xff;
  h[5] = kBlockFormatVersion >> 8;
  Put64(h + 8, length);
  Put32(h + 16, static_cast<uint32_t>(crcs.size()));
  if (!crcs.empty()) std::memcpy(h + kBlockHeaderSize, crcs.data(), crcs.size() * 4);
  Put32(h + 20, Crc32c(h + kBlockHeaderSize, crcs.size() * 4));
  std::string encoded = info.SerializeAsString();
  // BlockInfo is a few dozen bytes; a header overflow would be a programming error.
  if (encoded.size() > kHeaderCrcOffset - kInfoOffset) std::abort();
  Put32(h + 24, static_cast<uint32_t>(encoded.size()));
  std::memcpy(h + kInfoOffset, encoded.data(), encoded.size());
  Put32(h + kHeaderCrcOffset, Crc32c(h, kHeaderCrcOffset));
  return buf;
}

Result<BlockMeta> DecodeBlockHeader(std::span<const uint8_t> header, const std::string& path) {
  if (header.size() < kBlockHeaderSize) {
    return Corrupt(fmt::format("block file {}: header is {} bytes, expected {}", path,
                               header.size(), kBlockHeaderSize));
  }
  const uint8_t* h = header.data();
  if (Get32(h) != kBlockMagic) return Corrupt(fmt::format("block file {}: bad magic", path));
  uint16_t version = static_cast<uint16_t>(h[4] | (h[5] << 8));
  if (version != kBlockFormatVersion) {
    return Corrupt(fmt::format("block file {}: unknown format version {}", path, version));
  }
  if (Get32(h + kHeaderCrcOffset) != Crc32c(h, kHeaderCrcOffset)) {
    return Corrupt(fmt::format("block file {}: header CRC mismatch", path));
  }
  uint32_t info_len = Get32(h + 24);
  if (info_len > kHeaderCrcOffset - kInfoOffset) {
    return Corrupt(fmt::format("block file {}: info length {} too large", path, info_len));
  }
  BlockMeta meta;
  if (!meta.info.ParseFromArray(h + kInfoOffset, static_cast<int>(info_len))) {
    return Corrupt(fmt::format("block file {}: unparsable block info", path));
  }
  uint64_t length = Get64(h + 8);
  if (meta.info.length() != length || Get32(h + 16) != CrcCount(length)) {
    return Corrupt(fmt::format("block file {}: inconsistent lengths", path));
  }
  return meta;
}

uint32_t HeaderTableCrc(std::span<const uint8_t> header) { return Get32(header.data() + 20); }

Status DecodeCrcTable(std::span<const uint8_t> table, BlockMeta* meta, uint32_t table_crc,
                      const std::string& path) {
  uint64_t count = CrcCount(meta->info.length());
  if (table.size() < count * 4) {
    return Corrupt(fmt::format("block file {}: crc table truncated", path));
  }
  if (Crc32c(table.data(), count * 4) != table_crc) {
    return Corrupt(fmt::format("block file {}: crc table CRC mismatch", path));
  }
  meta->crcs.resize(count);
  std::memcpy(meta->crcs.data(), table.data(), count * 4);
  return Status::Ok();
}

}  // namespace granary::datanode
