// Object queries for the S3 gateway (proto/granary/object.proto): get, list (v1/v2 walk of the
// bucket's directory tree) and multipart uploads, read from one snapshot.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>
#include <utility>
#include <vector>

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
  Lister(Txn& t, const ObjectListRequest& r, uint32_t m) : txn(t), req(r), max(m) {}
  Txn& txn;
  const ObjectListRequest& req;
  uint32_t max;
  ObjectListReply reply;
  uint32_t emitted = 0;
  bool done = false;
  std::string last_prefix;
  // Objects taken in order whose inodes are not read yet: read together (one MultiGet, half a
  // listing's time when read one by one) before anything that follows them is added.
  std::vector<std::pair<std::string, uint64_t>> pending;
  static constexpr size_t kReadTogether = 256;

  // False once the page is full (then marked truncated: more follows).
  bool Room() {
    if (emitted + pending.size() < max) return true;
    reply.set_truncated(true);
    done = true;
    return false;
  }
  Status Flush() {
    if (pending.empty()) return Status::Ok();
    std::vector<std::string> keys;
    keys.reserve(pending.size());
    for (const auto& p : pending) keys.push_back(InodeKey(p.second));
    std::vector<std::optional<std::string>> values;
    GRANARY_TRY(txn.MultiGet(Cf::kInodes, keys, &values));
    for (size_t i = 0; i < pending.size(); ++i) {
      InodeRecord rec;
      if (!values[i] || !rec.ParseFromString(*values[i])) {
        return Corrupt(
            fmt::format("inode {} of listed key '{}'", pending[i].second, pending[i].first));
      }
      ObjectInfo& info = *reply.add_objects() = MakeInfo(rec, pending[i].first);
      // A listing shows none of these: keep the page small.
      info.clear_acl();
      info.clear_tags();
      reply.set_next_marker(std::move(pending[i].first));
      ++emitted;
    }
    pending.clear();
    return Status::Ok();
  }
  Status EmitObject(const std::string& key, uint64_t ino) {
    if (!Room()) return Status::Ok();
    pending.emplace_back(key, ino);
    return pending.size() >= kReadTogether ? Flush() : Status::Ok();
  }
  Status EmitPrefix(const std::string& prefix) {
    if (prefix == last_prefix || !Room()) return Status::Ok();
    GRANARY_TRY(Flush());
    reply.add_common_prefixes(prefix);
    reply.set_next_marker(prefix);
    last_prefix = prefix;
    ++emitted;
    return Status::Ok();
  }

  // One entry of a directory, in S3 order: its key is the path + name, with "/" for a directory.
  Status Take(const std::string& k, uint64_t ino, bool is_dir) {
    const std::string& want = req.prefix();
    const std::string& after = req.start_after();
    const std::string& delim = req.delimiter();
    const bool under = k.starts_with(want);
    // A directory may still hold matching keys when the prefix reaches into it.
    if (!under && !(is_dir && want.starts_with(k))) return Status::Ok();
    if (under && !delim.empty()) {
      size_t at = k.find(delim, want.size());
      if (at != std::string::npos) {
        std::string common = k.substr(0, at + delim.size());
        if (!(common <= after || after.starts_with(common))) GRANARY_TRY(EmitPrefix(common));
        if (done || common.size() <= k.size()) return Status::Ok();
      }
    }
    if (is_dir) {
      // Every key in the subtree sorts before `after`: skip it whole.
      if (!after.empty() && k < after && !after.starts_with(k)) return Status::Ok();
      bool empty = true;
      GRANARY_TRY(txn.Scan(Cf::kDentries, DentryPrefix(ino), "", false,
                           [&](std::string_view, std::string_view) {
                             empty = false;
                             return false;
                           }));
      if (!empty) return Visit(ino, k);
      // An empty directory is its marker object "k".
      return under && k > after ? EmitObject(k, ino) : Status::Ok();
    }
    if (!under || k <= after) return Status::Ok();
    return EmitObject(k, ino);
  }

  // Visits directory `dir` whose keys start with `path` ("" or "a/b/"), in S3 order, reading
  // only from the first name that can matter and stopping when the page is full, so a page
  // costs its own entries, not the directory's. Dentries come in name order; S3 orders a
  // directory "d" as "d/", after names that extend "d" with a byte below '/' ("d-1", "d.txt"),
  // so a directory waits in `held` until the scan passes its key.
  Status Visit(uint64_t dir, const std::string& path) {
    const std::string& want = req.prefix();
    const std::string& after = req.start_after();
    if (!after.starts_with(path) && after > path) return Status::Ok();  // all of it is past
    // Within this directory: names must start with `prefix`; names before `from` are past.
    const std::string prefix = want.size() > path.size() ? want.substr(path.size()) : "";
    std::string from = after.starts_with(path) ? after.substr(path.size()) : "";
    from = from.substr(0, from.find('/'));
    std::map<std::string, uint64_t> held;  // directory key ("name/") -> inode
    // Directories named by a proper prefix of `from` followed by a byte below '/' sort after
    // `from` although their names come before it.
    for (size_t n = std::max<size_t>(prefix.size(), 1); n < from.size(); ++n) {
      if (static_cast<uint8_t>(from[n]) >= '/') continue;
      auto d = LoadDentry(txn, dir, from.substr(0, n));
      GRANARY_TRY(d);
      if (*d && (*d)->type() == DIRECTORY) held.emplace(from.substr(0, n) + "/", (*d)->ino());
    }
    auto release = [&](const std::string* upto) -> Status {
      while (!done && !held.empty() && (upto == nullptr || held.begin()->first < *upto)) {
        auto node = held.extract(held.begin());
        GRANARY_TRY(Take(path + node.key(), node.mapped(), true));
      }
      return Status::Ok();
    };
    const std::string dprefix = DentryPrefix(dir);
    Status inner = Status::Ok();
    GRANARY_TRY(txn.Scan(Cf::kDentries, dprefix, dprefix + std::max(prefix, from), false,
                         [&](std::string_view key, std::string_view value) {
                           std::string name(key.substr(dprefix.size()));
                           if (!name.starts_with(prefix)) return false;  // past the prefix
                           DentryRecord d;
                           d.ParseFromArray(value.data(), static_cast<int>(value.size()));
                           if (d.type() != DIRECTORY && d.type() != REGULAR) return true;
                           if (d.type() == DIRECTORY) {
                             held.emplace(name + "/", d.ino());
                             return true;
                           }
                           inner = release(&name);
                           if (inner.ok() && !done) inner = Take(path + name, d.ino(), false);
                           return inner.ok() && !done;
                         }));
    GRANARY_TRY(inner);
    return release(nullptr);
  }
};

}  // namespace

Result<ObjectListReply> QueryObjectList(Txn& txn, const ObjectListRequest& req) {
  auto root = RootOf(txn, req.volume_id());
  GRANARY_TRY(root);
  Lister l(txn, req, req.max_keys() == 0 ? 1000u : std::min(req.max_keys(), 1000u));
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
  GRANARY_TRY(l.Flush());
  if (!l.reply.truncated()) l.reply.clear_next_marker();
  return std::move(l.reply);
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
