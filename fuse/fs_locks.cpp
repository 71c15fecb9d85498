// Cluster-wide file locks (docs/mount.md "Locks"): getlk/setlk/flock go to the metanode's lock
// table under this mount's client session, so mounts on different hosts exclude each other and a
// dead mount's locks go with its session. A blocked F_SETLKW/flock long-polls the metanode
// (LockWait) and tries again when the inode's table changed; an interrupt cancels the poll.
#include <sys/file.h>

#include <climits>

#include "client/meta_client.h"
#include "common/error_table.h"
#include "common/log.h"
#include "fuse/fs.h"

namespace granary::fuse {

namespace {

constexpr uint64_t kToEnd = INT64_MAX;  // FUSE's OFFSET_MAX: a lock to the end and beyond
// One LockWait call; the client asks again after it (covers a wake-up lost to a leader change).
constexpr uint32_t kWaitMs = 5000;

LockType TypeOf(short l_type) {
  if (l_type == F_RDLCK) return LOCK_TYPE_READ;
  if (l_type == F_WRLCK) return LOCK_TYPE_WRITE;
  return LOCK_TYPE_UNLOCK;
}

FileLock FromFlock(const struct flock& fl, uint64_t owner) {
  FileLock l;
  l.set_kind(LOCK_KIND_POSIX);
  l.set_type(TypeOf(fl.l_type));
  l.set_start(static_cast<uint64_t>(fl.l_start));
  // libfuse hands over [start, end] as l_len = end - start + 1, 0 for "to the end".
  l.set_end(fl.l_len == 0 ? kToEnd : static_cast<uint64_t>(fl.l_start + fl.l_len - 1));
  l.set_owner(owner);
  l.set_pid(static_cast<uint32_t>(fl.l_pid));
  return l;
}

void InterruptWait(fuse_req_t, void* data) { static_cast<client::CallCanceller*>(data)->Cancel(); }

}  // namespace

void GranaryFs::NoteLockOwner(uint64_t fh, uint64_t ino, uint64_t owner) {
  std::lock_guard lock(locks_mu_);
  lock_owners_[ino].insert(owner);
  fh_lock_owners_[fh].emplace(ino, owner);
}

Status GranaryFs::ReleaseOwner(uint64_t ino, uint64_t owner) {
  {
    std::lock_guard lock(locks_mu_);
    auto it = lock_owners_.find(ino);
    // Nothing was ever locked here by this owner: close(2) costs no metanode round trip.
    if (it == lock_owners_.end() || it->second.erase(owner) == 0) return Status::Ok();
    if (it->second.empty()) lock_owners_.erase(it);
  }
  LockRequest r;
  r.set_ino(ino);
  r.mutable_lock()->set_owner(owner);
  r.set_release_owner(true);
  auto reply = client_->meta().Lock(std::move(r));
  return reply.ok() ? Status::Ok() : reply.status();
}

void GranaryFs::ReleaseLocksOfFh(uint64_t fh, const fuse_file_info* fi, uint64_t ino) {
  std::set<std::pair<uint64_t, uint64_t>> owners;
  {
    std::lock_guard lock(locks_mu_);
    auto it = fh_lock_owners_.find(fh);
    if (it != fh_lock_owners_.end()) {
      owners = std::move(it->second);
      fh_lock_owners_.erase(it);
    }
  }
  // OFD locks belong to the open file description, which ends here (their owner is the file;
  // process-associated owners were released by the flush of their close already).
  for (const auto& [i, owner] : owners) {
    if (Status s = ReleaseOwner(i, owner); !s.ok()) {
      GLOG_WARN("event=lock_release_failed ino={} error=\"{}\"", i, s.ToString());
    }
  }
  if (fi->flock_release) {
    LockRequest r;
    r.set_ino(ino);
    r.mutable_lock()->set_kind(LOCK_KIND_FLOCK);
    r.mutable_lock()->set_type(LOCK_TYPE_UNLOCK);
    r.mutable_lock()->set_end(kToEnd);
    r.mutable_lock()->set_owner(fi->lock_owner);
    auto reply = client_->meta().Lock(std::move(r));
    if (!reply.ok()) {
      GLOG_WARN("event=flock_release_failed ino={} error=\"{}\"", ino, reply.status().ToString());
    }
  }
}

void GranaryFs::GetLk(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, struct flock* lock) {
  GetLockRequest r;
  r.set_ino(ToGranary(ino));
  *r.mutable_lock() = FromFlock(*lock, fi->lock_owner);
  r.mutable_lock()->set_holder(client_->meta().client_id());
  auto reply = client_->meta().GetLock(r);
  if (!reply.ok()) return ReplyError(req, reply.status(), "getlk");
  struct flock out = *lock;
  if (!reply->found()) {
    out.l_type = F_UNLCK;
  } else {
    const FileLock& c = reply->conflict();
    out.l_type = c.type() == LOCK_TYPE_WRITE ? F_WRLCK : F_RDLCK;
    out.l_start = static_cast<off_t>(c.start());
    out.l_len = c.end() >= kToEnd ? 0 : static_cast<off_t>(c.end() - c.start() + 1);
    // A pid means something only on the holder's host: another mount's holder reports 0.
    out.l_pid = c.holder() == client_->meta().client_id() ? static_cast<pid_t>(c.pid()) : 0;
  }
  fuse_reply_lock(req, &out);
}

int GranaryFs::TakeLock(fuse_req_t req, uint64_t ino, const FileLock& want, bool sleep) {
  client::CallCanceller cancel;
  if (sleep) fuse_req_interrupt_func(req, InterruptWait, &cancel);
  int result = 0;
  for (;;) {
    LockRequest r;
    r.set_ino(ino);
    *r.mutable_lock() = want;
    auto reply = client_->meta().Lock(std::move(r));
    if (!reply.ok()) {
      GLOG_INFO("event=fuse_error op=setlk error=\"{}\"", reply.status().ToString());
      result = MapError(reply.status().code()).errno_value;
      break;
    }
    if (reply->granted()) break;
    if (!sleep) {
      result = EAGAIN;  // F_SETLK and LOCK_NB alike (EWOULDBLOCK == EAGAIN)
      break;
    }
    LockWaitRequest w;
    w.set_ino(ino);
    w.set_version(reply->version());
    w.set_holder(client_->meta().client_id());
    w.set_owner(want.owner());
    *w.mutable_blockers() = reply->conflicts();
    // Linux reports EDEADLK for process-associated POSIX locks only (flock waits forever).
    w.set_detect_deadlock(want.kind() == LOCK_KIND_POSIX);
    w.set_timeout_ms(kWaitMs);
    auto waited = client_->meta().LockWait(w, &cancel);
    if (cancel.cancelled() || fuse_req_interrupted(req)) {
      result = EINTR;
      break;
    }
    if (!waited.ok()) {
      result = MapError(waited.status().code()).errno_value;
      break;
    }
    if (waited->deadlock()) {
      result = EDEADLK;
      break;
    }
  }
  if (sleep) fuse_req_interrupt_func(req, nullptr, nullptr);
  return result;
}

void GranaryFs::SetLk(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, struct flock* lock,
                      int sleep) {
  const uint64_t g = ToGranary(ino);
  FileLock want = FromFlock(*lock, fi->lock_owner);
  if (want.type() != LOCK_TYPE_UNLOCK) NoteLockOwner(fi->fh, g, fi->lock_owner);
  fuse_reply_err(req, TakeLock(req, g, want, sleep != 0));
}

void GranaryFs::Flock(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, int op) {
  FileLock want;
  want.set_kind(LOCK_KIND_FLOCK);
  want.set_type((op & LOCK_SH)   ? LOCK_TYPE_READ
                : (op & LOCK_EX) ? LOCK_TYPE_WRITE
                                 : LOCK_TYPE_UNLOCK);
  want.set_end(kToEnd);
  want.set_owner(fi->lock_owner);
  fuse_reply_err(req, TakeLock(req, ToGranary(ino), want, (op & LOCK_NB) == 0));
}

}  // namespace granary::fuse
