#include "datanode/block_store.h"

#include <fmt/format.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

#include "common/crc32c.h"
#include "common/log.h"
#include "datanode/small_store.h"

namespace granary::datanode {
namespace fs = std::filesystem;
namespace {

std::string KeyName(const BlockKey& k) {
  return fmt::format("slice {:#x} block {} fragment {}", k.slice_id(), k.block_index(),
                     k.fragment());
}

std::string FileName(const BlockKey& k) {
  return fmt::format("{:016x}-{:08x}-{:04x}.blk", k.slice_id(), k.block_index(), k.fragment());
}

// Spreads slices over the fan-out directories (splitmix64 finaliser); all blocks of one slice
// share a directory, which keeps a slice's files together for repair scans.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Where [offset, offset+length) of a `len`-byte block ends once rounded up to whole CRC units.
Result<uint64_t> ReadEnd(const BlockKey& key, uint64_t len, uint64_t offset, uint64_t length) {
  if (offset > len) {
    return InvalidArgument(
        fmt::format("read {}: offset {} beyond block length {}", KeyName(key), offset, len));
  }
  if (length == 0) return len;
  uint64_t want = offset + length;
  want = (want + kCrcBlockSize - 1) / kCrcBlockSize * kCrcBlockSize;
  return std::min(len, want);
}

}  // namespace

Result<std::unique_ptr<BlockStore>> BlockStore::Open(const std::string& dir,
                                                     std::shared_ptr<Device> device,
                                                     BlockStoreOptions options) {
  std::unique_ptr<BlockStore> store(new BlockStore(dir, std::move(device), options));
  GRANARY_TRY(store->device_->MakeDirs(dir + "/blocks"));
  GRANARY_TRY(store->device_->MakeDirs(dir + "/tmp"));
  // Opened even with small_block_max 0: blocks stored small earlier stay readable.
  auto small = SmallStore::Open(dir + "/small");
  if (!small.ok()) return small.status();
  store->small_ = std::move(*small);
  GRANARY_TRY(store->Scan());
  return store;
}

BlockStore::BlockStore(std::string dir, std::shared_ptr<Device> device, BlockStoreOptions options)
    : dir_(std::move(dir)), device_(std::move(device)), options_(options) {}

BlockStore::~BlockStore() = default;

bool BlockStore::IsSmall(const BlockKey& key) {
  std::lock_guard lock(mu_);
  auto it = index_.find(KeyOf(key));
  return it != index_.end() && it->second.small;
}

std::string BlockStore::DirOf(const BlockKey& key) const {
  uint64_t h = Mix(key.slice_id());
  return fmt::format("{}/blocks/{:02x}/{:02x}", dir_, h & 0xff, (h >> 8) & 0xff);
}

std::string BlockStore::PathOf(const BlockKey& key) const {
  return DirOf(key) + "/" + FileName(key);
}

Status BlockStore::Scan() {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_ + "/tmp", ec)) {
    // Leftovers of writes that never reached their rename: never acknowledged, safe to drop.
    device_->Unlink(entry.path().string()).PermitUnchecked();
  }
  uint64_t used = 0;
  std::map<Key, Entry> index;
  for (auto it = fs::recursive_directory_iterator(dir_ + "/blocks", ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    std::string path = it->path().string();
    auto file = device_->OpenForRead(path);
    if (!file.ok()) return file.status().WithContext("index blocks");
    auto meta = LoadMeta(**file);
    if (!meta.ok()) {
      // Kept for the scrubber and fsck to look at; never served.
      GLOG_WARN("event=block_unreadable path={} error=\"{}\"", path, meta.status().ToString());
      continue;
    }
    auto size = (*file)->Size();
    used += size.ok() ? *size : 0;
    index[KeyOf(meta->info.key())] = Entry{meta->info, false};
  }
  if (ec) return ErrnoStatus(ec.value(), "scan", dir_ + "/blocks");
  std::vector<BlockKey> doubles;
  GRANARY_TRY(small_->ForEach([&](BlockMeta&& meta, uint64_t bytes) {
    auto [it, inserted] = index.try_emplace(KeyOf(meta.info.key()), Entry{meta.info, true});
    if (!inserted) {
      doubles.push_back(meta.info.key());
      return;
    }
    used += bytes;
  }));
  for (const BlockKey& key : doubles) {
    // No write path stores a block twice; should one appear, the file (checked header) wins
    // so that a block is only ever in one place.
    GLOG_WARN("event=small_block_duplicate slice={} block={} fragment={}", key.slice_id(),
              key.block_index(), key.fragment());
    GRANARY_TRY(small_->Delete(key));
  }
  std::lock_guard lock(mu_);
  index_ = std::move(index);
  used_bytes_ = used;
  return Status::Ok();
}

