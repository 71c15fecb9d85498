// The metanode's RocksDB store and the read/write view every operation runs against.
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/utilities/write_batch_with_index.h>

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "metanode/schema.h"

namespace granary::metanode {

struct StoreOptions {
  std::string path;
  // Keep the database in RocksDB's in-memory Env (tests): same code path, nothing on disk.
  bool in_memory = false;
};

class Store {
 public:
  // Opens or creates the database with every column family of schema.h and checks the format
  // version written at creation.
  static Result<std::unique_ptr<Store>> Open(const StoreOptions& options);
  ~Store();

  rocksdb::DB* db() { return db_.get(); }
  rocksdb::ColumnFamilyHandle* cf(Cf cf) { return handles_[static_cast<int>(cf)]; }
  const std::string& path() const { return path_; }

  // Writes `batch` atomically; `sync` makes it durable (one WAL fsync) before returning.
  Status Write(rocksdb::WriteBatch* batch, bool sync);
  // A consistent checkpoint of the whole database in `dir` (which must not exist yet).
  Result<uint64_t> Checkpoint(const std::string& dir);
  // Makes every write so far durable (one WAL fsync).
  Status SyncWal();

  // Replaces the whole database by the one in `dir` (a checkpoint fetched from another member):
  // waits for every Txn to finish, closes, swaps the directories, reopens. `dir` is consumed.
  Status Replace(const std::string& dir);

  // Held shared by every Txn, exclusively by Replace.
  std::shared_mutex& swap_mutex() { return swap_mu_; }

 private:
  Store() = default;
  Status OpenDb();
  void CloseDb();
  std::shared_mutex swap_mu_;
  bool in_memory_ = false;
  std::string path_;
  std::unique_ptr<rocksdb::Env> mem_env_;
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::ColumnFamilyHandle* default_handle_ = nullptr;
  std::array<rocksdb::ColumnFamilyHandle*, static_cast<int>(Cf::kCount)> handles_{};
};

// A view of committed state plus the operations applied so far in the current batch. Apply reads
// and writes through it, so an operation sees every earlier operation of its group commit. With
// no batch it is a read-only view of a snapshot.
class Txn {
 public:
  Txn(Store& store, rocksdb::WriteBatchWithIndex* batch);
  // Read-only, at a consistent snapshot.
  explicit Txn(Store& store);
  ~Txn();
  Txn(const Txn&) = delete;
  Txn& operator=(const Txn&) = delete;

  // false when absent.
  Result<bool> Get(Cf cf, std::string_view key, std::string* value);
  // Several keys at once: one RocksDB MultiGet on a read-only view (the batch's own writes are
  // looked up key by key). (*values)[i] is empty when keys[i] is absent.
  Status MultiGet(Cf cf, const std::vector<std::string>& keys,
                  std::vector<std::optional<std::string>>* values);
  void Put(Cf cf, std::string_view key, std::string_view value);
  void Delete(Cf cf, std::string_view key);

  // Visits keys starting with `prefix` that are >= `start` (or > when `exclusive`), in order,
  // until `fn` returns false.
  using ScanFn = std::function<bool(std::string_view key, std::string_view value)>;
  Status Scan(Cf cf, std::string_view prefix, std::string_view start, bool exclusive,
              const ScanFn& fn);

  // Protobuf records.
  template <typename Msg>
  Result<bool> GetRecord(Cf cf, std::string_view key, Msg* msg) {
    std::string value;
    auto found = Get(cf, key, &value);
    if (!found.ok() || !*found) return found;
    if (!msg->ParseFromString(value)) {
      return Corrupt(std::string("unparsable record in ") + CfName(cf));
    }
    return true;
  }
  template <typename Msg>
  void PutRecord(Cf cf, std::string_view key, const Msg& msg) {
    Put(cf, key, msg.SerializeAsString());
  }

  Store& store() { return store_; }

  // Writes to inodes and dentries are also noted in `out` (cf, key): what the change feed
  // reports (change_feed.h). nullptr stops noting.
  void NoteWrites(std::vector<std::pair<Cf, std::string>>* out) { notes_ = out; }

 private:
  Store& store_;
  std::shared_lock<std::shared_mutex> swap_lock_;
  rocksdb::WriteBatchWithIndex* batch_;
  const rocksdb::Snapshot* snapshot_ = nullptr;
  std::vector<std::pair<Cf, std::string>>* notes_ = nullptr;
};

}  // namespace granary::metanode
