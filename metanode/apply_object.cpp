// Object operations for the S3 gateway (proto/granary/object.proto, docs/s3.md): an object key
// is a path in the bucket's volume, and each call below is ONE operation, so a PUT's parents,
// precondition and replacement commit together and a DELETE takes its emptied parents with it.
#include "metanode/apply_object.h"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <algorithm>
#include <map>
#include <memory>

#include "metanode/apply_internal.h"
#include "metanode/reader.h"
#include "metanode/slice_map.h"

namespace granary::metanode {

namespace {

// Parts of an upload are pinned by the upload itself (not by a gateway handle) until completion.
constexpr uint64_t kUploadPin = 1;

std::string Hex(const unsigned char* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out.push_back(digits[p[i] >> 4]);
    out.push_back(digits[p[i] & 15]);
  }
  return out;
}

std::string Unquote(std::string_view etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"')
    etag = etag.substr(1, etag.size() - 2);
  return std::string(etag);
}

bool EtagMatches(std::string_view want, std::string_view have) {
  return want == "*" || Unquote(want) == Unquote(have);
}

Status CheckPrecondition(const Precondition& pre, const std::optional<ObjectInfo>& current,
                         std::string_view key) {
  if (pre.if_none_match_any() && current) {
    return Status(Code::PRECONDITION_FAILED,
                  fmt::format("If-None-Match: * but object '{}' exists", key));
  }
  if (!pre.if_match().empty()) {
    if (!current) return NotFound(fmt::format("If-Match: object '{}' does not exist", key));
    if (!EtagMatches(pre.if_match(), current->etag())) {
      return Status(Code::PRECONDITION_FAILED,
                    fmt::format("If-Match {} but object '{}' has ETag {}", pre.if_match(), key,
                                current->etag()));
    }
  }
  return Status::Ok();
}

// Appends the bytes of `sources` to `rec` as slice references (no data is copied).
Status AppendSources(Ctx& ctx, InodeRecord& rec, VolumeRecord& vol,
                     const google::protobuf::RepeatedPtrField<ObjectSource>& sources) {
  InodeAttr& a = *rec.mutable_attr();
  uint64_t pos = a.size();
  const uint64_t old_size = pos;
  std::map<uint64_t, ChunkRecord> chunks;
  for (const ObjectSource& src : sources) {
    auto s = LoadInode(ctx.txn, src.ino());
    GRANARY_TRY(s);
    if (s->attr().type() != REGULAR) {
      return InvalidArgument(fmt::format("copy source inode {} is not a file", src.ino()));
    }
    const uint64_t size = s->attr().size();
    const uint64_t begin = src.offset();
    const uint64_t end = src.length() == 0 ? size : begin + src.length();
    if (begin > size || end > size) {
      return InvalidArgument(fmt::format("source range [{}, {}) of inode {} beyond its size {}",
                                         begin, end, src.ino(), size));
    }
    std::vector<Extent> extents;
    GRANARY_TRY(ctx.txn.Scan(Cf::kSlices, ChunkPrefix(src.ino()),
                             ChunkKey(src.ino(), begin / kChunkRangeSize), false,
                             [&](std::string_view key, std::string_view value) {
                               uint64_t range = ReadU64(key.substr(8));
                               uint64_t start = range * kChunkRangeSize;
                               if (start >= end) return false;
                               ChunkRecord c;
                               c.ParseFromArray(value.data(), static_cast<int>(value.size()));
                               uint64_t lo = begin > start ? begin - start : 0;
                               uint64_t hi = std::min(end - start, kChunkRangeSize);
                               for (auto& x : ResolveRange(c, range, lo, hi))
                                 extents.push_back(std::move(x));
                               return true;
                             }));
    for (const Extent& e : extents) {
      uint64_t t = pos + (e.file_offset() - begin);
      uint64_t off = e.offset_in_slice();
      uint64_t left = e.length();
      while (left > 0) {  // a reference never crosses a chunk range
        uint64_t range = t / kChunkRangeSize, in = t % kChunkRangeSize;
        uint64_t n = std::min(left, kChunkRangeSize - in);
        SliceRef& ref = *chunks[range].add_slices();
        ref.set_slice_id(e.slice_id());
        ref.set_slice_length(e.slice_length());
        ref.set_offset_in_slice(off);
        ref.set_length(n);
        ref.set_pos(in);
        ref.set_encoding(e.encoding());
        t += n;
        off += n;
        left -= n;
      }
    }
    pos += end - begin;
  }
  Volume& v = *vol.mutable_volume();
  const uint64_t growth = pos - old_size;
  if (v.quota_bytes() != 0 && v.used_bytes() + v.reserved_bytes() + growth > v.quota_bytes()) {
    return Status(Code::QUOTA_EXCEEDED,
                  fmt::format("volume {}: byte quota {} reached", v.name(), v.quota_bytes()));
  }
  v.set_used_bytes(v.used_bytes() + growth);
  for (auto& [range, add] : chunks) {
    ChunkRecord chunk;
    auto found = ctx.txn.GetRecord(Cf::kSlices, ChunkKey(a.ino(), range), &chunk);
    GRANARY_TRY(found);
    chunk.set_format(kFormat);
    // The copy shares its sources' slices: each new reference is counted (apply_gc.cpp), so
    // deleting a source does not make them garbage.
    for (const SliceRef& r : add.slices()) GRANARY_TRY(AddSliceRefs(ctx, a, range, r, 1));
    for (auto& r : *add.mutable_slices()) *chunk.add_slices() = std::move(r);
    ctx.txn.PutRecord(Cf::kSlices, ChunkKey(a.ino(), range), chunk);
  }
  a.set_size(pos);
  a.set_commit_version(a.commit_version() + 1);
  return Status::Ok();
}

struct PublishArgs {
  uint64_t volume_id = 0;
  std::string key;
  uint64_t ino = 0;  // staged inode, or 0
  const google::protobuf::RepeatedPtrField<ObjectSource>* sources = nullptr;
  Precondition precondition;
  ObjectMeta meta;
  uint32_t uid = 0, gid = 0, dir_mode = 0755, file_mode = 0644;
  uint64_t handle_owner = 0;
};

Result<ObjectInfo> PublishAt(Ctx& ctx, VolumeRecord& vol, const PublishArgs& args) {
  bool marker = false;
  auto comps = SplitObjectKey(args.key, &marker);
  GRANARY_TRY(comps);
  const uint64_t root = vol.volume().root_ino();
  std::vector<std::string> dirs(comps->begin(), comps->end() - (marker ? 0 : 1));
  if (marker) {
    // A directory marker: the directory itself (an empty body was checked by the gateway).
    std::vector<std::string> parents(dirs.begin(), dirs.end() - 1);
    auto path = WalkDirs(&ctx, ctx.txn, &vol, root, parents, args.uid, args.gid, args.dir_mode);
    GRANARY_TRY(path);
    auto d = LoadDentry(ctx.txn, path->back(), dirs.back());
    GRANARY_TRY(d);
    if (*d && (*d)->type() != DIRECTORY) {
      return Status(Code::NOT_DIRECTORY,
                    fmt::format("'{}' is an object; '{}' cannot be a directory",
                                args.key.substr(0, args.key.size() - 1), args.key));
    }
    if (*d && args.precondition.if_none_match_any()) {
      return Status(Code::PRECONDITION_FAILED, fmt::format("'{}' exists", args.key));
    }
    auto full = WalkDirs(&ctx, ctx.txn, &vol, root, dirs, args.uid, args.gid, args.dir_mode);
    GRANARY_TRY(full);
    auto rec = LoadInode(ctx.txn, full->back());
    GRANARY_TRY(rec);
    if (args.ino != 0) {  // a staged (empty) inode is not needed for a marker
      auto staged = LoadInode(ctx.txn, args.ino);
      if (staged.ok() && staged->attr().nlink() == 0)
        FreeInode(ctx, *staged, vol).PermitUnchecked();
    }
    SaveVolume(ctx.txn, vol);
    return MakeInfo(*rec, args.key);
  }
  auto path = WalkDirs(&ctx, ctx.txn, &vol, root, dirs, args.uid, args.gid, args.dir_mode);
  GRANARY_TRY(path);
  const uint64_t parent = path->back();
  const std::string& name = comps->back();
  auto existing = LoadDentry(ctx.txn, parent, name);
  GRANARY_TRY(existing);
  std::optional<InodeRecord> old;
  std::optional<ObjectInfo> current;
  if (*existing) {
    if ((*existing)->type() == DIRECTORY) {
      return Status(Code::IS_DIRECTORY, fmt::format("'{}' is a directory (keys exist below '{}/')",
                                                    args.key, args.key));
    }
    auto rec = LoadInode(ctx.txn, (*existing)->ino());
    GRANARY_TRY(rec);
    current = MakeInfo(*rec, args.key);
    old = std::move(*rec);
  }
  GRANARY_TRY(CheckPrecondition(args.precondition, current, args.key));

  InodeRecord rec;
  if (args.ino != 0) {
    auto staged = LoadInode(ctx.txn, args.ino);
    GRANARY_TRY(staged);
    if (staged->attr().type() != REGULAR || staged->attr().nlink() != 0 ||
        staged->attr().volume_id() != vol.volume().id()) {
      return InvalidArgument(
          fmt::format("inode {} is not a staged object of volume {}", args.ino, vol.volume().id()));
    }
    rec = std::move(*staged);
  } else {
    auto fresh = NewInode(ctx, vol, REGULAR, args.file_mode, args.uid, args.gid);
    GRANARY_TRY(fresh);
    rec = std::move(*fresh);
  }
  if (args.sources && !args.sources->empty()) {
    if (args.ino == 0) {
      // Blocks are placed by the file's layout: the assembled object takes its sources' layout.
      for (const ObjectSource& src : *args.sources) {
        auto s = LoadInode(ctx.txn, src.ino());
        GRANARY_TRY(s);
        if (&src == &args.sources->Get(0)) {
          *rec.mutable_attr()->mutable_layout() = s->attr().layout();
        } else if (s->attr().layout().SerializeAsString() !=
                   rec.attr().layout().SerializeAsString()) {
          return InvalidArgument(
              fmt::format("source inode {} has another layout; copy its bytes instead", src.ino()));
        }
      }
    }
    GRANARY_TRY(AppendSources(ctx, rec, vol, *args.sources));
  }
  if (args.handle_owner != 0) DropPin(ctx, rec, args.handle_owner, /*all=*/true);
  InodeAttr& a = *rec.mutable_attr();
  a.set_nlink(1);
  *a.mutable_mtime() = ctx.Now();
  *a.mutable_ctime() = ctx.Now();
  ObjectMeta meta = args.meta;
  meta.set_commit_version(a.commit_version());
  (*rec.mutable_xattrs())[std::string(kObjectMetaXattr)] = meta.SerializeAsString();
  ctx.txn.Delete(Cf::kSystem, OrphanKey(a.ino()));
  if (old) GRANARY_TRY(DropLink(ctx, *old, vol));
  SaveDentry(ctx.txn, parent, name, a.ino(), REGULAR);
  SaveInode(ctx.txn, rec);
  auto dir = LoadInode(ctx.txn, parent);
  GRANARY_TRY(dir);
  *dir->mutable_attr()->mutable_mtime() = ctx.Now();
  *dir->mutable_attr()->mutable_ctime() = ctx.Now();
  SaveInode(ctx.txn, *dir);
  SaveVolume(ctx.txn, vol);
  return MakeInfo(rec, args.key);
}

}  // namespace

