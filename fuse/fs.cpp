#include "fuse/fs.h"

#include <fmt/format.h>
#include <linux/falloc.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <tuple>

#include "client/cluster_view.h"
#include "client/meta_client.h"
#include "common/aligned_buffer.h"
#include "common/error_table.h"
#include "common/log.h"

namespace granary::fuse {
namespace {

constexpr size_t kMaxName = 255;

// What every request for a new name carries: where, the mode, the caller's uid/gid and, with
// POSIX ACLs, the caller's umask for the metanode to apply (or not, under a default ACL).
template <typename Request = CreateRequest>
Request EntryRequest(fuse_req_t req, uint64_t parent, const char* name, mode_t mode,
                     bool with_umask) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  Request r;
  r.set_parent(parent);
  r.set_name(name);
  r.set_mode(mode & 07777);
  r.set_uid(ctx->uid);
  r.set_gid(ctx->gid);
  if (with_umask) r.set_umask(ctx->umask);
  return r;
}
constexpr size_t kMaxIo = 1 << 20;  // max_read / max_write

Handle* H(fuse_file_info* fi) {
  return reinterpret_cast<GranaryFs::HandleRef*>(fi->fh)->handle.get();
}

// Marks a commit of `h` in progress for its lifetime (see Handle::committing).
class Committing {
 public:
  explicit Committing(Handle* h) : h_(h) { ++h_->committing; }
  ~Committing() { --h_->committing; }
  Committing(const Committing&) = delete;
  Committing& operator=(const Committing&) = delete;

 private:
  Handle* h_;
};

void NoteWrite(Handle* h, uint64_t end) {
  uint64_t seen = h->dirty_end.load();
  while (seen < end && !h->dirty_end.compare_exchange_weak(seen, end)) {
  }
}

timespec ToTimespec(const Timespec& t) {
  timespec ts{};
  ts.tv_sec = t.sec();
  ts.tv_nsec = t.nsec();
  return ts;
}

Timespec FromTimespec(const timespec& ts) {
  Timespec t;
  t.set_sec(ts.tv_sec);
  t.set_nsec(static_cast<uint32_t>(ts.tv_nsec));
  return t;
}

std::unique_ptr<Handle> MakeHandle(std::unique_ptr<client::File> file) {
  auto h = std::make_unique<Handle>();
  h->ino = file->ino();
  h->file = std::move(file);
  return h;
}

int Errno(const Status& s) { return MapError(s.code()).errno_value; }

// mknod(2)'s file types; 0 (S_IFREG) and S_IFREG are a regular file.
std::optional<FileType> TypeOfMode(mode_t mode) {
  switch (mode & S_IFMT) {
    case 0:
    case S_IFREG:
      return FileType::REGULAR;
    case S_IFIFO:
      return FileType::FIFO;
    case S_IFCHR:
      return FileType::CHAR_DEVICE;
    case S_IFBLK:
      return FileType::BLOCK_DEVICE;
    case S_IFSOCK:
      return FileType::SOCKET;
    default:
      return std::nullopt;
  }
}

// One page-aligned I/O buffer per FUSE worker thread: kernel<->user copies into it run at full
// speed (DESIGN §4), and it is reused for every request the thread serves.
std::span<uint8_t> ThreadBuffer(size_t size) {
  thread_local AlignedBuffer buffer(kMaxIo + kPageSize);
  if (size > buffer.capacity()) buffer = AlignedBuffer(RoundUpToPage(size));
  buffer.resize(size);
  return buffer.span();
}

}  // namespace

GranaryFs::GranaryFs(client::Client* client, MountOptions options, uint64_t root_ino)
    : client_(client), options_(std::move(options)), root_ino_(root_ino), reader_(client) {}

GranaryFs::~GranaryFs() { StopChangeFeed(); }

uint64_t GranaryFs::ToGranary(fuse_ino_t ino) const {
  if (ino == FUSE_ROOT_ID) return root_ino_;
  if (ino == root_ino_) return FUSE_ROOT_ID;
  return ino;
}

