#include "metanode/reader.h"

#include <fmt/format.h>

#include <map>
#include <set>
#include <vector>

#include "metanode/apply_internal.h"
#include "metanode/slice_map.h"

namespace granary::metanode {

Result<InodeAttr> QueryLookup(Txn& txn, uint64_t parent, const std::string& name) {
  GRANARY_TRY(ValidateName(name));
  GRANARY_TRY(LoadDir(txn, parent));
  auto dentry = LoadDentry(txn, parent, name);
  GRANARY_TRY(dentry);
  if (!*dentry) return NotFound(fmt::format("'{}' in directory {}", name, parent));
  return QueryGetAttr(txn, (*dentry)->ino());
}

Result<InodeAttr> QueryGetAttr(Txn& txn, uint64_t ino) {
  auto rec = LoadInode(txn, ino);
  GRANARY_TRY(rec);
  return std::move(*rec->mutable_attr());
}

Result<ReadDirReply> QueryReadDir(Txn& txn, const ReadDirRequest& req) {
  GRANARY_TRY(LoadDir(txn, req.ino()));
  const uint32_t limit = req.limit() == 0 ? 1000 : std::min<uint32_t>(req.limit(), 10000);
  ReadDirReply reply;
  reply.set_eof(true);
  const std::string prefix = DentryPrefix(req.ino());
  const bool from_cursor = !req.after().empty();
  const std::string start = from_cursor ? DentryKey(req.ino(), req.after()) : prefix;
  Status inner;
  GRANARY_TRY(txn.Scan(Cf::kDentries, prefix, start, from_cursor,
                       [&](std::string_view key, std::string_view value) {
                         if (static_cast<uint32_t>(reply.entries_size()) == limit) {
                           reply.set_eof(false);
                           return false;
                         }
                         DentryRecord d;
                         d.ParseFromArray(value.data(), static_cast<int>(value.size()));
                         DirEntry& e = *reply.add_entries();
                         e.set_name(std::string(key.substr(prefix.size())));
                         e.set_ino(d.ino());
                         e.set_type(d.type());
                         if (req.plus()) {
                           auto attr = QueryGetAttr(txn, d.ino());
                           if (!attr.ok()) {
                             inner = attr.status();
                             return false;
                           }
                           *e.mutable_attr() = std::move(*attr);
                         }
                         return true;
                       }));
  GRANARY_TRY(inner);
  return reply;
}

Result<std::string> QueryReadLink(Txn& txn, uint64_t ino) {
  auto rec = LoadInode(txn, ino);
  GRANARY_TRY(rec);
  if (rec->attr().type() != SYMLINK)
    return InvalidArgument(fmt::format("inode {} is not a symlink", ino));
  return rec->symlink_target();
}

Result<std::string> QueryGetXattr(Txn& txn, uint64_t ino, const std::string& name) {
  auto rec = LoadInode(txn, ino);
  GRANARY_TRY(rec);
  auto it = rec->xattrs().find(name);
  if (it == rec->xattrs().end()) return NotFound(fmt::format("xattr '{}' on inode {}", name, ino));
  return it->second;
}

Result<ListXattrReply> QueryListXattr(Txn& txn, uint64_t ino) {
  auto rec = LoadInode(txn, ino);
  GRANARY_TRY(rec);
  ListXattrReply reply;
  std::vector<std::string> names;
  for (const auto& [name, value] : rec->xattrs()) names.push_back(name);
  std::sort(names.begin(), names.end());
  for (auto& n : names) reply.add_names(std::move(n));
  return reply;
}

Result<StatFsReply> QueryStatFs(Txn& txn, uint64_t ino) {
  auto rec = LoadInode(txn, ino);
  GRANARY_TRY(rec);
  auto volume = LoadVolume(txn, rec->attr().volume_id());
  GRANARY_TRY(volume);
  const Volume& v = volume->volume();
  StatFsReply reply;
  // An unlimited volume reports the registered datanodes' capacity (1 PiB when none).
  uint64_t total = v.quota_bytes();
  if (total == 0) {
    auto nodes = QueryNodes(txn);
    GRANARY_TRY(nodes);
    for (const auto& n : *nodes) total += n.capacity_bytes();
    if (total == 0) total = 1ull << 50;
  }
  reply.set_total_bytes(total);
  reply.set_used_bytes(v.used_bytes() + v.reserved_bytes());
  reply.set_total_inodes(v.quota_inodes() != 0 ? v.quota_inodes() : (1ull << 40));
  reply.set_used_inodes(v.used_inodes());
  return reply;
}

namespace {
// Names the datanodes holding a warm-up copy of each extent's slice (docs/locality.md), so a
// reader near one reads there. One seek when there are no warm copies at all.
Status AddWarmNodes(Txn& txn, ReadMapReply* reply) {
  bool any = false;
  GRANARY_TRY(
      txn.Scan(Cf::kSystem, kExtraCopyPrefix, "", false, [&](std::string_view, std::string_view) {
        any = true;
        return false;
      }));
  if (!any) return Status::Ok();
  std::map<uint64_t, std::vector<uint32_t>> nodes;  // slice -> warm copy holders
  for (Extent& e : *reply->mutable_extents()) {
    auto [it, inserted] = nodes.try_emplace(e.slice_id());
    if (inserted) {
      const std::string prefix = ExtraCopyPrefix(e.slice_id());
      GRANARY_TRY(
          txn.Scan(Cf::kSystem, prefix, "", false, [&](std::string_view key, std::string_view) {
            const auto* b = reinterpret_cast<const uint8_t*>(key.data() + prefix.size());
            it->second.push_back((uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) |
                                 (uint32_t{b[2]} << 8) | b[3]);
            return true;
          }));
    }
    for (uint32_t n : it->second) e.add_warm_nodes(n);
  }
  return Status::Ok();
}
}  // namespace

Result<ReadMapReply> QueryReadMap(Txn& txn, const ReadMapRequest& req) {
  auto rec = LoadInode(txn, req.ino());
  GRANARY_TRY(rec);
  if (rec->attr().type() == DIRECTORY) {
    return Status(Code::IS_DIRECTORY, fmt::format("read map of directory {}", req.ino()));
  }
  ReadMapReply reply;
  const uint64_t size = rec->attr().size();
  const uint64_t begin = std::min(req.offset(), size);
  const uint64_t end =
      req.length() == 0 || req.length() > size - begin ? size : begin + req.length();
  *reply.mutable_attr() = std::move(*rec->mutable_attr());
  if (begin >= end) return reply;
  GRANARY_TRY(txn.Scan(Cf::kSlices, ChunkPrefix(req.ino()),
                       ChunkKey(req.ino(), begin / kChunkRangeSize), false,
                       [&](std::string_view key, std::string_view value) {
                         uint64_t range = ReadU64(key.substr(8));
                         uint64_t range_start = range * kChunkRangeSize;
                         if (range_start >= end) return false;
                         ChunkRecord chunk;
                         chunk.ParseFromArray(value.data(), static_cast<int>(value.size()));
                         uint64_t lo = begin > range_start ? begin - range_start : 0;
                         uint64_t hi = std::min(end - range_start, kChunkRangeSize);
                         for (auto& x : ResolveRange(chunk, range, lo, hi))
                           *reply.add_extents() = std::move(x);
                         return true;
                       }));
  GRANARY_TRY(AddWarmNodes(txn, &reply));
  return reply;
}

Result<Volume> QueryVolume(Txn& txn, const VolumeGetRequest& req) {
  uint64_t id = req.id();
  if (id == 0) {
    auto found = LookupName(txn, Cf::kCatalog, VolumeNameKey(req.name()));
    GRANARY_TRY(found);
    if (!*found) return NotFound(fmt::format("volume '{}'", req.name()));
    id = **found;
  }
  auto rec = LoadVolume(txn, id);
  GRANARY_TRY(rec);
  return std::move(*rec->mutable_volume());
}

namespace {
template <typename Rec, typename Fn>
Status ScanRecords(Txn& txn, Cf cf, std::string_view prefix, Fn fn) {
  return txn.Scan(cf, prefix, "", false, [&](std::string_view, std::string_view value) {
    Rec rec;
    rec.ParseFromArray(value.data(), static_cast<int>(value.size()));
    fn(rec);
    return true;
  });
}
}  // namespace

Result<VolumeListReply> QueryVolumes(Txn& txn) {
  VolumeListReply reply;
  GRANARY_TRY(ScanRecords<VolumeRecord>(txn, Cf::kCatalog, kVolumePrefix, [&](VolumeRecord& r) {
    *reply.add_volumes() = r.volume();
  }));
  return reply;
}

namespace {
// Bytes of the slices only `volume`'s namespace references.
Result<uint64_t> ExclusiveBytes(Txn& txn, const Volume& volume) {
  std::map<uint64_t, uint32_t> refs;  // slice -> references from this namespace
  std::set<uint64_t> seen;            // inodes (hard links counted once)
  std::vector<uint64_t> dirs = {volume.root_ino()};
  while (!dirs.empty()) {
    const uint64_t dir = dirs.back();
    dirs.pop_back();
    auto children = ListDentries(txn, dir);
    GRANARY_TRY(children);
    for (const auto& [name, e] : *children) {
      if (!seen.insert(e.ino()).second) continue;
      if (e.type() == DIRECTORY) {
        dirs.push_back(e.ino());
        continue;
      }
      auto chunks = ListChunks(txn, e.ino());
      GRANARY_TRY(chunks);
      for (const auto& [range, c] : *chunks) {
        for (const SliceRef& s : c.slices()) ++refs[s.slice_id()];
      }
    }
  }
  uint64_t bytes = 0;
  for (const auto& [slice_id, count] : refs) {
    SliceRecord slice;
    auto found = txn.GetRecord(Cf::kSystem, SliceKey(slice_id), &slice);
    GRANARY_TRY(found);
    if (*found && slice.refs() <= count) bytes += slice.slice_length();
  }
  return bytes;
}
}  // namespace

Result<VolumeListReply> QuerySnapshots(Txn& txn, const SnapshotListRequest& req) {
  VolumeListReply reply;
  std::vector<Volume> snapshots;
  GRANARY_TRY(ScanRecords<VolumeRecord>(txn, Cf::kCatalog, kVolumePrefix, [&](VolumeRecord& r) {
    const Volume& v = r.volume();
    if (!v.read_only()) return;
    if (!req.volume().empty() && v.name() != req.volume() + "@" + v.snapshot_name()) return;
    snapshots.push_back(v);
  }));
  for (Volume& v : snapshots) {
    auto exclusive = ExclusiveBytes(txn, v);
    GRANARY_TRY(exclusive);
    v.set_exclusive_bytes(*exclusive);
    *reply.add_volumes() = std::move(v);
  }
  return reply;
}

Result<PoolListReply> QueryPools(Txn& txn) {
  PoolListReply reply;
  GRANARY_TRY(ScanRecords<PoolRecord>(txn, Cf::kCatalog, kPoolPrefix,
                                      [&](PoolRecord& r) { *reply.add_pools() = r.spec(); }));
  return reply;
}

Result<Bucket> QueryBucket(Txn& txn, const std::string& name) {
  BucketRecord rec;
  auto found = txn.GetRecord(Cf::kCatalog, BucketKey(name), &rec);
  GRANARY_TRY(found);
  if (!*found) return NotFound(fmt::format("bucket '{}'", name));
  return std::move(*rec.mutable_bucket());
}

Result<BucketListReply> QueryBuckets(Txn& txn) {
  BucketListReply reply;
  GRANARY_TRY(ScanRecords<BucketRecord>(txn, Cf::kCatalog, kBucketPrefix, [&](BucketRecord& r) {
    *reply.add_buckets() = r.bucket();
  }));
  return reply;
}

Result<KeyRecord> QueryKey(Txn& txn, const std::string& access_key) {
  KeyRecord rec;
  auto found = txn.GetRecord(Cf::kCatalog, AccessKeyKey(access_key), &rec);
  GRANARY_TRY(found);
  if (!*found) return NotFound(fmt::format("access key '{}'", access_key));
  return rec;
}

Result<KeyListReply> QueryKeys(Txn& txn) {
  KeyListReply reply;
  GRANARY_TRY(ScanRecords<KeyRecord>(txn, Cf::kCatalog, kAccessKeyPrefix, [&](KeyRecord& r) {
    AccessKey& k = *reply.add_keys();
    k.set_access_key(r.access_key());
    k.set_name(r.name());
    k.set_created_ms(r.created_ms());
  }));
  return reply;
}

Result<std::vector<NodeInfo>> QueryNodes(Txn& txn) {
  std::vector<NodeInfo> nodes;
  GRANARY_TRY(ScanRecords<NodeRecord>(txn, Cf::kSystem, kNodePrefix,
                                      [&](NodeRecord& r) { nodes.push_back(r.node()); }));
  return nodes;
}

Result<ClusterRecord> QueryCluster(Txn& txn) {
  ClusterRecord rec;
  GRANARY_TRY(txn.GetRecord(Cf::kSystem, kClusterKey, &rec));
  return rec;
}

}  // namespace granary::metanode
