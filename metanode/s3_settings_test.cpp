// S3 settings beside the data (apply_s3.cpp) over both stores: a repeated multipart completion
// gets the first answer (also after a restart) until the record is pruned; object ACLs and tags
// change without touching the bytes' ETag; bucket ACLs, ownership and CORS; grants name keys
// that exist; bucket names follow S3's rules.
#include "metanode/apply_object.h"
#include "metanode/test_util.h"

namespace granary::metanode {
namespace {

template <typename Kind>
class S3SettingsTest : public MetaTest<Kind> {
 protected:
  uint64_t vol() { return this->volume_.id(); }

  // An upload of `key` with one committed (empty) part numbered 1, ETag "p1".
  void StartUpload(const std::string& id, const std::string& key) {
    Operation create;
    create.mutable_upload_create()->mutable_request()->set_volume_id(vol());
    create.mutable_upload_create()->mutable_request()->set_key(key);
    create.mutable_upload_create()->set_upload_id(id);
    auto up = this->Run(create);
    ASSERT_OK(up);
    Operation stage;
    stage.mutable_object_stage()->set_volume_id(vol());
    stage.mutable_object_stage()->set_handle_owner(5);
    *stage.mutable_object_stage()->mutable_layout() = up->upload().upload().layout();
    auto part = this->Run(stage);
    ASSERT_OK(part);
    Operation commit;
    auto* p = commit.mutable_upload_part();
    p->set_volume_id(vol());
    p->set_upload_id(id);
    p->set_handle_owner(5);
    p->mutable_part()->set_number(1);
    p->mutable_part()->set_ino(part->attr().attr().ino());
    p->mutable_part()->set_etag("\"p1\"");
    ASSERT_OK(this->Run(commit));
  }
  Result<OpReply> Complete(const std::string& id, const std::string& part_etag = "\"p1\"") {
    Operation op;
    auto* c = op.mutable_upload_complete();
    c->set_volume_id(vol());
    c->set_upload_id(id);
    c->set_etag("\"whole-1\"");
    c->set_checksum_algorithm("CRC32");
    c->set_checksum("AAAAAA==-1");
    auto* part = c->add_parts();
    part->set_number(1);
    part->set_etag(part_etag);
    return this->Run(op);
  }
  Result<UploadReply> Upload(const std::string& id) {
    return QueryUpload(*this->core_->Snapshot(), vol(), id, /*include_completed=*/true);
  }
  Result<ObjectInfo> Get(const std::string& key) {
    ObjectGetRequest req;
    req.set_volume_id(vol());
    req.set_key(key);
    auto r = QueryObjectGet(*this->core_->Snapshot(), req);
    GRANARY_TRY(r);
    return r->info();
  }
  Result<OpReply> Update(const std::string& key, std::vector<AclGrant> acl,
                         std::map<std::string, std::string> tags, bool set_acl, bool set_tags) {
    Operation op;
    auto* u = op.mutable_object_update();
    u->set_volume_id(vol());
    u->set_key(key);
    u->set_set_acl(set_acl);
    for (auto& g : acl) *u->add_acl() = g;
    u->set_set_tags(set_tags);
    for (auto& [k, v] : tags) (*u->mutable_tags())[k] = v;
    return this->Run(op);
  }
  Result<AccessKey> Key(const std::string& id) {
    auto k = this->core_->KeyCreate([&] {
      KeyCreateRequest r;
      r.set_access_key(id);
      r.set_secret_key("s");
      return r;
    }());
    return k;
  }
};
TYPED_TEST_SUITE(S3SettingsTest, StoreKinds);

AclGrant Grant(const std::string& key, AclGroup group, AclPermission p) {
  AclGrant g;
  g.set_access_key(key);
  g.set_group(group);
  g.set_permission(p);
  return g;
}

TYPED_TEST(S3SettingsTest, ARepeatedCompletionGetsTheFirstAnswerUntilItIsForgotten) {
  this->StartUpload("u1", "mp/obj");
  auto first = this->Complete("u1");
  ASSERT_OK(first);
  EXPECT_EQ(first->object().info().etag(), "\"whole-1\"");
  // The object remembers its part (GetObject partNumber, GetObjectAttributes).
  EXPECT_EQ(this->Get("mp/obj")->parts_count(), 1u);
  // A retry after a lost reply: the same answer, not NoSuchUpload.
  auto again = this->Complete("u1");
  ASSERT_OK(again);
  EXPECT_EQ(again->object().info().etag(), "\"whole-1\"");
  EXPECT_EQ(again->object().info().attr().ino(), first->object().info().attr().ino());
  EXPECT_EQ(again->object().checksum(), "AAAAAA==-1");
  // Other parts than the first time's: the upload is gone.
  EXPECT_CODE(this->Complete("u1", "\"other\""), Code::NOT_FOUND);
  auto seen = this->Upload("u1");
  ASSERT_OK(seen);
  EXPECT_TRUE(seen->completed());
  EXPECT_EQ(seen->upload().key(), "mp/obj");
  // Never listed as an upload in progress.
  UploadListRequest list;
  list.set_volume_id(this->vol());
  EXPECT_EQ(QueryUploads(*this->core_->Snapshot(), list)->uploads_size(), 0);
  this->now_ms_ += kCompletionRetentionMs - 1;
  this->core_->Housekeep();
  ASSERT_OK(this->Complete("u1"));
  this->now_ms_ += 2;
  this->core_->Housekeep();
  EXPECT_CODE(this->Complete("u1"), Code::NOT_FOUND);
  EXPECT_CODE(this->Upload("u1"), Code::NOT_FOUND);
}

TYPED_TEST(S3SettingsTest, ACompletionRecordSurvivesARestart) {
  if (TypeParam::kInMemory) GTEST_SKIP() << "nothing to reopen";
  this->StartUpload("u2", "obj");
  ASSERT_OK(this->Complete("u2"));
  this->core_.reset();
  MetaCoreOptions o;
  o.data_dir = this->dir_.string();
  o.housekeeping_ms = 0;
  auto core = MetaCore::Open(o);
  ASSERT_OK(core);
  this->core_ = std::move(*core);
  auto again = this->Complete("u2");
  ASSERT_OK(again);
  EXPECT_EQ(again->object().info().etag(), "\"whole-1\"");
}

TYPED_TEST(S3SettingsTest, ObjectAclAndTagsChangeWithoutTouchingTheBytes) {
  ASSERT_OK(this->Key("READER"));
  this->StartUpload("u3", "o");
  ASSERT_OK(this->Complete("u3"));
  const std::string etag = this->Get("o")->etag();
  ASSERT_OK(this->Update("o", {Grant("", ACL_ALL_USERS, ACL_READ)}, {}, true, false));
  ASSERT_OK(this->Update("o", {}, {{"team", "ml"}, {"stage", " "}}, false, true));
  auto info = this->Get("o");
  ASSERT_OK(info);
  EXPECT_EQ(info->etag(), etag);
  ASSERT_EQ(info->acl_size(), 1);  // the tag change kept the ACL
  EXPECT_EQ(info->acl(0).group(), ACL_ALL_USERS);
  EXPECT_EQ(info->tags().at("stage"), " ");
  EXPECT_EQ(info->tags().size(), 2u);
  EXPECT_EQ(info->parts_count(), 1u);
  // A grant to a key that does not exist changes nothing.
  EXPECT_CODE(this->Update("o", {Grant("NOBODY", ACL_GROUP_NONE, ACL_READ)}, {}, true, false),
              Code::NOT_FOUND);
  ASSERT_OK(this->Update("o", {Grant("READER", ACL_GROUP_NONE, ACL_READ)}, {}, true, false));
  EXPECT_EQ(this->Get("o")->acl(0).access_key(), "READER");
  EXPECT_CODE(this->Update("missing", {}, {}, false, true), Code::NOT_FOUND);
  // Listings leave them out.
  ObjectListRequest list;
  list.set_volume_id(this->vol());
  auto listed = QueryObjectList(*this->core_->Snapshot(), list);
  ASSERT_OK(listed);
  ASSERT_EQ(listed->objects_size(), 1);
  EXPECT_EQ(listed->objects(0).tags_size(), 0);
}

TYPED_TEST(S3SettingsTest, TagsOnAPosixFileKeepItsPosixEtag) {
  ASSERT_OK(this->Create(this->root_, "posix.bin"));
  const std::string etag = this->Get("posix.bin")->etag();
  ASSERT_OK(this->Update("posix.bin", {}, {{"k", "v"}}, false, true));
  auto info = this->Get("posix.bin");
  EXPECT_EQ(info->etag(), etag);
  EXPECT_TRUE(info->etag().ends_with("-1\""));
  EXPECT_EQ(info->tags().at("k"), "v");
}

TYPED_TEST(S3SettingsTest, BucketSettingsAndNames) {
  ASSERT_OK(this->Key("OWNER"));
  Operation create;
  create.mutable_bucket_create()->set_name("b-settings");
  create.mutable_bucket_create()->set_owner("OWNER");
  *create.mutable_bucket_create()->add_acl() = Grant("", ACL_ALL_USERS, ACL_READ);
  create.mutable_bucket_create()->set_object_ownership(BUCKET_OWNER_PREFERRED);
  auto b = this->Run(create);
  ASSERT_OK(b);
  EXPECT_EQ(b->bucket().bucket().acl_size(), 1);
  EXPECT_EQ(b->bucket().bucket().object_ownership(), BUCKET_OWNER_PREFERRED);
  Operation cors;
  cors.mutable_bucket_configure()->set_name("b-settings");
  cors.mutable_bucket_configure()->set_set_cors(true);
  cors.mutable_bucket_configure()->set_cors_configured(true);
  auto* rule = cors.mutable_bucket_configure()->mutable_cors()->add_rules();
  rule->add_allowed_origins("*");
  rule->add_allowed_methods("GET");
  auto configured = this->Run(cors);
  ASSERT_OK(configured);
  EXPECT_TRUE(configured->bucket().bucket().cors_configured());
  EXPECT_EQ(configured->bucket().bucket().acl_size(), 1);  // untouched
  auto stored = QueryBucket(*this->core_->Snapshot(), "b-settings");
  ASSERT_OK(stored);
  EXPECT_EQ(stored->cors().rules(0).allowed_methods(0), "GET");
  Operation drop;
  drop.mutable_bucket_configure()->set_name("b-settings");
  drop.mutable_bucket_configure()->set_set_cors(true);
  drop.mutable_bucket_configure()->set_set_acl(true);
  ASSERT_OK(this->Run(drop));
  stored = QueryBucket(*this->core_->Snapshot(), "b-settings");
  EXPECT_FALSE(stored->cors_configured());
  EXPECT_EQ(stored->acl_size(), 0);
  Operation bad_grant = create;
  bad_grant.mutable_bucket_create()->set_name("b-other");
  *bad_grant.mutable_bucket_create()->add_acl() = Grant("NOBODY", ACL_GROUP_NONE, ACL_WRITE);
  EXPECT_CODE(this->Run(bad_grant), Code::NOT_FOUND);
  for (const char* name :
       {"192.168.5.4", "a.-b", "a-.b", "xn--abc", "ab", "a..b", "Ab1", "bucket-s3alias"}) {
    Operation op;
    op.mutable_bucket_create()->set_name(name);
    op.mutable_bucket_create()->set_owner("OWNER");
    EXPECT_CODE(this->Run(op), Code::INVALID_ARGUMENT) << name;
  }
  Operation ok;
  ok.mutable_bucket_create()->set_name("192.168.5.4x");
  ok.mutable_bucket_create()->set_owner("OWNER");
  ASSERT_OK(this->Run(ok));
}

}  // namespace
}  // namespace granary::metanode