fuse_ino_t GranaryFs::ToFuse(uint64_t ino) const {
  if (ino == root_ino_) return FUSE_ROOT_ID;
  if (ino == FUSE_ROOT_ID) return root_ino_;
  return ino;
}

struct stat GranaryFs::ToStat(const InodeAttr& a) const {
  struct stat st {};
  st.st_ino = ToFuse(a.ino());
  st.st_mode = ModeType(a.type()) | (a.mode() & 07777);
  st.st_rdev = a.rdev();
  st.st_nlink = a.nlink();
  st.st_uid = a.uid();
  st.st_gid = a.gid();
  st.st_size = static_cast<off_t>(a.size());
  st.st_blksize = kMaxIo;  // tools size their buffers by it; 1 MiB is one FUSE request
  st.st_blocks = static_cast<blkcnt_t>((a.size() + 511) / 512);
  st.st_atim = ToTimespec(a.atime());
  st.st_mtim = ToTimespec(a.mtime());
  st.st_ctim = ToTimespec(a.ctime());
  return st;
}

void GranaryFs::ReplyEntry(fuse_req_t req, const InodeAttr& a, uint64_t ticket) {
  fuse_entry_param e{};
  e.ino = ToFuse(a.ino());
  e.generation = 1;  // inode numbers are never reused
  e.attr = ToStat(a);
  ReplyCached(ticket, [&](const Timeouts& t) {
    e.attr_timeout = t.attr;
    e.entry_timeout = t.entry;
    NoteAttr(a, t);
    fuse_reply_entry(req, &e);
  });
}

void GranaryFs::ReplyError(fuse_req_t req, const Status& s, const char* op) {
  int err = Errno(s);
  // Expected outcomes of probing calls stay out of the log.
  if (s.code() != Code::NOT_FOUND && s.code() != Code::ALREADY_EXISTS) {
    GLOG_INFO("event=fuse_error op={} errno={} error=\"{}\"", op, err, s.ToString());
  }
  fuse_reply_err(req, err);
}

Status GranaryFs::CheckName(const char* name) const {
  if (std::strlen(name) > kMaxName) {
    return Status(Code::NAME_TOO_LONG, fmt::format("name of {} bytes", std::strlen(name)));
  }
  return Status::Ok();
}

// ------------------------------------------------------------------ local handle registry

void GranaryFs::AddHandle(const std::shared_ptr<Handle>& h) {
  std::lock_guard lock(mu_);
  open_[h->ino].push_back(h);
}

template <typename Reply>
void GranaryFs::Publish(std::shared_ptr<Handle> h, fuse_file_info* fi, Reply reply) {
  AddHandle(h);
  auto* ref = new HandleRef{h};
  fi->fh = NewFh(reinterpret_cast<uint64_t>(ref), (fi->flags & O_ACCMODE) != O_RDONLY);
  if (reply() == -ENOENT) {
    // The opener was interrupted: nobody will release this handle.
    ForgetFh(fi->fh);
    RemoveHandle(h.get());
    delete ref;
  }
}

void GranaryFs::RemoveHandle(Handle* h) {
  std::lock_guard lock(mu_);
  auto it = open_.find(h->ino);
  if (it == open_.end()) return;
  std::erase_if(it->second, [h](const std::shared_ptr<Handle>& p) { return p.get() == h; });
  if (it->second.empty()) open_.erase(it);
}

uint64_t GranaryFs::DataVersion(uint64_t ino) {
  std::lock_guard lock(mu_);
  return data_versions_[ino];
}

void GranaryFs::BumpDataVersion(uint64_t ino) {
  std::lock_guard lock(mu_);
  data_versions_[ino] = next_version_++;
}

