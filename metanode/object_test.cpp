// Object operations (apply_object.cpp) over both stores: S3 listing order, atomic publish with
// preconditions, implicit parents appearing and disappearing, metadata-only assembly.
#include <algorithm>
#include <set>

#include "metanode/apply_object.h"
#include "metanode/test_util.h"

namespace granary::metanode {
namespace {

template <typename Kind>
class ObjectTest : public MetaTest<Kind> {
 protected:
  using Base = MetaTest<Kind>;
  uint64_t vol() { return this->volume_.id(); }

  Result<InodeAttr> Stage(uint64_t owner = 9) {
    Operation op;
    op.mutable_object_stage()->set_volume_id(vol());
    op.mutable_object_stage()->set_handle_owner(owner);
    auto r = this->Run(op);
    GRANARY_TRY(r);
    return r->attr().attr();
  }
  Result<ObjectInfo> Publish(const std::string& key, uint64_t ino, Precondition pre = {},
                             std::string etag = "\"e\"") {
    Operation op;
    auto* p = op.mutable_object_publish();
    p->set_volume_id(vol());
    p->set_key(key);
    p->set_ino(ino);
    p->set_handle_owner(9);
    *p->mutable_precondition() = pre;
    p->mutable_meta()->set_etag(etag);
    auto r = this->Run(op);
    GRANARY_TRY(r);
    return r->object().info();
  }
  Result<ObjectInfo> Put(const std::string& key, std::string etag = "\"e\"",
                         Precondition pre = {}) {
    auto staged = Stage();
    GRANARY_TRY(staged);
    return Publish(key, staged->ino(), pre, etag);
  }
  Status Delete(const std::string& key) {
    Operation op;
    op.mutable_object_delete()->set_volume_id(vol());
    op.mutable_object_delete()->set_key(key);
    return StatusOf(this->Run(op));
  }
  std::vector<std::string> List(const std::string& prefix = "", const std::string& delim = "",
                                const std::string& after = "", uint32_t max = 0,
                                bool* truncated = nullptr) {
    ObjectListRequest req;
    req.set_volume_id(vol());
    req.set_prefix(prefix);
    req.set_delimiter(delim);
    req.set_start_after(after);
    req.set_max_keys(max);
    auto r = QueryObjectList(*this->core_->Snapshot(), req);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    std::vector<std::string> out;
    if (!r.ok()) return out;
    for (auto& o : r->objects()) out.push_back(o.key());
    for (auto& p : r->common_prefixes()) out.push_back("P:" + p);
    if (truncated) *truncated = r->truncated();
    return out;
  }
};
TYPED_TEST_SUITE(ObjectTest, StoreKinds);

TYPED_TEST(ObjectTest, ListingUsesS3OrderWhereADirectorySortsWithASlash) {
  for (const char* k : {"x-a", "x.b", "x/y", "x/z/1", "y", "a"}) ASSERT_OK(this->Put(k));
  EXPECT_EQ(this->List(), (std::vector<std::string>{"a", "x-a", "x.b", "x/y", "x/z/1", "y"}));
  EXPECT_EQ(this->List("", "/"), (std::vector<std::string>{"a", "x-a", "x.b", "y", "P:x/"}));
  EXPECT_EQ(this->List("x/", "/"), (std::vector<std::string>{"x/y", "P:x/z/"}));
  EXPECT_EQ(this->List("x"), (std::vector<std::string>{"x-a", "x.b", "x/y", "x/z/1"}));
  EXPECT_EQ(this->List("", "", "x.b"), (std::vector<std::string>{"x/y", "x/z/1", "y"}));
  bool truncated = false;
  EXPECT_EQ(this->List("", "", "", 2, &truncated), (std::vector<std::string>{"a", "x-a"}));
  EXPECT_TRUE(truncated);
}

// Pages are read from where the last one ended (not by listing the whole directory), so every
// way of paging must give exactly S3's answer: the keys in byte order, each once, with
// directories ordered as "name/" among names that extend theirs with '-', '.' or '!'.
TYPED_TEST(ObjectTest, PagedListingsMatchS3OrderForEveryPrefixDelimiterAndPageSize) {
  const std::vector<std::string> keys = {"c",    "d!", "d!x/y", "d-1",   "d.txt", "d/a",  "d/b/c",
                                         "d/b-", "d0", "e",     "e.x/f", "f/g/h", "d-/z", "d-/y/x"};
  for (const auto& k : keys) ASSERT_OK(this->Put(k));
  for (std::string prefix : {"", "d", "d/", "d!", "d-", "e", "f/g/", "x"}) {
    for (std::string delim : {"", "/"}) {
      std::set<std::string> want;
      for (const auto& k : keys) {
        if (!k.starts_with(prefix)) continue;
        size_t at = delim.empty() ? std::string::npos : k.find(delim, prefix.size());
        want.insert(at == std::string::npos ? k : "P:" + k.substr(0, at + 1));
      }
      for (uint32_t page : {1u, 2u, 3u, 1000u}) {
        std::vector<std::string> got;
        std::string after;
        for (int pages = 0; pages < 100; ++pages) {
          bool truncated = false;
          auto part = this->List(prefix, delim, after, page, &truncated);
          std::string last;
          for (const auto& k : part) {
            got.push_back(k);
            std::string key = k.starts_with("P:") ? k.substr(2) : k;
            last = std::max(last, key);
          }
          if (!truncated) break;
          ASSERT_FALSE(part.empty());
          after = last;
        }
        std::vector<std::string> sorted(got);
        std::sort(sorted.begin(), sorted.end());
        EXPECT_EQ(sorted, std::vector<std::string>(want.begin(), want.end()))
            << "prefix=" << prefix << " delimiter=" << delim << " page=" << page;
        EXPECT_EQ(got.size(), want.size()) << "a key listed twice";
      }
    }
  }
}

TYPED_TEST(ObjectTest, PublishChecksItsPreconditionInsideTheOperation) {
  Precondition absent;
  absent.set_if_none_match_any(true);
  auto first = this->Put("ckpt", "\"v1\"", absent);
  ASSERT_OK(first);
  EXPECT_CODE(this->Put("ckpt", "\"v2\"", absent), Code::PRECONDITION_FAILED);
  Precondition match;
  match.set_if_match("\"v1\"");
  ASSERT_OK(this->Put("ckpt", "\"v2\"", match));
  EXPECT_CODE(this->Put("ckpt", "\"v3\"", match), Code::PRECONDITION_FAILED);
  match.set_if_match("\"v2\"");
  EXPECT_CODE(this->Put("other", "\"x\"", match), Code::NOT_FOUND);
  EXPECT_EQ(this->List(), std::vector<std::string>{"ckpt"});
}

TYPED_TEST(ObjectTest, AStagedInodeIsInvisibleAndGoesAwayWithItsPin) {
  auto staged = this->Stage(5);
  ASSERT_OK(staged);
  EXPECT_TRUE(this->List().empty());
  Operation rel;
  rel.mutable_release()->set_ino(staged->ino());
  rel.mutable_release()->set_handle_owner(5);
  ASSERT_OK(this->Run(rel));
  EXPECT_CODE(QueryGetAttr(*this->core_->Snapshot(), staged->ino()), Code::NOT_FOUND);
}

TYPED_TEST(ObjectTest, ParentsAppearWithObjectsAndGoWithTheLastOne) {
  ASSERT_OK(this->Put("a/b/c"));
  ASSERT_OK(this->Put("a/d"));
  EXPECT_CODE(this->Put("a"), Code::IS_DIRECTORY);
  EXPECT_CODE(this->Put("a/d/e"), Code::NOT_DIRECTORY);
  ASSERT_OK(this->Delete("a/b/c"));
  EXPECT_EQ(this->List("", "/"), std::vector<std::string>{"P:a/"});
  EXPECT_CODE(QueryLookup(*this->core_->Snapshot(), this->root_, "a").status(), Code::OK);
  ASSERT_OK(this->Delete("a/d"));
  EXPECT_TRUE(this->List().empty());
  EXPECT_CODE(QueryLookup(*this->core_->Snapshot(), this->root_, "a").status(), Code::NOT_FOUND);
  ASSERT_OK(this->Delete("never/was"));  // deleting nothing is fine, as in S3
}

TYPED_TEST(ObjectTest, KeysThatAreNotPathsAreRefused) {
  EXPECT_CODE(this->Put("a/../b"), Code::INVALID_ARGUMENT);
  EXPECT_CODE(this->Put("a//b"), Code::INVALID_ARGUMENT);
  EXPECT_CODE(this->Put(std::string(256, 'x')), Code::NAME_TOO_LONG);
  EXPECT_TRUE(this->List().empty());
}

TYPED_TEST(ObjectTest, PosixWrittenFilesHaveAnEtagThatChangesPerCommit) {
  auto f = this->Create(this->root_, "posix.bin");
  ASSERT_OK(f);
  ObjectGetRequest req;
  req.set_volume_id(this->vol());
  req.set_key("posix.bin");
  auto a = QueryObjectGet(*this->core_->Snapshot(), req);
  ASSERT_OK(a);
  EXPECT_TRUE(a->info().etag().ends_with("-1\""));
  InodeAttr changed = *f;
  changed.set_commit_version(changed.commit_version() + 1);
  EXPECT_NE(PosixEtag(changed), a->info().etag());
}

}  // namespace
}  // namespace granary::metanode