Result<BlockMeta> BlockStore::LoadMeta(File& file) {
  AlignedBuffer header(kBlockHeaderSize);
  auto n = file.ReadAt(header.span(), 0);
  if (!n.ok()) return n.status();
  auto meta = DecodeBlockHeader(std::span<const uint8_t>(header.data(), *n), file.path());
  if (!meta.ok()) return meta.status();
  uint64_t table_bytes = CrcTableBytes(meta->info.length());
  if (table_bytes > 0) {
    AlignedBuffer table(table_bytes);
    auto m = file.ReadAt(table.span(), kBlockHeaderSize);
    if (!m.ok()) return m.status();
    GRANARY_TRY(DecodeCrcTable(std::span<const uint8_t>(table.data(), *m), &*meta,
                               HeaderTableCrc(header.span()), file.path()));
  }
  return meta;
}

Status BlockStore::Write(const BlockKey& key, const BlockOrigin& origin,
                         std::span<const uint8_t> data, std::span<const uint32_t> crcs,
                         bool read_soon) {
  if (crcs.size() != CrcCount(data.size())) {
    return InvalidArgument(fmt::format("write {}: {} crcs for {} bytes, expected {}", KeyName(key),
                                       crcs.size(), data.size(), CrcCount(data.size())));
  }
  long bad = FirstCrcMismatch(data.data(), data.size(), crcs.data(), crcs.size());
  if (bad >= 0) {
    return Corrupt(fmt::format("write {}: CRC mismatch in 4 KiB unit {} (bytes {}..{})",
                               KeyName(key), bad, bad * kCrcBlockSize,
                               std::min<uint64_t>(data.size(), (bad + 1) * kCrcBlockSize)));
  }
  Key k = KeyOf(key);
  bool exists, small = false;
  {
    std::unique_lock lock(mu_);
    key_done_.wait(lock, [&] { return !writing_.contains(k); });
    writing_.insert(k);
    auto it = index_.find(k);
    exists = it != index_.end();
    if (exists) small = it->second.small;
  }
  struct Release {
    BlockStore* s;
    Key k;
    ~Release() {
      {
        std::lock_guard lock(s->mu_);
        s->writing_.erase(k);
      }
      s->key_done_.notify_all();
    }
  } release{this, k};

  if (exists) {
    auto meta = LoadStoredMeta(key, small);
    if (!meta.ok()) {
      return NoteDamage(key, CountIoError(meta.status().WithContext("write " + KeyName(key))));
    }
    if (meta->info.length() == data.size() &&
        std::equal(meta->crcs.begin(), meta->crcs.end(), crcs.begin(), crcs.end())) {
      return Status::Ok();  // an idempotent retry
    }
    return AlreadyExists(fmt::format("write {}: stored with different content ({} bytes)",
                                     KeyName(key), meta->info.length()));
  }
  BlockInfo info;
  *info.mutable_key() = key;
  *info.mutable_origin() = origin;
  info.set_length(data.size());
  if (options_.small_block_max > 0 && data.size() <= options_.small_block_max) {
    Status st = small_->Put(info, data, crcs);
    if (!st.ok()) return CountIoError(st.WithContext("write " + KeyName(key)));
    std::lock_guard lock(mu_);
    index_[k] = Entry{info, true};
    used_bytes_ += SmallStore::StoredBytes(data.size());
    return Status::Ok();
  }
  const bool direct =
      !read_soon && options_.direct_write_min > 0 && data.size() >= options_.direct_write_min;
  return CountIoError(WriteNew(key, info, data, crcs, direct).WithContext("write " + KeyName(key)));
}

Result<BlockMeta> BlockStore::LoadStoredMeta(const BlockKey& key, bool small) {
  if (small) return small_->GetMeta(key);
  auto file = device_->OpenForRead(PathOf(key));
  if (!file.ok()) return file.status();
  return LoadMeta(**file);
}