std::string UploadPrefix(uint64_t volume_id) {
  std::string k = "U";
  AppendU64(&k, volume_id);
  return k;
}

std::string UploadKey(uint64_t volume_id, std::string_view upload_id) {
  return UploadPrefix(volume_id) + std::string(upload_id);
}

Result<uint64_t> RootOf(Txn& txn, uint64_t volume_id) {
  auto v = LoadVolume(txn, volume_id);
  GRANARY_TRY(v);
  return v->volume().root_ino();
}

ObjectInfo MakeInfo(const InodeRecord& rec, std::string key) {
  ObjectInfo info;
  info.set_key(std::move(key));
  *info.mutable_attr() = rec.attr();
  ObjectMeta meta;
  auto it = rec.xattrs().find(std::string(kObjectMetaXattr));
  const bool has_meta = it != rec.xattrs().end() && meta.ParseFromString(it->second);
  // Owner, ACL and tags describe the object, not its bytes: a POSIX rewrite keeps them.
  info.set_owner(meta.owner());
  *info.mutable_acl() = meta.acl();
  for (auto& [k, v] : meta.tags()) (*info.mutable_tags())[k] = v;
  if (rec.attr().type() == DIRECTORY) {
    info.set_is_directory(true);
    info.set_etag("\"d41d8cd98f00b204e9800998ecf8427e\"");  // MD5 of no bytes
    return info;
  }
  // An ObjectMeta made by ObjectUpdate for a file written through POSIX has no ETag.
  const bool current = has_meta && meta.commit_version() == rec.attr().commit_version();
  if (current && !meta.etag().empty()) {
    info.set_etag(meta.etag());
    info.set_parts_count(static_cast<uint32_t>(meta.parts_size()));
  } else {
    info.set_etag(PosixEtag(rec.attr()));
  }
  for (auto& [k, v] : meta.headers()) (*info.mutable_headers())[k] = v;
  return info;
}

