#include "datanode/small_store.h"

#include <fmt/format.h>
#include <rocksdb/write_batch.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "common/log.h"

namespace granary::datanode {
namespace {

constexpr size_t kKeySize = 16;
constexpr size_t kMetaFixed = 9;  // version, record CRC, info length

std::string EncodeKey(const BlockKey& k) {
  std::string out(kKeySize, '\0');
  auto put = [&](size_t at, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out[at + i] = static_cast<char>(v >> (8 * (bytes - 1 - i)));
  };
  put(0, k.slice_id(), 8);
  put(8, k.block_index(), 4);
  put(12, k.fragment(), 4);
  return out;
}

std::string KeyText(const BlockKey& k) {
  return fmt::format("small block slice {:#x} block {} fragment {}", k.slice_id(), k.block_index(),
                     k.fragment());
}

uint32_t Get32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// NoSpace and the other I/O errors are the disk's answers and map like errno does for files;
// Corruption is RocksDB's own block/WAL checksums failing.
Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  if (s.IsNotFound()) return NotFound(std::string(what));
  if (s.IsCorruption()) return Corrupt(fmt::format("{}: {}", what, s.ToString()));
  if (s.IsNoSpace() || s.ToString().find("No space") != std::string::npos) {
    return Status(Code::NO_SPACE, fmt::format("{}: ENOSPC ({})", what, s.ToString()));
  }
  if (s.IsIOError() || s.IsIncomplete() || s.IsShutdownInProgress() || s.IsBusy() ||
      s.IsTryAgain()) {
    return Unavailable(fmt::format("{}: {}", what, s.ToString()));
  }
  return Internal(fmt::format("{}: {}", what, s.ToString()));
}

std::string EncodeMeta(const BlockInfo& info, std::span<const uint32_t> crcs) {
  std::string encoded = info.SerializeAsString();
  std::string out(kMetaFixed, '\0');
  out[0] = static_cast<char>(kSmallRecordVersion);
  uint32_t info_len = static_cast<uint32_t>(encoded.size());
  std::memcpy(out.data() + 5, &info_len, 4);
  out += encoded;
  out.append(reinterpret_cast<const char*>(crcs.data()), crcs.size() * 4);
  uint32_t crc = Crc32c(reinterpret_cast<const uint8_t*>(out.data()) + 5, out.size() - 5);
  std::memcpy(out.data() + 1, &crc, 4);
  return out;
}

Result<BlockMeta> DecodeMeta(std::string_view v, const std::string& where) {
  if (v.size() < kMetaFixed) return Corrupt(fmt::format("{}: record truncated", where));
  if (static_cast<uint8_t>(v[0]) != kSmallRecordVersion) {
    return Corrupt(fmt::format("{}: unknown record version {}", where, uint8_t(v[0])));
  }
  if (Get32(v.data() + 1) != Crc32c(reinterpret_cast<const uint8_t*>(v.data()) + 5, v.size() - 5)) {
    return Corrupt(fmt::format("{}: record CRC mismatch", where));
  }
  uint32_t info_len = Get32(v.data() + 5);
  if (info_len > v.size() - kMetaFixed) {
    return Corrupt(fmt::format("{}: info length {} too large", where, info_len));
  }
  BlockMeta meta;
  if (!meta.info.ParseFromArray(v.data() + kMetaFixed, static_cast<int>(info_len))) {
    return Corrupt(fmt::format("{}: unparsable block info", where));
  }
  size_t table = v.size() - kMetaFixed - info_len;
  if (table != CrcCount(meta.info.length()) * 4) {
    return Corrupt(
        fmt::format("{}: crc table has {} bytes for length {}", where, table, meta.info.length()));
  }
  meta.crcs.resize(table / 4);
  if (table > 0) std::memcpy(meta.crcs.data(), v.data() + kMetaFixed + info_len, table);
  return meta;
}

// RocksDB's warnings and errors go to our log, and nothing goes to a LOG file on the data disk:
// on a full disk RocksDB's own info-log writer trips an assertion after its first failed write
// (seen with the Debian 7.8 build), and the block store must keep answering NO_SPACE instead.
class LogBridge final : public rocksdb::Logger {
 public:
  explicit LogBridge(std::string db) : rocksdb::Logger(rocksdb::WARN_LEVEL), db_(std::move(db)) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override { Logv(rocksdb::WARN_LEVEL, format, ap); }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    char buf[1024];
    int n = std::vsnprintf(buf, sizeof(buf), format, ap);
    while (n > 0 && static_cast<size_t>(n) < sizeof(buf) && buf[n - 1] == '\n') buf[--n] = '\0';
    if (level >= rocksdb::ERROR_LEVEL) {
      GLOG_ERROR("event=rocksdb db={} message=\"{}\"", db_, buf);
    } else {
      GLOG_WARN("event=rocksdb db={} message=\"{}\"", db_, buf);
    }
  }

 private:
  std::string db_;
};

}  // namespace

uint64_t SmallStore::wal_syncs() const { return stats_->getTickerCount(rocksdb::WAL_FILE_SYNCED); }

uint64_t SmallStore::StoredBytes(uint64_t length) {
  return kKeySize * 2 + kMetaFixed + 64 + CrcCount(length) * 4 + length;
}

