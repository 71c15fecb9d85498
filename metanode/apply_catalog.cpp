// Pools, volumes, access keys and buckets (DESIGN §2).
#include <fmt/format.h>

#include <bit>

#include "common/bucket_name.h"
#include "metanode/apply_internal.h"
#include "metanode/apply_object.h"

namespace granary::metanode {

namespace {

Result<std::optional<PoolRecord>> FindPool(Txn& txn, std::string_view name) {
  std::optional<uint64_t> id;
  if (name.empty()) {
    CounterRecord rec;
    auto found = txn.GetRecord(Cf::kSystem, kDefaultPoolKey, &rec);
    GRANARY_TRY(found);
    if (*found) id = rec.value();
  } else {
    auto found = LookupName(txn, Cf::kCatalog, PoolNameKey(name));
    GRANARY_TRY(found);
    id = *found;
  }
  if (!id) return std::optional<PoolRecord>();
  auto pool = LoadPool(txn, static_cast<uint32_t>(*id));
  GRANARY_TRY(pool);
  return std::optional<PoolRecord>(std::move(*pool));
}

void PutName(Txn& txn, const std::string& key, uint64_t id) {
  CounterRecord rec;
  rec.set_format(kFormat);
  rec.set_value(id);
  txn.PutRecord(Cf::kCatalog, key, rec);
}

Result<std::optional<BucketRecord>> FindBucket(Txn& txn, std::string_view name) {
  return FindRecord<BucketRecord>(txn, Cf::kCatalog, BucketKey(name));
}

}  // namespace

Result<VolumeRecord> FindVolumeByName(Txn& txn, std::string_view name) {
  auto id = LookupName(txn, Cf::kCatalog, VolumeNameKey(name));
  GRANARY_TRY(id);
  if (!*id) return NotFound(fmt::format("volume '{}'", name));
  return LoadVolume(txn, **id);
}

Result<VolumeRecord> CreateVolume(Ctx& ctx, const std::string& name, const std::string& pool_name,
                                  uint64_t quota_bytes, uint64_t quota_inodes) {
  GRANARY_TRY(ValidateName(name));
  auto existing = LookupName(ctx.txn, Cf::kCatalog, VolumeNameKey(name));
  GRANARY_TRY(existing);
  if (*existing) return AlreadyExists(fmt::format("volume '{}'", name));
  auto pool = FindPool(ctx.txn, pool_name);
  GRANARY_TRY(pool);
  if (!*pool) {
    return NotFound(pool_name.empty() ? std::string("default pool")
                                      : fmt::format("pool '{}'", pool_name));
  }
  auto id = NextId(ctx.txn, "volume");
  GRANARY_TRY(id);
  auto root = NextId(ctx.txn, "ino");
  GRANARY_TRY(root);
  VolumeRecord rec;
  rec.set_format(kFormat);
  Volume& v = *rec.mutable_volume();
  v.set_id(*id);
  v.set_name(name);
  v.set_pool_id((*pool)->spec().id());
  v.set_root_ino(*root);
  v.set_quota_bytes(quota_bytes);
  v.set_quota_inodes(quota_inodes);
  InodeRecord dir;
  dir.set_format(kFormat);
  InodeAttr& a = *dir.mutable_attr();
  a.set_ino(*root);
  a.set_volume_id(*id);
  a.set_type(DIRECTORY);
  a.set_mode(0755);
  a.set_nlink(2);
  *a.mutable_atime() = ctx.Now();
  *a.mutable_mtime() = ctx.Now();
  *a.mutable_ctime() = ctx.Now();
  a.set_generation(1);
  SaveInode(ctx.txn, dir);
  SaveVolume(ctx.txn, rec);
  PutName(ctx.txn, VolumeNameKey(name), *id);
  return rec;
}

// Deletes an empty volume and its root directory.
Status DeleteVolume(Ctx& ctx, const Volume& v) {
  auto empty = DirIsEmpty(ctx.txn, v.root_ino());
  GRANARY_TRY(empty);
  if (!*empty) return Status(Code::NOT_EMPTY, fmt::format("volume '{}' is not empty", v.name()));
  ctx.txn.Delete(Cf::kInodes, InodeKey(v.root_ino()));
  ctx.txn.Delete(Cf::kCatalog, VolumeKey(v.id()));
  ctx.txn.Delete(Cf::kCatalog, VolumeNameKey(v.name()));
  return Status::Ok();
}

Result<std::vector<BucketRecord>> AllBuckets(Txn& txn) {
  std::vector<BucketRecord> out;
  GRANARY_TRY(txn.Scan(
      Cf::kCatalog, kBucketPrefix, "", false, [&](std::string_view, std::string_view value) {
        out.emplace_back().ParseFromArray(value.data(), static_cast<int>(value.size()));
        return true;
      }));
  return out;
}

namespace {

Status ValidateBucketName(std::string_view name) {
  if (auto problem = BucketNameProblem(name)) {
    return InvalidArgument(fmt::format("invalid bucket name '{}': {}", name, *problem));
  }
  return Status::Ok();
}

Status CompletePoolSpec(PoolSpec& s) {
  if (s.name().empty() || s.name().size() > 63 || s.name().find('/') != std::string::npos) {
    return InvalidArgument(fmt::format("invalid pool name '{}'", s.name()));
  }
  if (s.redundancy() == REPLICATED_POOL) {
    if (s.replicas() < 1 || s.replicas() > 5) {
      return InvalidArgument(fmt::format("replicated:{} (1..5)", s.replicas()));
    }
    if (s.min_size() == 0) s.set_min_size(s.replicas() - s.replicas() / 2);
  } else if (s.redundancy() == ERASURE_CODED_POOL) {
    if (s.data_chunks() < 1 || s.data_chunks() > 16 || s.coding_chunks() < 1 ||
        s.coding_chunks() > 4) {
      return InvalidArgument(
          fmt::format("ec:{}+{} (K 1..16, M 1..4)", s.data_chunks(), s.coding_chunks()));
    }
    if (s.min_size() == 0) s.set_min_size(s.data_chunks() + 1);
  } else {
    return InvalidArgument("pool redundancy not set");
  }
  if (s.pg_count() == 0) s.set_pg_count(64);
  if (!std::has_single_bit(s.pg_count()) || s.pg_count() > 65536) {
    return InvalidArgument(fmt::format("pg_count {} is not a power of two <= 65536", s.pg_count()));
  }
  if (s.block_size() == 0) s.set_block_size(4u << 20);
  if (!std::has_single_bit(s.block_size()) || s.block_size() < 4096 ||
      s.block_size() > kChunkRangeSize) {
    return InvalidArgument(fmt::format("block size {}", s.block_size()));
  }
  if (s.failure_domain() == FAILURE_DOMAIN_UNSPECIFIED) s.set_failure_domain(DOMAIN_DATANODE);
  if (s.nearly_full_ratio() == 0) s.set_nearly_full_ratio(0.85);
  if (s.full_ratio() == 0) s.set_full_ratio(0.95);
  if (!(s.nearly_full_ratio() > 0 && s.nearly_full_ratio() <= s.full_ratio() &&
        s.full_ratio() <= 1)) {
    return InvalidArgument("pool thresholds need 0 < nearly_full <= full <= 1");
  }
  return Status::Ok();
}

Result<PoolRecord> CreatePool(Ctx& ctx, PoolRecord rec) {
  PoolSpec& s = *rec.mutable_spec();
  GRANARY_TRY(CompletePoolSpec(s));
  auto existing = LookupName(ctx.txn, Cf::kCatalog, PoolNameKey(s.name()));
  GRANARY_TRY(existing);
  if (*existing) return AlreadyExists(fmt::format("pool '{}'", s.name()));
  auto id = NextId(ctx.txn, "pool");
  GRANARY_TRY(id);
  s.set_id(static_cast<uint32_t>(*id));
  rec.set_format(kFormat);
  ctx.txn.PutRecord(Cf::kCatalog, PoolKey(s.id()), rec);
  PutName(ctx.txn, PoolNameKey(s.name()), s.id());
  GRANARY_TRY(BumpClusterMap(ctx));
  // BumpClusterMap may have adjusted an auto-sized pool: return what is stored.
  return LoadPool(ctx.txn, s.id());
}

}  // namespace

Status ApplyBootstrap(Ctx& ctx, OpReply* reply) {
  const std::string& name = ctx.op.bootstrap().default_pool();
  auto existing = LookupName(ctx.txn, Cf::kCatalog, PoolNameKey(name));
  GRANARY_TRY(existing);
  uint64_t id = 0;
  if (*existing) {
    id = **existing;
  } else {
    PoolRecord rec;
    rec.set_auto_replicas(true);
    rec.set_target_replicas(3);
    PoolSpec& s = *rec.mutable_spec();
    s.set_name(name);
    s.set_redundancy(REPLICATED_POOL);
    s.set_replicas(1);  // raised as datanodes register, up to target_replicas
    s.set_failure_domain(DOMAIN_DATANODE);
    auto pool = CreatePool(ctx, std::move(rec));
    GRANARY_TRY(pool);
    id = pool->spec().id();
  }
  CounterRecord def;
  def.set_format(kFormat);
  def.set_value(id);
  ctx.txn.PutRecord(Cf::kSystem, kDefaultPoolKey, def);
  GroupRecord group;
  auto named = ctx.txn.GetRecord(Cf::kSystem, kGroupKey, &group);
  GRANARY_TRY(named);
  if (!*named && !ctx.op.bootstrap().cluster_id().empty()) {
    group.set_format(kFormat);
    group.set_cluster_id(ctx.op.bootstrap().cluster_id());
    ctx.txn.PutRecord(Cf::kSystem, kGroupKey, group);
  }
  return CountLegacySlices(ctx);
}

Status ApplyPoolCreate(Ctx& ctx, OpReply* reply) {
  PoolRecord rec;
  *rec.mutable_spec() = ctx.op.pool_create().spec();
  auto pool = CreatePool(ctx, std::move(rec));
  GRANARY_TRY(pool);
  *reply->mutable_pool()->mutable_pool() = pool->spec();
  return Status::Ok();
}

Status ApplyVolumeCreate(Ctx& ctx, OpReply* reply) {
  const VolumeCreateRequest& req = ctx.op.volume_create();
  auto bucket = FindBucket(ctx.txn, req.name());
  GRANARY_TRY(bucket);
  if (*bucket) return AlreadyExists(fmt::format("a bucket is named '{}'", req.name()));
  if (req.name().find('@') != std::string::npos) {
    return InvalidArgument(fmt::format(
        "volume name '{}': '@' is reserved for snapshots (VOLUME@SNAPSHOT)", req.name()));
  }
  GRANARY_TRY(CheckSnapshotsGone(ctx.txn, req.name()));
  auto rec = req.from_volume().empty() && req.from_snapshot().empty()
                 ? CreateVolume(ctx, req.name(), req.pool(), req.quota_bytes(), req.quota_inodes())
                 : CloneVolume(ctx, req);
  GRANARY_TRY(rec);
  *reply->mutable_volume()->mutable_volume() = rec->volume();
  return Status::Ok();
}

Status ApplyVolumeDelete(Ctx& ctx, OpReply* reply) {
  const VolumeDeleteRequest& req = ctx.op.volume_delete();
  auto rec = FindVolumeByName(ctx.txn, req.name());
  GRANARY_TRY(rec);
  if (rec->volume().read_only()) {
    return InvalidArgument(fmt::format("'{}' is a snapshot: `granary admin snapshot delete {}`",
                                       req.name(), req.name()));
  }
  auto buckets = AllBuckets(ctx.txn);
  GRANARY_TRY(buckets);
  for (const BucketRecord& b : *buckets) {
    if (b.bucket().volume_id() == rec->volume().id()) {
      return Status(Code::PRECONDITION_FAILED, fmt::format("volume '{}' is exported by bucket '{}'",
                                                           req.name(), b.bucket().name()));
    }
  }
  return DeleteVolume(ctx, rec->volume());
}

Status ApplyVolumeSetQuota(Ctx& ctx, OpReply* reply) {
  const VolumeSetQuotaRequest& req = ctx.op.volume_set_quota();
  auto rec = FindVolumeByName(ctx.txn, req.name());
  GRANARY_TRY(rec);
  rec->mutable_volume()->set_quota_bytes(req.quota_bytes());
  rec->mutable_volume()->set_quota_inodes(req.quota_inodes());
  SaveVolume(ctx.txn, *rec);
  *reply->mutable_volume()->mutable_volume() = rec->volume();
  return Status::Ok();
}

Status ApplyKeyCreate(Ctx& ctx, OpReply* reply) {
  const KeyRecord& key = ctx.op.key_create().key();
  if (key.access_key().empty() || key.access_key().size() > 128 || key.sealed_secret().empty()) {
    return InvalidArgument("access key without id or secret");
  }
  KeyRecord existing;
  auto found = ctx.txn.GetRecord(Cf::kCatalog, AccessKeyKey(key.access_key()), &existing);
  GRANARY_TRY(found);
  if (*found) return AlreadyExists(fmt::format("access key '{}'", key.access_key()));
  KeyRecord rec = key;
  rec.set_format(kFormat);
  rec.set_created_ms(ctx.op.now_ms());
  ctx.txn.PutRecord(Cf::kCatalog, AccessKeyKey(key.access_key()), rec);
  AccessKey& out = *reply->mutable_key()->mutable_key();
  out.set_access_key(rec.access_key());
  out.set_name(rec.name());
  out.set_created_ms(rec.created_ms());
  return Status::Ok();
}

Status ApplyKeyDelete(Ctx& ctx, OpReply* reply) {
  const std::string& access_key = ctx.op.key_delete().access_key();
  KeyRecord existing;
  auto found = ctx.txn.GetRecord(Cf::kCatalog, AccessKeyKey(access_key), &existing);
  GRANARY_TRY(found);
  if (!*found) return NotFound(fmt::format("access key '{}'", access_key));
  auto buckets = AllBuckets(ctx.txn);
  GRANARY_TRY(buckets);
  for (BucketRecord& b : *buckets) {
    if (b.bucket().owner() == access_key) {
      return Status(Code::PRECONDITION_FAILED,
                    fmt::format("access key '{}' owns bucket '{}'", access_key, b.bucket().name()));
    }
  }
  for (BucketRecord& b : *buckets) {
    auto* grants = b.mutable_bucket()->mutable_grants();
    auto end = std::remove_if(grants->begin(), grants->end(),
                              [&](const Grant& g) { return g.access_key() == access_key; });
    if (end != grants->end()) {
      grants->erase(end, grants->end());
      ctx.txn.PutRecord(Cf::kCatalog, BucketKey(b.bucket().name()), b);
    }
  }
  ctx.txn.Delete(Cf::kCatalog, AccessKeyKey(access_key));
  return Status::Ok();
}

Status ApplyBucketCreate(Ctx& ctx, OpReply* reply) {
  const BucketCreateRequest& req = ctx.op.bucket_create();
  GRANARY_TRY(ValidateBucketName(req.name()));
  KeyRecord owner;
  auto found = ctx.txn.GetRecord(Cf::kCatalog, AccessKeyKey(req.owner()), &owner);
  GRANARY_TRY(found);
  if (!*found) return NotFound(fmt::format("owner access key '{}'", req.owner()));
  auto existing = FindBucket(ctx.txn, req.name());
  GRANARY_TRY(existing);
  if (*existing) return AlreadyExists(fmt::format("bucket '{}'", req.name()));
  GRANARY_TRY(CheckAclKeys(ctx.txn, req.acl()));
  BucketRecord rec;
  rec.set_format(kFormat);
  Bucket& b = *rec.mutable_bucket();
  if (req.volume().empty()) {
    auto volume = CreateVolume(ctx, req.name(), req.pool(), 0, 0);
    if (!volume.ok() && volume.status().code() == Code::ALREADY_EXISTS) {
      return AlreadyExists(fmt::format("bucket '{}': a volume of that name exists", req.name()));
    }
    GRANARY_TRY(volume);
    b.set_volume_id(volume->volume().id());
    b.set_owns_volume(true);
  } else {
    auto volume = FindVolumeByName(ctx.txn, req.volume());
    GRANARY_TRY(volume);
    b.set_volume_id(volume->volume().id());
    b.set_owns_volume(false);
  }
  b.set_name(req.name());
  b.set_owner(req.owner());
  b.set_owner_namespace(req.owner_namespace());
  b.set_owner_uid(req.owner_uid());
  b.set_uid(0);
  b.set_gid(0);
  b.set_umask(022);
  b.set_created_ms(ctx.op.now_ms());
  *b.mutable_acl() = req.acl();
  b.set_object_ownership(req.object_ownership());
  ctx.txn.PutRecord(Cf::kCatalog, BucketKey(req.name()), rec);
  *reply->mutable_bucket()->mutable_bucket() = b;
  return Status::Ok();
}

Status ApplyBucketDelete(Ctx& ctx, OpReply* reply) {
  const std::string& name = ctx.op.bucket_delete().name();
  auto existing = FindBucket(ctx.txn, name);
  GRANARY_TRY(existing);
  if (!*existing) return NotFound(fmt::format("bucket '{}'", name));
  const Bucket& b = (*existing)->bucket();
  if (b.owns_volume()) {
    auto volume = LoadVolume(ctx.txn, b.volume_id());
    if (volume.ok()) {
      Status s = DeleteVolume(ctx, volume->volume());
      if (s.code() == Code::NOT_EMPTY)
        return Status(Code::NOT_EMPTY, "bucket '" + name + "' is not empty");
      GRANARY_TRY(s);
    }
  }
  ctx.txn.Delete(Cf::kCatalog, BucketKey(name));
  return Status::Ok();
}

Status ApplyBucketGrant(Ctx& ctx, OpReply* reply) {
  const BucketGrantRequest& req = ctx.op.bucket_grant();
  auto existing = FindBucket(ctx.txn, req.name());
  GRANARY_TRY(existing);
  if (!*existing) return NotFound(fmt::format("bucket '{}'", req.name()));
  KeyRecord key;
  auto found = ctx.txn.GetRecord(Cf::kCatalog, AccessKeyKey(req.access_key()), &key);
  GRANARY_TRY(found);
  if (!*found) return NotFound(fmt::format("access key '{}'", req.access_key()));
  Bucket& b = *(*existing)->mutable_bucket();
  auto* grants = b.mutable_grants();
  auto end = std::remove_if(grants->begin(), grants->end(),
                            [&](const Grant& g) { return g.access_key() == req.access_key(); });
  grants->erase(end, grants->end());
  if (req.access() != ACCESS_NONE) {
    Grant& g = *grants->Add();
    g.set_access_key(req.access_key());
    g.set_access(req.access());
  }
  ctx.txn.PutRecord(Cf::kCatalog, BucketKey(req.name()), **existing);
  *reply->mutable_bucket()->mutable_bucket() = b;
  return Status::Ok();
}

}  // namespace granary::metanode