Result<std::vector<uint64_t>> WalkDirs(Ctx* ctx, Txn& txn, VolumeRecord* vol, uint64_t root,
                                       const std::vector<std::string>& dirs, uint32_t uid,
                                       uint32_t gid, uint32_t mode) {
  std::vector<uint64_t> path{root};
  for (size_t i = 0; i < dirs.size(); ++i) {
    auto d = LoadDentry(txn, path.back(), dirs[i]);
    GRANARY_TRY(d);
    if (*d) {
      if ((*d)->type() != DIRECTORY) {
        if (!ctx) return path;
        std::string prefix;
        for (size_t j = 0; j <= i; ++j) prefix += (j ? "/" : "") + dirs[j];
        return Status(Code::NOT_DIRECTORY,
                      fmt::format("'{}' is an object, so it cannot hold keys below it", prefix));
      }
      path.push_back((*d)->ino());
      continue;
    }
    if (!ctx) return path;
    auto parent = LoadDir(txn, path.back());
    GRANARY_TRY(parent);
    auto rec = NewInode(*ctx, *vol, DIRECTORY, mode ? mode : 0755, uid, gid);
    GRANARY_TRY(rec);
    rec->mutable_attr()->set_parent(path.back());
    SaveInode(txn, *rec);
    SaveDentry(txn, path.back(), dirs[i], rec->attr().ino(), DIRECTORY);
    InodeAttr& pa = *parent->mutable_attr();
    pa.set_nlink(pa.nlink() + 1);
    *pa.mutable_mtime() = ctx->Now();
    *pa.mutable_ctime() = ctx->Now();
    SaveInode(txn, *parent);
    path.push_back(rec->attr().ino());
  }
  return path;
}