Status GranaryFs::FlushInode(uint64_t ino) {
  std::vector<std::shared_ptr<Handle>> dirty;
  {
    std::lock_guard lock(mu_);
    auto it = open_.find(ino);
    if (it == open_.end()) return Status::Ok();
    for (const auto& h : it->second) {
      if (h->dirty.load()) dirty.push_back(h);
    }
  }
  if (dirty.empty()) return Status::Ok();
  Status first;
  for (const auto& h : dirty) {
    Committing committing(h.get());
    h->dirty = false;
    Status s = h->file->Flush();
    if (!s.ok()) {
      h->dirty = true;
      if (first.ok()) first = s;
    } else {
      NoteCommitted(h->file->attr());
    }
  }
  BumpDataVersion(ino);
  return first;
}

namespace {
// Data changes of one inode are ordered by (generation, commit_version): a truncate bumps the
// first, a commit the second.
bool Older(uint64_t generation, uint64_t commit_version, uint64_t than_generation,
           uint64_t than_commit_version) {
  return std::tie(generation, commit_version) < std::tie(than_generation, than_commit_version);
}
}  // namespace

void GranaryFs::NoteCommitted(const InodeAttr& a) {
  std::lock_guard lock(mu_);
  Committed& c = committed_[a.ino()];
  if (Older(c.generation, c.commit_version, a.generation(), a.commit_version())) {
    c = Committed{a.generation(), a.commit_version(), a.size(), a.mtime(), a.ctime()};
  }
}

InodeAttr GranaryFs::WithLocalSize(InodeAttr a) {
  std::lock_guard lock(mu_);
  if (auto c = committed_.find(a.ino()); c != committed_.end()) {
    const Committed& known = c->second;
    if (Older(a.generation(), a.commit_version(), known.generation, known.commit_version)) {
      a.set_generation(known.generation);
      a.set_commit_version(known.commit_version);
      a.set_size(known.size);
      *a.mutable_mtime() = known.mtime;
      *a.mutable_ctime() = known.ctime;
    }
  }
  auto it = open_.find(a.ino());
  if (it == open_.end()) return a;
  for (const auto& h : it->second) {
    if (h->dirty.load() || h->committing.load() > 0) {
      a.set_size(std::max(a.size(), h->dirty_end.load()));
    }
  }
  return a;
}

bool GranaryFs::StampCache(const InodeAttr& a) {
  Stamp now{a.commit_version(), a.generation(), a.size(), a.mtime().sec(), a.mtime().nsec()};
  std::lock_guard lock(mu_);
  auto [it, inserted] = stamps_.try_emplace(a.ino(), now);
  if (inserted) return false;
  const Stamp& old = it->second;
  bool same = old.commit_version == now.commit_version && old.generation == now.generation &&
              old.size == now.size && old.mtime_sec == now.mtime_sec &&
              old.mtime_nsec == now.mtime_nsec;
  it->second = now;
  return same;
}

int GranaryFs::FlushAll() {
  std::vector<std::shared_ptr<Handle>> all;
  {
    std::lock_guard lock(mu_);
    for (auto& [ino, handles] : open_) all.insert(all.end(), handles.begin(), handles.end());
  }
  int failed = 0;
  for (const auto& h : all) {
    Status s = h->file->Flush();
    if (!s.ok()) {
      ++failed;
      GLOG_ERROR("event=unmount_flush_failed ino={} error=\"{}\"", h->ino, s.ToString());
    }
  }
  return failed;
}

// ------------------------------------------------------------------ operations

