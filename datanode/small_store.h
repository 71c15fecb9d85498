// Small blocks in a RocksDB inside the datanode (docs/data-path.md "Small blocks"): a block of
// at most BlockStoreOptions::small_block_max bytes is two values written in one synced
// WriteBatch instead of a file, so concurrent small writes share one WAL fdatasync instead of
// paying create + write + fsync + rename + directory fsyncs each.
//
//   column family "meta":  key -> [u8 version][u32 CRC32C of the rest][u32 info length]
//                                 [BlockInfo protobuf][CRC32C of each 4 KiB of data, u32 LE]
//   column family "data":  key -> the data bytes
//   key: slice id (u64), block index (u32), fragment (u32), big-endian, so a slice is contiguous
//
// Like a block file the record is self-describing (DESIGN §3: fsck rebuilds maps from
// datanodes), and opening the store scans "meta" only. BlockStore owns the index; this class
// only stores and fetches records.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/statistics.h>

#include <atomic>
#include <functional>
#include <memory>
#include <span>
#include <string>

#include "datanode/block_file.h"

namespace granary::datanode {

inline constexpr uint8_t kSmallRecordVersion = 1;

class SmallStore {
 public:
  // Opens (creating if needed) the RocksDB at `path`.
  static Result<std::unique_ptr<SmallStore>> Open(const std::string& path);
  ~SmallStore();

  // Calls `fn(meta, stored_bytes)` for every decodable record, in key order. An undecodable
  // record is logged and skipped (kept for fsck to look at, never served), as an unreadable
  // block file is.
  Status ForEach(const std::function<void(BlockMeta&&, uint64_t)>& fn);

  // Stores both values in one batch and returns after the WAL is synced.
  Status Put(const BlockInfo& info, std::span<const uint8_t> data, std::span<const uint32_t> crcs);
  // NOT_FOUND when absent, CORRUPT when the record does not decode.
  Result<BlockMeta> GetMeta(const BlockKey& key);
  // The data value; CORRUPT when RocksDB's own checksums fail.
  Status GetData(const BlockKey& key, rocksdb::PinnableSlice* out);
  // Removes both values durably (a synced batch). Absent keys are not an error here.
  Status Delete(const BlockKey& key);

  // Bytes a record takes before RocksDB's own overhead (what capacity() counts as used).
  static uint64_t StoredBytes(uint64_t length);

  // Tests only: replaces the data value without touching the CRC table (simulates a corruption
  // RocksDB's block checksums cannot see, e.g. a bit flipped in memory before the write).
  Status OverwriteDataForTest(const BlockKey& key, std::span<const uint8_t> bytes);

  // WAL syncs and synced batches since open: syncs < batches shows group commit at work.
  uint64_t wal_syncs() const;
  uint64_t batches() const { return batches_.load(); }

  const std::string& path() const { return path_; }

 private:
  SmallStore() = default;
  Status Sync(rocksdb::WriteBatch* batch, std::string_view what);

  std::string path_;
  std::shared_ptr<rocksdb::Statistics> stats_;
  std::atomic<uint64_t> batches_{0};
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::ColumnFamilyHandle* default_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* meta_cf_ = nullptr;
  rocksdb::ColumnFamilyHandle* data_cf_ = nullptr;
  // Set after a failed write: RocksDB stops writes after a background error until Resume().
  std::atomic<bool> needs_resume_{false};
  std::atomic<int> last_error_{static_cast<int>(Code::UNAVAILABLE)};
};

}  // namespace granary::datanode
