// The operations table handed to fuse_session_new: each request goes to its GranaryFs handler,
// with the kernel's handle number swapped for this process's handle first (InwardFile,
// InwardDir; docs/mount-survival.md).
#include <poll.h>

#include "fuse/fs.h"

namespace granary::fuse {
namespace {
GranaryFs* Fs(fuse_req_t req) { return static_cast<GranaryFs*>(fuse_req_userdata(req)); }
}  // namespace

const fuse_lowlevel_ops& GranaryFs::Ops() {
  static const fuse_lowlevel_ops ops = [] {
    using Unknown = GranaryFs::Unknown;
    fuse_lowlevel_ops o{};
    o.init = [](void* userdata, fuse_conn_info* conn) {
      static_cast<GranaryFs*>(userdata)->Init(conn);
    };
    o.lookup = [](fuse_req_t r, fuse_ino_t p, const char* n) { Fs(r)->Lookup(r, p, n); };
    o.forget = [](fuse_req_t r, fuse_ino_t i, uint64_t) {
      Fs(r)->Forget(i);
      fuse_reply_none(r);
    };
    o.forget_multi = [](fuse_req_t r, size_t count, fuse_forget_data* forgets) {
      for (size_t i = 0; i < count; ++i) Fs(r)->Forget(forgets[i].ino);
      fuse_reply_none(r);
    };
    o.getattr = [](fuse_req_t r, fuse_ino_t i, fuse_file_info* fi) { Fs(r)->GetAttr(r, i, fi); };
    o.setattr = [](fuse_req_t r, fuse_ino_t i, struct stat* a, int s, fuse_file_info* fi) {
      Fs(r)->SetAttr(r, i, a, s, fi);
    };
    o.readlink = [](fuse_req_t r, fuse_ino_t i) { Fs(r)->ReadLink(r, i); };
    o.mkdir = [](fuse_req_t r, fuse_ino_t p, const char* n, mode_t m) { Fs(r)->Mkdir(r, p, n, m); };
    o.mknod = [](fuse_req_t r, fuse_ino_t p, const char* n, mode_t m, dev_t d) {
      Fs(r)->Mknod(r, p, n, m, d);
    };
    o.unlink = [](fuse_req_t r, fuse_ino_t p, const char* n) { Fs(r)->Unlink(r, p, n); };
    o.rmdir = [](fuse_req_t r, fuse_ino_t p, const char* n) { Fs(r)->Rmdir(r, p, n); };
    o.symlink = [](fuse_req_t r, const char* t, fuse_ino_t p, const char* n) {
      Fs(r)->Symlink(r, t, p, n);
    };
    o.rename = [](fuse_req_t r, fuse_ino_t p, const char* n, fuse_ino_t np, const char* nn,
                  unsigned int f) { Fs(r)->Rename(r, p, n, np, nn, f); };
    o.link = [](fuse_req_t r, fuse_ino_t i, fuse_ino_t np, const char* nn) {
      Fs(r)->Link(r, i, np, nn);
    };
    o.open = [](fuse_req_t r, fuse_ino_t i, fuse_file_info* fi) { Fs(r)->Open(r, i, fi); };
    // File and directory handles arrive as numbers and are swapped for this process's
    // pointers first (fs_handles.cpp).
    o.read = [](fuse_req_t r, fuse_ino_t i, size_t s, off_t o2, fuse_file_info* fi) {
      fuse_file_info f = *fi;
      if (Fs(r)->InwardFile(r, i, &f, Unknown::kAdopt)) Fs(r)->Read(r, i, s, o2, &f);
    };
    o.write_buf = [](fuse_req_t r, fuse_ino_t i, fuse_bufvec* b, off_t o2, fuse_file_info* fi) {
      fuse_file_info f = *fi;
      if (Fs(r)->InwardFile(r, i, &f, Unknown::kAdopt)) Fs(r)->WriteBuf(r, i, b, o2, &f);
    };
    o.flush = [](fuse_req_t r, fuse_ino_t i, fuse_file_info* fi) {
      // close(2) releases the caller's POSIX locks on the file, whoever serves the handle.
      if (Status s = Fs(r)->ReleaseOwner(Fs(r)->ToGranary(i), fi->lock_owner); !s.ok()) {
        return Fs(r)->ReplyError(r, s, "flush");
      }
      fuse_file_info f = *fi;
      if (Fs(r)->InwardFile(r, i, &f, Unknown::kNothingHere)) Fs(r)->Flush(r, i, &f);
    };
    o.release = [](fuse_req_t r, fuse_ino_t i, fuse_file_info* fi) {
      // r is gone once Inward replied: fs is taken first.
      GranaryFs* fs = Fs(r);
      fs->ReleaseLocksOfFh(fi->fh, fi, fs->ToGranary(i));
      fuse_file_info f = *fi;
      bool mine = fs->InwardFile(r, i, &f, Unknown::kNothingHere);
      fs->ForgetFh(fi->fh);
      if (mine) fs->Release(r, i, &f);
    };
    o.fsync = [](fuse_req_t r, fuse_ino_t i, int d, fuse_file_info* fi) {
      fuse_file_info f = *fi;
      if (!Fs(r)->InwardFile(r, i, &f, Unknown::kNothingHere)) return;
      if (Fs(r)->TakeFsyncDebt(fi->fh)) return (void)fuse_reply_err(r, EIO);
      Fs(r)->Fsync(r, i, d, &f);
    };
    o.opendir = [](fuse_req_t r, fuse_ino_t i, fuse_file_info* fi) { Fs(r)->OpenDir(r, i, fi); };
    o.readdir = [](fuse_req_t r, fuse_ino_t i, size_t s, off_t o2, fuse_file_info* fi) {
      fuse_file_info f = *fi;
      if (Fs(r)->InwardDir(r, &f, true)) Fs(r)->ReadDir(r, i, s, o2, &f, false);
    };
    o.readdirplus = [](fuse_req_t r, fuse_ino_t i, size_t s, off_t o2, fuse_file_info* fi) {
      fuse_file_info f = *fi;
      if (Fs(r)->InwardDir(r, &f, true)) Fs(r)->ReadDir(r, i, s, o2, &f, true);
    };
    o.releasedir = [](fuse_req_t r, fuse_ino_t i, fuse_file_info* fi) {
      GranaryFs* fs = Fs(r);
      fuse_file_info f = *fi;
      bool mine = fs->InwardDir(r, &f, false);
      fs->ForgetFh(fi->fh);
      if (mine) fs->ReleaseDir(r, i, &f);
    };
    // Every metadata operation is durable when it returns (group-committed by the metanode).
    o.fsyncdir = [](fuse_req_t r, fuse_ino_t, int, fuse_file_info*) { fuse_reply_err(r, 0); };
    o.statfs = [](fuse_req_t r, fuse_ino_t i) { Fs(r)->StatFs(r, i); };
    o.setxattr = [](fuse_req_t r, fuse_ino_t i, const char* n, const char* v, size_t s, int f) {
      Fs(r)->SetXattr(r, i, n, v, s, f);
    };
    o.getxattr = [](fuse_req_t r, fuse_ino_t i, const char* n, size_t s) {
      Fs(r)->GetXattr(r, i, n, s);
    };
    o.listxattr = [](fuse_req_t r, fuse_ino_t i, size_t s) { Fs(r)->ListXattr(r, i, s); };
    o.removexattr = [](fuse_req_t r, fuse_ino_t i, const char* n) { Fs(r)->RemoveXattr(r, i, n); };
    o.create = [](fuse_req_t r, fuse_ino_t p, const char* n, mode_t m, fuse_file_info* fi) {
      Fs(r)->Create(r, p, n, m, fi);
    };
    // What the kernel would do itself on ENOSYS, answered explicitly (docs/mount.md: no call
    // the kernel forwards answers ENOSYS).
    o.ioctl = [](fuse_req_t r, fuse_ino_t, auto, void*, fuse_file_info*, unsigned, const void*,
                 size_t, size_t) { fuse_reply_err(r, ENOTTY); };
    o.poll = [](fuse_req_t r, fuse_ino_t, fuse_file_info*, fuse_pollhandle* ph) {
      if (ph != nullptr) fuse_pollhandle_destroy(ph);
      fuse_reply_poll(r, POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM);  // always ready
    };
    // The kernel then copies through the page cache (splice), as for any file system without
    // server-side copy.
    o.copy_file_range = [](fuse_req_t r, fuse_ino_t, off_t, fuse_file_info*, fuse_ino_t, off_t,
                           fuse_file_info*, size_t, int) { fuse_reply_err(r, EOPNOTSUPP); };
    o.lseek = [](fuse_req_t r, fuse_ino_t i, off_t off, int whence, fuse_file_info*) {
      Fs(r)->Lseek(r, i, off, whence);
    };
    o.getlk = [](fuse_req_t r, fuse_ino_t i, fuse_file_info* fi, struct flock* l) {
      Fs(r)->GetLk(r, i, fi, l);
    };
    o.setlk = [](fuse_req_t r, fuse_ino_t i, fuse_file_info* fi, struct flock* l, int sleep) {
      Fs(r)->SetLk(r, i, fi, l, sleep);
    };
    o.flock = [](fuse_req_t r, fuse_ino_t i, fuse_file_info* fi, int op) {
      Fs(r)->Flock(r, i, fi, op);
    };
    o.fallocate = [](fuse_req_t r, fuse_ino_t i, int m, off_t o2, off_t l, fuse_file_info* fi) {
      fuse_file_info f = *fi;
      if (Fs(r)->InwardFile(r, i, &f, Unknown::kAdopt)) Fs(r)->Fallocate(r, i, m, o2, l, &f);
    };
    return o;
  }();
  return ops;
}

}  // namespace granary::fuse
