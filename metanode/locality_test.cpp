// Locality report and warm-ups, the metanode's side (docs/locality.md): four datanodes on hosts
// h1..h4, a replicated:2 pool with failure domain host.
#include "metanode/locality.h"

#include <algorithm>

#include "metanode/test_util.h"

namespace granary::metanode {
namespace {

template <typename Kind>
class VolumeLocalityTest : public MetaTest<Kind> {
 protected:
  void SetUp() override {
    MetaTest<Kind>::SetUp();
    for (int i = 1; i <= 4; ++i) {
      Operation reg;
      RegisterRequest& r = *reg.mutable_node_register();
      r.set_uuid("dn-" + std::to_string(i));
      r.set_address("127.0.0.1:1");
      r.set_data_address("127.0.0.1:1");
      (*r.mutable_labels())["host"] = "h" + std::to_string(i);
      (*r.mutable_labels())["rack"] = i <= 2 ? "r1" : "r2";
      auto reply = this->Run(reg, false);
      ASSERT_OK(reply);
      nodes_[i] = reply->node_register().node_id();
    }
    // Every node up before any data is placed: the PG map does not change under the tests.
    for (const auto& [i, id] : nodes_) {
      HeartbeatRequest hb;
      hb.set_node_id(id);
      hb.set_healthy(true);
      ASSERT_OK(this->core_->Heartbeat(hb));
    }
    Operation pool;
    PoolSpec& spec = *pool.mutable_pool_create()->mutable_spec();
    spec.set_name("rep2");
    spec.set_redundancy(REPLICATED_POOL);
    spec.set_replicas(2);
    spec.set_failure_domain(DOMAIN_HOST);
    spec.set_pg_count(8);
    spec.set_block_size(1 << 20);
    ASSERT_OK(this->Run(pool));
    Operation vol;
    vol.mutable_volume_create()->set_name("data");
    vol.mutable_volume_create()->set_pool("rep2");
    auto v = this->Run(vol);
    ASSERT_OK(v);
    data_ = v->volume().volume();
    auto dir = this->Mkdir(data_.root_ino(), "train");
    ASSERT_OK(dir);
    train_ = dir->ino();
    for (int i = 0; i < 3; ++i) {
      auto f = this->Create(train_, "shard" + std::to_string(i));
      ASSERT_OK(f);
      files_.push_back(f->ino());
      CommitSlice(f->ino(), (3 << 20) + 1000 * i);
    }
    auto other = this->Create(data_.root_ino(), "readme");
    ASSERT_OK(other);
    CommitSlice(other->ino(), 4096);
  }

  uint64_t CommitSlice(uint64_t ino, uint64_t len) {
    Operation alloc;
    alloc.mutable_allocate()->set_ino(ino);
    alloc.mutable_allocate()->set_slice_count(1);
    auto a = this->Run(alloc);
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    Operation op;
    auto* c = op.mutable_commit();
    c->set_ino(ino);
    c->set_intent_id(a->allocate().intent_id());
    c->set_generation(a->allocate().generation());
    SliceRef& s = *c->add_ranges()->add_slices();
    s.set_slice_id(a->allocate().first_slice_id());
    s.set_slice_length(len);
    s.set_length(len);
    s.set_encoding(REPLICATED);
    c->set_end(len);
    EXPECT_TRUE(this->Run(op).ok());
    return a->allocate().first_slice_id();
  }

  VolumeLocalityReply Locality(const std::string& path = "") {
    VolumeLocalityRequest req;
    req.set_volume("data");
    req.set_path(path);
    auto r = QueryVolumeLocality(*this->core_->Snapshot(), req);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : VolumeLocalityReply();
  }

  Result<Warmup> CreateWarmup(const std::string& name, const std::string& path,
                              std::vector<std::string> hosts, const std::string& volume = "data") {
    Operation op;
    WarmupCreateRequest& r = *op.mutable_warmup_create();
    r.set_name(name);
    r.set_volume(volume);
    r.set_path(path);
    for (const auto& h : hosts) r.add_hosts(h);
    auto reply = this->Run(op);
    GRANARY_TRY(reply);
    return reply->warmup().warmup();
  }

  Warmup Get(const std::string& name) {
    WarmupListRequest req;
    req.set_name(name);
    auto r = QueryWarmups(*this->core_->Snapshot(), req);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && r->warmups_size() == 1 ? r->warmups(0) : Warmup();
  }

