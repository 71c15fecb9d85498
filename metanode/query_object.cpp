// Object queries for the S3 gateway (proto/granary/object.proto): get, list (v1/v2 walk of the
// bucket's directory tree) and multipart uploads, read from one snapshot.
#include <fmt/format.h>

#include <algorithm>

#include "metanode/apply_internal.h"
#include "metanode/apply_object.h"
#include "metanode/reader.h"

namespace granary::metanode {

Result<std::optional<InodeRecord>> LookupObject(Txn& txn, uint64_t volume_id,
                                                const std::string& key) {
  bool marker = false;
  auto comps = SplitObjectKey(key, &marker);
  GRANARY_TRY(comps);
  auto root = RootOf(txn, volume_id);
  GRANARY_TRY(root);
  std::vector<std::string> dirs(comps->begin(), comps->end() - 1);
  auto path = WalkDirs(nullptr, txn, nullptr, *root, dirs, 0, 0, 0);
  GRANARY_TRY(path);
  if (path->size() != dirs.size() + 1) return std::optional<InodeRecord>();
  auto d = LoadDentry(txn, path->back(), comps->back());
  GRANARY_TRY(d);
  if (!*d) return std::optional<InodeRecord>();
  const bool is_dir = (*d)->type() == DIRECTORY;
  if (marker != is_dir) return std::optional<InodeRecord>();
  if (!is_dir && (*d)->type() != REGULAR) {
    // Symlinks and special files (FIFOs, devices, sockets) exist only for the mount: they are
    // left out of listings and are no object (docs/s3.md "Special files").
    return NotFound(fmt::format("'{}' is a {} of the POSIX mount, not an object", key,
                                FileType_Name((*d)->type())));
  }
  auto rec = LoadInode(txn, (*d)->ino());
  GRANARY_TRY(rec);
  return std::optional<InodeRecord>(std::move(*rec));
}

Result<ObjectGetReply> QueryObjectGet(Txn& txn, const ObjectGetRequest& req) {
  auto rec = LookupObject(txn, req.volume_id(), req.key());
  GRANARY_TRY(rec);
  if (!*rec) return NotFound(fmt::format("object '{}'", req.key()));
  ObjectGetReply reply;
  *reply.mutable_info() = MakeInfo(**rec, req.key());
  if (req.with_extents() && (*rec)->attr().type() != DIRECTORY) {
    ReadMapRequest rm;
    rm.set_ino((*rec)->attr().ino());
    auto map = QueryReadMap(txn, rm);
    GRANARY_TRY(map);
    for (auto& e : *map->mutable_extents()) *reply.add_extents() = std::move(e);
  }
  return reply;
}

namespace {

struct Lister {
  Txn& txn;
  const ObjectListRequest& req;
  uint32_t max;
  ObjectListReply reply;
  uint32_t emitted = 0;
  bool done = false;

  // Returns false once the page is full (and marks it truncated when more follows).
  bool Emit(std::string key, const InodeRecord* rec) {
    if (emitted == max) {
      reply.set_truncated(true);
      done = true;
      return false;
    }
    if (rec) {
      ObjectInfo& info = *reply.add_objects() = MakeInfo(*rec, key);
      // A listing shows none of these: keep the page small.
      info.clear_acl();
      info.clear_tags();
    } else {
      reply.add_common_prefixes(key);
    }
    reply.set_next_marker(key);
    ++emitted;
    return true;
  }

