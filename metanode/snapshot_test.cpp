// Snapshots and clones in the applier: slice reference counts, read-only enforcement, exclusive
// bytes, and what volume and snapshot deletion leave behind.
#include "metanode/schema.h"
#include "metanode/test_util.h"

namespace granary::metanode {
namespace {

template <typename Kind>
class SnapshotTest : public MetaTest<Kind> {
 protected:
  // A file `name` in the root with one committed slice of `len` bytes; returns the slice id.
  Result<uint64_t> WriteFile(const std::string& name, uint64_t len) {
    auto f = this->Create(this->root_, name);
    GRANARY_TRY(f);
    Operation op;
    op.mutable_allocate()->set_ino(f->ino());
    op.mutable_allocate()->set_slice_count(1);
    op.mutable_allocate()->set_bytes(len);
    auto a = this->Run(op);
    GRANARY_TRY(a);
    Operation commit;
    auto* c = commit.mutable_commit();
    c->set_ino(f->ino());
    c->set_intent_id(a->allocate().intent_id());
    c->set_generation(a->allocate().generation());
    auto* range = c->add_ranges();
    SliceRef& s = *range->add_slices();
    s.set_slice_id(a->allocate().first_slice_id());
    s.set_slice_length(len);
    s.set_length(len);
    c->set_end(len);
    GRANARY_TRY(this->Run(commit));
    return a->allocate().first_slice_id();
  }
  uint32_t Refs(uint64_t slice) {
    SliceRecord rec;
    auto txn = this->core_->Snapshot();
    auto found = txn->GetRecord(Cf::kSystem, SliceKey(slice), &rec);
    return found.ok() && *found ? rec.refs() : 0;
  }
  Result<Volume> Snap(const std::string& volume, const std::string& name) {
    Operation op;
    op.mutable_snapshot_create()->set_volume(volume);
    op.mutable_snapshot_create()->set_name(name);
    auto r = this->Run(op);
    GRANARY_TRY(r);
    return r->volume().volume();
  }
  Status SnapDelete(const std::string& volume, const std::string& name) {
    Operation op;
    op.mutable_snapshot_delete()->set_volume(volume);
    op.mutable_snapshot_delete()->set_name(name);
    return StatusOf(this->Run(op));
  }
  std::vector<Volume> List(const std::string& volume = "") {
    SnapshotListRequest req;
    req.set_volume(volume);
    auto r = QuerySnapshots(*this->core_->Snapshot(), req);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::vector<Volume>(r->volumes().begin(), r->volumes().end())
                  : std::vector<Volume>{};
  }
};
TYPED_TEST_SUITE(SnapshotTest, StoreKinds);

TYPED_TEST(SnapshotTest, SharesSlicesByReferenceAndFreesThemWithTheLastHolder) {
  auto slice = this->WriteFile("a", 1000);
  ASSERT_OK(slice);
  ASSERT_OK(this->Mkdir(this->root_, "dir"));
  EXPECT_EQ(this->Refs(*slice), 1u);
  auto snap = this->Snap("vol", "s1");
  ASSERT_OK(snap);
  EXPECT_EQ(snap->name(), "vol@s1");
  EXPECT_TRUE(snap->read_only());
  EXPECT_EQ(snap->source_volume_id(), this->volume_.id());
  EXPECT_EQ(snap->used_inodes(), 3u);  // root, a, dir
  EXPECT_EQ(snap->used_bytes(), 1000u);
  EXPECT_EQ(this->Refs(*slice), 2u);
  // The snapshot has its own inode numbers and the same bytes.
  auto a = this->Lookup(snap->root_ino(), "a");
  ASSERT_OK(a);
  EXPECT_NE(a->ino(), this->Lookup(this->root_, "a")->ino());
  EXPECT_EQ(a->volume_id(), snap->id());
  EXPECT_EQ(a->size(), 1000u);
  EXPECT_EQ(this->List("vol")[0].exclusive_bytes(), 0u) << "everything is shared";

  // The live file goes: its reference goes, the snapshot's stays (and becomes exclusive).
  ASSERT_OK(this->Unlink(this->root_, "a"));
  EXPECT_EQ(this->Refs(*slice), 1u);
  EXPECT_EQ(this->List("vol")[0].exclusive_bytes(), 1000u);
  // A clone of the snapshot shares it again.
  Operation clone;
  clone.mutable_volume_create()->set_name("c");
  clone.mutable_volume_create()->set_from_snapshot("vol@s1");
  auto c = this->Run(clone);
  ASSERT_OK(c);
  EXPECT_FALSE(c->volume().volume().read_only());
  EXPECT_EQ(this->Refs(*slice), 2u);
  EXPECT_EQ(this->List("vol")[0].exclusive_bytes(), 0u);
  // Deleting the snapshot leaves the clone's reference.
  ASSERT_OK(this->SnapDelete("vol", "s1"));
  EXPECT_EQ(this->Refs(*slice), 1u);
  EXPECT_TRUE(this->List().empty());
  EXPECT_CODE(this->SnapDelete("vol", "s1"), Code::NOT_FOUND);
}

TYPED_TEST(SnapshotTest, EveryChangeToASnapshotIsRefused) {
  ASSERT_OK(this->WriteFile("a", 10));
  auto snap = this->Snap("vol", "ro");
  ASSERT_OK(snap);
  const uint64_t root = snap->root_ino();
  auto a = this->Lookup(root, "a");
  ASSERT_OK(a);
  EXPECT_CODE(this->Create(root, "new"), Code::PERMISSION_DENIED);
  EXPECT_CODE(this->Mkdir(root, "d"), Code::PERMISSION_DENIED);
  EXPECT_CODE(this->Unlink(root, "a"), Code::PERMISSION_DENIED);
  EXPECT_CODE(this->Rename(root, "a", root, "b"), Code::PERMISSION_DENIED);
  EXPECT_CODE(this->Link(a->ino(), root, "b"), Code::PERMISSION_DENIED);
  Operation truncate;
  truncate.mutable_setattr()->set_ino(a->ino());
  truncate.mutable_setattr()->set_size(0);
  truncate.mutable_setattr()->set_valid(SETATTR_SIZE);
  EXPECT_CODE(this->Run(truncate), Code::PERMISSION_DENIED);
  Operation alloc;
  alloc.mutable_allocate()->set_ino(a->ino());
  alloc.mutable_allocate()->set_slice_count(1);
  EXPECT_CODE(this->Run(alloc), Code::PERMISSION_DENIED);
  // Names: no snapshot of a snapshot, no '@' in a name, no duplicate, no missing volume.
  EXPECT_CODE(this->Snap("vol@ro", "x"), Code::INVALID_ARGUMENT);
  EXPECT_CODE(this->Snap("vol", "a@b"), Code::INVALID_ARGUMENT);
  EXPECT_CODE(this->Snap("vol", "ro"), Code::ALREADY_EXISTS);
  EXPECT_CODE(this->Snap("nope", "x"), Code::NOT_FOUND);
  EXPECT_CODE(this->VolumeCreate("x@y", 0, 0), Code::INVALID_ARGUMENT);
  Operation del;
  del.mutable_volume_delete()->set_name("vol@ro");
  EXPECT_CODE(this->Run(del), Code::INVALID_ARGUMENT);
}

TYPED_TEST(SnapshotTest, HardLinksStayOneInodeAndDeletedVolumesKeepTheirSnapshots) {
  ASSERT_OK(this->VolumeCreate("data", 0, 0));
  VolumeGetRequest get;
  get.set_name("data");
  auto data = QueryVolume(*this->core_->Snapshot(), get);
  ASSERT_OK(data);
  auto f = this->Create(data->root_ino(), "f");
  ASSERT_OK(f);
  ASSERT_OK(this->Link(f->ino(), data->root_ino(), "g"));
  auto snap = this->Snap("data", "keep");
  ASSERT_OK(snap);
  auto sf = this->Lookup(snap->root_ino(), "f");
  auto sg = this->Lookup(snap->root_ino(), "g");
  ASSERT_OK(sf);
  ASSERT_OK(sg);
  EXPECT_EQ(sf->ino(), sg->ino());
  EXPECT_EQ(sf->nlink(), 2u);
  ASSERT_OK(this->Unlink(data->root_ino(), "f"));
  ASSERT_OK(this->Unlink(data->root_ino(), "g"));
  Operation del;
  del.mutable_volume_delete()->set_name("data");
  ASSERT_OK(this->Run(del));
  ASSERT_OK(this->Lookup(snap->root_ino(), "f"));
  EXPECT_CODE(this->VolumeCreate("data", 0, 0), Code::ALREADY_EXISTS);
  ASSERT_OK(this->SnapDelete("data", "keep"));
  EXPECT_CODE(this->GetAttr(sf->ino()), Code::NOT_FOUND);
  ASSERT_OK(this->VolumeCreate("data", 0, 0));
}

}  // namespace
}  // namespace granary::metanode