void GranaryFs::Init(fuse_conn_info* conn) {
  conn->max_write = kMaxIo;
  conn->max_read = kMaxIo;
  conn->max_readahead = std::max<unsigned>(options_.readahead_kib * 1024u, kMaxIo);
  // The kernel's readahead requests (and every other request) arrive concurrently.
  conn->want |= FUSE_CAP_ASYNC_READ | FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_AUTO_INVAL_DATA;
  // Write payloads are spliced from /dev/fuse into a pipe and read from there into our own
  // page-aligned buffer, instead of landing 80 bytes into libfuse's buffer.
  if (options_.splice && (conn->capable & FUSE_CAP_SPLICE_READ)) {
    conn->want |= FUSE_CAP_SPLICE_READ;
  } else {
    conn->want &= ~FUSE_CAP_SPLICE_READ;
  }
  if (conn->capable & FUSE_CAP_READDIRPLUS) {
    conn->want |= FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO;
  }
  // Close-to-open is ours to keep: no kernel write-back cache (it would hold dirty pages past
  // close), no atomic O_TRUNC (the kernel sends a truncating setattr instead).
  conn->want &= ~(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_ATOMIC_O_TRUNC);
  // POSIX ACLs (docs/mount.md): enforced by the kernel with default_permissions, stored and
  // inherited by the metanode. The kernel must not apply the umask itself (DONT_MASK): a
  // parent's default ACL replaces it, and only the metanode knows whether there is one.
  posix_acl_ = (conn->capable & FUSE_CAP_POSIX_ACL) != 0 && (conn->capable & FUSE_CAP_DONT_MASK);
  if (posix_acl_) conn->want |= FUSE_CAP_POSIX_ACL | FUSE_CAP_DONT_MASK;
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  StartChangeFeed();
}

void GranaryFs::Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (Status s = CheckName(name); !s.ok()) return ReplyError(req, s, "lookup");
  const uint64_t ticket = CacheTicket();
  auto a = client_->meta().Lookup(ToGranary(parent), name);
  if (a.ok()) {
    NoteName(ToGranary(parent), name, a->ino());
    return ReplyEntry(req, WithLocalSize(*a), ticket);
  }
  if (a.status().code() != Code::NOT_FOUND) return ReplyError(req, a.status(), "lookup");
  // A missing name is cached too while the feed would tell us of its creation elsewhere.
  ReplyCached(ticket, [&](const Timeouts& t) {
    if (!t.negative || t.entry <= 0 || !NoteMissing(ToGranary(parent), name)) {
      return (void)fuse_reply_err(req, ENOENT);
    }
    fuse_entry_param e{};
    e.entry_timeout = t.entry;
    fuse_reply_entry(req, &e);
  });
}

void GranaryFs::Forget(fuse_ino_t ino) {
  std::lock_guard lock(mu_);
  uint64_t g = ToGranary(ino);
  // The kernel dropped the inode and with it its page cache.
  stamps_.erase(g);
  committed_.erase(g);
  if (!open_.contains(g)) data_versions_.erase(g);
  std::lock_guard names(names_mu_);
  names_.erase(g);
  known_.erase(g);
}

void GranaryFs::GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  const uint64_t ticket = CacheTicket();
  auto a = client_->meta().GetAttr(ToGranary(ino));
  if (!a.ok()) return ReplyError(req, a.status(), "getattr");
  struct stat st = ToStat(WithLocalSize(*a));
  ReplyCached(ticket, [&](const Timeouts& t) {
    NoteAttr(*a, t);
    fuse_reply_attr(req, &st, t.attr);
  });
}

