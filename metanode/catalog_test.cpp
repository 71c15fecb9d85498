// Pools, volumes, keys, buckets, grants, the node registry and the cluster map.
#include "metanode/test_util.h"
#include "placement/placement.h"

namespace granary::metanode {
namespace {

template <typename Kind>
class CatalogTest : public MetaTest<Kind> {
 protected:
  Result<AccessKey> KeyCreate(const std::string& access_key = "") {
    KeyCreateRequest req;
    *req.mutable_op() = this->NextId();
    req.set_name("test");
    req.set_access_key(access_key);
    return this->core_->KeyCreate(req);
  }
  Result<Bucket> BucketCreate(const std::string& name, const std::string& owner,
                              const std::string& volume = "") {
    Operation op;
    auto* b = op.mutable_bucket_create();
    b->set_name(name);
    b->set_owner(owner);
    b->set_volume(volume);
    auto r = this->Run(op);
    GRANARY_TRY(r);
    return r->bucket().bucket();
  }
  Status BucketDelete(const std::string& name) {
    Operation op;
    op.mutable_bucket_delete()->set_name(name);
    return StatusOf(this->Run(op));
  }
  Result<RegisterReply> Register(const std::string& uuid, const std::string& host) {
    Operation op;
    auto* r = op.mutable_node_register();
    r->set_uuid(uuid);
    r->set_address("127.0.0.1:1");
    (*r->mutable_labels())["host"] = host;
    auto reply = this->Run(op, false);
    GRANARY_TRY(reply);
    return reply->node_register();
  }
};
TYPED_TEST_SUITE(CatalogTest, StoreKinds);

TYPED_TEST(CatalogTest, DefaultPoolExistsAndGrowsWithDatanodes) {
  auto pools = QueryPools(*this->core_->Snapshot());
  ASSERT_EQ(pools->pools_size(), 1);
  EXPECT_EQ(pools->pools(0).name(), "default");
  EXPECT_EQ(pools->pools(0).pg_count(), 64u);
  EXPECT_EQ(pools->pools(0).replicas(), 1u);
  for (int i = 0; i < 4; ++i) {
    ASSERT_OK(this->Register("uuid-" + std::to_string(i), "h" + std::to_string(i)));
  }
  pools = QueryPools(*this->core_->Snapshot());
  EXPECT_EQ(pools->pools(0).replicas(), 3u);  // min(3, datanodes)
}

TYPED_TEST(CatalogTest, PoolCreateValidates) {
  Operation op;
  PoolSpec& s = *op.mutable_pool_create()->mutable_spec();
  s.set_name("ec");
  s.set_redundancy(ERASURE_CODED_POOL);
  s.set_data_chunks(4);
  s.set_coding_chunks(2);
  auto r = this->Run(op);
  ASSERT_OK(r);
  EXPECT_EQ(r->pool().pool().pg_count(), 64u);
  EXPECT_EQ(r->pool().pool().block_size(), 4u << 20);
  EXPECT_EQ(r->pool().pool().failure_domain(), DOMAIN_DATANODE);
  op.clear_id();
  EXPECT_CODE(this->Run(op), Code::ALREADY_EXISTS);
  s.set_name("bad");
  s.set_coding_chunks(9);
  op.clear_id();
  EXPECT_CODE(this->Run(op), Code::INVALID_ARGUMENT);
  s.set_coding_chunks(2);
  s.set_pg_count(48);
  op.clear_id();
  EXPECT_CODE(this->Run(op), Code::INVALID_ARGUMENT);
}

TYPED_TEST(CatalogTest, VolumeLifecycle) {
  EXPECT_CODE(this->VolumeCreate("vol", 0, 0), Code::ALREADY_EXISTS);
  Operation op;
  op.mutable_volume_create()->set_name("x");
  op.mutable_volume_create()->set_pool("nopool");
  EXPECT_CODE(this->Run(op), Code::NOT_FOUND);
  ASSERT_OK(this->Create(this->root_, "f"));
  Operation del;
  del.mutable_volume_delete()->set_name("vol");
  EXPECT_CODE(this->Run(del), Code::NOT_EMPTY);
  ASSERT_OK(this->Unlink(this->root_, "f"));
  del.clear_id();
  ASSERT_OK(this->Run(del));
  del.clear_id();
  EXPECT_CODE(this->Run(del), Code::NOT_FOUND);
  EXPECT_CODE(this->GetAttr(this->root_), Code::NOT_FOUND);
}

TYPED_TEST(CatalogTest, KeySecretsAreSealedAtRest) {
  auto k = this->KeyCreate();
  ASSERT_OK(k);
  EXPECT_FALSE(k->access_key().empty());
  EXPECT_EQ(k->secret_key().size(), 40u);
  auto rec = QueryKey(*this->core_->Snapshot(), k->access_key());
  ASSERT_OK(rec);
  EXPECT_EQ(rec->sealed_secret().find(k->secret_key()), std::string::npos);
  auto again = this->core_->KeyGetSecret(k->access_key());
  EXPECT_EQ(again->secret_key(), k->secret_key());
  EXPECT_CODE(this->KeyCreate(k->access_key()), Code::ALREADY_EXISTS);
  auto list = QueryKeys(*this->core_->Snapshot());
  ASSERT_EQ(list->keys_size(), 1);
  EXPECT_TRUE(list->keys(0).secret_key().empty());
}

TYPED_TEST(CatalogTest, BucketRules) {
  auto k = this->KeyCreate();
  ASSERT_OK(k);
  auto b = this->BucketCreate("photos", k->access_key());
  ASSERT_OK(b);
  EXPECT_TRUE(b->owns_volume());
  EXPECT_EQ(b->umask(), 022u);
  EXPECT_CODE(this->BucketCreate("photos", k->access_key()), Code::ALREADY_EXISTS);
  EXPECT_CODE(this->BucketCreate("vol", k->access_key()), Code::ALREADY_EXISTS);  // a volume
  EXPECT_CODE(this->BucketCreate("Bad_Name", k->access_key()), Code::INVALID_ARGUMENT);
  EXPECT_CODE(this->BucketCreate("other", "NOKEY"), Code::NOT_FOUND);
  EXPECT_CODE(this->VolumeCreate("photos", 0, 0), Code::ALREADY_EXISTS);
  auto exported = this->BucketCreate("export", k->access_key(), "vol");
  ASSERT_OK(exported);
  EXPECT_FALSE(exported->owns_volume());
  EXPECT_EQ(exported->volume_id(), this->volume_.id());
  // Deleting an exporting bucket keeps the volume; deleting an owning one removes it.
  ASSERT_OK(this->BucketDelete("export"));
  ASSERT_OK(this->GetVolume());
  ASSERT_OK(this->BucketDelete("photos"));
  VolumeGetRequest req;
  req.set_name("photos");
  EXPECT_CODE(QueryVolume(*this->core_->Snapshot(), req), Code::NOT_FOUND);
  EXPECT_CODE(this->BucketDelete("photos"), Code::NOT_FOUND);
}

TYPED_TEST(CatalogTest, BucketRecordsTheKubernetesNamespaceAndUidThatCreatedIt) {
  auto k = this->KeyCreate();
  ASSERT_OK(k);
  Operation op;
  auto* req = op.mutable_bucket_create();
  req->set_name("ml-datasets");
  req->set_owner(k->access_key());
  req->set_owner_namespace("ml");
  req->set_owner_uid("5f0c1d2e-uid");
  auto r = this->Run(op);
  ASSERT_OK(r);
  EXPECT_EQ(r->bucket().bucket().owner_namespace(), "ml");
  EXPECT_EQ(r->bucket().bucket().owner_uid(), "5f0c1d2e-uid");
  auto stored = QueryBucket(*this->core_->Snapshot(), "ml-datasets");
  ASSERT_OK(stored);
  EXPECT_EQ(stored->owner_namespace(), "ml") << "it survives in the record";
  EXPECT_EQ(stored->owner_uid(), "5f0c1d2e-uid");
  auto plain = this->BucketCreate("plain", k->access_key());
  ASSERT_OK(plain);
  EXPECT_TRUE(plain->owner_namespace().empty()) << "S3 and admin buckets carry no owner";
}

TYPED_TEST(CatalogTest, GrantsAndKeyDeletion) {
  auto owner = this->KeyCreate();
  auto reader = this->KeyCreate();
  ASSERT_OK(this->BucketCreate("data", owner->access_key()));
  Operation grant;
  auto* g = grant.mutable_bucket_grant();
  g->set_name("data");
  g->set_access_key(reader->access_key());
  g->set_access(READ);
  auto r = this->Run(grant);
  ASSERT_OK(r);
  ASSERT_EQ(r->bucket().bucket().grants_size(), 1);
  g->set_access_key("missing");
  grant.clear_id();
  EXPECT_CODE(this->Run(grant), Code::NOT_FOUND);
  Operation del;
  del.mutable_key_delete()->set_access_key(owner->access_key());
  EXPECT_CODE(this->Run(del), Code::PRECONDITION_FAILED);
  del.mutable_key_delete()->set_access_key(reader->access_key());
  del.clear_id();
  ASSERT_OK(this->Run(del));
  EXPECT_EQ(QueryBucket(*this->core_->Snapshot(), "data")->grants_size(), 0);
}

TYPED_TEST(CatalogTest, RegisterKeepsIdByUuidAndBumpsEpoch) {
  auto e0 = QueryCluster(*this->core_->Snapshot())->epoch();
  auto a = this->Register("uuid-a", "h1");
  ASSERT_OK(a);
  EXPECT_GT(a->map_epoch(), e0);
  auto again = this->Register("uuid-a", "h1");
  EXPECT_EQ(again->node_id(), a->node_id());
  EXPECT_EQ(again->map_epoch(), a->map_epoch());  // nothing changed
  auto moved = this->Register("uuid-a", "h2");
  EXPECT_GT(moved->map_epoch(), a->map_epoch());
  auto b = this->Register("uuid-b", "h3");
  EXPECT_NE(b->node_id(), a->node_id());
  auto map = this->core_->GetClusterMap(0);
  ASSERT_OK(map);
  EXPECT_EQ(map->nodes_size(), 2);
  EXPECT_FALSE(map->placement().empty());
  EXPECT_TRUE(this->core_->GetClusterMap(map->epoch())->unchanged());
}

TYPED_TEST(CatalogTest, ClusterMapCarriesThePlacementLibrarysPgMap) {
  for (int i = 0; i < 3; ++i) {
    ASSERT_OK(this->Register("uuid-" + std::to_string(i), "h" + std::to_string(i)));
  }
  auto map = this->core_->GetClusterMap(0);
  ASSERT_OK(map);
  auto pg = placement::PlacementMap::Deserialize(map->placement());
  ASSERT_TRUE(pg.ok()) << pg.status().ToString();
  EXPECT_EQ(pg->epoch(), map->epoch());
  const PoolSpec& pool = map->pools(0);
  EXPECT_EQ(pool.replicas(), 3u);
  auto members = pg->Members(pool.id(), 0);
  ASSERT_TRUE(members.ok()) << members.status().ToString();
  EXPECT_EQ(members->size(), 3u);
  // A node going down bumps the epoch and produces a new map.
  Operation down;
  down.mutable_set_node_state()->set_node_id((*members)[0]);
  down.mutable_set_node_state()->set_state(DOWN);
  ASSERT_OK(this->Run(down, false));
  auto after = this->core_->GetClusterMap(0);
  EXPECT_GT(after->epoch(), map->epoch());
  EXPECT_EQ(placement::PlacementMap::Deserialize(after->placement())->epoch(), after->epoch());
}

// ClusterStatus says which pools the PG map holds and why one is missing: the operator's
// StoragePool health (docs/operator.md) is built on it.
TYPED_TEST(CatalogTest, ClusterStatusReportsEachPoolsPlacementAndWhyNot) {
  ASSERT_OK(this->Register("uuid-0", "h0"));
  Operation op;
  PoolSpec& s = *op.mutable_pool_create()->mutable_spec();
  s.set_name("wide");
  s.set_redundancy(REPLICATED_POOL);
  s.set_replicas(3);
  s.set_failure_domain(DOMAIN_HOST);
  ASSERT_OK(this->Run(op));
  auto find = [&](const ClusterStatusReply& st, const std::string& name) {
    for (const auto& p : st.pools())
      if (p.name() == name) return p;
    ADD_FAILURE() << "no pool " << name << " in " << st.DebugString();
    return PoolPlacement();
  };
  auto st = this->core_->ClusterStatus();
  ASSERT_OK(st);
  PoolPlacement wide = find(*st, "wide");
  EXPECT_FALSE(wide.placed());
  EXPECT_EQ(wide.width(), 3u);
  EXPECT_EQ(wide.failure_domains(), 1u);
  EXPECT_EQ(wide.failure_domain(), DOMAIN_HOST);
  EXPECT_EQ(wide.message(), "needs 3 hosts, has 1");
  EXPECT_EQ(wide.pgs_degraded(), wide.pgs()) << "no PG of an unplaced pool has its members";
  EXPECT_TRUE(find(*st, "default").placed()) << "the default pool follows the datanode count";

  ASSERT_OK(this->Register("uuid-1", "h1"));
  ASSERT_OK(this->Register("uuid-2", "h2"));
  st = this->core_->ClusterStatus();
  ASSERT_OK(st);
  wide = find(*st, "wide");
  EXPECT_TRUE(wide.placed());
  EXPECT_EQ(wide.failure_domains(), 3u);
  EXPECT_TRUE(wide.message().empty());
  EXPECT_EQ(wide.pgs_degraded(), 0u);
}

TYPED_TEST(CatalogTest, SilentDatanodeIsMarkedDownAndBackUpOnHeartbeat) {
  auto a = this->Register("uuid-a", "h1");
  HeartbeatRequest hb;
  hb.set_node_id(a->node_id());
  hb.set_healthy(true);
  ASSERT_OK(this->core_->Heartbeat(hb));
  this->core_->Housekeep();
  this->now_ms_ += 6000;
  this->core_->Housekeep();
  auto nodes = QueryNodes(*this->core_->Snapshot());
  EXPECT_EQ((*nodes)[0].state(), DOWN);
  ASSERT_OK(this->core_->Heartbeat(hb));
  nodes = QueryNodes(*this->core_->Snapshot());
  EXPECT_EQ((*nodes)[0].state(), UP);
  hb.set_node_id(999);
  EXPECT_CODE(this->core_->Heartbeat(hb), Code::NOT_FOUND);
}

// A join moves PGs onto the newcomer; the moves complete (one new epoch, previous lists
// dropped) only once the newcomer reports a complete repair pass at the move's epoch.
TYPED_TEST(CatalogTest, JoinMovesCompleteOnlyAfterTheNewMemberRepaired) {
  std::vector<uint32_t> ids;
  for (int i = 0; i < 3; ++i) {
    auto r = this->Register("uuid-" + std::to_string(i), "h" + std::to_string(i));
    ASSERT_OK(r);
    ids.push_back(r->node_id());
  }
  EXPECT_EQ(this->core_->ClusterStatus()->pgs_moving(), 0u);
  auto joined = this->Register("uuid-new", "h-new");
  ASSERT_OK(joined);
  auto status = this->core_->ClusterStatus();
  ASSERT_OK(status);
  ASSERT_GT(status->pgs_moving(), 0u);
  EXPECT_FALSE(status->healthy());
  const uint64_t move_epoch = status->epoch();

  auto heartbeat = [&](uint32_t id, uint64_t repaired) {
    HeartbeatRequest hb;
    hb.set_node_id(id);
    hb.set_healthy(true);
    hb.set_repair_epoch(repaired);
    ASSERT_OK(this->core_->Heartbeat(hb));
  };
  for (uint32_t id : ids) heartbeat(id, move_epoch);
  // No report from the newcomer, then one from before the move: the PGs keep moving.
  this->core_->Housekeep();
  EXPECT_EQ(this->core_->ClusterStatus()->pgs_moving(), status->pgs_moving());
  heartbeat(joined->node_id(), move_epoch - 1);
  this->core_->Housekeep();
  EXPECT_EQ(this->core_->ClusterStatus()->pgs_moving(), status->pgs_moving());
  EXPECT_EQ(this->core_->ClusterStatus()->epoch(), move_epoch);

  heartbeat(joined->node_id(), move_epoch);
  this->core_->Housekeep();
  auto done = this->core_->ClusterStatus();
  EXPECT_EQ(done->pgs_moving(), 0u);
  EXPECT_EQ(done->epoch(), move_epoch + 1);
  auto map = this->core_->GetClusterMap(0);
  auto placement = placement::PlacementMap::Deserialize(map->placement());
  ASSERT_OK(placement);
  EXPECT_EQ(placement->MovingPgs(), 0u);
  EXPECT_EQ(placement->epoch(), move_epoch + 1);
}

TYPED_TEST(CatalogTest, BackupWritesCheckpoint) {
  if (TypeParam::kInMemory) GTEST_SKIP() << "checkpoints need a file system";
  ASSERT_OK(this->Create(this->root_, "f"));
  auto b = this->core_->Backup((this->dir_ / "backup1").string());
  ASSERT_OK(b);
  EXPECT_TRUE(std::filesystem::exists(this->dir_ / "backup1" / "CURRENT"));
  MetaCoreOptions o;
  o.data_dir = (this->dir_ / "restored").string();
  std::filesystem::create_directories(o.data_dir);
  std::filesystem::rename(this->dir_ / "backup1", this->dir_ / "restored" / "db");
  o.housekeeping_ms = 0;
  auto restored = MetaCore::Open(o);
  ASSERT_OK(restored);
  ASSERT_OK(QueryLookup(*(*restored)->Snapshot(), this->root_, "f"));
}

TYPED_TEST(CatalogTest, CreateInWriterLocalPoolStripesOverPgsLedByTheWritersHost) {
  for (int i = 0; i < 4; ++i) {
    ASSERT_OK(this->Register("uuid-" + std::to_string(i), "h" + std::to_string(i)));
  }
  Operation pool;
  PoolSpec& spec = *pool.mutable_pool_create()->mutable_spec();
  spec.set_name("near");
  spec.set_redundancy(REPLICATED_POOL);
  spec.set_replicas(2);
  spec.set_failure_domain(DOMAIN_HOST);
  spec.set_locality(WRITER_LOCAL);
  spec.set_pg_count(16);
  auto created = this->Run(pool);
  ASSERT_OK(created);
  Operation volume;
  volume.mutable_volume_create()->set_name("nearvol");
  volume.mutable_volume_create()->set_pool("near");
  auto vol = this->Run(volume);
  ASSERT_OK(vol);

  auto create = [&](const std::string& name, const std::string& host) -> Result<InodeAttr> {
    Operation op;
    auto* r = op.mutable_create();
    r->set_parent(vol->volume().volume().root_ino());
    r->set_name(name);
    r->set_mode(0644);
    r->set_writer_host(host);
    auto reply = this->Run(op);
    GRANARY_TRY(reply);
    return reply->entry().attr();
  };
  auto map = this->core_->GetClusterMap(0);
  ASSERT_OK(map);
  auto pg_map = placement::PlacementMap::Deserialize(map->placement());
  ASSERT_TRUE(pg_map.ok());
  const uint32_t pool_id = created->pool().pool().id();

  auto local = create("local", "h2");
  ASSERT_OK(local);
  ASSERT_GT(local->layout().pgs_size(), 0);
  EXPECT_EQ(local->layout().stripe_width(), static_cast<uint32_t>(local->layout().pgs_size()));
  for (uint32_t pg : local->layout().pgs()) {
    auto members = pg_map->Members(pool_id, pg);
    ASSERT_TRUE(members.ok());
    EXPECT_EQ(pg_map->FindNode((*members)[0])->location.host, "h2") << "pg " << pg;
  }
  // A writer on a host without a datanode gets the seeded stripe.
  auto elsewhere = create("elsewhere", "h9");
  ASSERT_OK(elsewhere);
  EXPECT_EQ(elsewhere->layout().pgs_size(), 0);
}

}  // namespace
}  // namespace granary::metanode