  // Does what a datanode does with its tasks: reports every block copied.
  size_t CopyEverythingPlannedFor(uint32_t node) {
    HeartbeatRequest hb;
    hb.set_node_id(node);
    hb.set_healthy(true);
    auto reply = this->core_->Heartbeat(hb);
    EXPECT_TRUE(reply.ok()) << reply.status().ToString();
    if (!reply.ok()) return 0;
    for (const WarmTask& t : reply->warm_tasks()) {
      WarmDoneRequest done;
      done.set_node_id(node);
      WarmedSlice& s = *done.add_slices();
      s.set_slice_id(t.slice_id());
      *s.mutable_warmup_ids() = t.warmup_ids();
      for (const WarmBlock& b : t.blocks()) {
        s.add_blocks(b.block_index());
        s.set_bytes(s.bytes() + b.length());
      }
      EXPECT_TRUE(this->core_->WarmDone(done).ok());
    }
    return static_cast<size_t>(reply->warm_tasks_size());
  }

  const DomainBytes* Host(const VolumeLocalityReply& r, const std::string& name) {
    for (const auto& h : r.hosts()) {
      if (h.name() == name) return &h;
    }
    return nullptr;
  }

  size_t TrashRecords() {
    size_t n = 0;
    EXPECT_TRUE(this->core_->Snapshot()
                    ->Scan(Cf::kSystem, kWarmTrashPrefix, "", false,
                           [&](std::string_view, std::string_view) {
                             ++n;
                             return true;
                           })
                    .ok());
    return n;
  }

