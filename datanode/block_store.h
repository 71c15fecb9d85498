// The datanode's block store (docs/data-path.md): blocks of at most small_block_max bytes live
// in a RocksDB in DIR/small/ (datanode/small_store.h, "Small blocks"); every other block of a
// slice (or EC fragment) is one self-describing file under DIR/blocks/XX/YY/ (65,536 fan-out
// directories, so millions of blocks stay a few dozen per directory). Writes go to DIR/tmp/, are
// fsynced, renamed into place and the directory fsynced: a block is either wholly visible and
// durable, or absent. DIR/tmp/ is emptied on open, so a crash leaves nothing half-written in view.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <span>
#include <string>
#include <tuple>
#include <vector>

#include "common/status.h"
#include "datanode/block_file.h"
#include "datanode/device.h"
#include "granary/data.pb.h"

namespace granary::datanode {

class SmallStore;

struct Capacity {
  uint64_t capacity_bytes = 0;   // file system size
  uint64_t available_bytes = 0;  // free for us (statvfs f_bavail)
  uint64_t used_bytes = 0;       // bytes of our block files
  uint64_t blocks = 0;
};

// An open block ready to be streamed: `length` data bytes at `file_offset` in `file`, with the
// stored CRCs of each 4 KiB unit covered, the first starting at block offset `crc_offset`.
// A small block has no file: its bytes are already in `memory` (page-aligned, `length` long).
struct ReadPlan {
  std::unique_ptr<File> file;
  AlignedBuffer memory;
  uint64_t file_offset = 0;
  uint64_t length = 0;
  uint64_t block_length = 0;
  uint64_t crc_offset = 0;
  std::vector<uint32_t> crcs;
};

struct BlockStoreOptions {
  // Blocks of at most this many bytes go to the small-block RocksDB; 0 stores every block as a
  // file. Blocks already stored stay where they are whatever this says.
  uint64_t small_block_max = 64 << 10;
  // Block files of at least this many bytes that are not `read_soon` are written with O_DIRECT;
  // 0: never.
  uint64_t direct_write_min = 0;
};

class BlockStore {
 public:
  // Creates DIR/blocks, DIR/tmp and DIR/small if needed, removes leftovers in DIR/tmp, indexes
  // blocks (block file headers and the small store's metadata column family).
  static Result<std::unique_ptr<BlockStore>> Open(const std::string& dir,
                                                  std::shared_ptr<Device> device,
                                                  BlockStoreOptions options = {});
  ~BlockStore();

  // Stores `data` under `key` durably; returns after the file and its directory are fsynced
  // (a small block: after its RocksDB batch's WAL sync, shared with concurrent writers).
  // `crcs` must hold CRC32C of each 4 KiB of `data`: a mismatch is CORRUPT and nothing is
  // stored. Rewriting a key with identical content is Ok; with different content
  // ALREADY_EXISTS (blocks are immutable). Disk errors: NO_SPACE (ENOSPC), UNAVAILABLE (EIO);
  // on any failure nothing is left behind. `read_soon`: this copy is the one readers try first,
  // so it goes through the page cache whatever `direct_write_min` says.
  Status Write(const BlockKey& key, const BlockOrigin& origin, std::span<const uint8_t> data,
               std::span<const uint32_t> crcs, bool read_soon = true);

  // Opens [offset, min(len, round_up(offset+length, 4096))) of a block; length 0 = to the end.
  // offset must be a multiple of 4096 (else INVALID_ARGUMENT); NOT_FOUND when absent.
  Result<ReadPlan> PrepareRead(const BlockKey& key, uint64_t offset, uint64_t length);
  // Reads a plan's bytes into `dst` (dst.size() >= plan.length). Like PrepareRead it does not
  // check the data against the CRCs: the reader (or the scrubber) does.
  Status ReadInto(ReadPlan& plan, std::span<uint8_t> dst);

