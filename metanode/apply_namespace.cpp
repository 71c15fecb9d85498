// Namespace operations other than rename (apply_rename.cpp).
#include <fmt/format.h>

#include <optional>

#include "metanode/apply_internal.h"
#include "metanode/posix_acl.h"

namespace granary::metanode {

namespace {

// Where a new name goes: the parent directory and its volume, after checking the name is free.
struct NewEntry {
  InodeRecord parent;
  VolumeRecord volume;
  std::optional<DentryRecord> existing;
};

Result<NewEntry> PrepareEntry(Ctx& ctx, uint64_t parent, std::string_view name) {
  GRANARY_TRY(ValidateName(name));
  NewEntry e;
  auto dir = LoadDir(ctx.txn, parent);
  GRANARY_TRY(dir);
  e.parent = std::move(*dir);
  if (e.parent.attr().nlink() == 0)
    return NotFound(fmt::format("directory {} was removed", parent));
  auto existing = LoadDentry(ctx.txn, parent, name);
  GRANARY_TRY(existing);
  e.existing = std::move(*existing);
  auto volume = LoadVolume(ctx.txn, e.parent.attr().volume_id());
  GRANARY_TRY(volume);
  e.volume = std::move(*volume);
  return e;
}

Status AlreadyExistsAt(uint64_t parent, std::string_view name) {
  return AlreadyExists(fmt::format("'{}' in directory {}", name, parent));
}

// Owner of a new entry: a setgid directory hands its group on (and, to subdirectories, the
// bit), as ext4 does (inode_init_owner). The caller's umask applies when the request carries one
// and the parent has no default ACL (which then masks the mode instead: InheritAcls).
struct NewOwner {
  uint32_t mode;
  uint32_t gid;
};
NewOwner OwnerIn(const InodeRecord& parent, FileType type, uint32_t mode, uint32_t gid,
                 const std::optional<uint32_t>& umask) {
  constexpr uint32_t kSetGid = 02000;
  if (umask && !parent.xattrs().contains(std::string(acl::kDefaultXattr))) mode &= ~*umask;
  if (parent.attr().mode() & kSetGid) {
    gid = parent.attr().gid();
    if (type == DIRECTORY) mode |= kSetGid;
  }
  return {mode, gid};
}

// acl(5) object creation for a request from the mount with POSIX ACLs (it carries the umask):
// the parent's default ACL becomes the new inode's access ACL, masked by the requested mode and
// masking it in turn; a directory inherits the default ACL itself as well.
Status InheritAcls(const InodeRecord& parent, InodeRecord& rec) {
  auto it = parent.xattrs().find(std::string(acl::kDefaultXattr));
  if (it == parent.xattrs().end()) return Status::Ok();
  auto inherited = acl::Parse(it->second);
  if (!inherited.ok()) {
    return Corrupt(fmt::format("default ACL of directory {}: {}", parent.attr().ino(),
                               inherited.status().message()));
  }
  InodeAttr& a = *rec.mutable_attr();
  uint32_t mode = a.mode();
  if (acl::MaskForCreate(*inherited, &mode)) {
    (*rec.mutable_xattrs())[std::string(acl::kAccessXattr)] = acl::Serialize(*inherited);
    a.set_access_acl(true);
  }
  a.set_mode(mode);
  if (a.type() == DIRECTORY) {
    (*rec.mutable_xattrs())[std::string(acl::kDefaultXattr)] = it->second;
    a.set_default_acl(true);
  }
  return Status::Ok();
}

// A POSIX ACL set as its xattr: validated; an access ACL sets the permission bits (and is kept
// only when it says more than they do, as ext4 keeps it); a default ACL only on directories.
Status SetAclXattr(const SetXattrRequest& req, InodeRecord& rec) {
  auto parsed = acl::Parse(req.value());
  if (!parsed.ok()) return parsed.status().WithContext(req.name());
  InodeAttr& a = *rec.mutable_attr();
  if (req.name() == acl::kDefaultXattr) {
    if (a.type() != DIRECTORY) {
      return Status(Code::PERMISSION_DENIED,
                    fmt::format("a default ACL on {} {}", FileType_Name(a.type()), a.ino()));
    }
    (*rec.mutable_xattrs())[req.name()] = req.value();
    a.set_default_acl(true);
    return Status::Ok();
  }
  const acl::ModeOfAcl m = acl::ModeOf(*parsed);
  uint32_t mode = (a.mode() & ~0777u) | m.bits;
  if (req.clear_setgid()) mode &= ~02000u;
  a.set_mode(mode);
  if (m.equivalent) {
    rec.mutable_xattrs()->erase(req.name());
  } else {
    (*rec.mutable_xattrs())[req.name()] = acl::Serialize(*parsed);
  }
  a.set_access_acl(!m.equivalent);
  return Status::Ok();
}

bool IsSpecial(FileType type) {
  return type == FIFO || type == CHAR_DEVICE || type == BLOCK_DEVICE || type == SOCKET;
}

void TouchDir(Ctx& ctx, InodeRecord& dir, int nlink_delta) {
  InodeAttr& a = *dir.mutable_attr();
  a.set_nlink(static_cast<uint32_t>(static_cast<int64_t>(a.nlink()) + nlink_delta));
  *a.mutable_mtime() = ctx.Now();
  *a.mutable_ctime() = ctx.Now();
  SaveInode(ctx.txn, dir);
}

// Adds `rec` under `e.parent` as `name` and fills the reply.
void Link(Ctx& ctx, NewEntry& e, std::string_view name, InodeRecord& rec, OpReply* reply) {
  SaveInode(ctx.txn, rec);
  SaveDentry(ctx.txn, e.parent.attr().ino(), name, rec.attr().ino(), rec.attr().type());
  TouchDir(ctx, e.parent, rec.attr().type() == DIRECTORY ? 1 : 0);
  SaveVolume(ctx.txn, e.volume);
  *reply->mutable_entry()->mutable_attr() = rec.attr();
}

}  // namespace

Status ApplyMkdir(Ctx& ctx, OpReply* reply) {
  const MkdirRequest& req = ctx.op.mkdir();
  auto e = PrepareEntry(ctx, req.parent(), req.name());
  GRANARY_TRY(e);
  if (e->existing) return AlreadyExistsAt(req.parent(), req.name());
  NewOwner o = OwnerIn(e->parent, DIRECTORY, req.mode(), req.gid(),
                       req.has_umask() ? std::optional(req.umask()) : std::nullopt);
  auto rec = NewInode(ctx, e->volume, DIRECTORY, o.mode, req.uid(), o.gid);
  GRANARY_TRY(rec);
  rec->mutable_attr()->set_parent(req.parent());
  if (req.has_umask()) GRANARY_TRY(InheritAcls(e->parent, *rec));
  Link(ctx, *e, req.name(), *rec, reply);
  return Status::Ok();
}

Status ApplyCreate(Ctx& ctx, OpReply* reply) {
  const CreateRequest& req = ctx.op.create();
  const FileType type = req.type() == FILE_TYPE_UNSPECIFIED ? REGULAR : req.type();
  if (type != REGULAR && !IsSpecial(type)) {
    return InvalidArgument(fmt::format("create of a {}", FileType_Name(type)));
  }
  auto e = PrepareEntry(ctx, req.parent(), req.name());
  GRANARY_TRY(e);
  if (e->existing) {
    // mknod(2) never opens an existing name.
    if (req.exclusive() || type != REGULAR) return AlreadyExistsAt(req.parent(), req.name());
    auto rec = LoadInode(ctx.txn, e->existing->ino());
    GRANARY_TRY(rec);
    if (rec->attr().type() == DIRECTORY) {
      return Status(Code::IS_DIRECTORY, fmt::format("'{}' is a directory", req.name()));
    }
    bool changed = false;
    if (req.truncate() && rec->attr().type() == REGULAR && rec->attr().size() != 0) {
      GRANARY_TRY(ResizeInode(ctx, *rec, e->volume, 0));
      *rec->mutable_attr()->mutable_mtime() = ctx.Now();
      *rec->mutable_attr()->mutable_ctime() = ctx.Now();
      SaveVolume(ctx.txn, e->volume);
      changed = true;
    }
    if (req.handle_owner() != 0) {
      AddPin(ctx, *rec, req.handle_owner());
      changed = true;
    }
    if (changed) SaveInode(ctx.txn, *rec);
    *reply->mutable_entry()->mutable_attr() = rec->attr();
    return Status::Ok();
  }
  NewOwner o = OwnerIn(e->parent, type, req.mode(), req.gid(),
                       req.has_umask() ? std::optional(req.umask()) : std::nullopt);
  auto rec = NewInode(ctx, e->volume, type, o.mode, req.uid(), o.gid, req.writer_host());
  GRANARY_TRY(rec);
  if (req.has_umask()) GRANARY_TRY(InheritAcls(e->parent, *rec));
  // Special files are metadata only: no data, never opened through the metanode.
  if (type == CHAR_DEVICE || type == BLOCK_DEVICE) rec->mutable_attr()->set_rdev(req.rdev());
  if (req.handle_owner() != 0 && type == REGULAR) AddPin(ctx, *rec, req.handle_owner());
  Link(ctx, *e, req.name(), *rec, reply);
  return Status::Ok();
}

Status ApplySymlink(Ctx& ctx, OpReply* reply) {
  const SymlinkRequest& req = ctx.op.symlink();
  if (req.target().empty() || req.target().size() > 4096) {
    return InvalidArgument(fmt::format("symlink target of {} bytes", req.target().size()));
  }
  auto e = PrepareEntry(ctx, req.parent(), req.name());
  GRANARY_TRY(e);
  if (e->existing) return AlreadyExistsAt(req.parent(), req.name());
  NewOwner o = OwnerIn(e->parent, SYMLINK, 0777, req.gid(), std::nullopt);
  auto rec = NewInode(ctx, e->volume, SYMLINK, 0777, req.uid(), o.gid);
  GRANARY_TRY(rec);
  rec->set_symlink_target(req.target());
  rec->mutable_attr()->set_size(req.target().size());
  Link(ctx, *e, req.name(), *rec, reply);
  return Status::Ok();
}

Status ApplyLink(Ctx& ctx, OpReply* reply) {
  const LinkRequest& req = ctx.op.link();
  auto rec = LoadInode(ctx.txn, req.ino());
  GRANARY_TRY(rec);
  if (rec->attr().type() == DIRECTORY) {
    return Status(Code::IS_DIRECTORY, fmt::format("hard link to directory {}", req.ino()));
  }
  if (rec->attr().nlink() == 0) return NotFound(fmt::format("inode {} was unlinked", req.ino()));
  auto e = PrepareEntry(ctx, req.new_parent(), req.new_name());
  GRANARY_TRY(e);
  if (e->parent.attr().volume_id() != rec->attr().volume_id()) {
    return Status(Code::CROSS_VOLUME, fmt::format("link inode {} into volume {}", req.ino(),
                                                  e->parent.attr().volume_id()));
  }
  if (e->existing) return AlreadyExistsAt(req.new_parent(), req.new_name());
  rec->mutable_attr()->set_nlink(rec->attr().nlink() + 1);
  *rec->mutable_attr()->mutable_ctime() = ctx.Now();
  Link(ctx, *e, req.new_name(), *rec, reply);
  return Status::Ok();
}

Status ApplyUnlink(Ctx& ctx, OpReply* reply) {
  const UnlinkRequest& req = ctx.op.unlink();
  auto e = PrepareEntry(ctx, req.parent(), req.name());
  GRANARY_TRY(e);
  if (!e->existing) return NotFound(fmt::format("'{}' in directory {}", req.name(), req.parent()));
  if (e->existing->type() == DIRECTORY) {
    return Status(Code::IS_DIRECTORY, fmt::format("unlink directory '{}'", req.name()));
  }
  auto rec = LoadInode(ctx.txn, e->existing->ino());
  GRANARY_TRY(rec);
  ctx.txn.Delete(Cf::kDentries, DentryKey(req.parent(), req.name()));
  GRANARY_TRY(DropLink(ctx, *rec, e->volume));
  TouchDir(ctx, e->parent, 0);
  SaveVolume(ctx.txn, e->volume);
  return Status::Ok();
}

Status ApplyRmdir(Ctx& ctx, OpReply* reply) {
  const RmdirRequest& req = ctx.op.rmdir();
  auto e = PrepareEntry(ctx, req.parent(), req.name());
  GRANARY_TRY(e);
  if (!e->existing) return NotFound(fmt::format("'{}' in directory {}", req.name(), req.parent()));
  if (e->existing->type() != DIRECTORY) {
    return Status(Code::NOT_DIRECTORY, fmt::format("rmdir '{}': not a directory", req.name()));
  }
  auto empty = DirIsEmpty(ctx.txn, e->existing->ino());
  GRANARY_TRY(empty);
  if (!*empty) return Status(Code::NOT_EMPTY, fmt::format("directory '{}'", req.name()));
  auto rec = LoadInode(ctx.txn, e->existing->ino());
  GRANARY_TRY(rec);
  ctx.txn.Delete(Cf::kDentries, DentryKey(req.parent(), req.name()));
  GRANARY_TRY(DropLink(ctx, *rec, e->volume));
  TouchDir(ctx, e->parent, -1);
  SaveVolume(ctx.txn, e->volume);
  return Status::Ok();
}

Status ApplySetAttr(Ctx& ctx, OpReply* reply) {
  const SetAttrRequest& req = ctx.op.setattr();
  auto rec = LoadInode(ctx.txn, req.ino());
  GRANARY_TRY(rec);
  InodeAttr& a = *rec->mutable_attr();
  uint32_t valid = req.valid();
  if (valid & SETATTR_SIZE) {
    if (a.type() == DIRECTORY) {
      return Status(Code::IS_DIRECTORY, fmt::format("truncate directory {}", req.ino()));
    }
    if (a.type() != REGULAR) {
      return InvalidArgument(fmt::format("truncate {} {}", FileType_Name(a.type()), req.ino()));
    }
    if (req.size() != a.size()) {
      auto volume = LoadVolume(ctx.txn, a.volume_id());
      GRANARY_TRY(volume);
      GRANARY_TRY(ResizeInode(ctx, *rec, *volume, req.size()));
      SaveVolume(ctx.txn, *volume);
      *a.mutable_mtime() = ctx.Now();
    }
  }
  if (valid & SETATTR_MODE) {
    a.set_mode(req.mode() & 07777);
    // chmod rewrites the access ACL's owner, mask (or group) and other entries (acl(5)).
    auto it = rec->mutable_xattrs()->find(std::string(acl::kAccessXattr));
    if (it != rec->mutable_xattrs()->end()) {
      auto parsed = acl::Parse(it->second);
      if (parsed.ok()) {
        acl::Chmod(*parsed, a.mode());
        it->second = acl::Serialize(*parsed);
      }
    }
  }
  if (valid & SETATTR_UID) a.set_uid(req.uid());
  if (valid & SETATTR_GID) a.set_gid(req.gid());
  if (valid & SETATTR_ATIME) *a.mutable_atime() = req.atime_now() ? ctx.Now() : req.atime();
  if (valid & SETATTR_MTIME) *a.mutable_mtime() = req.mtime_now() ? ctx.Now() : req.mtime();
  *a.mutable_ctime() = ctx.Now();
  SaveInode(ctx.txn, *rec);
  *reply->mutable_attr()->mutable_attr() = a;
  return Status::Ok();
}

Status ApplySetXattr(Ctx& ctx, OpReply* reply) {
  const SetXattrRequest& req = ctx.op.setxattr();
  if (req.name().empty()) return InvalidArgument("empty xattr name");
  if (req.name().size() > kMaxNameBytes) {
    return Status(Code::NAME_TOO_LONG, fmt::format("xattr name of {} bytes", req.name().size()));
  }
  if (req.value().size() > 65536) {
    return InvalidArgument(
        fmt::format("xattr value of {} bytes (limit 65536)", req.value().size()));
  }
  auto rec = LoadInode(ctx.txn, req.ino());
  GRANARY_TRY(rec);
  bool exists = rec->xattrs().contains(req.name());
  if (req.mode() == SetXattrRequest::XATTR_MODE_CREATE && exists) {
    return AlreadyExists(fmt::format("xattr '{}' on inode {}", req.name(), req.ino()));
  }
  if (req.mode() == SetXattrRequest::XATTR_MODE_REPLACE && !exists) {
    return NotFound(fmt::format("xattr '{}' on inode {}", req.name(), req.ino()));
  }
  if (req.name() == acl::kAccessXattr || req.name() == acl::kDefaultXattr) {
    GRANARY_TRY(SetAclXattr(req, *rec));
  } else {
    (*rec->mutable_xattrs())[req.name()] = req.value();
  }
  *rec->mutable_attr()->mutable_ctime() = ctx.Now();
  SaveInode(ctx.txn, *rec);
  return Status::Ok();
}

Status ApplyRemoveXattr(Ctx& ctx, OpReply* reply) {
  const RemoveXattrRequest& req = ctx.op.removexattr();
  auto rec = LoadInode(ctx.txn, req.ino());
  GRANARY_TRY(rec);
  if (rec->mutable_xattrs()->erase(req.name()) == 0) {
    return NotFound(fmt::format("xattr '{}' on inode {}", req.name(), req.ino()));
  }
  if (req.name() == acl::kAccessXattr) rec->mutable_attr()->set_access_acl(false);
  if (req.name() == acl::kDefaultXattr) rec->mutable_attr()->set_default_acl(false);
  *rec->mutable_attr()->mutable_ctime() = ctx.Now();
  SaveInode(ctx.txn, *rec);
  return Status::Ok();
}

Status ApplyFallocate(Ctx& ctx, OpReply* reply) {
  const FallocateRequest& req = ctx.op.fallocate();
  constexpr uint32_t kKeepSize = 1;  // FALLOC_FL_KEEP_SIZE; other modes are not supported
  if ((req.mode() & ~kKeepSize) != 0) {
    return InvalidArgument(fmt::format("fallocate mode {:#x} not supported", req.mode()));
  }
  if (req.length() == 0) return InvalidArgument("fallocate of length 0");
  auto rec = LoadInode(ctx.txn, req.ino());
  GRANARY_TRY(rec);
  if (rec->attr().type() == DIRECTORY) {
    return Status(Code::IS_DIRECTORY, fmt::format("fallocate directory {}", req.ino()));
  }
  if (rec->attr().type() != REGULAR) return InvalidArgument("fallocate of a symlink");
  uint64_t end = req.offset() + req.length();
  if (end < req.offset()) return InvalidArgument("fallocate range overflows");
  if (!(req.mode() & kKeepSize) && end > rec->attr().size()) {
    auto volume = LoadVolume(ctx.txn, rec->attr().volume_id());
    GRANARY_TRY(volume);
    GRANARY_TRY(ResizeInode(ctx, *rec, *volume, end));
    SaveVolume(ctx.txn, *volume);
    *rec->mutable_attr()->mutable_ctime() = ctx.Now();
    SaveInode(ctx.txn, *rec);
  }
  *reply->mutable_attr()->mutable_attr() = rec->attr();
  return Status::Ok();
}

Status ApplyOpen(Ctx& ctx, OpReply* reply) {
  const OpenRequest& req = ctx.op.open();
  auto rec = LoadInode(ctx.txn, req.ino());
  GRANARY_TRY(rec);
  if (rec->attr().nlink() == 0) return NotFound(fmt::format("inode {} was unlinked", req.ino()));
  AddPin(ctx, *rec, req.handle_owner());
  SaveInode(ctx.txn, *rec);
  *reply->mutable_attr()->mutable_attr() = rec->attr();
  return Status::Ok();
}

Status ApplyRelease(Ctx& ctx, OpReply* reply) {
  const ReleaseRequest& req = ctx.op.release();
  auto rec = LoadInode(ctx.txn, req.ino());
  GRANARY_TRY(rec);
  // Already released (or reaped with its session): idempotent.
  if (!rec->open_handles().contains(req.handle_owner())) return Status::Ok();
  DropPin(ctx, *rec, req.handle_owner());
  if (rec->attr().nlink() == 0 && rec->open_handles().empty()) {
    auto volume = LoadVolume(ctx.txn, rec->attr().volume_id());
    GRANARY_TRY(volume);
    GRANARY_TRY(FreeInode(ctx, *rec, *volume));
    SaveVolume(ctx.txn, *volume);
    return Status::Ok();
  }
  SaveInode(ctx.txn, *rec);
  return Status::Ok();
}

}  // namespace granary::metanode
