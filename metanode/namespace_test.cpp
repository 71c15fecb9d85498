// Namespace operations: each op's success and every error code, over each store kind.
#include "metanode/test_util.h"

namespace granary::metanode {
namespace {

template <typename Kind>
class NamespaceTest : public MetaTest<Kind> {};
TYPED_TEST_SUITE(NamespaceTest, StoreKinds);

TYPED_TEST(NamespaceTest, MkdirCreatesDirectoryAndCountsParentLink) {
  auto d = this->Mkdir(this->root_, "a");
  ASSERT_OK(d);
  EXPECT_EQ(d->type(), DIRECTORY);
  EXPECT_EQ(d->nlink(), 2u);
  EXPECT_EQ(d->parent(), this->root_);
  EXPECT_EQ(this->GetAttr(this->root_)->nlink(), 3u);
  EXPECT_EQ(this->Lookup(this->root_, "a")->ino(), d->ino());
}

TYPED_TEST(NamespaceTest, MkdirErrors) {
  ASSERT_OK(this->Mkdir(this->root_, "a"));
  EXPECT_CODE(this->Mkdir(this->root_, "a"), Code::ALREADY_EXISTS);
  EXPECT_CODE(this->Mkdir(999999, "x"), Code::NOT_FOUND);
  auto f = this->Create(this->root_, "f");
  ASSERT_OK(f);
  EXPECT_CODE(this->Mkdir(f->ino(), "x"), Code::NOT_DIRECTORY);
}

TYPED_TEST(NamespaceTest, NamesAreValidated) {
  for (std::string bad : {std::string(""), std::string("."), std::string(".."), std::string("a/b"),
                          std::string("a\0b", 3)}) {
    EXPECT_CODE(this->Create(this->root_, bad), Code::INVALID_ARGUMENT) << bad;
    EXPECT_CODE(this->Mkdir(this->root_, bad), Code::INVALID_ARGUMENT) << bad;
  }
  EXPECT_CODE(this->Create(this->root_, std::string(256, 'x')), Code::NAME_TOO_LONG);
  ASSERT_OK(this->Create(this->root_, std::string(255, 'x')));
  EXPECT_CODE(this->Lookup(this->root_, std::string(256, 'x')), Code::NAME_TOO_LONG);
}

TYPED_TEST(NamespaceTest, CreateExclusiveAndNonExclusive) {
  auto f = this->Create(this->root_, "f");
  ASSERT_OK(f);
  EXPECT_EQ(f->type(), REGULAR);
  EXPECT_EQ(f->nlink(), 1u);
  EXPECT_GT(f->layout().block_size(), 0u);
  EXPECT_CODE(this->Create(this->root_, "f", true), Code::ALREADY_EXISTS);
  auto again = this->Create(this->root_, "f", false);
  ASSERT_OK(again);
  EXPECT_EQ(again->ino(), f->ino());
  ASSERT_OK(this->Mkdir(this->root_, "d"));
  EXPECT_CODE(this->Create(this->root_, "d", false), Code::IS_DIRECTORY);
}

TYPED_TEST(NamespaceTest, CreateWithTruncateBumpsGeneration) {
  auto f = this->Create(this->root_, "f");
  ASSERT_OK(f);
  ASSERT_OK(this->Truncate(f->ino(), 100));
  auto t = this->Create(this->root_, "f", false, true);
  ASSERT_OK(t);
  EXPECT_EQ(t->size(), 0u);
  EXPECT_GT(t->generation(), f->generation());
}

TYPED_TEST(NamespaceTest, LookupAndGetAttrErrors) {
  EXPECT_CODE(this->Lookup(this->root_, "missing"), Code::NOT_FOUND);
  EXPECT_CODE(this->GetAttr(123456789), Code::NOT_FOUND);
  auto f = this->Create(this->root_, "f");
  EXPECT_CODE(this->Lookup(f->ino(), "x"), Code::NOT_DIRECTORY);
}

TYPED_TEST(NamespaceTest, UnlinkRemovesNameAndFreesInode) {
  auto f = this->Create(this->root_, "f");
  ASSERT_OK(f);
  ASSERT_OK(this->Unlink(this->root_, "f"));
  EXPECT_CODE(this->Lookup(this->root_, "f"), Code::NOT_FOUND);
  EXPECT_CODE(this->GetAttr(f->ino()), Code::NOT_FOUND);
  EXPECT_CODE(this->Unlink(this->root_, "f"), Code::NOT_FOUND);
  ASSERT_OK(this->Mkdir(this->root_, "d"));
  EXPECT_CODE(this->Unlink(this->root_, "d"), Code::IS_DIRECTORY);
  EXPECT_EQ(this->GetVolume()->used_inodes(), 1u);
}

TYPED_TEST(NamespaceTest, RmdirRules) {
  auto d = this->Mkdir(this->root_, "d");
  ASSERT_OK(d);
  ASSERT_OK(this->Create(d->ino(), "f"));
  EXPECT_CODE(this->Rmdir(this->root_, "d"), Code::NOT_EMPTY);
  EXPECT_CODE(this->Rmdir(d->ino(), "f"), Code::NOT_DIRECTORY);
  EXPECT_CODE(this->Rmdir(this->root_, "nope"), Code::NOT_FOUND);
  ASSERT_OK(this->Unlink(d->ino(), "f"));
  ASSERT_OK(this->Rmdir(this->root_, "d"));
  EXPECT_EQ(this->GetAttr(this->root_)->nlink(), 2u);
  EXPECT_CODE(this->GetAttr(d->ino()), Code::NOT_FOUND);
}

TYPED_TEST(NamespaceTest, LinkCountsLinks) {
  auto f = this->Create(this->root_, "f");
  auto d = this->Mkdir(this->root_, "d");
  auto l = this->Link(f->ino(), d->ino(), "g");
  ASSERT_OK(l);
  EXPECT_EQ(l->nlink(), 2u);
  EXPECT_CODE(this->Link(f->ino(), d->ino(), "g"), Code::ALREADY_EXISTS);
  EXPECT_CODE(this->Link(d->ino(), this->root_, "d2"), Code::IS_DIRECTORY);
  EXPECT_CODE(this->Link(987654, this->root_, "x"), Code::NOT_FOUND);
  EXPECT_CODE(this->Link(f->ino(), this->root_, ".."), Code::INVALID_ARGUMENT);
  ASSERT_OK(this->Unlink(this->root_, "f"));
  EXPECT_EQ(this->GetAttr(f->ino())->nlink(), 1u);
  EXPECT_EQ(this->Lookup(d->ino(), "g")->ino(), f->ino());
  auto other = this->VolumeCreate("other", 0, 0);
  ASSERT_OK(other);
  EXPECT_CODE(this->Link(f->ino(), other->root_ino(), "x"), Code::CROSS_VOLUME);
}

TYPED_TEST(NamespaceTest, SymlinkAndReadLink) {
  Operation op;
  *op.mutable_id() = this->NextId();
  op.mutable_symlink()->set_parent(this->root_);
  op.mutable_symlink()->set_name("s");
  op.mutable_symlink()->set_target("../t");
  auto r = this->Run(op);
  ASSERT_OK(r);
  EXPECT_EQ(r->entry().attr().type(), SYMLINK);
  EXPECT_EQ(*QueryReadLink(*this->core_->Snapshot(), r->entry().attr().ino()), "../t");
  EXPECT_CODE(this->Run(op), Code::OK);  // a retry with the same OpId is not AlreadyExists
  op.clear_id();
  EXPECT_CODE(this->Run(op), Code::ALREADY_EXISTS);
  op.mutable_symlink()->set_name("s2");
  op.mutable_symlink()->set_target("");
  EXPECT_CODE(this->Run(op), Code::INVALID_ARGUMENT);
  auto f = this->Create(this->root_, "f");
  EXPECT_CODE(QueryReadLink(*this->core_->Snapshot(), f->ino()), Code::INVALID_ARGUMENT);
}

TYPED_TEST(NamespaceTest, SetAttrStoresPosixFields) {
  auto f = this->Create(this->root_, "f");
  Operation op;
  auto* s = op.mutable_setattr();
  s->set_ino(f->ino());
  s->set_valid(SETATTR_MODE | SETATTR_UID | SETATTR_GID | SETATTR_MTIME | SETATTR_ATIME);
  s->set_mode(0600);
  s->set_uid(1000);
  s->set_gid(2000);
  s->mutable_mtime()->set_sec(42);
  s->set_atime_now(true);
  auto r = this->Run(op);
  ASSERT_OK(r);
  const InodeAttr& a = r->attr().attr();
  EXPECT_EQ(a.mode(), 0600u);
  EXPECT_EQ(a.uid(), 1000u);
  EXPECT_EQ(a.gid(), 2000u);
  EXPECT_EQ(a.mtime().sec(), 42);
  EXPECT_EQ(a.atime().sec(), this->now_ms_ / 1000);
  auto d = this->Mkdir(this->root_, "d");
  EXPECT_CODE(this->Truncate(d->ino(), 0), Code::IS_DIRECTORY);
  EXPECT_CODE(this->Truncate(4242424, 0), Code::NOT_FOUND);
}

TYPED_TEST(NamespaceTest, XattrsRoundTrip) {
  auto f = this->Create(this->root_, "f");
  auto set = [&](const std::string& name, const std::string& value, SetXattrRequest::Mode mode) {
    Operation op;
    auto* s = op.mutable_setxattr();
    s->set_ino(f->ino());
    s->set_name(name);
    s->set_value(value);
    s->set_mode(mode);
    return StatusOf(this->Run(op));
  };
  ASSERT_OK(set("user.a", "1", SetXattrRequest::XATTR_MODE_CREATE));
  EXPECT_CODE(set("user.a", "2", SetXattrRequest::XATTR_MODE_CREATE), Code::ALREADY_EXISTS);
  EXPECT_CODE(set("user.b", "2", SetXattrRequest::XATTR_MODE_REPLACE), Code::NOT_FOUND);
  ASSERT_OK(set("user.a", "3", SetXattrRequest::XATTR_MODE_REPLACE));
  ASSERT_OK(set("user.b", "4", SetXattrRequest::XATTR_MODE_ANY));
  EXPECT_CODE(set("", "x", SetXattrRequest::XATTR_MODE_ANY), Code::INVALID_ARGUMENT);
  EXPECT_CODE(set(std::string(300, 'n'), "x", SetXattrRequest::XATTR_MODE_ANY),
              Code::NAME_TOO_LONG);
  auto snap = this->core_->Snapshot();
  EXPECT_EQ(*QueryGetXattr(*snap, f->ino(), "user.a"), "3");
  EXPECT_CODE(QueryGetXattr(*snap, f->ino(), "user.c"), Code::NOT_FOUND);
  auto list = QueryListXattr(*snap, f->ino());
  ASSERT_EQ(list->names_size(), 2);
  EXPECT_EQ(list->names(0), "user.a");
  Operation rm;
  rm.mutable_removexattr()->set_ino(f->ino());
  rm.mutable_removexattr()->set_name("user.a");
  ASSERT_OK(this->Run(rm));
  rm.clear_id();
  EXPECT_CODE(this->Run(rm), Code::NOT_FOUND);
}

TYPED_TEST(NamespaceTest, StatFsReportsVolumeQuota) {
  auto v = this->VolumeCreate("quota", 1 << 20, 10);
  ASSERT_OK(v);
  ASSERT_OK(this->Create(v->root_ino(), "f"));
  auto s = QueryStatFs(*this->core_->Snapshot(), v->root_ino());
  ASSERT_OK(s);
  EXPECT_EQ(s->total_bytes(), 1u << 20);
  EXPECT_EQ(s->total_inodes(), 10u);
  EXPECT_EQ(s->used_inodes(), 1u);
}

TYPED_TEST(NamespaceTest, InodeQuotaStopsCreates) {
  auto v = this->VolumeCreate("small", 0, 2);
  ASSERT_OK(v);
  ASSERT_OK(this->Create(v->root_ino(), "a"));
  ASSERT_OK(this->Mkdir(v->root_ino(), "b"));
  EXPECT_CODE(this->Create(v->root_ino(), "c"), Code::QUOTA_EXCEEDED);
  EXPECT_CODE(this->Mkdir(v->root_ino(), "c"), Code::QUOTA_EXCEEDED);
  ASSERT_OK(this->Unlink(v->root_ino(), "a"));
  ASSERT_OK(this->Create(v->root_ino(), "c"));
}

TYPED_TEST(NamespaceTest, FallocateGrowsSize) {
  auto f = this->Create(this->root_, "f");
  Operation op;
  auto* fa = op.mutable_fallocate();
  fa->set_ino(f->ino());
  fa->set_offset(100);
  fa->set_length(900);
  auto r = this->Run(op);
  ASSERT_OK(r);
  EXPECT_EQ(r->attr().attr().size(), 1000u);
  fa->set_mode(2);  // punch hole: not supported
  op.clear_id();
  EXPECT_CODE(this->Run(op), Code::INVALID_ARGUMENT);
  fa->set_mode(0);
  fa->set_ino(this->root_);
  op.clear_id();
  EXPECT_CODE(this->Run(op), Code::IS_DIRECTORY);
}

TYPED_TEST(NamespaceTest, OpenFilePinsUnlinkedInodeUntilRelease) {
  auto f = this->Create(this->root_, "f");
  Operation open;
  open.mutable_open()->set_ino(f->ino());
  open.mutable_open()->set_handle_owner(5);
  ASSERT_OK(this->Run(open));
  ASSERT_OK(this->Unlink(this->root_, "f"));
  auto orphan = this->GetAttr(f->ino());
  ASSERT_OK(orphan);
  EXPECT_EQ(orphan->nlink(), 0u);
  open.clear_id();
  EXPECT_CODE(this->Run(open), Code::NOT_FOUND);  // cannot open an unlinked inode again
  Operation release;
  release.mutable_release()->set_ino(f->ino());
  release.mutable_release()->set_handle_owner(5);
  ASSERT_OK(this->Run(release));
  EXPECT_CODE(this->GetAttr(f->ino()), Code::NOT_FOUND);
  EXPECT_EQ(this->GetVolume()->used_inodes(), 0u);
}

TYPED_TEST(NamespaceTest, CreateWithHandleOwnerOpensInTheSameOperation) {
  // A new file and an existing one, each created-and-opened for its own handle owner.
  for (bool existing : {false, true}) {
    if (existing) {
      ASSERT_OK(this->Create(this->root_, "f"));
    }
    Operation create;
    create.mutable_create()->set_parent(this->root_);
    create.mutable_create()->set_name("f");
    create.mutable_create()->set_mode(0644);
    create.mutable_create()->set_handle_owner(7);
    auto created = this->Run(create);
    ASSERT_OK(created);
    const uint64_t ino = created->entry().attr().ino();
    ASSERT_OK(this->Unlink(this->root_, "f"));
    auto orphan = this->GetAttr(ino);
    ASSERT_TRUE(orphan.ok()) << "pinned by the create: " << orphan.status().ToString();
    EXPECT_EQ(orphan->nlink(), 0u);
    Operation release;
    release.mutable_release()->set_ino(ino);
    release.mutable_release()->set_handle_owner(7);
    ASSERT_OK(this->Run(release));
    EXPECT_CODE(this->GetAttr(ino), Code::NOT_FOUND);
  }
  EXPECT_EQ(this->GetVolume()->used_inodes(), 0u);
}

TYPED_TEST(NamespaceTest, ReadDirPagesInNameOrderWithStableCursor) {
  for (std::string n : {"c", "a", "e", "b", "d"}) ASSERT_OK(this->Create(this->root_, n));
  ReadDirRequest req;
  req.set_ino(this->root_);
  req.set_limit(2);
  req.set_plus(true);
  auto p1 = QueryReadDir(*this->core_->Snapshot(), req);
  ASSERT_OK(p1);
  ASSERT_EQ(p1->entries_size(), 2);
  EXPECT_EQ(p1->entries(0).name(), "a");
  EXPECT_EQ(p1->entries(1).name(), "b");
  EXPECT_FALSE(p1->eof());
  EXPECT_EQ(p1->entries(0).attr().ino(), p1->entries(0).ino());
  // Inserts before and after the cursor: the next page continues after "b" without repeats.
  ASSERT_OK(this->Create(this->root_, "aa"));
  ASSERT_OK(this->Create(this->root_, "bb"));
  req.set_after("b");
  req.set_limit(10);
  auto p2 = QueryReadDir(*this->core_->Snapshot(), req);
  ASSERT_OK(p2);
  std::vector<std::string> names;
  for (const auto& e : p2->entries()) names.push_back(e.name());
  EXPECT_EQ(names, (std::vector<std::string>{"bb", "c", "d", "e"}));
  EXPECT_TRUE(p2->eof());
  auto f = this->Lookup(this->root_, "a");
  req.set_ino(f->ino());
  EXPECT_CODE(QueryReadDir(*this->core_->Snapshot(), req), Code::NOT_DIRECTORY);
}

TYPED_TEST(NamespaceTest, RetryWithSameOpIdReturnsFirstAnswer) {
  Operation op;
  *op.mutable_id() = this->NextId();
  op.mutable_create()->set_parent(this->root_);
  op.mutable_create()->set_name("f");
  op.mutable_create()->set_exclusive(true);
  auto first = this->Run(op);
  ASSERT_OK(first);
  auto retry = this->Run(op);
  ASSERT_OK(retry);
  EXPECT_EQ(retry->entry().attr().ino(), first->entry().attr().ino());
  Operation unlink;
  *unlink.mutable_id() = this->NextId();
  unlink.mutable_unlink()->set_parent(this->root_);
  unlink.mutable_unlink()->set_name("f");
  ASSERT_OK(this->Run(unlink));
  ASSERT_OK(this->Run(unlink));  // not NotFound
  // A failed first attempt is remembered too.
  auto failed_retry = this->Run(op);
  ASSERT_OK(failed_retry);  // the create's first answer (success) still stands
}

TYPED_TEST(NamespaceTest, StoredRepliesArePrunedAfterRetention) {
  Operation op;
  *op.mutable_id() = this->NextId();
  op.mutable_create()->set_parent(this->root_);
  op.mutable_create()->set_name("f");
  op.mutable_create()->set_exclusive(true);
  ASSERT_OK(this->Run(op));
  ASSERT_OK(this->Run(op));  // within the retention: the first answer
  this->now_ms_ += this->core_->options().dedup_retention_ms + 1;
  this->core_->Housekeep();
  EXPECT_CODE(this->Run(op), Code::ALREADY_EXISTS);  // forgotten: applied afresh
  // The next round starts where this one stopped, and prunes what expired since.
  Operation later;
  *later.mutable_id() = this->NextId();
  later.mutable_create()->set_parent(this->root_);
  later.mutable_create()->set_name("g");
  later.mutable_create()->set_exclusive(true);
  ASSERT_OK(this->Run(later));
  this->core_->Housekeep();
  ASSERT_OK(this->Run(later));  // not expired yet: still the first answer
  this->now_ms_ += this->core_->options().dedup_retention_ms + 1;
  this->core_->Housekeep();
  EXPECT_CODE(this->Run(later), Code::ALREADY_EXISTS);
}

TYPED_TEST(NamespaceTest, StateSurvivesReopen) {
  if (TypeParam::kInMemory) GTEST_SKIP() << "nothing to reopen";
  auto f = this->Create(this->root_, "persist");
  ASSERT_OK(f);
  this->core_.reset();
  MetaCoreOptions o;
  o.data_dir = this->dir_.string();
  o.housekeeping_ms = 0;
  auto core = MetaCore::Open(o);
  ASSERT_OK(core);
  this->core_ = std::move(*core);
  EXPECT_EQ(this->Lookup(this->root_, "persist")->ino(), f->ino());
}

}  // namespace
}  // namespace granary::metanode