  // Visits directory `dir` whose keys start with `path` ("" or "a/b/"), in S3 order.
  Status Visit(uint64_t dir, const std::string& path) {
    struct Entry {
      std::string sort_key;  // name, or name + "/" for a directory: S3's order
      uint64_t ino;
      bool is_dir;
    };
    std::vector<Entry> entries;
    const std::string prefix = DentryPrefix(dir);
    GRANARY_TRY(txn.Scan(Cf::kDentries, prefix, "", false,
                         [&](std::string_view key, std::string_view value) {
                           DentryRecord d;
                           d.ParseFromArray(value.data(), static_cast<int>(value.size()));
                           if (d.type() != DIRECTORY && d.type() != REGULAR) return true;
                           std::string name(key.substr(prefix.size()));
                           bool is_dir = d.type() == DIRECTORY;
                           entries.push_back({path + name + (is_dir ? "/" : ""), d.ino(), is_dir});
                           return true;
                         }));
    std::sort(entries.begin(), entries.end(),
              [](const Entry& a, const Entry& b) { return a.sort_key < b.sort_key; });
    const std::string& want = req.prefix();
    const std::string& after = req.start_after();
    const std::string& delim = req.delimiter();
    for (const Entry& e : entries) {
      if (done) break;
      const std::string& k = e.sort_key;
      const bool under = k.starts_with(want);
      // A directory may still hold matching keys when the prefix reaches into it.
      if (!under && !(e.is_dir && want.starts_with(k))) continue;
      if (under && !delim.empty()) {
        size_t at = k.find(delim, want.size());
        if (at != std::string::npos) {
          std::string common = k.substr(0, at + delim.size());
          if (!(common <= after || after.starts_with(common)) &&
              (reply.common_prefixes_size() == 0 ||
               reply.common_prefixes(reply.common_prefixes_size() - 1) != common)) {
            if (!Emit(common, nullptr)) break;
          }
          if (common.size() <= k.size()) continue;
        }
      }
      if (e.is_dir) {
        // Every key in the subtree sorts before `after`: skip it whole.
        if (!after.empty() && k < after && !after.starts_with(k)) continue;
        bool empty = true;
        GRANARY_TRY(txn.Scan(Cf::kDentries, DentryPrefix(e.ino), "", false,
                             [&](std::string_view, std::string_view) {
                               empty = false;
                               return false;
                             }));
        if (empty) {
          if (under && k > after) {  // an empty directory is its marker object "k"
            auto rec = LoadInode(txn, e.ino);
            GRANARY_TRY(rec);
            if (!Emit(k, &*rec)) break;
          }
          continue;
        }
        GRANARY_TRY(Visit(e.ino, k));
        continue;
      }
      if (!under || k <= after) continue;
      auto rec = LoadInode(txn, e.ino);
      GRANARY_TRY(rec);
      if (!Emit(k, &*rec)) break;
    }
    return Status::Ok();
  }
};

}  // namespace

Result<ObjectListReply> QueryObjectList(Txn& txn, const ObjectListRequest& req) {
  auto root = RootOf(txn, req.volume_id());
  GRANARY_TRY(root);
  Lister l{txn, req, req.max_keys() == 0 ? 1000u : std::min(req.max_keys(), 1000u), {}};
  // Start in the deepest directory the prefix names completely.
  uint64_t dir = *root;
  std::string path;
  size_t start = 0;
  while (true) {
    size_t slash = req.prefix().find('/', start);
    if (slash == std::string::npos) break;
    std::string name = req.prefix().substr(start, slash - start);
    if (name.empty()) return l.reply;
    auto d = LoadDentry(txn, dir, name);
    GRANARY_TRY(d);
    if (!*d || (*d)->type() != DIRECTORY) return l.reply;
    dir = (*d)->ino();
    path = req.prefix().substr(0, slash + 1);
    start = slash + 1;
  }
  GRANARY_TRY(l.Visit(dir, path));
  if (!l.reply.truncated()) l.reply.clear_next_marker();
  return l.reply;
}

Result<UploadReply> QueryUpload(Txn& txn, uint64_t volume_id, const std::string& upload_id,
                                bool include_completed) {
  UploadReply reply;
  auto up = LoadUpload(txn, volume_id, upload_id);
  if (up.ok()) {
    *reply.mutable_upload() = std::move(*up->mutable_upload());
    return reply;
  }
  if (!include_completed || up.status().code() != Code::NOT_FOUND) return up.status();
  auto done =
      FindRecord<CompletedUploadRecord>(txn, Cf::kSystem, CompletionKey(volume_id, upload_id));
  GRANARY_TRY(done);
  if (!*done) return up.status();
  reply.set_completed(true);
  reply.mutable_upload()->set_upload_id(upload_id);
  reply.mutable_upload()->set_volume_id(volume_id);
  reply.mutable_upload()->set_key((*done)->key());
  return reply;
}

Result<UploadListReply> QueryUploads(Txn& txn, const UploadListRequest& req) {
  UploadListReply reply;
  GRANARY_TRY(txn.Scan(Cf::kSystem, UploadPrefix(req.volume_id()), "", false,
                       [&](std::string_view, std::string_view value) {
                         UploadRecord r;
                         r.ParseFromArray(value.data(), static_cast<int>(value.size()));
                         if (r.upload().key().starts_with(req.prefix())) {
                           *reply.add_uploads() = std::move(*r.mutable_upload());
                         }
                         return reply.uploads_size() < 10000;
                       }));
  std::sort(reply.mutable_uploads()->begin(), reply.mutable_uploads()->end(),
            [](const Upload& a, const Upload& b) {
              return a.key() != b.key() ? a.key() < b.key() : a.initiated_ms() < b.initiated_ms();
            });
  return reply;
}

}  // namespace granary::metanode