  std::map<int, uint32_t> nodes_;  // host index -> node id
  Volume data_;
  uint64_t train_ = 0;
  std::vector<uint64_t> files_;
};
TYPED_TEST_SUITE(VolumeLocalityTest, StoreKinds);

TYPED_TEST(VolumeLocalityTest, ReportsBytesPerHostRackAndZoneForAVolumeOrADirectory) {
  const uint64_t train = 3 * (3 << 20) + 1000 + 2000;
  VolumeLocalityReply all = this->Locality();
  EXPECT_EQ(all.files(), 4u);
  EXPECT_EQ(all.logical_bytes(), train + 4096);
  // Two copies of every block, each on a different host.
  uint64_t stored = 0;
  for (const auto& h : all.hosts()) {
    stored += h.bytes();
    EXPECT_EQ(h.bytes(), h.local_bytes()) << h.name() << ": one copy per host";
    EXPECT_EQ(h.warm_bytes(), 0u);
  }
  EXPECT_EQ(stored, 2 * all.logical_bytes());
  for (int i = 1; i < all.hosts_size(); ++i) {
    EXPECT_GE(all.hosts(i - 1).bytes(), all.hosts(i).bytes()) << "most bytes first";
  }
  uint64_t racks = 0;
  for (const auto& r : all.racks()) racks += r.bytes();
  EXPECT_EQ(racks, stored);
  ASSERT_EQ(all.zones_size(), 1);
  EXPECT_EQ(all.zones(0).name(), "-");
  EXPECT_EQ(all.zones(0).local_bytes(), all.logical_bytes());

  VolumeLocalityReply dir = this->Locality("train/");
  EXPECT_EQ(dir.path(), "/train");
  EXPECT_EQ(dir.files(), 3u);
  EXPECT_EQ(dir.logical_bytes(), train);
  EXPECT_EQ(this->Locality("/train/shard1").logical_bytes(), (3u << 20) + 1000);

  VolumeLocalityRequest missing;
  missing.set_volume("data");
  missing.set_path("nope");
  EXPECT_CODE(QueryVolumeLocality(*this->core_->Snapshot(), missing), Code::NOT_FOUND);
  missing.set_volume("nosuch");
  missing.clear_path();
  EXPECT_CODE(QueryVolumeLocality(*this->core_->Snapshot(), missing), Code::NOT_FOUND);
}

TYPED_TEST(VolumeLocalityTest, WarmupCreateValidatesAndIsIdempotent) {
  EXPECT_CODE(this->CreateWarmup("", "", {"h1"}), Code::INVALID_ARGUMENT);
  EXPECT_CODE(this->CreateWarmup("a b", "", {"h1"}), Code::INVALID_ARGUMENT);
  EXPECT_CODE(this->CreateWarmup("w", "", {}), Code::INVALID_ARGUMENT);
  EXPECT_CODE(this->CreateWarmup("w", "nope", {"h1"}), Code::NOT_FOUND);
  EXPECT_CODE(this->CreateWarmup("w", "", {"h1"}, "nosuch"), Code::NOT_FOUND);
  Operation ec;
  PoolSpec& spec = *ec.mutable_pool_create()->mutable_spec();
  spec.set_name("ec");
  spec.set_redundancy(ERASURE_CODED_POOL);
  spec.set_data_chunks(2);
  spec.set_coding_chunks(1);
  spec.set_pg_count(8);
  ASSERT_OK(this->Run(ec));
  Operation vol;
  vol.mutable_volume_create()->set_name("ecvol");
  vol.mutable_volume_create()->set_pool("ec");
  ASSERT_OK(this->Run(vol));
  EXPECT_CODE(this->CreateWarmup("w", "", {"h1"}, "ecvol"), Code::INVALID_ARGUMENT);

  auto w = this->CreateWarmup("ml/imagenet", "/train", {"h4", "h3", "h4"});
  ASSERT_OK(w);
  EXPECT_EQ(w->state(), WARMUP_COPYING);
  EXPECT_EQ(w->path(), "/train");
  ASSERT_EQ(w->hosts_size(), 2);
  EXPECT_EQ(w->hosts(0), "h3");
  auto again = this->CreateWarmup("ml/imagenet", "train", {"h3", "h4"});
  ASSERT_OK(again);
  EXPECT_EQ(again->id(), w->id());
  EXPECT_CODE(this->CreateWarmup("ml/imagenet", "", {"h3"}), Code::ALREADY_EXISTS);
}

TYPED_TEST(VolumeLocalityTest, WarmCopiesMakeAHostLocalAndAreReleasedOnDelete) {
  const uint32_t h4 = this->nodes_[4];
  const VolumeLocalityReply initial = this->Locality("train");
  const uint64_t before = this->Host(initial, "h4") ? this->Host(initial, "h4")->local_bytes() : 0;
  auto w = this->CreateWarmup("w", "train", {"h4"});
  ASSERT_OK(w);
  this->core_->Housekeep();  // plans
  for (int i = 1; i <= 3; ++i) {
    EXPECT_EQ(this->CopyEverythingPlannedFor(this->nodes_[i]), 0u) << "only h4 copies";
  }
  const size_t tasks = this->CopyEverythingPlannedFor(h4);
  const uint64_t train = 3 * (3 << 20) + 1000 + 2000;
  if (before < train) {
    EXPECT_GT(tasks, 0u);
  }

  VolumeLocalityReply after = this->Locality("train");
  const DomainBytes* host = this->Host(after, "h4");
  ASSERT_NE(host, nullptr);
  EXPECT_EQ(host->local_bytes(), train) << "every block readable on h4";
  EXPECT_EQ(host->warm_bytes(), train - before);
  Warmup listed = this->Get("w");
  EXPECT_EQ(listed.bytes(), train);
  EXPECT_EQ(listed.done_bytes(), train);
  ASSERT_EQ(listed.host_progress_size(), 1);
  EXPECT_EQ(listed.host_progress(0).warm_bytes(), train - before);
  this->now_ms_ += 2000;
  this->core_->Housekeep();
  EXPECT_EQ(this->Get("w").state(), WARMUP_READY);

  // Readers learn where the warm copies are from the read map.
  ReadMapRequest rm;
  rm.set_ino(this->files_[0]);
  auto map = QueryReadMap(*this->core_->Snapshot(), rm);
  ASSERT_OK(map);
  bool named = false;
  for (const Extent& e : map->extents()) {
    for (uint32_t n : e.warm_nodes()) named = named || n == h4;
  }
  EXPECT_EQ(named, listed.copies() > 0);

  // Delete: the copies go to the trash (deleted on the datanode by housekeeping) and the
  // warm-up disappears once they are all released.
  Operation del;
  del.mutable_warmup_delete()->set_name("w");
  ASSERT_OK(this->Run(del));
  EXPECT_EQ(this->Get("w").state(), WARMUP_DELETING);
  this->core_->Housekeep();
  WarmupListRequest all;
  auto list = QueryWarmups(*this->core_->Snapshot(), all);
  ASSERT_OK(list);
  EXPECT_EQ(list->warmups_size(), 0);
  const VolumeLocalityReply released = this->Locality("train");
  const DomainBytes* gone = this->Host(released, "h4");
  EXPECT_EQ(gone ? gone->warm_bytes() : 0, 0u);
  // The datanode (127.0.0.1:1) cannot be reached: the trash keeps the copies to delete.
  EXPECT_EQ(this->TrashRecords(), listed.copies());
  map = QueryReadMap(*this->core_->Snapshot(), rm);
  ASSERT_OK(map);
  for (const Extent& e : map->extents()) EXPECT_EQ(e.warm_nodes_size(), 0);
  // Once the node is out, its trash is dropped (it reconciles when it returns).
  Operation out;
  out.mutable_set_node_state()->set_node_id(h4);
  out.mutable_set_node_state()->set_state(OUT);
  ASSERT_OK(this->Run(out, false));
  this->core_->Housekeep();
  EXPECT_EQ(this->TrashRecords(), 0u);
}

TYPED_TEST(VolumeLocalityTest, NoSpaceStopsTheWarmupWithAReasonAndKeepsWhatWasCopied) {
  auto w = this->CreateWarmup("w", "train", {"h1", "h2", "h3", "h4"});
  ASSERT_OK(w);
  this->core_->Housekeep();
  uint32_t node = 0;
  WarmTask task;
  for (int i = 1; i <= 4 && node == 0; ++i) {
    HeartbeatRequest hb;
    hb.set_node_id(this->nodes_[i]);
    hb.set_healthy(true);
    auto reply = this->core_->Heartbeat(hb);
    ASSERT_OK(reply);
    if (reply->warm_tasks_size() > 0) {
      node = this->nodes_[i];
      task = reply->warm_tasks(0);
    }
  }
  ASSERT_NE(node, 0u) << "with four hosts to fill some copy is missing somewhere";
  WarmDoneRequest done;
  done.set_node_id(node);
  done.set_error(Code::NO_SPACE);
  done.set_message("write block: ENOSPC");
  *done.mutable_failed_warmup_ids() = task.warmup_ids();
  WarmedSlice& s = *done.add_slices();
  s.set_slice_id(task.slice_id());
  *s.mutable_warmup_ids() = task.warmup_ids();
  s.add_blocks(task.blocks(0).block_index());
  ASSERT_OK(this->core_->WarmDone(done));
  Warmup stopped = this->Get("w");
  EXPECT_EQ(stopped.state(), WARMUP_STOPPED);
  EXPECT_NE(stopped.message().find("out of space"), std::string::npos) << stopped.message();
  EXPECT_NE(stopped.message().find("ENOSPC"), std::string::npos) << stopped.message();
  EXPECT_EQ(stopped.copies(), 1u) << "the block copied before the disk filled is kept";
  // Stopped: nothing more is planned; creating it again resumes it.
  this->now_ms_ += 2000;
  this->core_->Housekeep();
  for (int i = 1; i <= 4; ++i) EXPECT_EQ(this->CopyEverythingPlannedFor(this->nodes_[i]), 0u);
  ASSERT_OK(this->CreateWarmup("w", "train", {"h1", "h2", "h3", "h4"}));
  EXPECT_EQ(this->Get("w").state(), WARMUP_COPYING);
}

TYPED_TEST(VolumeLocalityTest, HostsTakenOffTheListGiveTheirCopiesBack) {
  ASSERT_OK(this->CreateWarmup("w", "", {"h3", "h4"}));
  this->core_->Housekeep();
  for (int i = 1; i <= 4; ++i) this->CopyEverythingPlannedFor(this->nodes_[i]);
  const uint64_t copies = this->Get("w").copies();
  ASSERT_GT(copies, 0u);
  ASSERT_OK(this->CreateWarmup("w", "", {"h3"}));
  this->core_->Housekeep();
  const VolumeLocalityReply after = this->Locality();
  const DomainBytes* h4 = this->Host(after, "h4");
  EXPECT_EQ(h4 ? h4->warm_bytes() : 0, 0u);
  const DomainBytes* h3 = this->Host(after, "h3");
  ASSERT_NE(h3, nullptr);
  EXPECT_EQ(h3->local_bytes(), after.logical_bytes());
  EXPECT_EQ(this->Get("w").copies() + this->TrashRecords(), copies);
}

TYPED_TEST(VolumeLocalityTest, SpaceRunningShortStopsCopyingAndEvictsWarmCopies) {
  auto heartbeat = [&](uint32_t node, uint64_t used, uint64_t capacity) {
    HeartbeatRequest hb;
    hb.set_node_id(node);
    hb.set_healthy(true);
    hb.set_used_bytes(used);
    hb.set_capacity_bytes(capacity);
    return this->core_->Heartbeat(hb);
  };
  const uint32_t h4 = this->nodes_[4];
  // Nearly full (90 % >= 85 %) before anything is copied: nothing is planned, the warm-up stops.
  ASSERT_OK(heartbeat(h4, 90, 100));
  ASSERT_OK(this->CreateWarmup("w", "train", {"h4"}));
  this->core_->Housekeep();
  Warmup w = this->Get("w");
  EXPECT_EQ(w.state(), WARMUP_STOPPED);
  EXPECT_NE(w.message().find("nearly full (90% used"), std::string::npos) << w.message();
  EXPECT_EQ(this->CopyEverythingPlannedFor(h4), 0u);

  // Room again: created anew it copies; then the node passes its full ratio (95 %): its warm
  // copies are given back and the warm-up says why.
  ASSERT_OK(heartbeat(h4, 10, 100));
  ASSERT_OK(this->CreateWarmup("w", "train", {"h4"}));
  this->now_ms_ += 2000;
  this->core_->Housekeep();
  EXPECT_GT(this->CopyEverythingPlannedFor(h4), 0u);
  const uint64_t copies = this->Get("w").copies();
  ASSERT_GT(copies, 0u);
  ASSERT_OK(heartbeat(h4, 96, 100));
  this->core_->Housekeep();
  w = this->Get("w");
  EXPECT_EQ(w.state(), WARMUP_STOPPED);
  EXPECT_NE(w.message().find("reached 96% used (full ratio 95%)"), std::string::npos)
      << w.message();
  EXPECT_EQ(w.copies(), 0u);
  EXPECT_EQ(this->TrashRecords(), copies) << "the evicted copies are deleted on the node";
}

TYPED_TEST(VolumeLocalityTest, AWarmCopyReportedCorruptIsNoLongerOfferedAndIsCopiedAgain) {
  const uint32_t h4 = this->nodes_[4];
  ASSERT_OK(this->CreateWarmup("w", "train", {"h4"}));
  this->core_->Housekeep();
  ASSERT_GT(this->CopyEverythingPlannedFor(h4), 0u);
  const Warmup warm = this->Get("w");
  ASSERT_EQ(warm.done_bytes(), warm.bytes());
  // Find a block h4 holds as a warm copy, and report it.
  ReadMapRequest rm;
  uint64_t slice = 0;
  for (uint64_t ino : this->files_) {
    rm.set_ino(ino);
    auto map = QueryReadMap(*this->core_->Snapshot(), rm);
    ASSERT_OK(map);
    for (const Extent& e : map->extents()) {
      for (uint32_t n : e.warm_nodes()) {
        if (n == h4 && slice == 0) slice = e.slice_id();
      }
    }
  }
  ASSERT_NE(slice, 0u);
  auto copies = WarmCopiesOf(*this->core_->Snapshot(), slice);
  ASSERT_OK(copies);
  const uint32_t block = copies->at(h4).blocks(0);
  ReportCorruptionRequest report;
  report.set_node_id(h4);
  report.set_slice_id(slice);
  report.set_block_index(block);
  report.set_detail("crc mismatch");
  report.set_source(SOURCE_CLIENT_READ);
  ASSERT_OK(this->core_->ReportCorruption(report));
  copies = WarmCopiesOf(*this->core_->Snapshot(), slice);
  ASSERT_OK(copies);
  if (copies->contains(h4)) {
    const auto& held = copies->at(h4).blocks();
    EXPECT_EQ(std::find(held.begin(), held.end(), block), held.end());
  }
  EXPECT_LT(this->Get("w").done_bytes(), warm.bytes()) << "the block is missing on h4 again";
  this->now_ms_ += 2000;
  this->core_->Housekeep();
  EXPECT_GT(this->CopyEverythingPlannedFor(h4), 0u) << "and the plan copies it again";
  EXPECT_EQ(this->Get("w").done_bytes(), warm.bytes());
}

}  // namespace
}  // namespace granary::metanode