Result<UploadRecord> LoadUpload(Txn& txn, uint64_t volume_id, const std::string& upload_id) {
  return LoadRecord<UploadRecord>(txn, Cf::kSystem, UploadKey(volume_id, upload_id),
                                  fmt::format("upload '{}'", upload_id));
}

std::string PosixEtag(const InodeAttr& attr) {
  // Not the MD5 of the bytes (unknown without reading them): a digest of identity and commit
  // version, so the ETag changes with every commit. The "-1" marks it as not-an-MD5, like a
  // one-part multipart ETag, which tools already accept.
  unsigned char in[16], md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  for (int i = 0; i < 8; ++i) in[i] = static_cast<unsigned char>(attr.ino() >> (56 - 8 * i));
  for (int i = 0; i < 8; ++i)
    in[8 + i] = static_cast<unsigned char>(attr.commit_version() >> (56 - 8 * i));
  // A listing computes one per entry: the digest is fetched once and each thread keeps its
  // context (EVP_Digest fetches the one and allocates the other per call: 12 % of a listing).
  static EVP_MD* const md5 = EVP_MD_fetch(nullptr, "MD5", nullptr);
  thread_local std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                                           &EVP_MD_CTX_free);
  if (md5 == nullptr || ctx == nullptr || EVP_DigestInit_ex(ctx.get(), md5, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), in, sizeof in) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), md, &len) != 1) {
    EVP_Digest(in, sizeof in, md, &len, EVP_md5(), nullptr);
  }
  return "\"" + Hex(md, len) + "-1\"";
}

