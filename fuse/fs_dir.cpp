// Directory operations of the mount: open, list (readdir and readdirplus, paged from the
// metanode) and release.
#include <sys/stat.h>

#include <algorithm>
#include <iterator>

#include "client/meta_client.h"
#include "fuse/fs.h"

namespace granary::fuse {

void GranaryFs::OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  auto a = client_->meta().GetAttr(ToGranary(ino));
  if (!a.ok()) return ReplyError(req, a.status(), "opendir");
  if (a->type() != FileType::DIRECTORY) return (void)fuse_reply_err(req, ENOTDIR);
  auto* d = new DirHandle();
  fi->fh = NewFh(reinterpret_cast<uint64_t>(d), false);
  if (fuse_reply_open(req, fi) == -ENOENT) {
    ForgetFh(fi->fh);
    delete d;
  }
}

void GranaryFs::ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi,
                        bool plus) {
  auto* d = reinterpret_cast<DirHandle*>(fi->fh);
  std::vector<char> out(size);
  size_t used = 0;
  std::unique_lock lock(d->mu);
  // Offsets: 1 = ".", 2 = "..", 2 + i + 1 = entry i (an offset is "where to continue").
  Status s =
      LoadDirPage(*d, ToGranary(ino), static_cast<uint64_t>(std::max<off_t>(off, 2) - 2), plus);
  if (!s.ok()) {
    lock.unlock();
    return ReplyError(req, s, "readdir");
  }
  // The kernel caches readdirplus entries: filled and sent under the cache rule (fs_cache.cpp).
  ReplyCached(d->ticket, [&](const Timeouts& t) {
    FillDir(*d, req, ino, off, plus, t, out, used);
    // Replied only once d's lock is released: the reply lets closedir proceed, and its
    // RELEASEDIR (on another worker) frees d at once, so nothing of d, its mutex included, may
    // be touched after it. (Unlocking after the reply wrote into freed memory: the heap
    // corruption glibc reported after bench/mount.sh's `rm -f seq.*` glob.)
    lock.unlock();
    fuse_reply_buf(req, out.data(), used);
  });
}

Status GranaryFs::LoadDirPage(DirHandle& d, uint64_t g, uint64_t index, bool plus) {
  if (index < d.first || d.plus != plus) {
    // Back to the start (rewinddir, seekdir backwards) or another kind of listing.
    d.entries.clear();
    d.first = 0;
    d.eof = false;
    d.loaded = false;
    d.plus = plus;
  }
  // Forward one page at a time; only the page holding `index` is kept.
  while (!d.loaded || (index >= d.first + d.entries.size() && !d.eof)) {
    std::string after = d.entries.empty() ? "" : d.entries.back().name();
    d.ticket = CacheTicket();
    auto page = client_->meta().ReadDir(g, after, 0, plus);
    GRANARY_TRY(page);
    if (d.loaded) d.first += d.entries.size();
    d.loaded = true;
    d.entries.assign(std::make_move_iterator(page->mutable_entries()->begin()),
                     std::make_move_iterator(page->mutable_entries()->end()));
    d.eof = page->eof() || d.entries.empty();
  }
  return Status::Ok();
}

void GranaryFs::FillDir(DirHandle& d, fuse_req_t req, fuse_ino_t ino, off_t off, bool plus,
                        const Timeouts& t, std::vector<char>& out, size_t& used) {
  const uint64_t g = ToGranary(ino);
  const size_t size = out.size();
  auto add = [&](const char* name, const struct stat& st, off_t next,
                 const fuse_entry_param* e) -> bool {
    size_t need = plus ? fuse_add_direntry_plus(req, nullptr, 0, name, e, next)
                       : fuse_add_direntry(req, nullptr, 0, name, &st, next);
    if (used + need > size) return false;
    if (plus) {
      fuse_add_direntry_plus(req, out.data() + used, size - used, name, e, next);
    } else {
      fuse_add_direntry(req, out.data() + used, size - used, name, &st, next);
    }
    used += need;
    return true;
  };
  off_t pos = off;
  if (pos < 1) {
    struct stat st {};
    st.st_ino = ino;
    st.st_mode = S_IFDIR;
    fuse_entry_param e{};
    e.attr = st;
    if (!add(".", st, 1, &e)) return;
    pos = 1;
  }
  if (pos < 2) {
    struct stat st {};
    st.st_ino = FUSE_ROOT_ID;
    st.st_mode = S_IFDIR;
    fuse_entry_param e{};
    e.attr = st;
    if (!add("..", st, 2, &e)) return;
    pos = 2;
  }
  // What the page holds from `pos` on; the kernel asks again for the rest.
  for (uint64_t index = static_cast<uint64_t>(pos - 2);
       index >= d.first && index < d.first + d.entries.size(); ++index) {
    const DirEntry& de = d.entries[index - d.first];
    fuse_entry_param e{};
    // An entry fetched by a plain readdir has no attributes: sent with node id 0, the kernel
    // links no dentry for it (and caches nothing wrong).
    if (plus && de.attr().ino() != 0) {
      e.ino = ToFuse(de.ino());
      e.generation = 1;
      e.attr = ToStat(WithLocalSize(de.attr()));
      e.attr_timeout = t.attr;
      e.entry_timeout = t.entry;
    }
    struct stat st {};
    st.st_ino = ToFuse(de.ino());
    st.st_mode = ModeType(de.type());
    if (!add(de.name().c_str(), st, static_cast<off_t>(index + 3), &e)) break;
    if (plus && de.attr().ino() != 0) {
      NoteName(g, de.name(), de.ino());
      NoteAttr(de.attr(), t);
    }
  }
}

void GranaryFs::ReleaseDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  delete reinterpret_cast<DirHandle*>(fi->fh);
  fuse_reply_err(req, 0);
}

}  // namespace granary::fuse