void GranaryFs::SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set,
                        fuse_file_info* fi) {
  const uint64_t g = ToGranary(ino);
  SetAttrRequest r;
  r.set_ino(g);
  uint32_t valid = 0;
  if (to_set & FUSE_SET_ATTR_MODE) {
    valid |= SETATTR_MODE;
    r.set_mode(attr->st_mode & 07777);
  }
  if (to_set & FUSE_SET_ATTR_UID) {
    valid |= SETATTR_UID;
    r.set_uid(attr->st_uid);
  }
  if (to_set & FUSE_SET_ATTR_GID) {
    valid |= SETATTR_GID;
    r.set_gid(attr->st_gid);
  }
  if (to_set & FUSE_SET_ATTR_ATIME) {
    valid |= SETATTR_ATIME;
    if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
      r.set_atime_now(true);
    } else {
      *r.mutable_atime() = FromTimespec(attr->st_atim);
    }
  }
  if (to_set & FUSE_SET_ATTR_MTIME) {
    valid |= SETATTR_MTIME;
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
      r.set_mtime_now(true);
    } else {
      *r.mutable_mtime() = FromTimespec(attr->st_mtim);
    }
  }
  if (to_set & FUSE_SET_ATTR_SIZE) {
    // Bytes buffered by any local handle were written before this truncate: commit them first
    // so that the truncate cuts them, as POSIX orders it.
    if (Status s = FlushInode(g); !s.ok()) return ReplyError(req, s, "truncate");
    {
      std::lock_guard lock(mu_);
      auto it = open_.find(g);
      if (it != open_.end()) {
        for (const auto& h : it->second) h->dirty_end = 0;
      }
    }
    valid |= SETATTR_SIZE;
    r.set_size(attr->st_size);
  }
  r.set_valid(valid);
  Result<InodeAttr> a = Internal("unset");
  if (valid == 0) {
    a = client_->meta().GetAttr(g);
  } else {
    a = client_->meta().SetAttr(r);
  }
  if (!a.ok()) return ReplyError(req, a.status(), "setattr");
  if (valid & SETATTR_SIZE) {
    BumpDataVersion(g);
    StampCache(*a);  // the kernel truncated its own page cache alongside
    NoteCommitted(*a);
  }
  struct stat st = ToStat(WithLocalSize(*a));
  fuse_reply_attr(req, &st, options_.attr_timeout_s);
}

void GranaryFs::ReadLink(fuse_req_t req, fuse_ino_t ino) {
  auto target = client_->meta().ReadLink(ToGranary(ino));
  if (!target.ok()) return ReplyError(req, target.status(), "readlink");
  fuse_reply_readlink(req, target->c_str());
}

void GranaryFs::Mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  if (Status s = CheckName(name); !s.ok()) return ReplyError(req, s, "mkdir");
  MkdirRequest r = EntryRequest<MkdirRequest>(req, ToGranary(parent), name, mode, posix_acl_);
  const uint64_t ticket = CacheTicket();
  auto a = client_->meta().Mkdir(std::move(r));
  if (!a.ok()) return ReplyError(req, a.status(), "mkdir");
  NoteName(ToGranary(parent), name, a->ino());
  ReplyEntry(req, *a, ticket);
}

void GranaryFs::Mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
                      dev_t rdev) {
  if (Status s = CheckName(name); !s.ok()) return ReplyError(req, s, "mknod");
  auto type = TypeOfMode(mode);
  if (!type) return (void)fuse_reply_err(req, EINVAL);  // S_IFDIR/S_IFLNK: mkdir, symlink
  CreateRequest r = EntryRequest(req, ToGranary(parent), name, mode, posix_acl_);
  r.set_exclusive(true);
  r.set_type(*type);
  r.set_rdev(static_cast<uint32_t>(rdev));
  const uint64_t ticket = CacheTicket();
  auto a = client_->meta().Create(std::move(r));
  if (!a.ok()) return ReplyError(req, a.status(), "mknod");
  NoteName(ToGranary(parent), name, a->ino());
  ReplyEntry(req, *a, ticket);
}

void GranaryFs::Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (Status s = CheckName(name); !s.ok()) return ReplyError(req, s, "unlink");
  Status s = client_->meta().Unlink(ToGranary(parent), name);
  if (!s.ok()) return ReplyError(req, s, "unlink");
  fuse_reply_err(req, 0);
}

void GranaryFs::Rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  if (Status s = CheckName(name); !s.ok()) return ReplyError(req, s, "rmdir");
  Status s = client_->meta().Rmdir(ToGranary(parent), name);
  if (!s.ok()) return ReplyError(req, s, "rmdir");
  fuse_reply_err(req, 0);
}

void GranaryFs::Symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
  if (Status s = CheckName(name); !s.ok()) return ReplyError(req, s, "symlink");
  const fuse_ctx* ctx = fuse_req_ctx(req);
  const uint64_t ticket = CacheTicket();
  auto a = client_->meta().Symlink(ToGranary(parent), name, target, ctx->uid, ctx->gid);
  if (!a.ok()) return ReplyError(req, a.status(), "symlink");
  NoteName(ToGranary(parent), name, a->ino());
  ReplyEntry(req, *a, ticket);
}