Result<std::vector<std::string>> SplitObjectKey(std::string_view key, bool* directory_marker) {
  if (key.empty()) return InvalidArgument("empty object key");
  if (key.size() > 1024) {
    return Status(Code::NAME_TOO_LONG, fmt::format("key of {} bytes (limit 1024)", key.size()));
  }
  *directory_marker = key.back() == '/';
  if (*directory_marker) key.remove_suffix(1);
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t slash = key.find('/', start);
    std::string_view part =
        key.substr(start, slash == std::string_view::npos ? key.npos : slash - start);
    Status s = ValidateName(part);
    if (!s.ok()) return s.WithContext(fmt::format("key '{}'", key));
    out.emplace_back(part);
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return out;
}

Status ApplyObjectStage(Ctx& ctx, OpReply* reply) {
  const StageRequest& req = ctx.op.object_stage();
  auto vol = LoadVolume(ctx.txn, req.volume_id());
  GRANARY_TRY(vol);
  auto rec = NewInode(ctx, *vol, REGULAR, req.mode() ? req.mode() : 0644, req.uid(), req.gid());
  GRANARY_TRY(rec);
  rec->mutable_attr()->set_nlink(0);
  if (req.has_layout()) *rec->mutable_attr()->mutable_layout() = req.layout();
  AddPin(ctx, *rec, req.handle_owner());
  SaveInode(ctx.txn, *rec);
  OrphanRecord orphan;
  orphan.set_format(kFormat);
  orphan.set_since_ms(ctx.op.now_ms());
  ctx.txn.PutRecord(Cf::kSystem, OrphanKey(rec->attr().ino()), orphan);
  SaveVolume(ctx.txn, *vol);
  if (req.allocate_slices() == 0) {
    *reply->mutable_attr()->mutable_attr() = rec->attr();
    return Status::Ok();
  }
  // The allocation, applied by the DataMap code itself on a derived operation.
  Operation sub = ctx.op;
  AllocateRequest& a = *sub.mutable_allocate();
  a.set_ino(rec->attr().ino());
  a.set_slice_count(req.allocate_slices());
  a.set_bytes(req.allocate_bytes());
  Ctx sub_ctx{ctx.txn, sub, ctx.mapper};
  OpReply allocated;
  GRANARY_TRY(ApplyAllocate(sub_ctx, &allocated));
  StageReply& out = *reply->mutable_stage();
  *out.mutable_attr() = rec->attr();
  *out.mutable_allocation() = allocated.allocate();
  return Status::Ok();
}