Result<std::unique_ptr<SmallStore>> SmallStore::Open(const std::string& path) {
  std::unique_ptr<SmallStore> store(new SmallStore());
  store->path_ = path;
  rocksdb::Options options;
  options.create_if_missing = true;
  options.create_missing_column_families = true;
  options.max_background_jobs = 2;
  options.info_log = std::make_shared<LogBridge>(path);
  // Tickers only (no timers or histograms): cheap, and wal_syncs() needs them.
  store->stats_ = rocksdb::CreateDBStatistics();
  store->stats_->set_stats_level(rocksdb::kExceptHistogramOrTimers);
  options.statistics = store->stats_;
  // Block data is mostly incompressible and CRC-checked by us; spend no CPU trying.
  options.compression = rocksdb::kNoCompression;
  // 16 MiB memtables (RocksDB's default is 64): after ENOSPC RocksDB resumes writes by itself
  // only once the largest memtable's size is free again, and each datanode of `granary
  // server` holds its own.
  options.write_buffer_size = 16 << 20;
  // The small "meta" memtable fills ~800x slower than "data" and would otherwise pin old WAL
  // files for long; past this much WAL RocksDB flushes it, which bounds replay after a crash.
  options.max_total_wal_size = 64 << 20;
  rocksdb::ColumnFamilyOptions meta_options(options);
  rocksdb::ColumnFamilyOptions data_options(options);
  meta_options.write_buffer_size = 4 << 20;
  std::vector<rocksdb::ColumnFamilyDescriptor> families = {
      {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions(options)},
      {"meta", meta_options},
      {"data", data_options}};
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  // RocksDB lists the directory before create_if_missing makes it, and reports the missing
  // directory at ERROR level ("Error when reading … dir NotFound"): on a clean first start that
  // was an error line about nothing. The directory is made here first.
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return Internal(fmt::format("create small-block store {}: {}", path, ec.message()));
  GRANARY_TRY(FromRocks(rocksdb::DB::Open(options, path, families, &handles, &raw),
                        "open small-block store " + path));
  store->db_.reset(raw);
  store->default_cf_ = handles[0];
  store->meta_cf_ = handles[1];
  store->data_cf_ = handles[2];
  return store;
}

SmallStore::~SmallStore() {
  if (!db_) return;
  for (auto* h : {default_cf_, meta_cf_, data_cf_}) {
    if (h != nullptr) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
  }
  db_->Close().PermitUncheckedError();
}

Status SmallStore::ForEach(const std::function<void(BlockMeta&&, uint64_t)>& fn) {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), meta_cf_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    auto meta = DecodeMeta(it->value().ToStringView(), path_);
    if (!meta.ok()) {
      GLOG_WARN("event=small_block_unreadable db={} error=\"{}\"", path_, meta.status().ToString());
      continue;
    }
    uint64_t bytes = StoredBytes(meta->info.length());
    fn(std::move(*meta), bytes);
  }
  return FromRocks(it->status(), "scan small-block store " + path_);
}

Status SmallStore::Sync(rocksdb::WriteBatch* batch, std::string_view what) {
  if (needs_resume_.load()) {
    // A failed write may have left RocksDB in read-only mode (a background error); ask it to
    // recover before trying again. If the disk is still bad this write fails like the last.
    rocksdb::Status r = db_->Resume();
    if (r.IsBusy()) {
      // RocksDB is already recovering by itself (after ENOSPC it polls free space): the
      // earlier answer still holds until it is done.
      return Status(static_cast<Code>(last_error_.load()),
                    fmt::format("{}: RocksDB is still recovering from an earlier error", what));
    }
    if (!r.ok()) return FromRocks(r, fmt::format("{}: resume after an earlier error", what));
    needs_resume_ = false;
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  batches_.fetch_add(1);
  Status st = FromRocks(db_->Write(wo, batch), what);
  if (!st.ok()) {
    last_error_ = static_cast<int>(st.code());
    needs_resume_ = true;
  }
  return st;
}

Status SmallStore::Put(const BlockInfo& info, std::span<const uint8_t> data,
                       std::span<const uint32_t> crcs) {
  const std::string key = EncodeKey(info.key());
  rocksdb::WriteBatch batch;
  GRANARY_TRY(FromRocks(batch.Put(meta_cf_, key, EncodeMeta(info, crcs)), "batch"));
  GRANARY_TRY(
      FromRocks(batch.Put(data_cf_, key,
                          rocksdb::Slice(reinterpret_cast<const char*>(data.data()), data.size())),
                "batch"));
  return Sync(&batch, "put " + KeyText(info.key()));
}

Result<BlockMeta> SmallStore::GetMeta(const BlockKey& key) {
  std::string value;
  GRANARY_TRY(FromRocks(db_->Get(rocksdb::ReadOptions(), meta_cf_, EncodeKey(key), &value),
                        "get " + KeyText(key)));
  auto meta = DecodeMeta(value, KeyText(key));
  if (meta.ok() && EncodeKey(meta->info.key()) != EncodeKey(key)) {
    return Corrupt(KeyText(key) + ": record names another block");
  }
  return meta;
}

Status SmallStore::GetData(const BlockKey& key, rocksdb::PinnableSlice* out) {
  return FromRocks(db_->Get(rocksdb::ReadOptions(), data_cf_, EncodeKey(key), out),
                   "get data of " + KeyText(key));
}

Status SmallStore::Delete(const BlockKey& key) {
  const std::string k = EncodeKey(key);
  rocksdb::WriteBatch batch;
  GRANARY_TRY(FromRocks(batch.Delete(meta_cf_, k), "batch"));
  GRANARY_TRY(FromRocks(batch.Delete(data_cf_, k), "batch"));
  return Sync(&batch, "delete " + KeyText(key));
}

Status SmallStore::OverwriteDataForTest(const BlockKey& key, std::span<const uint8_t> bytes) {
  rocksdb::WriteBatch batch;
  GRANARY_TRY(FromRocks(
      batch.Put(data_cf_, EncodeKey(key),
                rocksdb::Slice(reinterpret_cast<const char*>(bytes.data()), bytes.size())),
      "batch"));
  return Sync(&batch, "overwrite " + KeyText(key));
}

}  // namespace granary::datanode
