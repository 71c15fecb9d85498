// Kernel-visible file handles as numbers, and the adoption of handles a predecessor process
// opened (mount survival, docs/mount-survival.md): every operation on an open file names its
// inode, so a handle the kernel holds from before a handoff is re-opened by inode on first use.
#include <cerrno>

#include "client/meta_client.h"
#include "common/log.h"
#include "fuse/fs.h"

namespace granary::fuse {

namespace {
bool Writable(uint64_t fh) { return (fh & 1) != 0; }
}  // namespace

uint64_t GranaryFs::NewFh(uint64_t pointer, bool writable) {
  uint64_t fh = (next_fh_++ << 1) | (writable ? 1 : 0);
  std::lock_guard lock(fh_mu_);
  fh_[fh] = pointer;
  return fh;
}

void GranaryFs::ForgetFh(uint64_t fh) {
  std::lock_guard lock(fh_mu_);
  fh_.erase(fh);
  fsync_owes_eio_.erase(fh);
}

bool GranaryFs::InwardFile(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, Unknown unknown) {
  const uint64_t fh = fi->fh;
  {
    std::lock_guard lock(fh_mu_);
    auto it = fh_.find(fh);
    if (it != fh_.end()) {
      fi->fh = it->second;
      return true;
    }
  }
  if (unknown == Unknown::kNothingHere) {
    // Opened by a predecessor and never used here: nothing of it is buffered in this process.
    // After a crash, a predecessor's handle open for writing may have held acknowledged bytes
    // it never committed: its close or fsync says so.
    const bool lost = predecessor_crashed_ && Writable(fh);
    fuse_reply_err(req, lost ? EIO : 0);
    if (lost) {
      GLOG_WARN("event=handle_of_crashed_predecessor fh={} ino={}: reported EIO once", fh, ino);
    }
    return false;
  }
  const uint64_t g = ToGranary(ino);
  auto attr = client_->meta().GetAttr(g);
  if (!attr.ok()) {
    ReplyError(req, attr.status(), "adopt handle");
    return false;
  }
  auto h = OpenHandle(*attr);
  if (!h.ok()) {
    ReplyError(req, h.status(), "adopt handle");
    return false;
  }
  std::shared_ptr<Handle> handle(std::move(*h));
  std::lock_guard lock(fh_mu_);
  // Two first uses may race: one adoption wins, the other handle is dropped unused.
  auto [it, inserted] = fh_.try_emplace(fh, 0);
  if (inserted) {
    AddHandle(handle);
    it->second = reinterpret_cast<uint64_t>(new HandleRef{handle});
    if (predecessor_crashed_ && Writable(fh)) fsync_owes_eio_.insert(fh);
    GLOG_INFO("event=handle_adopted fh={} ino={}", fh, g);
  }
  fi->fh = it->second;
  return true;
}

bool GranaryFs::TakeFsyncDebt(uint64_t fh) {
  std::lock_guard lock(fh_mu_);
  return fsync_owes_eio_.erase(fh) > 0;
}

bool GranaryFs::InwardDir(fuse_req_t req, fuse_file_info* fi, bool create_missing) {
  std::lock_guard lock(fh_mu_);
  auto it = fh_.find(fi->fh);
  if (it == fh_.end()) {
    if (!create_missing) {
      fuse_reply_err(req, 0);
      return false;
    }
    // A directory handle of a predecessor: its listing is fetched again from the offset on.
    it = fh_.emplace(fi->fh, reinterpret_cast<uint64_t>(new DirHandle())).first;
  }
  fi->fh = it->second;
  return true;
}

}  // namespace granary::fuse