Status ApplyObjectPublish(Ctx& ctx, OpReply* reply) {
  const PublishRequest& req = ctx.op.object_publish();
  if (req.has_commit()) {
    // The staged inode's data commit goes first (it settles the volume's bytes itself).
    if (req.commit().ino() != req.ino() || req.ino() == 0) {
      return InvalidArgument("publish: the commit must be for the staged inode");
    }
    Operation sub = ctx.op;
    *sub.mutable_commit() = req.commit();
    Ctx sub_ctx{ctx.txn, sub, ctx.mapper};
    OpReply committed;
    GRANARY_TRY(ApplyCommit(sub_ctx, &committed));
  }
  auto vol = LoadVolume(ctx.txn, req.volume_id());
  GRANARY_TRY(vol);
  PublishArgs args;
  args.volume_id = req.volume_id();
  args.key = req.key();
  args.ino = req.ino();
  args.sources = &req.sources();
  args.precondition = req.precondition();
  args.meta = req.meta();
  args.uid = req.uid();
  args.gid = req.gid();
  args.dir_mode = req.dir_mode() ? req.dir_mode() : 0755;
  args.file_mode = req.file_mode() ? req.file_mode() : 0644;
  args.handle_owner = req.handle_owner();
  auto info = PublishAt(ctx, *vol, args);
  GRANARY_TRY(info);
  *reply->mutable_object()->mutable_info() = std::move(*info);
  return Status::Ok();
}

Status ApplyObjectDelete(Ctx& ctx, OpReply* reply) {
  const ObjectDeleteRequest& req = ctx.op.object_delete();
  auto vol = LoadVolume(ctx.txn, req.volume_id());
  GRANARY_TRY(vol);
  bool marker = false;
  auto comps = SplitObjectKey(req.key(), &marker);
  GRANARY_TRY(comps);
  std::vector<std::string> dirs(comps->begin(), comps->end() - 1);
  auto path = WalkDirs(nullptr, ctx.txn, nullptr, vol->volume().root_ino(), dirs, 0, 0, 0);
  GRANARY_TRY(path);
  reply->mutable_object_delete()->set_existed(false);
  if (path->size() != dirs.size() + 1) return Status::Ok();  // a parent is missing: no object
  auto d = LoadDentry(ctx.txn, path->back(), comps->back());
  GRANARY_TRY(d);
  if (!*d) return Status::Ok();
  if (marker != ((*d)->type() == DIRECTORY)) return Status::Ok();  // "a/" vs "a": not this key
  if (marker) {
    auto empty = DirIsEmpty(ctx.txn, (*d)->ino());
    GRANARY_TRY(empty);
    if (!*empty) return Status::Ok();  // the marker of a non-empty directory stays implied
    path->push_back((*d)->ino());
  } else {
    auto rec = LoadInode(ctx.txn, (*d)->ino());
    GRANARY_TRY(rec);
    ctx.txn.Delete(Cf::kDentries, DentryKey(path->back(), comps->back()));
    GRANARY_TRY(DropLink(ctx, *rec, *vol));
    auto parent = LoadInode(ctx.txn, path->back());
    GRANARY_TRY(parent);
    *parent->mutable_attr()->mutable_mtime() = ctx.Now();
    SaveInode(ctx.txn, *parent);
  }
  reply->mutable_object_delete()->set_existed(true);
  // Implicit parents go with their last object (never the volume root).
  for (size_t i = path->size() - 1; i >= 1; --i) {
    auto empty = DirIsEmpty(ctx.txn, (*path)[i]);
    GRANARY_TRY(empty);
    if (!*empty) break;
    auto dir = LoadInode(ctx.txn, (*path)[i]);
    GRANARY_TRY(dir);
    ctx.txn.Delete(Cf::kDentries, DentryKey((*path)[i - 1], (*comps)[i - 1]));
    GRANARY_TRY(DropLink(ctx, *dir, *vol));
    auto parent = LoadInode(ctx.txn, (*path)[i - 1]);
    GRANARY_TRY(parent);
    InodeAttr& pa = *parent->mutable_attr();
    pa.set_nlink(pa.nlink() > 2 ? pa.nlink() - 1 : 2);
    *pa.mutable_mtime() = ctx.Now();
    SaveInode(ctx.txn, *parent);
  }
  SaveVolume(ctx.txn, *vol);
  return Status::Ok();
}