void GranaryFs::Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
                       const char* newname, unsigned int flags) {
  if (Status s = CheckName(newname); !s.ok()) return ReplyError(req, s, "rename");
  RenameFlags f = RENAME_FLAG_PLAIN;
  if (flags == RENAME_NOREPLACE) {
    f = RENAME_FLAG_NOREPLACE;
  } else if (flags == RENAME_EXCHANGE) {
    f = RENAME_FLAG_EXCHANGE;
  } else if (flags != 0) {
    return (void)fuse_reply_err(req, EINVAL);  // RENAME_WHITEOUT: overlayfs only
  }
  auto r = client_->meta().Rename(ToGranary(parent), name, ToGranary(newparent), newname, f);
  if (!r.ok()) return ReplyError(req, r.status(), "rename");
  fuse_reply_err(req, 0);
}

void GranaryFs::Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  if (Status s = CheckName(newname); !s.ok()) return ReplyError(req, s, "link");
  const uint64_t ticket = CacheTicket();
  auto a = client_->meta().Link(ToGranary(ino), ToGranary(newparent), newname);
  if (!a.ok()) return ReplyError(req, a.status(), "link");
  NoteName(ToGranary(newparent), newname, a->ino());
  ReplyEntry(req, WithLocalSize(*a), ticket);
}

Result<std::unique_ptr<Handle>> GranaryFs::OpenHandle(const InodeAttr& attr) {
  auto file = client_->OpenInode(attr);  // pins the inode until Release (unlinked-but-open)
  if (!file.ok()) return file.status();
  return MakeHandle(std::move(*file));
}

void GranaryFs::Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  const uint64_t g = ToGranary(ino);
  // Close-to-open: the metanode's current attributes, not the kernel's cached ones.
  auto attr = client_->meta().GetAttr(g);
  if (!attr.ok()) return ReplyError(req, attr.status(), "open");
  if (attr->type() == FileType::DIRECTORY) return (void)fuse_reply_err(req, EISDIR);
  auto h = OpenHandle(*attr);
  if (!h.ok()) return ReplyError(req, h.status(), "open");
  InodeAttr fresh = (*h)->file->attr();
  bool unchanged = StampCache(fresh);
  // Another handle here may hold buffered bytes the kernel's cache already has.
  {
    std::lock_guard lock(mu_);
    auto it = open_.find(g);
    if (it != open_.end()) {
      for (const auto& other : it->second) unchanged = unchanged || other->dirty.load();
    }
  }
  fi->keep_cache = unchanged ? 1 : 0;
  if (!unchanged && session_ != nullptr) {
    // Stale size/mtime in the kernel's attribute cache: drop them (attributes only, offset < 0,
    // which takes no page locks and is safe inside a request).
    fuse_lowlevel_notify_inval_inode(session_, ino, -1, 0);
  }
  Publish(std::shared_ptr<Handle>(std::move(*h)), fi, [&] { return fuse_reply_open(req, fi); });
}

void GranaryFs::Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode,
                       fuse_file_info* fi) {
  if (Status s = CheckName(name); !s.ok()) return ReplyError(req, s, "create");
  CreateRequest r = EntryRequest(req, ToGranary(parent), name, mode, posix_acl_);
  r.set_exclusive((fi->flags & O_EXCL) != 0);
  r.set_truncate((fi->flags & O_TRUNC) != 0);
  // Created and pinned for this handle in one durable operation.
  const uint64_t ticket = CacheTicket();
  auto file = client_->CreateFile(std::move(r));
  if (!file.ok()) return ReplyError(req, file.status(), "create");
  NoteName(ToGranary(parent), name, (*file)->ino());
  auto h = MakeHandle(std::move(*file));
  const InodeAttr created = h->file->attr();
  StampCache(created);
  fuse_entry_param e{};
  e.ino = ToFuse(h->ino);
  e.generation = 1;
  e.attr = ToStat(created);
  Publish(std::move(h), fi, [&] {
    int rc = 0;
    ReplyCached(ticket, [&](const Timeouts& t) {
      e.attr_timeout = t.attr;
      e.entry_timeout = t.entry;
      NoteAttr(created, t);
      rc = fuse_reply_create(req, &e, fi);
    });
    return rc;
  });
}

