// `granary admin …` verbs served by the metanode (DESIGN §1): pool, volume, key, bucket, nodes,
// backup. Thin: parse flags, call MetaClient, print one line per object.
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <string>

#include "client/meta_client.h"
#include "cmd/admin_client.h"
#include "cmd/process.h"
#include "cmd/roles.h"
#include "common/config.h"
#include "common/topology.h"
#include "dashboard/names.h"

namespace granary::cmd {

int PrintClusterStatus(client::MetaClient& mc, const std::string& meta_list, bool json);

namespace {

int Fail(const Status& status) { return ReportFailure("admin", status); }

using dashboard::DomainName;
using dashboard::LocalityName;
using dashboard::Redundancy;
using dashboard::StateName;
std::string Labels(const google::protobuf::Map<std::string, std::string>& labels) {
  return dashboard::LabelText(labels);
}

// "replicated:3" / "ec:4+2" into `spec`.
Status ParseRedundancy(const std::string& text, PoolSpec* spec) {
  unsigned a = 0, b = 0;
  if (std::sscanf(text.c_str(), "replicated:%u", &a) == 1) {
    spec->set_redundancy(REPLICATED_POOL);
    spec->set_replicas(a);
    return Status::Ok();
  }
  if (std::sscanf(text.c_str(), "ec:%u+%u", &a, &b) == 2) {
    spec->set_redundancy(ERASURE_CODED_POOL);
    spec->set_data_chunks(a);
    spec->set_coding_chunks(b);
    return Status::Ok();
  }
  return InvalidArgument(fmt::format("redundancy '{}': expected replicated:N or ec:K+M", text));
}

// `admin repair`: redundancy, copies known bad and where, scrub progress, then `healthy` only
// when nothing is left to repair or verify (docs/maintenance.md).
void PrintRepairReport(const ClusterStatusReply& r, client::MetaClient& mc) {
  std::printf(
      "epoch=%lu pgs=%lu pgs-degraded=%lu blocks-to-repair=%lu pgs-moving=%lu "
      "nodes-repairing=%u garbage-slices=%lu corruptions-reported=%lu copies-bad=%lu\n",
      r.epoch(), r.pgs_total(), r.pgs_degraded(), r.repair_pending(), r.pgs_moving(),
      r.nodes_repairing(), r.garbage_pending(), r.corruptions_reported(), r.copies_bad());
  std::map<uint32_t, std::string> pool_names;
  if (r.pgs_with_bad_copies_size() > 0) {
    auto pools = mc.PoolList();
    if (pools.ok()) {
      for (const auto& p : *pools) pool_names[p.id()] = p.name();
    }
  }
  constexpr int kMaxPgLines = 20;
  for (int i = 0; i < r.pgs_with_bad_copies_size() && i < kMaxPgLines; ++i) {
    const PgBadCopies& pg = r.pgs_with_bad_copies(i);
    auto name = pool_names.find(pg.pool_id());
    std::printf(
        "bad-copies pool=%s pg=%u copies=%lu\n",
        name != pool_names.end() ? name->second.c_str() : std::to_string(pg.pool_id()).c_str(),
        pg.pg(), pg.copies());
  }
  if (r.pgs_with_bad_copies_size() > kMaxPgLines) {
    std::printf("bad-copies in %d more pgs\n", r.pgs_with_bad_copies_size() - kMaxPgLines);
  }
  if (r.scrub_size() > 0) {
    const dashboard::ScrubTotals t = dashboard::SumScrub(r);
    std::printf(
        "scrub nodes=%d pass-progress=%.1f%% oldest-unscrubbed-s=%ld period-s=%ld "
        "nodes-behind=%d\n",
        r.scrub_size(), t.progress(), t.oldest_unscrubbed_ms / 1000, t.period_ms / 1000, t.behind);
    for (const NodeScrub& n : r.scrub()) {
      if (!n.scrub().behind()) continue;
      std::printf("datanode %u scrub-behind pass-bytes=%lu done-bytes=%lu period-s=%ld\n",
                  n.node_id(), n.scrub().pass_bytes(), n.scrub().done_bytes(),
                  n.scrub().period_ms() / 1000);
    }
  }
  for (const auto& n : r.nodes()) {
    if (n.state() != UP) {
      std::printf("datanode %u %s\n", n.id(), std::string(StateName(n.state())).c_str());
    }
  }
  // A pool the PG map does not hold takes no writes at all; repair cannot fix that.
  for (const auto& p : r.pools()) {
    if (!p.placed()) std::printf("pool %s not placed: %s\n", p.name().c_str(), p.message().c_str());
  }
  std::printf("%s\n", r.healthy() ? "healthy" : "repairing");
}

}  // namespace

int RunAdminMeta(int argc, char** argv) {
  CLI::App app{"granary admin: pools, volumes, keys, buckets, nodes, backup"};
  std::string meta = EnvOr("GRANARY_META", "127.0.0.1:7410");
  app.add_option("--meta", meta, "metanode HOST:PORT (default $GRANARY_META, else 127.0.0.1:7410)");
  app.require_subcommand(1);
  app.fallthrough();  // `--meta` may follow the verb: `granary admin pool list --meta H:P`
  AddYamlConfig(app);

  // pool
  auto* pool = app.add_subcommand("pool", "storage pools")->require_subcommand(1);
  std::string pool_name, redundancy = "replicated:3", domain = "datanode", locality = "none";
  uint32_t pg_count = 0;
  auto* pool_create = pool->add_subcommand("create", "create a pool");
  pool_create->add_option("name", pool_name)->required();
  pool_create->add_option("--redundancy", redundancy, "replicated:N | ec:K+M")
      ->capture_default_str();
  pool_create->add_option("--failure-domain", domain, "datanode|host|rack|zone")
      ->capture_default_str();
  pool_create->add_option("--locality", locality, "none|writer-local|prefer-gpu")
      ->capture_default_str();
  pool_create->add_option("--pg-count", pg_count, "placement groups (power of two; default 64)");
  std::string node_selector;
  pool_create->add_option("--node-selector", node_selector,
                          "only datanodes with these labels, e.g. pool=main,disk=nvme");
  auto* pool_list = pool->add_subcommand("list", "list pools");

  // volume
  auto* volume = app.add_subcommand("volume", "volumes")->require_subcommand(1);
  std::string volume_name, volume_pool;
  uint64_t quota_bytes = 0, quota_inodes = 0;
  auto* volume_create = volume->add_subcommand("create", "create a volume");
  volume_create->add_option("name", volume_name)->required();
  volume_create->add_option("--pool", volume_pool, "pool (default: the default pool)");
  volume_create->add_option("--quota-bytes", quota_bytes, "0 = unlimited");
  volume_create->add_option("--quota-inodes", quota_inodes, "0 = unlimited");
  std::string from_snapshot, from_volume;
  volume_create->add_option("--from-snapshot", from_snapshot,
                            "a clone of snapshot VOLUME@NAME (metadata only, no data copied)");
  volume_create->add_option("--from-volume", from_volume, "a clone of a live volume, as it is now");
  auto* volume_list = volume->add_subcommand("list", "list volumes");
  auto* volume_delete = volume->add_subcommand("delete", "delete an empty volume");
  volume_delete->add_option("name", volume_name)->required();

  // key
  auto* key = app.add_subcommand("key", "S3 access keys")->require_subcommand(1);
  std::string key_name, key_id;
  auto* key_create = key->add_subcommand("create", "create an access key (prints the secret)");
  key_create->add_option("--name", key_name, "a label for the key");
  auto* key_list = key->add_subcommand("list", "list access keys");
  auto* key_delete = key->add_subcommand("delete", "delete an access key");
  key_delete->add_option("key", key_id)->required();

  // bucket
  auto* bucket = app.add_subcommand("bucket", "S3 buckets")->require_subcommand(1);
  std::string bucket_name, owner, bucket_volume, access = "read";
  auto* bucket_create = bucket->add_subcommand("create", "create a bucket");
  bucket_create->add_option("name", bucket_name)->required();
  bucket_create->add_option("--owner", owner, "owner access key")->required();
  bucket_create->add_option("--volume", bucket_volume, "export an existing volume");
  bucket_create->add_option("--pool", volume_pool, "pool of the new volume");
  auto* bucket_list = bucket->add_subcommand("list", "list buckets");
  auto* bucket_delete = bucket->add_subcommand("delete", "delete a bucket");
  bucket_delete->add_option("name", bucket_name)->required();
  auto* bucket_grant = bucket->add_subcommand("grant", "grant an access key access");
  bucket_grant->add_option("name", bucket_name)->required();
  bucket_grant->add_option("--key", key_id, "access key")->required();
  bucket_grant->add_option("--access", access, "read|readwrite|none")->capture_default_str();

  // snapshot (docs/snapshots.md)
  auto* snapshot = app.add_subcommand("snapshot", "volume snapshots")->require_subcommand(1);
  std::string snap_volume, snap_name;
  auto* snapshot_create = snapshot->add_subcommand("create", "snapshot VOLUME as VOLUME@NAME");
  snapshot_create->add_option("volume", snap_volume)->required();
  snapshot_create->add_option("name", snap_name)->required();
  auto* snapshot_list = snapshot->add_subcommand("list", "snapshots (of VOLUME)");
  snapshot_list->add_option("volume", snap_volume);
  auto* snapshot_delete = snapshot->add_subcommand("delete", "delete snapshot VOLUME@NAME");
  snapshot_delete->add_option("snapshot", snap_name, "VOLUME@NAME")->required();

  auto* status = app.add_subcommand(
      "status", "the cluster at a glance: the figures of the dashboard (docs/dashboard.md)");
  bool status_json = false;
  status->add_flag("--json", status_json, "print the dashboard's status document (/api/status)");
  auto* nodes = app.add_subcommand("nodes", "one line per datanode: id, labels, state");
  auto* repair = app.add_subcommand(
      "repair", "repair progress: degraded PGs, blocks left to rebuild; `healthy` when none");
  auto* sessions = app.add_subcommand(
      "sessions", "client sessions with a live lease; sessions and multipart uploads reaped");
  std::string backup_dir;
  auto* backup = app.add_subcommand("backup", "write a RocksDB checkpoint of the metadata");
  backup->add_option("dir", backup_dir, "target dir (default DATA/backups/<ms>)");

  CLI11_PARSE(app, argc, argv);

  auto connected = ConnectAdmin(meta);
  if (!connected.ok()) return Fail(connected.status());
  client::MetaClient& mc = **connected;

  if (pool_create->parsed()) {
    PoolSpec spec;
    spec.set_name(pool_name);
    if (Status s = ParseRedundancy(redundancy, &spec); !s.ok()) return Fail(s);
    static const std::map<std::string, FailureDomain> kDomains = {{"datanode", DOMAIN_DATANODE},
                                                                  {"host", DOMAIN_HOST},
                                                                  {"rack", DOMAIN_RACK},
                                                                  {"zone", DOMAIN_ZONE}};
    static const std::map<std::string, Locality> kLocality = {
        {"none", LOCALITY_NONE}, {"writer-local", WRITER_LOCAL}, {"prefer-gpu", PREFER_GPU}};
    if (!kDomains.contains(domain)) return Fail(InvalidArgument("failure domain " + domain));
    if (!kLocality.contains(locality)) return Fail(InvalidArgument("locality " + locality));
    spec.set_failure_domain(kDomains.at(domain));
    spec.set_locality(kLocality.at(locality));
    spec.set_pg_count(pg_count);
    auto selector = ParseLabels(node_selector);
    if (!selector.ok()) return Fail(selector.status().WithContext("--node-selector"));
    for (const auto& [k, v] : *selector) (*spec.mutable_node_selector())[k] = v;
    auto r = mc.PoolCreate(spec);
    if (!r.ok()) return Fail(r.status());
    std::printf("pool=%s id=%u redundancy=%s pgs=%u\n", r->name().c_str(), r->id(),
                Redundancy(*r).c_str(), r->pg_count());
  } else if (pool_list->parsed()) {
    auto r = mc.PoolList();
    if (!r.ok()) return Fail(r.status());
    for (const auto& p : *r) {
      std::printf("%s id=%u redundancy=%s failure-domain=%s locality=%s pgs=%u min-size=%u\n",
                  p.name().c_str(), p.id(), Redundancy(p).c_str(),
                  std::string(DomainName(p.failure_domain())).c_str(),
                  std::string(LocalityName(p.locality())).c_str(), p.pg_count(), p.min_size());
    }
  } else if (volume_create->parsed()) {
    VolumeCreateRequest req;
    req.set_name(volume_name);
    req.set_pool(volume_pool);
    req.set_quota_bytes(quota_bytes);
    req.set_quota_inodes(quota_inodes);
    req.set_from_snapshot(from_snapshot);
    req.set_from_volume(from_volume);
    auto r = mc.VolumeCreate(std::move(req));
    if (!r.ok()) return Fail(r.status());
    std::printf("volume=%s id=%lu root=%lu", r->name().c_str(), r->id(), r->root_ino());
    if (r->source_volume_id() != 0) {
      std::printf(" from=%s inodes=%lu bytes=%lu", (from_snapshot + from_volume).c_str(),
                  r->used_inodes(), r->used_bytes());
    }
    std::printf("\n");
  } else if (snapshot_create->parsed()) {
    auto r = mc.SnapshotCreate(snap_volume, snap_name);
    if (!r.ok()) return Fail(r.status());
    std::printf("snapshot=%s id=%lu inodes=%lu bytes=%lu\n", r->name().c_str(), r->id(),
                r->used_inodes(), r->used_bytes());
  } else if (snapshot_list->parsed()) {
    auto r = mc.SnapshotList(snap_volume);
    if (!r.ok()) return Fail(r.status());
    for (const auto& v : *r) {
      std::printf("%s id=%lu created-ms=%ld inodes=%lu bytes=%lu exclusive-bytes=%lu\n",
                  v.name().c_str(), v.id(), v.created_ms(), v.used_inodes(), v.used_bytes(),
                  v.exclusive_bytes());
    }
  } else if (snapshot_delete->parsed()) {
    const size_t at = snap_name.find('@');
    if (at == std::string::npos) return Fail(InvalidArgument("expected VOLUME@NAME"));
    if (Status s = mc.SnapshotDelete(snap_name.substr(0, at), snap_name.substr(at + 1)); !s.ok())
      return Fail(s);
    std::printf("deleted snapshot=%s\n", snap_name.c_str());
  } else if (volume_list->parsed()) {
    auto r = mc.VolumeList();
    if (!r.ok()) return Fail(r.status());
    for (const auto& v : *r) {
      std::printf(
          "%s id=%lu pool=%u used-bytes=%lu quota-bytes=%lu used-inodes=%lu "
          "quota-inodes=%lu\n",
          v.name().c_str(), v.id(), v.pool_id(), v.used_bytes(), v.quota_bytes(), v.used_inodes(),
          v.quota_inodes());
    }
  } else if (volume_delete->parsed()) {
    if (Status s = mc.VolumeDelete(volume_name); !s.ok()) return Fail(s);
    std::printf("deleted volume=%s\n", volume_name.c_str());
  } else if (key_create->parsed()) {
    auto r = mc.KeyCreate(key_name);
    if (!r.ok()) return Fail(r.status());
    std::printf("access_key=%s\nsecret_key=%s\n", r->access_key().c_str(), r->secret_key().c_str());
  } else if (key_list->parsed()) {
    auto r = mc.KeyList();
    if (!r.ok()) return Fail(r.status());
    for (const auto& k : *r) {
      std::printf("%s name=%s\n", k.access_key().c_str(),
                  k.name().empty() ? "-" : k.name().c_str());
    }
  } else if (key_delete->parsed()) {
    if (Status s = mc.KeyDelete(key_id); !s.ok()) return Fail(s);
    std::printf("deleted key=%s\n", key_id.c_str());
  } else if (bucket_create->parsed()) {
    auto r = mc.BucketCreate(bucket_name, owner, bucket_volume, volume_pool);
    if (!r.ok()) return Fail(r.status());
    std::printf("bucket=%s volume-id=%lu owns-volume=%s\n", r->name().c_str(), r->volume_id(),
                r->owns_volume() ? "true" : "false");
  } else if (bucket_list->parsed()) {
    auto r = mc.BucketList();
    if (!r.ok()) return Fail(r.status());
    for (const auto& b : *r) {
      // namespace=: the Kubernetes namespace whose Bucket created it (docs/operator.md).
      std::printf("%s owner=%s volume-id=%lu owns-volume=%s grants=%d%s%s\n", b.name().c_str(),
                  b.owner().c_str(), b.volume_id(), b.owns_volume() ? "true" : "false",
                  b.grants_size(),
                  b.owner_namespace().empty() ? "" : " namespace=", b.owner_namespace().c_str());
    }
  } else if (bucket_delete->parsed()) {
    if (Status s = mc.BucketDelete(bucket_name); !s.ok()) return Fail(s);
    std::printf("deleted bucket=%s\n", bucket_name.c_str());
  } else if (bucket_grant->parsed()) {
    static const std::map<std::string, Access> kAccess = {
        {"read", READ}, {"readwrite", READ_WRITE}, {"none", ACCESS_NONE}};
    if (!kAccess.contains(access)) return Fail(InvalidArgument("access " + access));
    auto r = mc.BucketGrant(bucket_name, key_id, kAccess.at(access));
    if (!r.ok()) return Fail(r.status());
    std::printf("bucket=%s key=%s access=%s\n", r->name().c_str(), key_id.c_str(), access.c_str());
  } else if (status->parsed()) {
    return PrintClusterStatus(mc, meta, status_json);
  } else if (nodes->parsed()) {
    auto r = mc.GetClusterMap(0);
    if (!r.ok()) return Fail(r.status());
    for (const auto& n : r->nodes()) {
      std::printf("%u %s %s\n", n.id(), Labels(n.labels()).c_str(),
                  std::string(StateName(n.state())).c_str());
    }
  } else if (repair->parsed()) {
    auto r = mc.ClusterStatus();
    if (!r.ok()) return Fail(r.status());
    PrintRepairReport(*r, mc);
  } else if (sessions->parsed()) {
    auto r = mc.ClusterStatus();
    if (!r.ok()) return Fail(r.status());
    std::printf("sessions=%lu sessions-reaped=%lu multipart-expired=%lu\n", r->sessions(),
                r->sessions_reaped(), r->multipart_expired());
  } else if (backup->parsed()) {
    auto r = mc.Backup(backup_dir);
    if (!r.ok()) return Fail(r.status());
    std::printf("backup dir=%s sequence=%lu\n", r->dir().c_str(), r->sequence());
  }
  return 0;
}

}  // namespace granary::cmd