Status ApplyUploadCreate(Ctx& ctx, OpReply* reply) {
  const UploadCreateOp& op = ctx.op.upload_create();
  const UploadCreateRequest& req = op.request();
  bool marker = false;
  GRANARY_TRY(SplitObjectKey(req.key(), &marker));
  auto vol = LoadVolume(ctx.txn, req.volume_id());
  GRANARY_TRY(vol);
  auto pool = LoadPool(ctx.txn, vol->volume().pool_id());
  GRANARY_TRY(pool);
  auto seed = NextId(ctx.txn, "upload");
  GRANARY_TRY(seed);
  UploadRecord rec;
  rec.set_format(kFormat);
  Upload& u = *rec.mutable_upload();
  u.set_upload_id(op.upload_id());
  u.set_volume_id(req.volume_id());
  u.set_key(req.key());
  u.set_initiated_ms(ctx.op.now_ms());
  *u.mutable_meta() = req.meta();
  u.set_uid(req.uid());
  u.set_gid(req.gid());
  Layout& layout = *u.mutable_layout();  // as NewInode lays out a file
  layout.set_pool_id(vol->volume().pool_id());
  layout.set_block_size(pool->spec().block_size());
  layout.set_stripe_width(std::min<uint32_t>(4, std::max<uint32_t>(1, pool->spec().pg_count())));
  layout.set_seed(Mix64(*seed ^ 0x5355504c4f4144ull));
  ctx.txn.PutRecord(Cf::kSystem, UploadKey(req.volume_id(), op.upload_id()), rec);
  *reply->mutable_upload()->mutable_upload() = u;
  return Status::Ok();
}

Status ApplyUploadPart(Ctx& ctx, OpReply* reply) {
  const UploadPartRequest& req = ctx.op.upload_part();
  auto up = LoadUpload(ctx.txn, req.volume_id(), req.upload_id());
  GRANARY_TRY(up);
  auto vol = LoadVolume(ctx.txn, req.volume_id());
  GRANARY_TRY(vol);
  auto staged = LoadInode(ctx.txn, req.part().ino());
  GRANARY_TRY(staged);
  if (staged->attr().nlink() != 0) {
    return InvalidArgument(fmt::format("inode {} is not a staged part", req.part().ino()));
  }
  // The part now belongs to the upload (which expires on its own), not to the client's session.
  DropPin(ctx, *staged, req.handle_owner(), /*all=*/true);
  (*staged->mutable_open_handles())[kUploadPin] = 1;
  SaveInode(ctx.txn, *staged);
  Upload& u = *up->mutable_upload();
  std::vector<UploadPart> parts(u.parts().begin(), u.parts().end());
  auto it = std::find_if(parts.begin(), parts.end(),
                         [&](const UploadPart& p) { return p.number() == req.part().number(); });
  if (it != parts.end()) {  // a re-uploaded part replaces the earlier one
    auto prev = LoadInode(ctx.txn, it->ino());
    if (prev.ok()) GRANARY_TRY(FreeInode(ctx, *prev, *vol));
    *it = req.part();
  } else {
    parts.push_back(req.part());
  }
  std::sort(parts.begin(), parts.end(),
            [](const UploadPart& a, const UploadPart& b) { return a.number() < b.number(); });
  u.clear_parts();
  for (auto& p : parts) *u.add_parts() = std::move(p);
  ctx.txn.PutRecord(Cf::kSystem, UploadKey(req.volume_id(), req.upload_id()), *up);
  SaveVolume(ctx.txn, *vol);
  *reply->mutable_upload()->mutable_upload() = u;
  return Status::Ok();
}

