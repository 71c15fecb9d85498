// Extended attributes of the mount, stored by the metanode.
#include <sys/stat.h>
#include <sys/xattr.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "client/meta_client.h"
#include "fuse/fs.h"

namespace granary::fuse {

namespace {
// security.capability is read by the kernel before every write (to strip file capabilities);
// Granary does not store capabilities, so it is answered here instead of costing a metanode
// round trip per write.
bool IsCapability(const char* name) { return std::strcmp(name, "security.capability") == 0; }

// Whether the caller of `req` may keep a file's setgid bit when its access ACL changes the mode:
// privileged, or a member of the file's group (posix_acl_update_mode). libfuse 3.14 does not
// pass the kernel's FUSE_SETXATTR_ACL_KILL_SGID, so the mount decides it the kernel's way.
bool KeepsSetgid(fuse_req_t req, uint32_t file_gid) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  if (ctx->uid == 0 || ctx->gid == file_gid) return true;
  gid_t groups[64];
  const int n = fuse_req_getgroups(req, 64, groups);
  for (int i = 0; i < std::min(n, 64); ++i) {
    if (groups[i] == file_gid) return true;
  }
  return false;
}
}  // namespace

void GranaryFs::SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value,
                         size_t size, int flags) {
  if (IsCapability(name)) return (void)fuse_reply_err(req, EOPNOTSUPP);
  auto mode = SetXattrRequest::XATTR_MODE_ANY;
  if (flags & XATTR_CREATE) mode = SetXattrRequest::XATTR_MODE_CREATE;
  if (flags & XATTR_REPLACE) mode = SetXattrRequest::XATTR_MODE_REPLACE;
  SetXattrRequest r;
  r.set_ino(ToGranary(ino));
  r.set_name(name);
  r.set_value(std::string(value, size));
  r.set_mode(mode);
  if (posix_acl_ && std::strcmp(name, "system.posix_acl_access") == 0) {
    auto attr = client_->meta().GetAttr(r.ino());
    if (!attr.ok()) return ReplyError(req, attr.status(), "setxattr");
    r.set_clear_setgid((attr->mode() & S_ISGID) != 0 && !KeepsSetgid(req, attr->gid()));
  }
  Status s = client_->meta().SetXattr(std::move(r));
  // XATTR_REPLACE of a missing attribute is ENODATA in POSIX, not ENOENT.
  if (s.code() == Code::NOT_FOUND && mode == SetXattrRequest::XATTR_MODE_REPLACE) {
    return (void)fuse_reply_err(req, ENODATA);
  }
  if (!s.ok()) return ReplyError(req, s, "setxattr");
  fuse_reply_err(req, 0);
}

void GranaryFs::GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  if (IsCapability(name)) return (void)fuse_reply_err(req, ENODATA);
  // `ls -l` asks every file for its access ACL (and SELinux label): an inode whose coherent
  // attributes say it has no ACL needs no round trip (fs_cache.cpp).
  const uint8_t known = KnownAcls(ToGranary(ino));
  if (known != 0 &&
      ((std::strcmp(name, "system.posix_acl_access") == 0 && !(known & kAccessAcl)) ||
       (std::strcmp(name, "system.posix_acl_default") == 0 && !(known & kDefaultAcl)))) {
    return (void)fuse_reply_err(req, ENODATA);
  }
  auto v = client_->meta().GetXattr(ToGranary(ino), name);
  if (!v.ok() && v.status().code() == Code::NOT_FOUND) {
    // A missing attribute on an existing inode; a missing inode stays ENOENT.
    if (known != 0) return (void)fuse_reply_err(req, ENODATA);
    auto a = client_->meta().GetAttr(ToGranary(ino));
    return (void)fuse_reply_err(req, a.ok() ? ENODATA : ENOENT);
  }
  if (!v.ok()) return ReplyError(req, v.status(), "getxattr");
  if (size == 0) return (void)fuse_reply_xattr(req, v->size());
  if (size < v->size()) return (void)fuse_reply_err(req, ERANGE);
  fuse_reply_buf(req, v->data(), v->size());
}

void GranaryFs::ListXattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  auto names = client_->meta().ListXattr(ToGranary(ino));
  if (!names.ok()) return ReplyError(req, names.status(), "listxattr");
  std::string out;
  for (const auto& n : *names) {
    out += n;
    out.push_back('\0');
  }
  if (size == 0) return (void)fuse_reply_xattr(req, out.size());
  if (size < out.size()) return (void)fuse_reply_err(req, ERANGE);
  fuse_reply_buf(req, out.data(), out.size());
}

void GranaryFs::RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  if (IsCapability(name)) return (void)fuse_reply_err(req, ENODATA);
  Status s = client_->meta().RemoveXattr(ToGranary(ino), name);
  if (s.code() == Code::NOT_FOUND) return (void)fuse_reply_err(req, ENODATA);
  if (!s.ok()) return ReplyError(req, s, "removexattr");
  fuse_reply_err(req, 0);
}

}  // namespace granary::fuse