  // NOT_FOUND when absent.
  Status Delete(const BlockKey& key);
  Result<BlockInfo> Stat(const BlockKey& key);
  // Every stored block or fragment of a slice.
  std::vector<BlockKey> KeysOfSlice(uint64_t slice_id);
  // The distinct slice ids stored here, ascending.
  std::vector<uint64_t> SliceIds();
  // Blocks of (pool, pg), or every block when `all`.
  std::vector<BlockInfo> List(uint32_t pool, uint32_t pg, bool all);
  Capacity capacity();

  // Up to `limit` blocks after `after` (from the first when null), in key order: a cursor
  // that stays valid while blocks come and go (the scrubber's).
  std::vector<BlockInfo> ListAfter(const BlockKey* after, size_t limit);

  // Disk errors (EIO) seen since open; a datanode with any reports itself unhealthy.
  uint64_t io_errors() const { return io_errors_.load(); }

  // A quarantined copy is not served (docs/maintenance.md "Repair on report"): it was reported
  // corrupt and its verification or replacement is pending. Delete lifts the quarantine.
  void Quarantine(const BlockKey& key);
  void Unquarantine(const BlockKey& key);
  bool IsQuarantined(const BlockKey& key);
  size_t quarantined();
  // Called (on the calling thread, which must not wait for it) when a read or write finds a
  // stored copy damaged — a header, CRC table or small-block record that fails its checksum.
  // Set once, before the store is shared.
  using DamageListener = std::function<void(const BlockKey&, const std::string& detail)>;
  void SetDamageListener(DamageListener listener) { damaged_ = std::move(listener); }

  // Where a file block lives (or would); small blocks have no path.
  std::string PathOf(const BlockKey& key) const;
  const std::string& dir() const { return dir_; }
  uint64_t small_block_max() const { return options_.small_block_max; }
  // True when `key` is stored in the small-block RocksDB.
  bool IsSmall(const BlockKey& key);
  SmallStore& small_store() { return *small_; }

 private:
  using Key = std::tuple<uint64_t, uint32_t, uint32_t>;
  static Key KeyOf(const BlockKey& k) { return {k.slice_id(), k.block_index(), k.fragment()}; }
  // One stored block: its description and where it lives (never both places).
  struct Entry {
    BlockInfo info;
    bool small = false;
  };
  BlockStore(std::string dir, std::shared_ptr<Device> device, BlockStoreOptions options);
  Status Scan();
  Result<BlockMeta> LoadMeta(File& file);
  // The stored meta of an indexed block, from its file or its small record.
  Result<BlockMeta> LoadStoredMeta(const BlockKey& key, bool small);
  Result<ReadPlan> PrepareSmallRead(const BlockKey& key, uint64_t offset, uint64_t length);
  Status WriteNew(const BlockKey& key, const BlockInfo& info, std::span<const uint8_t> data,
                  std::span<const uint32_t> crcs, bool direct);
  std::string DirOf(const BlockKey& key) const;

  const std::string dir_;
  std::shared_ptr<Device> device_;
  const BlockStoreOptions options_;
  std::unique_ptr<SmallStore> small_;

  std::mutex mu_;
  std::condition_variable key_done_;
  std::set<Key> writing_;  // keys with a write in progress; a second writer waits
  std::map<Key, Entry> index_;
  std::set<std::string> made_dirs_;
  uint64_t used_bytes_ = 0;
  uint64_t tmp_seq_ = 0;
  std::atomic<uint64_t> io_errors_{0};
  std::set<Key> quarantined_;
  DamageListener damaged_;
  // Tells the listener when `st` says the stored copy of `key` is damaged; returns `st`.
  Status NoteDamage(const BlockKey& key, Status st) {
    if (st.code() == Code::CORRUPT && damaged_) damaged_(key, st.message());
    return st;
  }
  Status CountIoError(Status st) {
    if (st.code() == Code::UNAVAILABLE) io_errors_.fetch_add(1);
    return st;
  }
};

}  // namespace granary::datanode