Status ApplyUploadComplete(Ctx& ctx, OpReply* reply) {
  const UploadCompleteRequest& req = ctx.op.upload_complete();
  auto up = LoadUpload(ctx.txn, req.volume_id(), req.upload_id());
  if (!up.ok() && up.status().code() == Code::NOT_FOUND) {
    // Completed already? The same parts again get the first answer (apply_s3.cpp).
    auto again = RepeatCompletion(ctx, req, reply);
    GRANARY_TRY(again);
    if (*again) return Status::Ok();
  }
  GRANARY_TRY(up);
  auto vol = LoadVolume(ctx.txn, req.volume_id());
  GRANARY_TRY(vol);
  const Upload& u = up->upload();
  std::map<uint32_t, const UploadPart*> stored;
  for (const auto& p : u.parts()) stored[p.number()] = &p;
  google::protobuf::RepeatedPtrField<ObjectSource> sources;
  google::protobuf::RepeatedPtrField<ObjectPart> parts;
  uint32_t last = 0;
  for (const auto& want : req.parts()) {
    auto it = stored.find(want.number());
    if (it == stored.end() || !EtagMatches(want.etag(), it->second->etag())) {
      return InvalidArgument(fmt::format("InvalidPart: part {} was not uploaded with ETag {}",
                                         want.number(), want.etag()));
    }
    if (want.number() <= last) {
      return InvalidArgument(
          fmt::format("InvalidPartOrder: part {} after {}", want.number(), last));
    }
    last = want.number();
    ObjectSource& s = *sources.Add();
    s.set_ino(it->second->ino());
    ObjectPart& part = *parts.Add();
    part.set_number(want.number());
    part.set_size(it->second->size());
    if (it->second->checksum_algorithm() == req.checksum_algorithm()) {
      part.set_checksum(it->second->checksum());
    }
  }
  if (sources.empty()) return InvalidArgument("MalformedXML: no parts to complete");
  PublishArgs args;
  args.volume_id = req.volume_id();
  args.key = u.key();
  args.sources = &sources;
  args.precondition = req.precondition();
  args.meta = u.meta();
  args.meta.set_etag(req.etag());
  *args.meta.mutable_parts() = std::move(parts);
  if (!req.checksum().empty()) {
    args.meta.set_checksum_algorithm(req.checksum_algorithm());
    args.meta.set_checksum(req.checksum());
    args.meta.set_checksum_composite(true);
  }
  args.uid = u.uid();
  args.gid = u.gid();
  args.dir_mode = req.dir_mode() ? req.dir_mode() : 0755;
  args.file_mode = req.file_mode() ? req.file_mode() : 0644;
  auto info = PublishAt(ctx, *vol, args);
  GRANARY_TRY(info);
  for (const auto& p : u.parts()) {
    auto part = LoadInode(ctx.txn, p.ino());
    // A used part's slices live on through the references the object now holds; an unused
    // part's become garbage.
    if (part.ok()) GRANARY_TRY(FreeInode(ctx, *part, *vol));
  }
  // The parts' bytes now count once, in the object.
  ctx.txn.Delete(Cf::kSystem, UploadKey(req.volume_id(), req.upload_id()));
  SaveVolume(ctx.txn, *vol);
  RecordCompletion(ctx, req, u.key(), *info);
  ObjectReply& out = *reply->mutable_object();
  *out.mutable_info() = std::move(*info);
  out.set_checksum_algorithm(req.checksum_algorithm());
  out.set_checksum(req.checksum());
  return Status::Ok();
}

Status ApplyUploadAbort(Ctx& ctx, OpReply* reply) {
  const UploadAbortRequest& req = ctx.op.upload_abort();
  auto up = LoadUpload(ctx.txn, req.volume_id(), req.upload_id());
  GRANARY_TRY(up);
  auto vol = LoadVolume(ctx.txn, req.volume_id());
  GRANARY_TRY(vol);
  for (const auto& p : up->upload().parts()) {
    auto part = LoadInode(ctx.txn, p.ino());
    if (part.ok()) GRANARY_TRY(FreeInode(ctx, *part, *vol));
  }
  ctx.txn.Delete(Cf::kSystem, UploadKey(req.volume_id(), req.upload_id()));
  SaveVolume(ctx.txn, *vol);
  return Status::Ok();
}

// ---------------------------------------------------------------- queries

}  // namespace granary::metanode
