// MetaClient's administrative calls: pools, volumes, snapshots, locality and warm-ups, access
// keys, buckets, backups.
#include "client/meta_client.h"
#include "client/meta_client_call.h"

namespace granary::client {

// ---------------------------------------------------------------- admin

Result<PoolSpec> MetaClient::PoolCreate(const PoolSpec& spec) {
  PoolCreateRequest req;
  *req.mutable_op() = NextOpId();
  *req.mutable_spec() = spec;
  PoolReply reply;
  GRANARY_TRY(Call("pool create", &Endpoint::admin, &Admin::Stub::PoolCreate, req, &reply));
  return std::move(*reply.mutable_pool());
}

Result<std::vector<PoolSpec>> MetaClient::PoolList() {
  PoolListReply reply;
  GRANARY_TRY(Call("pool list", &Endpoint::admin, &Admin::Stub::PoolList, Empty(), &reply));
  return std::vector<PoolSpec>(reply.pools().begin(), reply.pools().end());
}

Result<Volume> MetaClient::VolumeCreate(std::string_view name, std::string_view pool,
                                        uint64_t quota_bytes, uint64_t quota_inodes) {
  VolumeCreateRequest req;
  *req.mutable_op() = NextOpId();
  req.set_name(std::string(name));
  req.set_pool(std::string(pool));
  req.set_quota_bytes(quota_bytes);
  req.set_quota_inodes(quota_inodes);
  VolumeReply reply;
  GRANARY_TRY(Call("volume create", &Endpoint::admin, &Admin::Stub::VolumeCreate, req, &reply));
  return std::move(*reply.mutable_volume());
}

Result<Volume> MetaClient::VolumeCreate(VolumeCreateRequest req) {
  if (!req.has_op()) *req.mutable_op() = NextOpId();
  VolumeReply reply;
  GRANARY_TRY(CallLong("volume create", &Admin::Stub::VolumeCreate, req, &reply));
  return std::move(*reply.mutable_volume());
}

Result<Volume> MetaClient::SnapshotCreate(std::string_view volume, std::string_view name) {
  SnapshotCreateRequest req;
  *req.mutable_op() = NextOpId();
  req.set_volume(std::string(volume));
  req.set_name(std::string(name));
  VolumeReply reply;
  GRANARY_TRY(CallLong("snapshot create", &Admin::Stub::SnapshotCreate, req, &reply));
  return std::move(*reply.mutable_volume());
}

Result<std::vector<Volume>> MetaClient::SnapshotList(std::string_view volume) {
  SnapshotListRequest req;
  req.set_volume(std::string(volume));
  VolumeListReply reply;
  // O(namespace): each snapshot's exclusive bytes are counted by walking it.
  GRANARY_TRY(CallLong("snapshot list", &Admin::Stub::SnapshotList, req, &reply));
  return std::vector<Volume>(reply.volumes().begin(), reply.volumes().end());
}

Status MetaClient::SnapshotDelete(std::string_view volume, std::string_view name) {
  SnapshotDeleteRequest req;
  *req.mutable_op() = NextOpId();
  req.set_volume(std::string(volume));
  req.set_name(std::string(name));
  Empty reply;
  return CallLong("snapshot delete", &Admin::Stub::SnapshotDelete, req, &reply);
}

Result<VolumeLocalityReply> MetaClient::VolumeLocality(std::string_view volume,
                                                       std::string_view path,
                                                       std::chrono::milliseconds budget) {
  VolumeLocalityRequest req;
  req.set_volume(std::string(volume));
  req.set_path(std::string(path));
  VolumeLocalityReply reply;
  GRANARY_TRY(CallLong("volume locality", &Admin::Stub::VolumeLocality, req, &reply, budget));
  return reply;
}

Result<Warmup> MetaClient::WarmupCreate(std::string_view name, std::string_view volume,
                                        std::string_view path,
                                        const std::vector<std::string>& hosts,
                                        std::chrono::milliseconds budget) {
  WarmupCreateRequest req;
  *req.mutable_op() = NextOpId();
  req.set_name(std::string(name));
  req.set_volume(std::string(volume));
  req.set_path(std::string(path));
  for (const std::string& h : hosts) req.add_hosts(h);
  WarmupReply reply;
  GRANARY_TRY(CallLong("warmup create", &Admin::Stub::WarmupCreate, req, &reply, budget));
  return std::move(*reply.mutable_warmup());
}

Result<std::vector<Warmup>> MetaClient::WarmupList(std::string_view name,
                                                   std::chrono::milliseconds budget) {
  WarmupListRequest req;
  req.set_name(std::string(name));
  WarmupListReply reply;
  GRANARY_TRY(CallLong("warmup list", &Admin::Stub::WarmupList, req, &reply, budget));
  return std::vector<Warmup>(reply.warmups().begin(), reply.warmups().end());
}

Status MetaClient::WarmupDelete(std::string_view name, std::chrono::milliseconds budget) {
  WarmupDeleteRequest req;
  *req.mutable_op() = NextOpId();
  req.set_name(std::string(name));
  Empty reply;
  return CallLong("warmup delete", &Admin::Stub::WarmupDelete, req, &reply, budget);
}

Result<Volume> MetaClient::VolumeGet(std::string_view name) {
  VolumeGetRequest req;
  req.set_name(std::string(name));
  VolumeReply reply;
  GRANARY_TRY(Call("volume get", &Endpoint::admin, &Admin::Stub::VolumeGet, req, &reply));
  return std::move(*reply.mutable_volume());
}

Result<Volume> MetaClient::VolumeGetById(uint64_t id) {
  VolumeGetRequest req;
  req.set_id(id);
  VolumeReply reply;
  GRANARY_TRY(Call("volume get", &Endpoint::admin, &Admin::Stub::VolumeGet, req, &reply));
  return std::move(*reply.mutable_volume());
}

Result<std::vector<Volume>> MetaClient::VolumeList() {
  VolumeListReply reply;
  GRANARY_TRY(Call("volume list", &Endpoint::admin, &Admin::Stub::VolumeList, Empty(), &reply));
  return std::vector<Volume>(reply.volumes().begin(), reply.volumes().end());
}

Status MetaClient::VolumeDelete(std::string_view name) {
  VolumeDeleteRequest req;
  *req.mutable_op() = NextOpId();
  req.set_name(std::string(name));
  Empty reply;
  return Call("volume delete", &Endpoint::admin, &Admin::Stub::VolumeDelete, req, &reply);
}

Result<Volume> MetaClient::VolumeSetQuota(std::string_view name, uint64_t quota_bytes,
                                          uint64_t quota_inodes) {
  VolumeSetQuotaRequest req;
  *req.mutable_op() = NextOpId();
  req.set_name(std::string(name));
  req.set_quota_bytes(quota_bytes);
  req.set_quota_inodes(quota_inodes);
  VolumeReply reply;
  GRANARY_TRY(
      Call("volume set-quota", &Endpoint::admin, &Admin::Stub::VolumeSetQuota, req, &reply));
  return std::move(*reply.mutable_volume());
}

Result<AccessKey> MetaClient::KeyCreate(std::string_view name, std::string_view access_key,
                                        std::string_view secret_key) {
  KeyCreateRequest req;
  *req.mutable_op() = NextOpId();
  req.set_name(std::string(name));
  req.set_access_key(std::string(access_key));
  req.set_secret_key(std::string(secret_key));
  KeyReply reply;
  GRANARY_TRY(Call("key create", &Endpoint::admin, &Admin::Stub::KeyCreate, req, &reply));
  return std::move(*reply.mutable_key());
}

Result<AccessKey> MetaClient::KeyGetSecret(std::string_view access_key) {
  KeyGetRequest req;
  req.set_access_key(std::string(access_key));
  KeyReply reply;
  GRANARY_TRY(Call("key get", &Endpoint::admin, &Admin::Stub::KeyGetSecret, req, &reply));
  return std::move(*reply.mutable_key());
}

Result<std::vector<AccessKey>> MetaClient::KeyList() {
  KeyListReply reply;
  GRANARY_TRY(Call("key list", &Endpoint::admin, &Admin::Stub::KeyList, Empty(), &reply));
  return std::vector<AccessKey>(reply.keys().begin(), reply.keys().end());
}

Status MetaClient::KeyDelete(std::string_view access_key) {
  KeyDeleteRequest req;
  *req.mutable_op() = NextOpId();
  req.set_access_key(std::string(access_key));
  Empty reply;
  return Call("key delete", &Endpoint::admin, &Admin::Stub::KeyDelete, req, &reply);
}

Result<Bucket> MetaClient::BucketCreate(std::string_view name, std::string_view owner,
                                        std::string_view volume, std::string_view pool) {
  BucketCreateRequest req;
  req.set_name(std::string(name));
  req.set_owner(std::string(owner));
  req.set_volume(std::string(volume));
  req.set_pool(std::string(pool));
  return BucketCreate(std::move(req));
}

Result<Bucket> MetaClient::BucketCreate(BucketCreateRequest req) {
  if (!req.has_op()) *req.mutable_op() = NextOpId();
  BucketReply reply;
  GRANARY_TRY(Call("bucket create", &Endpoint::admin, &Admin::Stub::BucketCreate, req, &reply));
  return std::move(*reply.mutable_bucket());
}

Result<Bucket> MetaClient::BucketGet(std::string_view name) {
  BucketGetRequest req;
  req.set_name(std::string(name));
  BucketReply reply;
  GRANARY_TRY(Call("bucket get", &Endpoint::admin, &Admin::Stub::BucketGet, req, &reply));
  return std::move(*reply.mutable_bucket());
}

Result<std::vector<Bucket>> MetaClient::BucketList() {
  BucketListReply reply;
  GRANARY_TRY(Call("bucket list", &Endpoint::admin, &Admin::Stub::BucketList, Empty(), &reply));
  return std::vector<Bucket>(reply.buckets().begin(), reply.buckets().end());
}

Status MetaClient::BucketDelete(std::string_view name) {
  BucketDeleteRequest req;
  *req.mutable_op() = NextOpId();
  req.set_name(std::string(name));
  Empty reply;
  return Call("bucket delete", &Endpoint::admin, &Admin::Stub::BucketDelete, req, &reply);
}

Result<Bucket> MetaClient::BucketGrant(std::string_view name, std::string_view access_key,
                                       Access access) {
  BucketGrantRequest req;
  *req.mutable_op() = NextOpId();
  req.set_name(std::string(name));
  req.set_access_key(std::string(access_key));
  req.set_access(access);
  BucketReply reply;
  GRANARY_TRY(Call("bucket grant", &Endpoint::admin, &Admin::Stub::BucketGrant, req, &reply));
  return std::move(*reply.mutable_bucket());
}

Result<BackupReply> MetaClient::Backup(std::string_view dir) {
  BackupRequest req;
  req.set_dir(std::string(dir));
  BackupReply reply;
  GRANARY_TRY(Call("backup", &Endpoint::admin, &Admin::Stub::Backup, req, &reply));
  return reply;
}

}  // namespace granary::client
