// Slice maps: allocate / commit / read map, truncate, leases, byte quotas.
#include "metanode/test_util.h"

namespace granary::metanode {
namespace {

template <typename Kind>
class DataMapTest : public MetaTest<Kind> {
 protected:
  Result<AllocateReply> Allocate(uint64_t ino, uint32_t count, uint64_t bytes) {
    Operation op;
    op.mutable_allocate()->set_ino(ino);
    op.mutable_allocate()->set_slice_count(count);
    op.mutable_allocate()->set_bytes(bytes);
    auto r = this->Run(op);
    GRANARY_TRY(r);
    return r->allocate();
  }
  // Commits one slice of `len` bytes at file offset `off` (within range 0).
  Result<InodeAttr> Commit(uint64_t ino, const AllocateReply& a, uint64_t slice, uint64_t off,
                           uint64_t len, uint64_t generation) {
    Operation op;
    auto* c = op.mutable_commit();
    c->set_ino(ino);
    c->set_intent_id(a.intent_id());
    c->set_generation(generation);
    auto* range = c->add_ranges();
    range->set_range_index(off / kChunkRangeSize);
    SliceRef& s = *range->add_slices();
    s.set_slice_id(slice);
    s.set_slice_length(len);
    s.set_length(len);
    s.set_pos(off % kChunkRangeSize);
    c->set_end(off + len);
    auto r = this->Run(op);
    GRANARY_TRY(r);
    return r->attr().attr();
  }
  Result<ReadMapReply> ReadMap(uint64_t ino, uint64_t off = 0, uint64_t len = 0) {
    ReadMapRequest req;
    req.set_ino(ino);
    req.set_offset(off);
    req.set_length(len);
    return QueryReadMap(*this->core_->Snapshot(), req);
  }
};
TYPED_TEST_SUITE(DataMapTest, StoreKinds);

TYPED_TEST(DataMapTest, CommitGrowsSizeAndReadMapResolvesNewestWins) {
  auto f = this->Create(this->root_, "f");
  auto a = this->Allocate(f->ino(), 2, 200);
  ASSERT_OK(a);
  EXPECT_EQ(a->slice_count(), 2u);
  EXPECT_EQ(a->generation(), f->generation());
  auto c1 = this->Commit(f->ino(), *a, a->first_slice_id(), 0, 100, a->generation());
  ASSERT_OK(c1);
  EXPECT_EQ(c1->size(), 100u);
  EXPECT_EQ(c1->commit_version(), 1u);
  auto b = this->Allocate(f->ino(), 1, 100);
  auto c2 = this->Commit(f->ino(), *b, b->first_slice_id(), 50, 100, b->generation());
  ASSERT_OK(c2);
  EXPECT_EQ(c2->size(), 150u);
  EXPECT_EQ(c2->commit_version(), 2u);
  auto m = this->ReadMap(f->ino());
  ASSERT_OK(m);
  ASSERT_EQ(m->extents_size(), 2);
  EXPECT_EQ(m->extents(0).slice_id(), a->first_slice_id());
  EXPECT_EQ(m->extents(0).length(), 50u);
  EXPECT_EQ(m->extents(1).slice_id(), b->first_slice_id());
  EXPECT_EQ(m->extents(1).file_offset(), 50u);
  // Quota settled: 150 bytes used, nothing reserved.
  EXPECT_EQ(this->GetVolume()->used_bytes(), 150u);
  EXPECT_EQ(this->GetVolume()->reserved_bytes(), 0u);
}

TYPED_TEST(DataMapTest, SliceAcrossRangesAndHoles) {
  auto f = this->Create(this->root_, "f");
  auto a = this->Allocate(f->ino(), 1, 0);
  ASSERT_OK(
      this->Commit(f->ino(), *a, a->first_slice_id(), kChunkRangeSize + 10, 5, a->generation()));
  auto m = this->ReadMap(f->ino());
  ASSERT_EQ(m->extents_size(), 1);
  EXPECT_EQ(m->extents(0).file_offset(), kChunkRangeSize + 10);
  EXPECT_EQ(m->attr().size(), kChunkRangeSize + 15);
  EXPECT_EQ(this->ReadMap(f->ino(), 0, 100)->extents_size(), 0);  // a hole
}

TYPED_TEST(DataMapTest, TruncateInBetweenMakesCommitStale) {
  auto f = this->Create(this->root_, "f");
  auto a = this->Allocate(f->ino(), 1, 100);
  ASSERT_OK(this->Commit(f->ino(), *a, a->first_slice_id(), 0, 100, a->generation()));
  auto b = this->Allocate(f->ino(), 1, 100);
  ASSERT_OK(this->Truncate(f->ino(), 10));
  EXPECT_CODE(this->Commit(f->ino(), *b, b->first_slice_id(), 0, 100, b->generation()),
              Code::STALE_GENERATION);
  auto m = this->ReadMap(f->ino());
  ASSERT_EQ(m->extents_size(), 1);
  EXPECT_EQ(m->extents(0).length(), 10u);  // clipped by the truncate
  EXPECT_EQ(m->attr().size(), 10u);
}

TYPED_TEST(DataMapTest, TruncateGrowLeavesHoleAndShrinkDropsRanges) {
  auto f = this->Create(this->root_, "f");
  auto a = this->Allocate(f->ino(), 1, 0);
  ASSERT_OK(this->Commit(f->ino(), *a, a->first_slice_id(), kChunkRangeSize, 100, a->generation()));
  auto grown = this->Truncate(f->ino(), 3 * kChunkRangeSize);
  ASSERT_OK(grown);
  EXPECT_EQ(grown->generation(), f->generation());  // growing keeps writers valid
  EXPECT_EQ(this->ReadMap(f->ino())->extents_size(), 1);
  auto shrunk = this->Truncate(f->ino(), 100);
  ASSERT_OK(shrunk);
  EXPECT_GT(shrunk->generation(), f->generation());
  EXPECT_EQ(this->ReadMap(f->ino())->extents_size(), 0);
  auto regrown = this->Truncate(f->ino(), 2 * kChunkRangeSize);
  EXPECT_EQ(this->ReadMap(f->ino())->extents_size(), 0);  // the old slice does not come back
}

TYPED_TEST(DataMapTest, LeaseExpiryAndReaping) {
  auto f = this->Create(this->root_, "f");
  auto a = this->Allocate(f->ino(), 1, 10);
  auto b = this->Allocate(f->ino(), 1, 10);
  EXPECT_EQ(this->GetVolume()->reserved_bytes(), 20u);
  // Past the lease but within the grace: the commit is still accepted.
  this->now_ms_ += 1500;
  this->core_->Housekeep();
  ASSERT_OK(this->Commit(f->ino(), *a, a->first_slice_id(), 0, 10, a->generation()));
  // Past lease + grace: reaped, reservation released, a late commit is stale.
  this->now_ms_ += 5000;
  this->core_->Housekeep();
  EXPECT_EQ(this->GetVolume()->reserved_bytes(), 0u);
  EXPECT_CODE(this->Commit(f->ino(), *b, b->first_slice_id(), 0, 10, b->generation()),
              Code::STALE_GENERATION);
}

TYPED_TEST(DataMapTest, ByteQuotaEnforcedAtAllocationAndSettledAtCommit) {
  auto v = this->VolumeCreate("q", 1000, 0);
  Operation op;
  op.mutable_create()->set_parent(v->root_ino());
  op.mutable_create()->set_name("f");
  auto f = this->Run(op);
  uint64_t ino = f->entry().attr().ino();
  auto a = this->Allocate(ino, 1, 800);
  ASSERT_OK(a);
  EXPECT_CODE(this->Allocate(ino, 1, 300), Code::QUOTA_EXCEEDED);
  ASSERT_OK(this->Commit(ino, *a, a->first_slice_id(), 0, 500, a->generation()));
  ASSERT_OK(this->Allocate(ino, 1, 500));  // 500 used + 500 reserved = quota
  EXPECT_CODE(this->Allocate(ino, 1, 1), Code::QUOTA_EXCEEDED);
}

TYPED_TEST(DataMapTest, SlicesAreCountedIndexedAndCollected) {
  auto f = this->Create(this->root_, "f");
  auto a = this->Allocate(f->ino(), 1, 0);
  ASSERT_OK(a);
  const uint64_t first = a->first_slice_id();
  ASSERT_OK(this->Commit(f->ino(), *a, first, 0, 100, a->generation()));
  auto snap = this->core_->Snapshot();
  SliceRecord rec;
  ASSERT_TRUE(*snap->GetRecord(Cf::kSystem, SliceKey(first), &rec));
  EXPECT_EQ(rec.refs(), 1u);
  EXPECT_EQ(rec.ino(), f->ino());
  // The PG -> blocks index lists the one block in the PG its layout names.
  uint64_t listed = 0;
  for (uint32_t pg = 0; pg < 1024; ++pg) {
    PgBlocksRequest req;
    req.set_pool_id(f->layout().pool_id());
    req.set_pg(pg);
    auto blocks = this->core_->PgBlocks(req);
    ASSERT_OK(blocks);
    for (const auto& b : blocks->blocks()) {
      EXPECT_EQ(b.slice_id(), first);
      EXPECT_EQ(b.length(), 100u);
      ++listed;
    }
  }
  EXPECT_EQ(listed, 1u);
  // A whole overwrite makes the first slice garbage (the read map no longer needs it).
  auto b = this->Allocate(f->ino(), 1, 0);
  ASSERT_OK(this->Commit(f->ino(), *b, b->first_slice_id(), 0, 100, b->generation()));
  CheckSlicesRequest check;
  check.add_slice_ids(first);
  check.add_slice_ids(b->first_slice_id());
  check.add_slice_ids(999999);  // never allocated
  auto dead = this->core_->CheckSlices(check);
  ASSERT_OK(dead);
  ASSERT_EQ(dead->dead_slice_ids_size(), 1);  // garbage stays alive until collected
  EXPECT_EQ(dead->dead_slice_ids(0), 999999u);
  auto status = this->core_->ClusterStatus();
  ASSERT_OK(status);
  EXPECT_EQ(status->garbage_pending(), 1u);
  // Collection (no datanodes registered: nothing to delete on) drops the records after the
  // grace, and the slice is then dead.
  this->core_->CollectGarbage();
  EXPECT_EQ(this->core_->ClusterStatus()->garbage_pending(), 1u);  // grace not over
  this->now_ms_ += this->core_->options().gc_grace_ms + 1;
  this->core_->CollectGarbage();
  EXPECT_EQ(this->core_->ClusterStatus()->garbage_pending(), 0u);
  dead = this->core_->CheckSlices(check);
  ASSERT_OK(dead);
  ASSERT_EQ(dead->dead_slice_ids_size(), 2);
  EXPECT_EQ(dead->dead_slice_ids(0), first);
  // Unlinking the file releases its last slice.
  ASSERT_OK(this->Unlink(this->root_, "f"));
  EXPECT_EQ(this->core_->ClusterStatus()->garbage_pending(), 1u);
}

TYPED_TEST(DataMapTest, Errors) {
  auto d = this->Mkdir(this->root_, "d");
  EXPECT_CODE(this->Allocate(d->ino(), 1, 0), Code::IS_DIRECTORY);
  EXPECT_CODE(this->Allocate(424242, 1, 0), Code::NOT_FOUND);
  auto f = this->Create(this->root_, "f");
  EXPECT_CODE(this->Allocate(f->ino(), 0, 0), Code::INVALID_ARGUMENT);
  auto a = this->Allocate(f->ino(), 1, 0);
  EXPECT_CODE(
      this->Commit(f->ino(), *a, a->first_slice_id(), kChunkRangeSize - 1, 2, a->generation()),
      Code::INVALID_ARGUMENT);  // a reference may not cross its range
  EXPECT_CODE(this->ReadMap(d->ino()), Code::IS_DIRECTORY);
  auto g = this->Create(this->root_, "g");
  EXPECT_CODE(this->Commit(g->ino(), *a, a->first_slice_id(), 0, 1, a->generation()),
              Code::INVALID_ARGUMENT);  // intent of another inode
}

}  // namespace
}  // namespace granary::metanode
