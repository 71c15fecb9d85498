// Extended attributes of the mount, stored by the metanode.
#include <sys/xattr.h>

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
}  // namespace

void GranaryFs::SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value,
                         size_t size, int flags) {
  if (IsCapability(name)) return (void)fuse_reply_err(req, EOPNOTSUPP);
  auto mode = SetXattrRequest::XATTR_MODE_ANY;
  if (flags & XATTR_CREATE) mode = SetXattrRequest::XATTR_MODE_CREATE;
  if (flags & XATTR_REPLACE) mode = SetXattrRequest::XATTR_MODE_REPLACE;
  Status s = client_->meta().SetXattr(ToGranary(ino), name, std::string_view(value, size), mode);
  // XATTR_REPLACE of a missing attribute is ENODATA in POSIX, not ENOENT.
  if (s.code() == Code::NOT_FOUND && mode == SetXattrRequest::XATTR_MODE_REPLACE) {
    return (void)fuse_reply_err(req, ENODATA);
  }
  if (!s.ok()) return ReplyError(req, s, "setxattr");
  fuse_reply_err(req, 0);
}

void GranaryFs::GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  if (IsCapability(name)) return (void)fuse_reply_err(req, ENODATA);
  auto v = client_->meta().GetXattr(ToGranary(ino), name);
  if (!v.ok() && v.status().code() == Code::NOT_FOUND) {
    // A missing attribute on an existing inode; a missing inode stays ENOENT.
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