Status BlockStore::WriteNew(const BlockKey& key, const BlockInfo& info,
                            std::span<const uint8_t> data, std::span<const uint32_t> crcs,
                            bool direct) {
  std::string target_dir = DirOf(key);
  std::string target = target_dir + "/" + FileName(key);
  const std::string parent_dir = fs::path(target_dir).parent_path().string();
  std::string tmp;
  bool need_dir, need_parent;
  {
    std::lock_guard lock(mu_);
    tmp = fmt::format("{}/tmp/{}.{}", dir_, FileName(key), ++tmp_seq_);
    need_dir = !made_dirs_.contains(target_dir);
    need_parent = !made_dirs_.contains(parent_dir);
  }
  AlignedBuffer prefix = EncodeBlockPrefix(info, crcs);
  auto file = device_->Create(tmp, direct);
  if (!file.ok()) return file.status();
  iovec iov[2] = {{prefix.data(), prefix.size()}, {const_cast<uint8_t*>(data.data()), data.size()}};
  Status st = (*file)->WriteAt(std::span<const iovec>(iov, data.empty() ? 1 : 2), 0);
  if (st.ok()) st = (*file)->Sync();
  file->reset();
  if (st.ok() && need_dir) {
    // made_dirs_ holds directories whose own entry is durable. A new leaf's entry needs its
    // parent synced; the parent's entry (in blocks/) only once per parent, not per leaf: on a
    // young store nearly every block opens a new leaf, and that fsync was a third of the small
    // write's directory fsyncs.
    st = device_->MakeDirs(target_dir);
    if (st.ok()) st = device_->SyncDir(parent_dir);
    if (st.ok() && need_parent) st = device_->SyncDir(dir_ + "/blocks");
    if (st.ok()) {
      std::lock_guard lock(mu_);
      made_dirs_.insert(target_dir);
      made_dirs_.insert(parent_dir);
    }
  }
  if (st.ok()) st = device_->Rename(tmp, target);
  if (!st.ok()) {
    device_->Unlink(tmp).PermitUnchecked();  // best effort; DIR/tmp is swept on open too
    return st;
  }
  st = device_->SyncDir(target_dir);
  if (!st.ok()) {
    // Visible but maybe not durable: withdraw it rather than acknowledge a doubtful block.
    device_->Unlink(target).PermitUnchecked();
    return st;
  }
  std::lock_guard lock(mu_);
  index_[KeyOf(key)] = Entry{info, false};
  used_bytes_ += prefix.size() + data.size();
  return Status::Ok();
}

Result<ReadPlan> BlockStore::PrepareRead(const BlockKey& key, uint64_t offset, uint64_t length) {
  if (offset % kCrcBlockSize != 0) {
    return InvalidArgument(fmt::format("read {}: offset {} is not a multiple of {}", KeyName(key),
                                       offset, kCrcBlockSize));
  }
  if (IsSmall(key)) return PrepareSmallRead(key, offset, length);
  auto file = device_->OpenForRead(PathOf(key));
  if (!file.ok()) return file.status().WithContext("read " + KeyName(key));
  auto meta = LoadMeta(**file);
  if (!meta.ok()) {
    return NoteDamage(key, CountIoError(meta.status().WithContext("read " + KeyName(key))));
  }
  uint64_t len = meta->info.length();
  auto end_or = ReadEnd(key, len, offset, length);
  if (!end_or.ok()) return end_or.status();
  const uint64_t end = *end_or;
  ReadPlan plan;
  plan.file = std::move(*file);
  plan.file_offset = meta->data_offset() + offset;
  plan.length = end - offset;
  plan.block_length = len;
  plan.crc_offset = offset;
  plan.crcs.assign(meta->crcs.begin() + offset / kCrcBlockSize, meta->crcs.begin() + CrcCount(end));
  return plan;
}

Result<ReadPlan> BlockStore::PrepareSmallRead(const BlockKey& key, uint64_t offset,
                                              uint64_t length) {
  auto meta = small_->GetMeta(key);
  if (!meta.ok()) {
    return NoteDamage(key, CountIoError(meta.status().WithContext("read " + KeyName(key))));
  }
  const uint64_t len = meta->info.length();
  auto end = ReadEnd(key, len, offset, length);
  if (!end.ok()) return end.status();
  rocksdb::PinnableSlice value;
  Status st = small_->GetData(key, &value);
  if (!st.ok()) {
    // The metadata is there, so a missing data value is damage, not absence.
    if (st.code() == Code::NOT_FOUND) st = Corrupt(st.message() + ": data value missing");
    return NoteDamage(key, CountIoError(st.WithContext("read " + KeyName(key))));
  }
  if (value.size() != len) {
    return NoteDamage(
        key, Corrupt(fmt::format("read {}: small-block data is {} bytes, its record says {}",
                                 KeyName(key), value.size(), len)));
  }
  ReadPlan plan;
  plan.length = *end - offset;
  plan.block_length = len;
  plan.crc_offset = offset;
  plan.crcs.assign(meta->crcs.begin() + offset / kCrcBlockSize,
                   meta->crcs.begin() + CrcCount(*end));
  // One copy out of RocksDB's pinned block into a page-aligned buffer that outlives the read.
  plan.memory = AlignedBuffer(plan.length);
  if (plan.length > 0) std::memcpy(plan.memory.data(), value.data() + offset, plan.length);
  return plan;
}

