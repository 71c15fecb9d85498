// rename(2) semantics, including NOREPLACE, EXCHANGE and the subtree rule.
#include "metanode/test_util.h"

namespace granary::metanode {
namespace {

template <typename Kind>
class RenameTest : public MetaTest<Kind> {};
TYPED_TEST_SUITE(RenameTest, StoreKinds);

TYPED_TEST(RenameTest, MovesFileBetweenDirectories) {
  auto d = this->Mkdir(this->root_, "d");
  auto f = this->Create(this->root_, "f");
  auto r = this->Rename(this->root_, "f", d->ino(), "g");
  ASSERT_OK(r);
  EXPECT_EQ(r->moved().ino(), f->ino());
  EXPECT_EQ(r->replaced_ino(), 0u);
  EXPECT_CODE(this->Lookup(this->root_, "f"), Code::NOT_FOUND);
  EXPECT_EQ(this->Lookup(d->ino(), "g")->ino(), f->ino());
}

TYPED_TEST(RenameTest, ReplacesTargetAtomically) {
  auto a = this->Create(this->root_, "a");
  auto b = this->Create(this->root_, "b");
  auto r = this->Rename(this->root_, "a", this->root_, "b");
  ASSERT_OK(r);
  EXPECT_EQ(r->replaced_ino(), b->ino());
  EXPECT_EQ(this->Lookup(this->root_, "b")->ino(), a->ino());
  EXPECT_CODE(this->GetAttr(b->ino()), Code::NOT_FOUND);
  EXPECT_EQ(this->Names(this->root_), std::vector<std::string>{"b"});
  EXPECT_EQ(this->GetVolume()->used_inodes(), 1u);
}

TYPED_TEST(RenameTest, NoReplaceRefusesExistingTarget) {
  ASSERT_OK(this->Create(this->root_, "a"));
  ASSERT_OK(this->Create(this->root_, "b"));
  EXPECT_CODE(this->Rename(this->root_, "a", this->root_, "b", RENAME_FLAG_NOREPLACE),
              Code::ALREADY_EXISTS);
  ASSERT_OK(this->Rename(this->root_, "a", this->root_, "c", RENAME_FLAG_NOREPLACE));
}

TYPED_TEST(RenameTest, ExchangeSwapsNamesAndParents) {
  auto d1 = this->Mkdir(this->root_, "d1");
  auto d2 = this->Mkdir(this->root_, "d2");
  auto sub = this->Mkdir(d1->ino(), "sub");
  auto f = this->Create(d2->ino(), "f");
  ASSERT_OK(this->Rename(d1->ino(), "sub", d2->ino(), "f", RENAME_FLAG_EXCHANGE));
  EXPECT_EQ(this->Lookup(d1->ino(), "sub")->ino(), f->ino());
  EXPECT_EQ(this->Lookup(d2->ino(), "f")->ino(), sub->ino());
  EXPECT_EQ(this->GetAttr(sub->ino())->parent(), d2->ino());
  EXPECT_EQ(this->GetAttr(d1->ino())->nlink(), 2u);
  EXPECT_EQ(this->GetAttr(d2->ino())->nlink(), 3u);
  EXPECT_CODE(this->Rename(d1->ino(), "sub", d2->ino(), "none", RENAME_FLAG_EXCHANGE),
              Code::NOT_FOUND);
}

TYPED_TEST(RenameTest, DirectoryIntoOwnSubtreeIsInvalid) {
  auto a = this->Mkdir(this->root_, "a");
  auto b = this->Mkdir(a->ino(), "b");
  auto c = this->Mkdir(b->ino(), "c");
  EXPECT_CODE(this->Rename(this->root_, "a", c->ino(), "a"), Code::INVALID_ARGUMENT);
  EXPECT_CODE(this->Rename(this->root_, "a", a->ino(), "x"), Code::INVALID_ARGUMENT);
  auto x = this->Mkdir(this->root_, "x");
  EXPECT_CODE(this->Rename(this->root_, "x", b->ino(), "c", RENAME_FLAG_EXCHANGE), Code::OK);
  // Exchanging a directory with one inside it would make a cycle.
  EXPECT_CODE(this->Rename(this->root_, "a", a->ino(), "b", RENAME_FLAG_EXCHANGE),
              Code::INVALID_ARGUMENT);
}

TYPED_TEST(RenameTest, TypeAndEmptinessRules) {
  auto d = this->Mkdir(this->root_, "d");
  auto e = this->Mkdir(this->root_, "e");
  ASSERT_OK(this->Create(e->ino(), "inside"));
  ASSERT_OK(this->Create(this->root_, "f"));
  EXPECT_CODE(this->Rename(this->root_, "d", this->root_, "f"), Code::NOT_DIRECTORY);
  EXPECT_CODE(this->Rename(this->root_, "f", this->root_, "d"), Code::IS_DIRECTORY);
  EXPECT_CODE(this->Rename(this->root_, "d", this->root_, "e"), Code::NOT_EMPTY);
  EXPECT_CODE(this->Rename(this->root_, "missing", this->root_, "x"), Code::NOT_FOUND);
  EXPECT_CODE(this->Rename(this->root_, "f", this->root_, ""), Code::INVALID_ARGUMENT);
  EXPECT_CODE(this->Rename(this->root_, "f", this->root_, std::string(256, 'n')),
              Code::NAME_TOO_LONG);
  ASSERT_OK(this->Unlink(e->ino(), "inside"));
  ASSERT_OK(this->Rename(this->root_, "d", this->root_, "e"));  // over an empty directory
  EXPECT_EQ(this->GetAttr(this->root_)->nlink(), 3u);
  EXPECT_CODE(this->GetAttr(e->ino()), Code::NOT_FOUND);
}

TYPED_TEST(RenameTest, AcrossVolumesIsCrossVolume) {
  auto other = this->VolumeCreate("other", 0, 0);
  ASSERT_OK(this->Create(this->root_, "f"));
  EXPECT_CODE(this->Rename(this->root_, "f", other->root_ino(), "f"), Code::CROSS_VOLUME);
}

TYPED_TEST(RenameTest, DirectoryMoveUpdatesParentAndLinkCounts) {
  auto a = this->Mkdir(this->root_, "a");
  auto b = this->Mkdir(this->root_, "b");
  auto c = this->Mkdir(a->ino(), "c");
  ASSERT_OK(this->Rename(a->ino(), "c", b->ino(), "c"));
  EXPECT_EQ(this->GetAttr(c->ino())->parent(), b->ino());
  EXPECT_EQ(this->GetAttr(a->ino())->nlink(), 2u);
  EXPECT_EQ(this->GetAttr(b->ino())->nlink(), 3u);
}

TYPED_TEST(RenameTest, SameFileIsANoOp) {
  auto f = this->Create(this->root_, "f");
  ASSERT_OK(this->Link(f->ino(), this->root_, "g"));
  ASSERT_OK(this->Rename(this->root_, "f", this->root_, "g"));
  EXPECT_EQ(this->Names(this->root_), (std::vector<std::string>{"f", "g"}));
  ASSERT_OK(this->Rename(this->root_, "f", this->root_, "f"));
}

}  // namespace
}  // namespace granary::metanode
