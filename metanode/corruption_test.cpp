// Repair on report, the metanode's records (docs/maintenance.md "Repair on report").
#include "metanode/test_util.h"

namespace granary::metanode {
namespace {

template <typename Kind>
class CorruptionTest : public MetaTest<Kind> {
 protected:
  // One datanode, and a file with one committed slice of 5 MiB (blocks of 4 MiB and 1 MiB).
  void SetUp() override {
    MetaTest<Kind>::SetUp();
    Operation reg;
    reg.mutable_node_register()->set_uuid("dn-0");
    reg.mutable_node_register()->set_address("127.0.0.1:1");
    auto r = this->Run(reg, false);
    ASSERT_OK(r);
    node_ = r->node_register().node_id();
    auto f = this->Create(this->root_, "f");
    ASSERT_OK(f);
    ino_ = f->ino();
    slice_ = CommitSlice(5 << 20);
  }

  uint64_t CommitSlice(uint64_t len) {
    Operation alloc;
    alloc.mutable_allocate()->set_ino(ino_);
    alloc.mutable_allocate()->set_slice_count(1);
    auto a = this->Run(alloc);
    EXPECT_TRUE(a.ok()) << a.status().ToString();
    Operation op;
    auto* c = op.mutable_commit();
    c->set_ino(ino_);
    c->set_intent_id(a->allocate().intent_id());
    c->set_generation(a->allocate().generation());
    auto* range = c->add_ranges();
    SliceRef& s = *range->add_slices();
    s.set_slice_id(a->allocate().first_slice_id());
    s.set_slice_length(len);
    s.set_length(len);
    c->set_end(len);
    EXPECT_TRUE(this->Run(op).ok());
    return a->allocate().first_slice_id();
  }

  Status Report(uint64_t slice, uint32_t block, uint32_t fragment = 0) {
    ReportCorruptionRequest req;
    req.set_node_id(node_);
    req.set_slice_id(slice);
    req.set_block_index(block);
    req.set_fragment(fragment);
    req.set_detail("crc mismatch");
    req.set_source(SOURCE_CLIENT_READ);
    return this->core_->ReportCorruption(req);
  }

  Status Resolve(uint64_t slice, uint32_t block, uint32_t reports, SuspectOutcome outcome) {
    ResolveCorruptionRequest req;
    req.set_node_id(node_);
    req.set_slice_id(slice);
    req.set_block_index(block);
    req.set_reports(reports);
    req.set_outcome(outcome);
    return this->core_->ResolveCorruption(req);
  }

  ClusterStatusReply Cluster() {
    auto s = this->core_->ClusterStatus();
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? *s : ClusterStatusReply();
  }

  uint32_t node_ = 0;
  uint64_t ino_ = 0;
  uint64_t slice_ = 0;
};
TYPED_TEST_SUITE(CorruptionTest, StoreKinds);

TYPED_TEST(CorruptionTest, ReportsOfOneCopyMakeOneRecordHandedToItsHolder) {
  ASSERT_OK(this->Report(this->slice_, 1));
  ASSERT_OK(this->Report(this->slice_, 1));
  const ClusterStatusReply status = this->Cluster();
  EXPECT_EQ(status.corruptions_reported(), 2u);
  EXPECT_EQ(status.copies_bad(), 1u);
  ASSERT_EQ(status.pgs_with_bad_copies_size(), 1);
  EXPECT_EQ(status.pgs_with_bad_copies(0).copies(), 1u);
  EXPECT_FALSE(status.healthy());
  // The holder's heartbeat reply carries what its repair needs.
  HeartbeatRequest hb;
  hb.set_node_id(this->node_);
  auto reply = this->core_->Heartbeat(hb);
  ASSERT_OK(reply);
  ASSERT_EQ(reply->suspect_copies_size(), 1);
  const SuspectCopy& copy = reply->suspect_copies(0);
  EXPECT_EQ(copy.node_id(), this->node_);
  EXPECT_EQ(copy.block().slice_id(), this->slice_);
  EXPECT_EQ(copy.block().block_index(), 1u);
  EXPECT_EQ(copy.block().length(), 1u << 20);  // the 1 MiB tail of 5 MiB in 4 MiB blocks
  EXPECT_EQ(copy.block().ino(), this->ino_);
  EXPECT_EQ(copy.pg(), status.pgs_with_bad_copies(0).pg());
  EXPECT_EQ(copy.reports(), 2u);
  EXPECT_EQ(copy.source(), SOURCE_CLIENT_READ);
}

TYPED_TEST(CorruptionTest, ResolveDropsTheRecordUnlessReportedAgainSince) {
  ASSERT_OK(this->Report(this->slice_, 0));
  ASSERT_OK(this->Report(this->slice_, 0));
  // The holder acted on the record when it had one report: the second is news, it stays.
  ASSERT_OK(this->Resolve(this->slice_, 0, 1, OUTCOME_VERIFIED_GOOD));
  EXPECT_EQ(this->Cluster().copies_bad(), 1u);
  ASSERT_OK(this->Resolve(this->slice_, 0, 2, OUTCOME_VERIFIED_GOOD));
  EXPECT_EQ(this->Cluster().copies_bad(), 0u);
  EXPECT_EQ(this->Cluster().pgs_with_bad_copies_size(), 0);
  ASSERT_OK(this->Resolve(this->slice_, 0, 2, OUTCOME_VERIFIED_GOOD));  // a retry: fine
  EXPECT_EQ(this->Cluster().corruptions_reported(), 2u);
}

TYPED_TEST(CorruptionTest, ReportsOfWhatCannotBeRepairedAreCountedNotRecorded) {
  ASSERT_OK(this->Report(999999, 0));  // no such slice (collected, or never committed)
  EXPECT_CODE(this->Report(this->slice_, 2), Code::INVALID_ARGUMENT);  // a 5 MiB slice: 2 blocks
  const ClusterStatusReply status = this->Cluster();
  EXPECT_EQ(status.copies_bad(), 0u);
  EXPECT_EQ(status.corruptions_reported(), 1u);
}

TYPED_TEST(CorruptionTest, RecordsOfAnOutNodeAndOfCollectedSlicesAreDropped) {
  ASSERT_OK(this->Report(this->slice_, 0));
  ASSERT_OK(this->Report(this->slice_, 1));
  EXPECT_EQ(this->Cluster().copies_bad(), 2u);
  // Out: its PGs are remapped and their new members fill in by repair; its records are moot.
  Operation out;
  out.mutable_set_node_state()->set_node_id(this->node_);
  out.mutable_set_node_state()->set_state(OUT);
  ASSERT_OK(this->Run(out, false));
  this->core_->SettleSuspects();
  EXPECT_EQ(this->Cluster().copies_bad(), 0u);
  // A record whose slice is collected goes with it.
  ASSERT_OK(this->Report(this->slice_, 0));
  EXPECT_EQ(this->Cluster().copies_bad(), 1u);
  this->CommitSlice(5 << 20);  // overwrites the whole file: the first slice is garbage
  this->now_ms_ += this->core_->options().gc_grace_ms + 1;
  this->core_->CollectGarbage();  // no up datanode to delete on
  EXPECT_EQ(this->Cluster().garbage_pending(), 0u);
  EXPECT_EQ(this->Cluster().copies_bad(), 0u);
}

}  // namespace
}  // namespace granary::metanode
