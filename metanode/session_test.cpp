// Client sessions and reaping (sessions.cpp, apply_session.cpp): what a dead client or an
// abandoned multipart upload leaves behind is freed once its lease or expiry has passed, and a
// live client loses nothing.
#include "metanode/apply_object.h"
#include "metanode/test_util.h"

namespace granary::metanode {
namespace {

#define EXPECT_OK(expr) EXPECT_TRUE(StatusOf(expr).ok()) << StatusOf(expr).ToString()

constexpr int64_t kLeaseMs = 10000;
constexpr int64_t kExpiryMs = 60000;
constexpr uint64_t kDead = 0xdead, kLive = 0x11fe;

template <typename Kind>
class SessionTest : public MetaTest<Kind> {
 protected:
  void Customize(MetaCoreOptions& o) override {
    o.client_lease_ms = kLeaseMs;
    o.multipart_expiry_ms = kExpiryMs;
    o.gc_grace_ms = 1000;
  }
  Result<OpReply> As(uint64_t client, Operation op) {
    op.mutable_id()->set_client_id(client);
    op.mutable_id()->set_seq(++this->seq_);
    return this->core_->Run(std::move(op));
  }
  // Creates `name` opened by `owner` of `client`, with `bytes` committed.
  Result<InodeAttr> CreateOpen(uint64_t client, const std::string& name, uint64_t owner,
                               uint64_t bytes) {
    Operation op;
    auto* r = op.mutable_create();
    r->set_parent(this->root_);
    r->set_name(name);
    r->set_mode(0644);
    r->set_exclusive(true);
    r->set_handle_owner(owner);
    auto created = As(client, op);
    GRANARY_TRY(created);
    GRANARY_TRY(Write(client, created->entry().attr().ino(), bytes));
    return created->entry().attr();
  }
  Status Write(uint64_t client, uint64_t ino, uint64_t bytes) {
    Operation alloc;
    alloc.mutable_allocate()->set_ino(ino);
    alloc.mutable_allocate()->set_slice_count(1);
    alloc.mutable_allocate()->set_bytes(bytes);
    auto a = As(client, alloc);
    GRANARY_TRY(a);
    Operation commit;
    auto* c = commit.mutable_commit();
    c->set_ino(ino);
    c->set_intent_id(a->allocate().intent_id());
    c->set_generation(a->allocate().generation());
    SliceRef& s = *c->add_ranges()->add_slices();
    s.set_slice_id(a->allocate().first_slice_id());
    s.set_slice_length(bytes);
    s.set_length(bytes);
    c->set_end(bytes);
    return StatusOf(As(client, commit));
  }
  Status Open(uint64_t client, uint64_t ino, uint64_t owner) {
    Operation op;
    op.mutable_open()->set_ino(ino);
    op.mutable_open()->set_handle_owner(owner);
    return StatusOf(As(client, op));
  }
  Status Release(uint64_t client, uint64_t ino, uint64_t owner) {
    Operation op;
    op.mutable_release()->set_ino(ino);
    op.mutable_release()->set_handle_owner(owner);
    return StatusOf(As(client, op));
  }
  Status UnlinkAs(uint64_t client, const std::string& name) {
    Operation op;
    op.mutable_unlink()->set_parent(this->root_);
    op.mutable_unlink()->set_name(name);
    return StatusOf(As(client, op));
  }
  // The pins on `ino` (owner -> count); empty when the inode is gone.
  std::map<uint64_t, uint32_t> Pins(uint64_t ino) {
    InodeRecord rec;
    auto found = this->core_->Snapshot()->GetRecord(Cf::kInodes, InodeKey(ino), &rec);
    EXPECT_TRUE(found.ok());
    return {rec.open_handles().begin(), rec.open_handles().end()};
  }
  size_t PinIndexEntries(uint64_t client) {
    size_t n = 0;
    EXPECT_OK(this->core_->Snapshot()->Scan(Cf::kSystem, PinPrefix(client), "", false,
                                            [&](std::string_view, std::string_view) {
                                              ++n;
                                              return true;
                                            }));
    return n;
  }
  uint64_t UsedBytes() { return this->GetVolume()->used_bytes(); }
  uint64_t Garbage() { return this->core_->ClusterStatus()->garbage_pending(); }
  void Advance(int64_t ms) { this->now_ms_ += ms; }
};
TYPED_TEST_SUITE(SessionTest, StoreKinds);

TYPED_TEST(SessionTest, OneOperationDropsEveryPinOfAClientAndFreesItsUnlinkedFiles) {
  const uint64_t base = this->UsedBytes();
  auto gone = this->CreateOpen(kDead, "unlinked", 1, 4096);
  ASSERT_OK(gone);
  auto kept = this->CreateOpen(kDead, "linked", 2, 100);
  ASSERT_OK(kept);
  ASSERT_OK(this->Open(kDead, kept->ino(), 3));
  ASSERT_OK(this->Open(kLive, kept->ino(), 4));
  ASSERT_OK(this->UnlinkAs(kDead, "unlinked"));
  EXPECT_EQ(this->Pins(gone->ino()).size(), 1u);  // orphan, pinned by the dead client
  EXPECT_EQ(this->PinIndexEntries(kDead), 3u);
  EXPECT_EQ(this->UsedBytes(), base + 4196);

  Operation op;
  op.mutable_reap_sessions()->add_client_ids(kDead);
  auto reply = this->core_->Run(op);
  ASSERT_OK(reply);
  EXPECT_EQ(reply->sessions_reaped().pins_dropped(), 3u);
  EXPECT_EQ(reply->sessions_reaped().inodes_freed(), 1u);
  EXPECT_EQ(reply->sessions_reaped().unfinished_size(), 0);

  EXPECT_CODE(this->GetAttr(gone->ino()), Code::NOT_FOUND);
  EXPECT_EQ(this->UsedBytes(), base + 100);
  EXPECT_EQ(this->Garbage(), 1u);  // the unlinked file's slice, collected after the grace
  EXPECT_EQ(this->Pins(kept->ino()), (std::map<uint64_t, uint32_t>{{4, 1}}));
  EXPECT_EQ(this->PinIndexEntries(kDead), 0u);
  EXPECT_EQ(this->PinIndexEntries(kLive), 1u);
  EXPECT_EQ(this->Lookup(this->root_, "linked")->size(), 100u);  // nothing visible changed
  // A late release by the reaped client is harmless.
  EXPECT_OK(this->Release(kDead, kept->ino(), 3));
  EXPECT_EQ(this->Pins(kept->ino()), (std::map<uint64_t, uint32_t>{{4, 1}}));
}

TYPED_TEST(SessionTest, HousekeepingReapsAnExpiredClientButNotARenewingOne) {
  const uint64_t base = this->UsedBytes();
  auto dead = this->CreateOpen(kDead, "d", 1, 1000);
  auto live = this->CreateOpen(kLive, "l", 2, 1000);
  ASSERT_OK(dead);
  ASSERT_OK(live);
  ASSERT_OK(this->UnlinkAs(kDead, "d"));
  ASSERT_OK(this->UnlinkAs(kLive, "l"));
  EXPECT_EQ(this->core_->session_counts().live, 3u);  // and the fixture's client, pinning nothing
  for (int i = 0; i < 4; ++i) {  // the live client renews every lease/3; the dead one is silent
    this->Advance(kLeaseMs / 3);
    ASSERT_OK(this->core_->KeepAlive(kLive));
    this->core_->Housekeep();
  }
  EXPECT_CODE(this->GetAttr(dead->ino()), Code::NOT_FOUND);
  EXPECT_EQ(this->GetAttr(live->ino())->nlink(), 0u);  // still pinned, still readable
  EXPECT_EQ(this->UsedBytes(), base + 1000);
  auto counts = this->core_->session_counts();
  EXPECT_EQ(counts.live, 1u);
  EXPECT_EQ(counts.reaped, 1u);
  auto status = this->core_->ClusterStatus();
  EXPECT_EQ(status->sessions(), 1u);
  EXPECT_EQ(status->sessions_reaped(), 1u);

  // The reaped client, should it come back, hears why; the live one is still fine.
  auto again = this->core_->KeepAlive(kDead);
  EXPECT_CODE(again, Code::PRECONDITION_FAILED);
  EXPECT_NE(again.status().message().find("session expired"), std::string::npos);
  EXPECT_EQ(this->core_->KeepAlive(kLive)->lease_ms(), kLeaseMs);

  // The live client's release frees its orphan by the usual rule.
  ASSERT_OK(this->Release(kLive, live->ino(), 2));
  EXPECT_CODE(this->GetAttr(live->ino()), Code::NOT_FOUND);
  EXPECT_EQ(this->UsedBytes(), base);
  // A client whose lease lapses while it holds nothing leaves no trace and no tombstone.
  this->Advance(2 * kLeaseMs);
  this->core_->Housekeep();
  EXPECT_EQ(this->core_->session_counts().reaped, 1u);
  EXPECT_EQ(this->core_->session_counts().live, 0u);
}

TYPED_TEST(SessionTest, AClientWithMorePinsThanOneOperationDropsIsFinishedNextRound) {
  this->core_.reset();
  MetaCoreOptions o;
  o.data_dir = this->dir_.string();
  o.in_memory = TypeParam::kInMemory;
  o.housekeeping_ms = 0;
  o.client_lease_ms = kLeaseMs;
  o.reap_max_pins = 3;
  o.clock = [this] { return this->now_ms_.load(); };
  auto core = MetaCore::Open(o);
  ASSERT_OK(core);
  this->core_ = std::move(*core);
  auto v = this->VolumeCreate("many", 0, 0);
  ASSERT_OK(v);
  this->root_ = v->root_ino();
  this->volume_ = *v;
  std::vector<uint64_t> inos;
  for (int i = 0; i < 5; ++i) {
    auto f = this->CreateOpen(kDead, "f" + std::to_string(i), 100 + i, 10);
    ASSERT_OK(f);
    ASSERT_OK(this->UnlinkAs(kDead, "f" + std::to_string(i)));
    inos.push_back(f->ino());
  }
  this->Advance(kLeaseMs + 1);
  this->core_->Housekeep();
  EXPECT_EQ(this->PinIndexEntries(kDead), 2u);
  EXPECT_EQ(this->core_->session_counts().reaped, 0u);  // not finished yet
  this->core_->Housekeep();
  EXPECT_EQ(this->PinIndexEntries(kDead), 0u);
  EXPECT_EQ(this->core_->session_counts().reaped, 1u);
  for (uint64_t ino : inos) EXPECT_CODE(this->GetAttr(ino), Code::NOT_FOUND);
  EXPECT_EQ(this->GetVolume()->used_bytes(), 0u);
}

TYPED_TEST(SessionTest, AStagedObjectOfAGatewayKilledMidUploadIsFreed) {
  const uint64_t base = this->UsedBytes();
  const uint64_t base_inodes = this->GetVolume()->used_inodes();
  Operation stage;
  stage.mutable_object_stage()->set_volume_id(this->volume_.id());
  stage.mutable_object_stage()->set_handle_owner(7);
  auto staged = this->As(kDead, stage);
  ASSERT_OK(staged);
  const uint64_t ino = staged->attr().attr().ino();
  ASSERT_OK(this->Write(kDead, ino, 5000));
  EXPECT_EQ(this->UsedBytes(), base + 5000);
  this->Advance(kLeaseMs + 1);
  this->core_->Housekeep();
  EXPECT_CODE(this->GetAttr(ino), Code::NOT_FOUND);
  EXPECT_EQ(this->UsedBytes(), base);
  EXPECT_EQ(this->GetVolume()->used_inodes(), base_inodes);
  EXPECT_EQ(this->Garbage(), 1u);
  this->Advance(2000);
  this->core_->Housekeep();  // no datanode holds the blocks: collected at once after the grace
  EXPECT_EQ(this->Garbage(), 0u);
}

TYPED_TEST(SessionTest, ARestartGivesEveryClientWithPinsAFreshLease) {
  if (TypeParam::kInMemory) GTEST_SKIP() << "nothing to reopen";
  auto f = this->CreateOpen(kDead, "f", 1, 10);
  ASSERT_OK(f);
  ASSERT_OK(this->UnlinkAs(kDead, "f"));
  this->Advance(kLeaseMs - 1000);
  this->core_.reset();
  MetaCoreOptions o;
  o.data_dir = this->dir_.string();
  o.housekeeping_ms = 0;
  o.client_lease_ms = kLeaseMs;
  o.clock = [this] { return this->now_ms_.load(); };
  auto core = MetaCore::Open(o);
  ASSERT_OK(core);
  this->core_ = std::move(*core);
  EXPECT_EQ(this->core_->session_counts().live, 1u);
  this->Advance(2000);  // past the lease the client had before the restart
  this->core_->Housekeep();
  EXPECT_EQ(this->Pins(f->ino()).size(), 1u);
  EXPECT_OK(this->core_->KeepAlive(kDead));  // a client that is alive after all carries on
  this->Advance(kLeaseMs - 1);
  this->core_->Housekeep();
  EXPECT_EQ(this->Pins(f->ino()).size(), 1u);
  this->Advance(2);
  this->core_->Housekeep();
  EXPECT_CODE(this->GetAttr(f->ino()), Code::NOT_FOUND);
}

TYPED_TEST(SessionTest, AnExpiredMultipartUploadIsAbortedAndItsPartsGoToGc) {
  const uint64_t base = this->UsedBytes();
  Operation create;
  create.mutable_upload_create()->mutable_request()->set_volume_id(this->volume_.id());
  create.mutable_upload_create()->mutable_request()->set_key("big/object");
  create.mutable_upload_create()->set_upload_id("u-old");
  ASSERT_OK(this->As(kLive, create));
  Operation stage;
  stage.mutable_object_stage()->set_volume_id(this->volume_.id());
  stage.mutable_object_stage()->set_handle_owner(5);
  auto part = this->As(kLive, stage);
  ASSERT_OK(part);
  const uint64_t ino = part->attr().attr().ino();
  ASSERT_OK(this->Write(kLive, ino, 3000));
  Operation commit_part;
  auto* p = commit_part.mutable_upload_part();
  p->set_volume_id(this->volume_.id());
  p->set_upload_id("u-old");
  p->set_handle_owner(5);
  p->mutable_part()->set_number(1);
  p->mutable_part()->set_ino(ino);
  p->mutable_part()->set_etag("\"p1\"");
  p->mutable_part()->set_size(3000);
  ASSERT_OK(this->As(kLive, commit_part));
  EXPECT_EQ(this->PinIndexEntries(kLive), 0u);  // the part belongs to the upload now
  auto listed = [&] {
    UploadListRequest req;
    req.set_volume_id(this->volume_.id());
    auto r = QueryUploads(*this->core_->Snapshot(), req);
    EXPECT_OK(r);
    return r.ok() ? r->uploads_size() : -1;
  };
  for (int i = 0; i < 3; ++i) {  // the uploading client may be long gone: the upload stays
    this->Advance(kExpiryMs / 3 - 1);
    ASSERT_OK(this->core_->KeepAlive(kLive));
    this->core_->Housekeep();
  }
  EXPECT_EQ(listed(), 1);
  EXPECT_EQ(this->UsedBytes(), base + 3000);
  this->Advance(kExpiryMs / 4);
  this->core_->Housekeep();
  EXPECT_EQ(listed(), 0);
  EXPECT_CODE(this->GetAttr(ino), Code::NOT_FOUND);
  EXPECT_EQ(this->UsedBytes(), base);
  EXPECT_EQ(this->Garbage(), 1u);
  EXPECT_EQ(this->core_->session_counts().multipart_expired, 1u);
  EXPECT_EQ(this->core_->ClusterStatus()->multipart_expired(), 1u);
}

}  // namespace
}  // namespace granary::metanode