Status BlockStore::ReadInto(ReadPlan& plan, std::span<uint8_t> dst) {
  if (!plan.file) {
    if (plan.length > 0) std::memcpy(dst.data(), plan.memory.data(), plan.length);
    return Status::Ok();
  }
  auto n = plan.file->ReadAt(dst.first(plan.length), plan.file_offset);
  if (!n.ok()) return n.status();
  if (*n != plan.length) {
    return Corrupt(
        fmt::format("read {}: file ends {} bytes early", plan.file->path(), plan.length - *n));
  }
  return Status::Ok();
}

Status BlockStore::Delete(const BlockKey& key) {
  std::string path = PathOf(key);
  uint64_t size = 0;
  bool small = false;
  {
    std::lock_guard lock(mu_);
    auto it = index_.find(KeyOf(key));
    if (it != index_.end()) {
      small = it->second.small;
      uint64_t len = it->second.info.length();
      size = small ? SmallStore::StoredBytes(len) : DataOffset(len) + len;
    }
  }
  if (small) {
    Status st = small_->Delete(key);
    if (!st.ok()) return CountIoError(st.WithContext("delete " + KeyName(key)));
    std::lock_guard lock(mu_);
    index_.erase(KeyOf(key));
    quarantined_.erase(KeyOf(key));
    used_bytes_ -= std::min(used_bytes_, size);
    return Status::Ok();
  }
  Status st = device_->Unlink(path);
  if (!st.ok()) return st.WithContext("delete " + KeyName(key));
  GRANARY_TRY(device_->SyncDir(DirOf(key)));
  std::lock_guard lock(mu_);
  index_.erase(KeyOf(key));
  quarantined_.erase(KeyOf(key));
  used_bytes_ -= std::min(used_bytes_, size);
  return Status::Ok();
}

Result<BlockInfo> BlockStore::Stat(const BlockKey& key) {
  std::lock_guard lock(mu_);
  auto it = index_.find(KeyOf(key));
  if (it == index_.end()) return NotFound("stat " + KeyName(key));
  return it->second.info;
}

std::vector<BlockKey> BlockStore::KeysOfSlice(uint64_t slice_id) {
  std::lock_guard lock(mu_);
  std::vector<BlockKey> out;
  for (auto it = index_.lower_bound(Key{slice_id, 0, 0});
       it != index_.end() && std::get<0>(it->first) == slice_id; ++it) {
    out.push_back(it->second.info.key());
  }
  return out;
}

std::vector<uint64_t> BlockStore::SliceIds() {
  std::lock_guard lock(mu_);
  std::vector<uint64_t> out;
  for (const auto& [k, entry] : index_) {
    if (out.empty() || out.back() != std::get<0>(k)) out.push_back(std::get<0>(k));
  }
  return out;
}

std::vector<BlockInfo> BlockStore::List(uint32_t pool, uint32_t pg, bool all) {
  std::lock_guard lock(mu_);
  std::vector<BlockInfo> out;
  for (const auto& [k, entry] : index_) {
    const BlockInfo& info = entry.info;
    if (all || (info.origin().pool_id() == pool && info.origin().pg() == pg)) {
      out.push_back(info);
    }
  }
  return out;
}

std::vector<BlockInfo> BlockStore::ListAfter(const BlockKey* after, size_t limit) {
  std::lock_guard lock(mu_);
  std::vector<BlockInfo> out;
  auto it = after ? index_.upper_bound(KeyOf(*after)) : index_.begin();
  for (; it != index_.end() && out.size() < limit; ++it) out.push_back(it->second.info);
  return out;
}

void BlockStore::Quarantine(const BlockKey& key) {
  std::lock_guard lock(mu_);
  quarantined_.insert(KeyOf(key));
}

void BlockStore::Unquarantine(const BlockKey& key) {
  std::lock_guard lock(mu_);
  quarantined_.erase(KeyOf(key));
}

bool BlockStore::IsQuarantined(const BlockKey& key) {
  std::lock_guard lock(mu_);
  return quarantined_.contains(KeyOf(key));
}

size_t BlockStore::quarantined() {
  std::lock_guard lock(mu_);
  return quarantined_.size();
}

Capacity BlockStore::capacity() {
  Capacity c;
  struct statvfs st {};
  if (statvfs(dir_.c_str(), &st) == 0) {
    c.capacity_bytes = static_cast<uint64_t>(st.f_blocks) * st.f_frsize;
    c.available_bytes = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  }
  std::lock_guard lock(mu_);
  c.used_bytes = used_bytes_;
  c.blocks = index_.size();
  return c;
}

}  // namespace granary::datanode
