#include "metanode/store.h"

#include <fmt/format.h>
#include <rocksdb/utilities/checkpoint.h>

#include <filesystem>
#include <vector>

#include "metanode/records.pb.h"

namespace granary::metanode {

namespace {
Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return Status::Ok();
  if (s.IsCorruption()) return Corrupt(fmt::format("{}: {}", what, s.ToString()));
  if (s.IsIOError() && s.ToString().find("No space") != std::string::npos) {
    return Status(Code::NO_SPACE, fmt::format("{}: {}", what, s.ToString()));
  }
  return Internal(fmt::format("{}: {}", what, s.ToString()));
}
}  // namespace

Result<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  std::unique_ptr<Store> store(new Store());
  store->path_ = options.path;
  store->in_memory_ = options.in_memory;
  if (options.in_memory) store->mem_env_.reset(rocksdb::NewMemEnv(rocksdb::Env::Default()));
  GRANARY_TRY(store->OpenDb());
  return store;
}

Status Store::OpenDb() {
  Store* store = this;
  rocksdb::Options db_options;
  db_options.create_if_missing = true;
  db_options.create_missing_column_families = true;
  // Small records, read mostly by point lookups and short prefix scans.
  db_options.max_background_jobs = 2;
  if (in_memory_) db_options.env = mem_env_.get();
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  // RocksDB requires the default column family; it stays empty.
  descriptors.emplace_back(rocksdb::kDefaultColumnFamilyName,
                           rocksdb::ColumnFamilyOptions(db_options));
  for (int i = 0; i < static_cast<int>(Cf::kCount); ++i) {
    descriptors.emplace_back(CfName(static_cast<Cf>(i)), rocksdb::ColumnFamilyOptions(db_options));
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  GRANARY_TRY(FromRocks(rocksdb::DB::Open(db_options, path_, descriptors, &handles, &raw),
                        fmt::format("open metadata store {}", path_)));
  store->db_.reset(raw);
  store->default_handle_ = handles[0];
  for (size_t i = 1; i < handles.size(); ++i) store->handles_[i - 1] = handles[i];

  // Format check: refuse a database written by a newer format.
  CounterRecord format;
  std::string value;
  rocksdb::Status read = db_->Get(rocksdb::ReadOptions(), cf(Cf::kSystem),
                                  rocksdb::Slice(kFormatKey.data(), kFormatKey.size()), &value);
  if (!read.IsNotFound()) GRANARY_TRY(FromRocks(read, "read format"));
  const bool found = read.ok();
  if (found && !format.ParseFromString(value)) return Corrupt("unparsable format record");
  if (found && format.value() > kFormat) {
    return Corrupt(fmt::format("metadata store {} has format {}, this build reads up to {}", path_,
                               format.value(), kFormat));
  }
  if (!found) {
    format.set_format(kFormat);
    format.set_value(kFormat);
    rocksdb::WriteBatch batch;
    batch.Put(cf(Cf::kSystem), std::string(kFormatKey), format.SerializeAsString());
    rocksdb::WriteOptions wo;
    wo.sync = true;
    GRANARY_TRY(FromRocks(db_->Write(wo, &batch), "write format"));
  }
  return Status::Ok();
}

Store::~Store() { CloseDb(); }

void Store::CloseDb() {
  if (db_) {
    for (auto* h : handles_) {
      if (h != nullptr) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    }
    if (default_handle_ != nullptr) {
      db_->DestroyColumnFamilyHandle(default_handle_).PermitUncheckedError();
    }
    db_->Close().PermitUncheckedError();
    db_.reset();
    handles_.fill(nullptr);
    default_handle_ = nullptr;
  }
}

Status Store::SyncWal() {
  std::shared_lock lock(swap_mu_);
  return FromRocks(db_->SyncWAL(), "sync metadata WAL");
}

Status Store::Replace(const std::string& dir) {
  if (in_memory_) return InvalidArgument("an in-memory store cannot be replaced");
  std::unique_lock lock(swap_mu_);
  namespace fs = std::filesystem;
  const std::string old = path_ + ".replaced";
  std::error_code ec;
  fs::remove_all(old, ec);
  CloseDb();
  fs::rename(path_, old, ec);
  if (ec) return Internal(fmt::format("move {} aside: {}", path_, ec.message()));
  fs::rename(dir, path_, ec);
  if (ec) {
    std::error_code back;
    fs::rename(old, path_, back);
    GRANARY_TRY(OpenDb());
    return Internal(fmt::format("move {} to {}: {}", dir, path_, ec.message()));
  }
  Status opened = OpenDb();
  if (!opened.ok()) return opened.WithContext("open the replacing metadata store");
  fs::remove_all(old, ec);
  return Status::Ok();
}

Status Store::Write(rocksdb::WriteBatch* batch, bool sync) {
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  return FromRocks(db_->Write(wo, batch), "write metadata batch");
}

Result<uint64_t> Store::Checkpoint(const std::string& dir) {
  std::shared_lock lock(swap_mu_);
  rocksdb::Checkpoint* raw = nullptr;
  GRANARY_TRY(FromRocks(rocksdb::Checkpoint::Create(db_.get(), &raw), "checkpoint"));
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  uint64_t sequence = 0;
  // log_size_for_flush = 0: flush the memtable so the checkpoint needs no WAL replay.
  GRANARY_TRY(FromRocks(checkpoint->CreateCheckpoint(dir, 0, &sequence),
                        fmt::format("checkpoint into {}", dir)));
  return sequence;
}

Txn::Txn(Store& store, rocksdb::WriteBatchWithIndex* batch)
    : store_(store), swap_lock_(store.swap_mutex()), batch_(batch) {}

Txn::Txn(Store& store) : store_(store), swap_lock_(store.swap_mutex()), batch_(nullptr) {
  snapshot_ = store.db()->GetSnapshot();
}

Txn::~Txn() {
  if (snapshot_ != nullptr) store_.db()->ReleaseSnapshot(snapshot_);
}

Result<bool> Txn::Get(Cf cf, std::string_view key, std::string* value) {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot_;
  rocksdb::Slice k(key.data(), key.size());
  rocksdb::Status s = batch_ != nullptr
                          ? batch_->GetFromBatchAndDB(store_.db(), ro, store_.cf(cf), k, value)
                          : store_.db()->Get(ro, store_.cf(cf), k, value);
  if (s.IsNotFound()) return false;
  GRANARY_TRY(FromRocks(s, fmt::format("read {}", CfName(cf))));
  return true;
}

Status Txn::MultiGet(Cf cf, const std::vector<std::string>& keys,
                     std::vector<std::optional<std::string>>* values) {
  values->assign(keys.size(), std::nullopt);
  if (batch_ != nullptr) {
    for (size_t i = 0; i < keys.size(); ++i) {
      std::string v;
      auto found = Get(cf, keys[i], &v);
      GRANARY_TRY(found);
      if (*found) (*values)[i] = std::move(v);
    }
    return Status::Ok();
  }
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot_;
  std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
  std::vector<rocksdb::PinnableSlice> found(keys.size());
  std::vector<rocksdb::Status> statuses(keys.size());
  store_.db()->MultiGet(ro, store_.cf(cf), keys.size(), slices.data(), found.data(),
                        statuses.data());
  for (size_t i = 0; i < keys.size(); ++i) {
    if (statuses[i].IsNotFound()) continue;
    GRANARY_TRY(FromRocks(statuses[i], fmt::format("multiget {}", CfName(cf))));
    (*values)[i] = found[i].ToString();
  }
  return Status::Ok();
}

void Txn::Put(Cf cf, std::string_view key, std::string_view value) {
  assert(batch_ != nullptr && "write through a read-only view");
  batch_
      ->Put(store_.cf(cf), rocksdb::Slice(key.data(), key.size()),
            rocksdb::Slice(value.data(), value.size()))
      .PermitUncheckedError();
  if (notes_ != nullptr && (cf == Cf::kInodes || cf == Cf::kDentries))
    notes_->emplace_back(cf, key);
}

void Txn::Delete(Cf cf, std::string_view key) {
  assert(batch_ != nullptr && "write through a read-only view");
  batch_->Delete(store_.cf(cf), rocksdb::Slice(key.data(), key.size())).PermitUncheckedError();
  if (notes_ != nullptr && (cf == Cf::kInodes || cf == Cf::kDentries))
    notes_->emplace_back(cf, key);
}

Status Txn::Scan(Cf cf, std::string_view prefix, std::string_view start, bool exclusive,
                 const ScanFn& fn) {
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot_;
  std::string upper(prefix);
  // Upper bound: the prefix with its last byte incremented (prefixes here never end in 0xff
  // runs that matter: integer prefixes are exact 8-byte keys; an all-0xff prefix scans to the end).
  while (!upper.empty() && static_cast<uint8_t>(upper.back()) == 0xff) upper.pop_back();
  rocksdb::Slice upper_slice;
  if (!upper.empty()) {
    upper.back() = static_cast<char>(static_cast<uint8_t>(upper.back()) + 1);
    upper_slice = rocksdb::Slice(upper);
    ro.iterate_upper_bound = &upper_slice;
  }
  std::unique_ptr<rocksdb::Iterator> it(store_.db()->NewIterator(ro, store_.cf(cf)));
  if (batch_ != nullptr) {
    it.reset(batch_->NewIteratorWithBase(store_.cf(cf), it.release(), &ro));
  }
  std::string seek(start.size() >= prefix.size() ? start : prefix);
  for (it->Seek(seek); it->Valid(); it->Next()) {
    rocksdb::Slice key = it->key();
    std::string_view k(key.data(), key.size());
    if (k.substr(0, prefix.size()) != prefix) break;
    if (exclusive && k == start) continue;
    rocksdb::Slice value = it->value();
    if (!fn(k, std::string_view(value.data(), value.size()))) break;
  }
  return FromRocks(it->status(), fmt::format("scan {}", CfName(cf)));
}

}  // namespace granary::metanode
