// Test fixture shared by the metanode unit tests: a MetaCore over each store kind (RocksDB on
// disk, RocksDB in a memory Env), a volume, a controllable clock and short helpers.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <random>

#include "metanode/meta_core.h"
#include "metanode/reader.h"

namespace granary::metanode {

struct DiskStore {
  static constexpr bool kInMemory = false;
};
struct MemoryStore {
  static constexpr bool kInMemory = true;
};
using StoreKinds = ::testing::Types<DiskStore, MemoryStore>;

#define EXPECT_CODE(expr, code_value) \
  EXPECT_EQ(StatusOf(expr).code(), code_value) << StatusOf(expr).ToString()
#define ASSERT_OK(expr) ASSERT_TRUE(StatusOf(expr).ok()) << StatusOf(expr).ToString()

template <typename Kind>
class MetaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("granary-meta-test-" + std::to_string(std::random_device()()));
    MetaCoreOptions o;
    o.data_dir = dir_.string();
    o.in_memory = Kind::kInMemory;
    o.housekeeping_ms = 0;  // tests call Housekeep() themselves
    o.lease_ms = 1000;
    o.reap_grace_ms = 1000;
    o.down_after_ms = 5000;
    o.clock = [this] { return now_ms_.load(); };
    Customize(o);
    auto core = MetaCore::Open(o);
    ASSERT_TRUE(core.ok()) << core.status().ToString();
    core_ = std::move(*core);
    auto v = VolumeCreate("vol", 0, 0);
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    volume_ = *v;
    root_ = volume_.root_ino();
  }
  void TearDown() override {
    core_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  virtual void Customize(MetaCoreOptions&) {}

  OpId NextId() {
    OpId id;
    id.set_client_id(77);
    id.set_seq(++seq_);
    return id;
  }
  Result<OpReply> Run(Operation op, bool with_id = true) {
    if (with_id && !op.has_id()) *op.mutable_id() = NextId();
    return core_->Run(std::move(op));
  }
  Result<Volume> VolumeCreate(const std::string& name, uint64_t quota_bytes,
                              uint64_t quota_inodes) {
    Operation op;
    auto* r = op.mutable_volume_create();
    r->set_name(name);
    r->set_quota_bytes(quota_bytes);
    r->set_quota_inodes(quota_inodes);
    auto reply = Run(op);
    GRANARY_TRY(reply);
    return reply->volume().volume();
  }
  Result<InodeAttr> Mkdir(uint64_t parent, const std::string& name) {
    Operation op;
    op.mutable_mkdir()->set_parent(parent);
    op.mutable_mkdir()->set_name(name);
    op.mutable_mkdir()->set_mode(0755);
    auto reply = Run(op);
    GRANARY_TRY(reply);
    return reply->entry().attr();
  }
  Result<InodeAttr> Create(uint64_t parent, const std::string& name, bool exclusive = true,
                           bool truncate = false) {
    Operation op;
    auto* r = op.mutable_create();
    r->set_parent(parent);
    r->set_name(name);
    r->set_mode(0644);
    r->set_exclusive(exclusive);
    r->set_truncate(truncate);
    auto reply = Run(op);
    GRANARY_TRY(reply);
    return reply->entry().attr();
  }
  Status Unlink(uint64_t parent, const std::string& name) {
    Operation op;
    op.mutable_unlink()->set_parent(parent);
    op.mutable_unlink()->set_name(name);
    return StatusOf(Run(op));
  }
  Status Rmdir(uint64_t parent, const std::string& name) {
    Operation op;
    op.mutable_rmdir()->set_parent(parent);
    op.mutable_rmdir()->set_name(name);
    return StatusOf(Run(op));
  }
  Result<RenameReply> Rename(uint64_t parent, const std::string& name, uint64_t new_parent,
                             const std::string& new_name, RenameFlags flags = RENAME_FLAG_PLAIN) {
    Operation op;
    auto* r = op.mutable_rename();
    r->set_parent(parent);
    r->set_name(name);
    r->set_new_parent(new_parent);
    r->set_new_name(new_name);
    r->set_flags(flags);
    auto reply = Run(op);
    GRANARY_TRY(reply);
    return reply->rename();
  }
  Result<InodeAttr> Link(uint64_t ino, uint64_t new_parent, const std::string& new_name) {
    Operation op;
    op.mutable_link()->set_ino(ino);
    op.mutable_link()->set_new_parent(new_parent);
    op.mutable_link()->set_new_name(new_name);
    auto reply = Run(op);
    GRANARY_TRY(reply);
    return reply->entry().attr();
  }
  Result<InodeAttr> Truncate(uint64_t ino, uint64_t size) {
    Operation op;
    op.mutable_setattr()->set_ino(ino);
    op.mutable_setattr()->set_valid(SETATTR_SIZE);
    op.mutable_setattr()->set_size(size);
    auto reply = Run(op);
    GRANARY_TRY(reply);
    return reply->attr().attr();
  }
  Result<InodeAttr> Lookup(uint64_t parent, const std::string& name) {
    return QueryLookup(*core_->Snapshot(), parent, name);
  }
  Result<InodeAttr> GetAttr(uint64_t ino) { return QueryGetAttr(*core_->Snapshot(), ino); }
  Result<Volume> GetVolume() {
    VolumeGetRequest req;
    req.set_id(volume_.id());
    return QueryVolume(*core_->Snapshot(), req);
  }
  std::vector<std::string> Names(uint64_t dir) {
    std::vector<std::string> names;
    ReadDirRequest req;
    req.set_ino(dir);
    auto r = QueryReadDir(*core_->Snapshot(), req);
    if (r.ok()) {
      for (const auto& e : r->entries()) names.push_back(e.name());
    }
    return names;
  }

  std::filesystem::path dir_;
  std::atomic<int64_t> now_ms_{1700000000000};
  std::unique_ptr<MetaCore> core_;
  Volume volume_;
  uint64_t root_ = 0;
  std::atomic<uint64_t> seq_{0};
};

}  // namespace granary::metanode
