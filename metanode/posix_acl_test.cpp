// POSIX ACLs: the xattr encoding, acl(5)'s creation and chmod rules, and how the applier keeps
// a file's ACLs and mode in step (docs/mount.md "POSIX ACLs").
#include "metanode/posix_acl.h"

#include "metanode/reader.h"
#include "metanode/test_util.h"

namespace granary::metanode {
namespace {

using acl::Acl;
using acl::Entry;

constexpr uint32_t kNoId = UINT32_MAX;

// u::rwx, u:1000:rw-, g::r-x, g:2000:r--, m::rw-, o::---
Acl Rich() {
  return {{acl::kUserObj, 7, kNoId}, {acl::kUser, 6, 1000},  {acl::kGroupObj, 5, kNoId},
          {acl::kGroup, 4, 2000},    {acl::kMask, 6, kNoId}, {acl::kOther, 0, kNoId}};
}

Acl Minimal(uint16_t u, uint16_t g, uint16_t o) {
  return {{acl::kUserObj, u, kNoId}, {acl::kGroupObj, g, kNoId}, {acl::kOther, o, kNoId}};
}

uint16_t PermOf(const Acl& a, uint16_t tag) {
  for (const Entry& e : a) {
    if (e.tag == tag) return e.perm;
  }
  return 0xffff;
}

TEST(PosixAclTest, RoundTripsTheKernelEncoding) {
  const std::string bytes = acl::Serialize(Rich());
  ASSERT_EQ(bytes.size(), 4u + 6 * 8);
  EXPECT_EQ(bytes.substr(0, 4), std::string("\x02\x00\x00\x00", 4));
  auto back = acl::Parse(bytes);
  ASSERT_OK(back);
  ASSERT_EQ(back->size(), 6u);
  EXPECT_EQ((*back)[1].id, 1000u);
  EXPECT_EQ(PermOf(*back, acl::kMask), 6);
}

TEST(PosixAclTest, MalformedAclsAreInvalidArguments) {
  std::string bytes = acl::Serialize(Rich());
  EXPECT_CODE(acl::Parse(bytes.substr(0, 11)), Code::INVALID_ARGUMENT);  // torn entry
  std::string v3 = bytes;
  v3[0] = 3;
  EXPECT_CODE(acl::Parse(v3), Code::INVALID_ARGUMENT);  // version
  Acl no_mask = Rich();
  no_mask.erase(no_mask.begin() + 4);
  EXPECT_CODE(acl::Parse(acl::Serialize(no_mask)), Code::INVALID_ARGUMENT);
  Acl no_other = Minimal(7, 5, 5);
  no_other.pop_back();
  EXPECT_CODE(acl::Parse(acl::Serialize(no_other)), Code::INVALID_ARGUMENT);
  Acl unsorted = Rich();
  std::swap(unsorted[0], unsorted[2]);
  EXPECT_CODE(acl::Parse(acl::Serialize(unsorted)), Code::INVALID_ARGUMENT);
  Acl twice = Rich();
  twice.insert(twice.begin() + 1, Entry{acl::kUser, 4, 1000});
  EXPECT_CODE(acl::Parse(acl::Serialize(twice)), Code::INVALID_ARGUMENT);
  Acl bad_perm = Minimal(7, 5, 5);
  bad_perm[2].perm = 8;
  EXPECT_CODE(acl::Parse(acl::Serialize(bad_perm)), Code::INVALID_ARGUMENT);
}

TEST(PosixAclTest, TheMaskStandsForTheGroupBits) {
  auto m = acl::ModeOf(Rich());
  EXPECT_EQ(m.bits, 0760u);
  EXPECT_FALSE(m.equivalent);
  auto plain = acl::ModeOf(Minimal(6, 4, 0));
  EXPECT_EQ(plain.bits, 0640u);
  EXPECT_TRUE(plain.equivalent);
}

TEST(PosixAclTest, CreationMasksTheDefaultAclWithTheRequestedMode) {
  Acl a = Rich();
  uint32_t mode = 0644;  // open(O_CREAT, 0644): umask is not applied under a default ACL
  EXPECT_TRUE(acl::MaskForCreate(a, &mode));
  EXPECT_EQ(mode, 0640u);  // owner rw (rwx & rw), group class = mask rw & r = r, other none
  EXPECT_EQ(PermOf(a, acl::kUserObj), 6);
  EXPECT_EQ(PermOf(a, acl::kMask), 4);
  EXPECT_EQ(PermOf(a, acl::kGroupObj), 5);  // the owning group entry keeps its bits
  EXPECT_EQ(PermOf(a, acl::kOther), 0);
  Acl minimal = Minimal(7, 5, 5);
  uint32_t dir_mode = 02777;
  EXPECT_FALSE(acl::MaskForCreate(minimal, &dir_mode));
  EXPECT_EQ(dir_mode, 02755u);
}

TEST(PosixAclTest, ChmodRewritesOwnerMaskAndOther) {
  Acl a = Rich();
  acl::Chmod(a, 0451);
  EXPECT_EQ(PermOf(a, acl::kUserObj), 4);
  EXPECT_EQ(PermOf(a, acl::kMask), 5);
  EXPECT_EQ(PermOf(a, acl::kGroupObj), 5);
  EXPECT_EQ(PermOf(a, acl::kOther), 1);
  EXPECT_EQ(PermOf(a, acl::kUser), 6);  // named entries are limited by the mask, not changed
}

template <typename Kind>
class AclApplyTest : public MetaTest<Kind> {
 protected:
  Status SetXattr(uint64_t ino, std::string_view name, const std::string& value,
                  bool clear_setgid = false) {
    Operation op;
    auto* r = op.mutable_setxattr();
    r->set_ino(ino);
    r->set_name(std::string(name));
    r->set_value(value);
    r->set_clear_setgid(clear_setgid);
    return StatusOf(this->Run(op));
  }
  Result<std::string> GetXattr(uint64_t ino, std::string_view name) {
    return QueryGetXattr(*this->core_->Snapshot(), ino, std::string(name));
  }
  Result<InodeAttr> MountCreate(uint64_t parent, const std::string& name, FileType type,
                                uint32_t mode, uint32_t umask) {
    Operation op;
    if (type == DIRECTORY) {
      auto* r = op.mutable_mkdir();
      r->set_parent(parent);
      r->set_name(name);
      r->set_mode(mode);
      r->set_umask(umask);
    } else {
      auto* r = op.mutable_create();
      r->set_parent(parent);
      r->set_name(name);
      r->set_mode(mode);
      r->set_umask(umask);
      r->set_exclusive(true);
      r->set_type(type);
    }
    auto reply = this->Run(op);
    GRANARY_TRY(reply);
    return reply->entry().attr();
  }
  Result<InodeAttr> Chmod(uint64_t ino, uint32_t mode) {
    Operation op;
    op.mutable_setattr()->set_ino(ino);
    op.mutable_setattr()->set_valid(SETATTR_MODE);
    op.mutable_setattr()->set_mode(mode);
    auto reply = this->Run(op);
    GRANARY_TRY(reply);
    return reply->attr().attr();
  }
};
TYPED_TEST_SUITE(AclApplyTest, StoreKinds);

TYPED_TEST(AclApplyTest, WithoutADefaultAclTheUmaskApplies) {
  auto f = this->MountCreate(this->root_, "f", REGULAR, 0666, 022);
  ASSERT_OK(f);
  EXPECT_EQ(f->mode() & 07777, 0644u);
  EXPECT_FALSE(f->access_acl());
  EXPECT_CODE(this->GetXattr(f->ino(), acl::kAccessXattr), Code::NOT_FOUND);
}

TYPED_TEST(AclApplyTest, ADefaultAclIsInheritedAndMasksTheModeInsteadOfTheUmask) {
  auto d = this->Mkdir(this->root_, "team");
  ASSERT_OK(d);
  ASSERT_OK(this->SetXattr(d->ino(), acl::kDefaultXattr, acl::Serialize(Rich())));
  EXPECT_TRUE(this->GetAttr(d->ino())->default_acl());

  auto f = this->MountCreate(d->ino(), "f", REGULAR, 0666, 077);  // umask ignored
  ASSERT_OK(f);
  EXPECT_EQ(f->mode() & 07777, 0660u);  // owner rw, group class = mask rw, other none
  EXPECT_TRUE(f->access_acl());
  EXPECT_FALSE(f->default_acl());
  auto access = this->GetXattr(f->ino(), acl::kAccessXattr);
  ASSERT_OK(access);
  auto parsed = acl::Parse(*access);
  ASSERT_OK(parsed);
  EXPECT_EQ(PermOf(*parsed, acl::kUser), 6);  // u:1000:rw- travels with the file
  EXPECT_CODE(this->GetXattr(f->ino(), acl::kDefaultXattr), Code::NOT_FOUND);

  auto sub = this->MountCreate(d->ino(), "sub", DIRECTORY, 0777, 077);
  ASSERT_OK(sub);
  EXPECT_EQ(sub->mode() & 0777, 0760u);
  EXPECT_TRUE(sub->default_acl());
  EXPECT_EQ(*this->GetXattr(sub->ino(), acl::kDefaultXattr), acl::Serialize(Rich()));

  auto fifo = this->MountCreate(d->ino(), "pipe", FIFO, 0644, 0);
  ASSERT_OK(fifo);
  EXPECT_TRUE(fifo->access_acl());

  // A request that did not come from a mount with ACLs (S3, the CLI) keeps its mode.
  auto plain = this->Create(d->ino(), "plain");
  ASSERT_OK(plain);
  EXPECT_EQ(plain->mode() & 07777, 0644u);
  EXPECT_FALSE(plain->access_acl());
}

TYPED_TEST(AclApplyTest, AnAccessAclSetsTheModeAndIsKeptOnlyWhenItSaysMore) {
  auto f = this->Create(this->root_, "f");
  ASSERT_OK(f);
  ASSERT_OK(this->SetXattr(f->ino(), acl::kAccessXattr, acl::Serialize(Rich())));
  auto a = this->GetAttr(f->ino());
  EXPECT_EQ(a->mode() & 0777, 0760u);
  EXPECT_TRUE(a->access_acl());

  ASSERT_OK(this->SetXattr(f->ino(), acl::kAccessXattr, acl::Serialize(Minimal(6, 4, 4))));
  a = this->GetAttr(f->ino());
  EXPECT_EQ(a->mode() & 0777, 0644u);
  EXPECT_FALSE(a->access_acl());
  EXPECT_CODE(this->GetXattr(f->ino(), acl::kAccessXattr), Code::NOT_FOUND);
}

TYPED_TEST(AclApplyTest, ChmodRewritesTheStoredAcl) {
  auto f = this->Create(this->root_, "f");
  ASSERT_OK(f);
  ASSERT_OK(this->SetXattr(f->ino(), acl::kAccessXattr, acl::Serialize(Rich())));
  ASSERT_OK(this->Chmod(f->ino(), 0604));
  auto parsed = acl::Parse(*this->GetXattr(f->ino(), acl::kAccessXattr));
  ASSERT_OK(parsed);
  EXPECT_EQ(PermOf(*parsed, acl::kUserObj), 6);
  EXPECT_EQ(PermOf(*parsed, acl::kMask), 0);
  EXPECT_EQ(PermOf(*parsed, acl::kOther), 4);
}

TYPED_TEST(AclApplyTest, SetgidIsClearedWhenTheMountSaysTheCallerMayNotKeepIt) {
  auto f = this->Create(this->root_, "f");
  ASSERT_OK(f);
  ASSERT_OK(this->Chmod(f->ino(), 02755));
  ASSERT_OK(this->SetXattr(f->ino(), acl::kAccessXattr, acl::Serialize(Rich()), true));
  EXPECT_EQ(this->GetAttr(f->ino())->mode() & 07777, 0760u);
}

TYPED_TEST(AclApplyTest, BadAclsAreRefusedAndChangeNothing) {
  auto f = this->Create(this->root_, "f");
  ASSERT_OK(f);
  EXPECT_CODE(this->SetXattr(f->ino(), acl::kDefaultXattr, acl::Serialize(Rich())),
              Code::PERMISSION_DENIED);  // a default ACL only on a directory (EACCES)
  EXPECT_CODE(this->SetXattr(f->ino(), acl::kAccessXattr, "garbage"), Code::INVALID_ARGUMENT);
  auto a = this->GetAttr(f->ino());
  EXPECT_EQ(a->mode() & 07777, 0644u);
  EXPECT_FALSE(a->access_acl());
  EXPECT_FALSE(a->default_acl());
}

TYPED_TEST(AclApplyTest, RemovingADefaultAclStopsInheritance) {
  auto d = this->Mkdir(this->root_, "d");
  ASSERT_OK(d);
  ASSERT_OK(this->SetXattr(d->ino(), acl::kDefaultXattr, acl::Serialize(Rich())));
  Operation op;
  op.mutable_removexattr()->set_ino(d->ino());
  op.mutable_removexattr()->set_name(std::string(acl::kDefaultXattr));
  ASSERT_OK(this->Run(op));
  EXPECT_FALSE(this->GetAttr(d->ino())->default_acl());
  auto f = this->MountCreate(d->ino(), "f", REGULAR, 0666, 027);
  ASSERT_OK(f);
  EXPECT_EQ(f->mode() & 07777, 0640u);
  EXPECT_FALSE(f->access_acl());
}

}  // namespace
}  // namespace granary::metanode