void GranaryFs::Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
  Handle* h = H(fi);
  std::span<uint8_t> buf = ThreadBuffer(std::min(size, kMaxIo));
  Result<size_t> n = size_t{0};
  if (h->dirty.load()) {
    // This handle's own buffered bytes: the File overlays them on what storage holds.
    n = h->file->Pread(buf, static_cast<uint64_t>(off));
  } else {
    // Bytes buffered by another local handle must be visible: commit them first (a no-op when
    // nothing here is dirty).
    if (Status s = FlushInode(h->ino); !s.ok()) return ReplyError(req, s, "read");
    n = reader_.Read(h->ino, h->map, DataVersion(h->ino), buf, static_cast<uint64_t>(off));
  }
  if (!n.ok()) return ReplyError(req, n.status(), "read");
  fuse_reply_buf(req, reinterpret_cast<const char*>(buf.data()), *n);
}

void GranaryFs::WriteBuf(fuse_req_t req, fuse_ino_t ino, fuse_bufvec* bufv, off_t off,
                         fuse_file_info* fi) {
  Handle* h = H(fi);
  const size_t size = fuse_buf_size(bufv);
  std::span<uint8_t> buf = ThreadBuffer(size);
  // From the splice pipe (or libfuse's buffer) into our page-aligned buffer.
  fuse_bufvec dst = FUSE_BUFVEC_INIT(size);
  dst.buf[0].mem = buf.data();
  ssize_t copied = fuse_buf_copy(&dst, bufv, static_cast<fuse_buf_copy_flags>(0));
  if (copied < 0) return (void)fuse_reply_err(req, static_cast<int>(-copied));
  h->dirty = true;
  NoteWrite(h, static_cast<uint64_t>(off) + static_cast<uint64_t>(copied));
  Status s = h->file->Pwrite(buf.first(static_cast<size_t>(copied)), static_cast<uint64_t>(off));
  if (!s.ok()) return ReplyError(req, s, "write");
  fuse_reply_write(req, static_cast<size_t>(copied));
}

Status GranaryFs::CommitHandle(Handle* h) {
  Committing committing(h);
  bool was_dirty = h->dirty.exchange(false);
  // Returns after every replica fsynced and the commit is durable.
  Status s = h->file->Flush();
  if (!s.ok()) {
    h->dirty = true;
    return s;
  }
  if (was_dirty) {
    BumpDataVersion(h->ino);
    // The kernel's page cache holds exactly what was just committed.
    StampCache(h->file->attr());
    NoteCommitted(h->file->attr());
  }
  return Status::Ok();
}

void GranaryFs::Flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  // close(): commit durably, so that data survives a crash of this process and the next
  // open anywhere sees it (close-to-open). The reply comes last: after it the kernel may
  // release (and free) the handle.
  Status s = CommitHandle(H(fi));
  if (!s.ok()) return ReplyError(req, s, "flush");
  fuse_reply_err(req, 0);
}

void GranaryFs::Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  std::unique_ptr<HandleRef> ref(reinterpret_cast<HandleRef*>(fi->fh));
  std::shared_ptr<Handle> h = std::move(ref->handle);
  bool was_dirty = h->dirty.load();
  Status s;
  {
    Committing committing(h.get());
    s = h->file->Close();  // commits anything left and unpins the inode
  }
  if (s.ok() && was_dirty) NoteCommitted(h->file->attr());
  // Out of the registry only now: until the commit is done, stat must count its bytes.
  RemoveHandle(h.get());
  if (!s.ok()) GLOG_ERROR("event=release_failed ino={} error=\"{}\"", h->ino, s.ToString());
  if (was_dirty) BumpDataVersion(h->ino);
  fuse_reply_err(req, s.ok() ? 0 : Errno(s));
}

void GranaryFs::Fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
  Status s = CommitHandle(H(fi));
  if (!s.ok()) return ReplyError(req, s, "fsync");
  fuse_reply_err(req, 0);
}

void GranaryFs::Lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence) {
  // SEEK_DATA/SEEK_HOLE (the kernel handles the others): holes are not tracked, so data runs
  // from 0 to the size and the one hole is the end of the file, as on a file system without
  // SEEK_HOLE support.
  if (whence != SEEK_DATA && whence != SEEK_HOLE) return (void)fuse_reply_err(req, EINVAL);
  auto a = client_->meta().GetAttr(ToGranary(ino));
  if (!a.ok()) return ReplyError(req, a.status(), "lseek");
  const off_t size = static_cast<off_t>(WithLocalSize(*a).size());
  if (off < 0 || off >= size) return (void)fuse_reply_err(req, ENXIO);
  fuse_reply_lseek(req, whence == SEEK_DATA ? off : size);
}

void GranaryFs::StatFs(fuse_req_t req, fuse_ino_t ino) {
  auto r = client_->meta().StatFs(root_ino_);
  if (!r.ok()) return ReplyError(req, r.status(), "statfs");
  struct statvfs st {};
  constexpr uint64_t kBlock = 4096;
  st.f_bsize = kMaxIo;
  st.f_frsize = kBlock;
  st.f_blocks = r->total_bytes() / kBlock;
  uint64_t used = std::min(r->used_bytes(), r->total_bytes());
  st.f_bfree = st.f_bavail = (r->total_bytes() - used) / kBlock;
  st.f_files = r->total_inodes();
  st.f_ffree = st.f_favail = r->total_inodes() - std::min(r->used_inodes(), r->total_inodes());
  st.f_namemax = kMaxName;
  fuse_reply_statfs(req, &st);
}

void GranaryFs::Fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                          fuse_file_info* fi) {
  Handle* h = H(fi);
  if (offset < 0 || length <= 0) return (void)fuse_reply_err(req, EINVAL);
  const uint64_t off = static_cast<uint64_t>(offset), len = static_cast<uint64_t>(length);
  if (mode == 0 || mode == FALLOC_FL_KEEP_SIZE) {
    if (Status s = FlushInode(h->ino); !s.ok()) return ReplyError(req, s, "fallocate");
    auto a = client_->meta().Fallocate(h->ino, off, len, static_cast<uint32_t>(mode));
    if (!a.ok()) return ReplyError(req, a.status(), "fallocate");
    BumpDataVersion(h->ino);
    return (void)fuse_reply_err(req, 0);
  }
  const bool punch = mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE);
  const bool zero = (mode & ~FALLOC_FL_KEEP_SIZE) == FALLOC_FL_ZERO_RANGE;
  if (!punch && !zero) return (void)fuse_reply_err(req, EOPNOTSUPP);
  // Slices are immutable: a punched or zeroed range is a new slice of zeros over it (reads see
  // zeros; the space is reclaimed when compaction drops the covered slices).
  uint64_t end = off + len;
  if (mode & FALLOC_FL_KEEP_SIZE) {
    if (Status s = FlushInode(h->ino); !s.ok()) return ReplyError(req, s, "fallocate");
    auto a = client_->meta().GetAttr(h->ino);
    if (!a.ok()) return ReplyError(req, a.status(), "fallocate");
    end = std::min(end, a->size());
  }
  if (end > off) {
    std::vector<uint8_t> zeros(std::min<uint64_t>(end - off, kMaxIo), 0);
    for (uint64_t at = off; at < end; at += zeros.size()) {
      uint64_t n = std::min<uint64_t>(zeros.size(), end - at);
      h->dirty = true;
      NoteWrite(h, at + n);
      if (Status s = h->file->Pwrite({zeros.data(), n}, at); !s.ok()) {
        return ReplyError(req, s, "fallocate");
      }
    }
  }
  fuse_reply_err(req, 0);
}

}  // namespace granary::fuse
