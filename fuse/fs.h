// GranaryFs: the state behind the low-level FUSE operations (open handles, page-cache stamps)
// and the translation of each operation to libgranary. Internal to fuse/.
#pragma once

#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include <fuse3/fuse_lowlevel.h>
#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "client/granary.h"
#include "fuse/mount.h"
#include "fuse/reader.h"

namespace granary::fuse {

// The S_IFMT bits of a file type.
inline mode_t ModeType(FileType type) {
  switch (type) {
    case FileType::DIRECTORY:
      return S_IFDIR;
    case FileType::SYMLINK:
      return S_IFLNK;
    case FileType::FIFO:
      return S_IFIFO;
    case FileType::CHAR_DEVICE:
      return S_IFCHR;
    case FileType::BLOCK_DEVICE:
      return S_IFBLK;
    case FileType::SOCKET:
      return S_IFSOCK;
    default:
      return S_IFREG;
  }
}

// One open file (fi->fh). The File buffers writes (write-back per open file); reads of
// committed bytes bypass it through the Reader so that many run in parallel.
struct Handle {
  std::unique_ptr<client::File> file;
  uint64_t ino = 0;
  std::atomic<bool> dirty{false};
  // Commits of this handle's bytes in progress. `dirty` is cleared when a commit starts, but the
  // metanode reports the new size only once it ends: meanwhile the local size still counts
  // (or a stat or readdirplus in that window hands the kernel the old size to cache).
  std::atomic<int> committing{0};
  // One past the last byte written since the last commit (0 when none): the local size.
  std::atomic<uint64_t> dirty_end{0};
  CachedMap map;  // the committed slice map this handle reads through
};

// One open directory (fi->fh): entries fetched page by page, offsets are positions. Freed by
// RELEASEDIR, which the kernel may deliver the moment a readdir is replied to: an operation
// replies only after it is done with the handle.
// A reader-writer lock whose writer is not starved by a stream of readers (glibc's default
// prefers readers, and std::shared_mutex takes the default): the change feed's thread must get
// through while every FUSE worker keeps replying.
class WriterFirstLock {
 public:
  WriterFirstLock() {
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&lock_, &attr);
    pthread_rwlockattr_destroy(&attr);
  }
  ~WriterFirstLock() { pthread_rwlock_destroy(&lock_); }
  WriterFirstLock(const WriterFirstLock&) = delete;
  WriterFirstLock& operator=(const WriterFirstLock&) = delete;
  void lock() { pthread_rwlock_wrlock(&lock_); }
  void unlock() { pthread_rwlock_unlock(&lock_); }
  void lock_shared() { pthread_rwlock_rdlock(&lock_); }
  void unlock_shared() { pthread_rwlock_unlock(&lock_); }

 private:
  pthread_rwlock_t lock_;
};

// An open directory holds one page of its listing at a time (memory bounded by the page, for
// directories of millions of entries): entries[i] is entry number first + i.
struct DirHandle {
  std::mutex mu;
  std::vector<DirEntry> entries;
  uint64_t first = 0;
  uint64_t ticket = 0;  // CacheTicket() before the page was read
  bool loaded = false;
  bool eof = false;
  bool plus = false;
};

class GranaryFs {
 public:
  // fi->fh of an open file: the registry and in-flight flushes share the Handle, so a
  // concurrent Release never frees one that another thread is flushing.
  struct HandleRef {
    std::shared_ptr<Handle> handle;
  };
  GranaryFs(client::Client* client, MountOptions options, uint64_t root_ino);
  ~GranaryFs();

  // The operations table handed to fuse_session_new (userdata is the GranaryFs).
  static const fuse_lowlevel_ops& Ops();

  void set_session(fuse_session* se) { session_ = se; }
  // Stops following the change feed (before the session goes away).
  void StopChangeFeed();
  // Handles this process hands out are numbered from generation << 40: a successor (mount
  // survival, docs/mount-survival.md) never reuses a number the kernel still holds. Bit 0 of a
  // handle says it was opened for writing.
  void set_generation(uint64_t generation) { next_fh_ = (generation << 39) + 1; }
  // After a crash of the predecessor, buffered bytes of its handles may be lost: the first
  // fsync of such a handle reports EIO instead of claiming durability.
  void set_predecessor_crashed(bool crashed) { predecessor_crashed_ = crashed; }

  // fi->fh, as the kernel holds it, is a number; Inward swaps it for this process's handle
  // (re-opening by inode a handle opened by a predecessor) and returns false when it replied
  // itself. `adopt`: re-open an unknown handle (read, write) rather than treat it as having
  // nothing here (flush, fsync, release).
  enum class Unknown { kAdopt, kNothingHere };
  bool InwardFile(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, Unknown unknown);
  bool InwardDir(fuse_req_t req, fuse_file_info* fi, bool create_missing);
  void ForgetFh(uint64_t fh);
  // Whether fsync of `fh` owes an EIO (a handle adopted after a crash; once).
  bool TakeFsyncDebt(uint64_t fh);
  const MountOptions& options() const { return options_; }

  // Commits every open file's buffered bytes (at unmount). Returns how many failed.
  int FlushAll();

  // ---- operations (fuse ino in, reply sent) ----
  void Init(fuse_conn_info* conn);
  void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name);
  void Forget(fuse_ino_t ino);
  void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi);
  void ReadLink(fuse_req_t req, fuse_ino_t ino);
  void Mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode);
  void Mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev);
  void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name);
  void Rmdir(fuse_req_t req, fuse_ino_t parent, const char* name);
  void Symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name);
  void Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
              const char* newname, unsigned int flags);
  void Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname);
  void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi);
  void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
  void WriteBuf(fuse_req_t req, fuse_ino_t ino, fuse_bufvec* bufv, off_t off, fuse_file_info* fi);
  void Flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void Fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi);
  void OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi,
               bool plus);
  void ReleaseDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
  void StatFs(fuse_req_t req, fuse_ino_t ino);
  void Lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence);
  void SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
                int flags);
  void GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size);
  void ListXattr(fuse_req_t req, fuse_ino_t ino, size_t size);
  void RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name);
  void Fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                 fuse_file_info* fi);
  // Cluster-wide locks (fs_locks.cpp).
  void GetLk(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, struct flock* lock);
  void SetLk(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, struct flock* lock, int sleep);
  void Flock(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi, int op);
  // close(2) (flush): drops the POSIX locks `owner` holds on fuse inode `ino`, if it took any
  // through this mount.
  Status ReleaseOwner(uint64_t ino, uint64_t owner);
  // The last close of kernel handle `fh` (release): drops its OFD and flock locks.
  void ReleaseLocksOfFh(uint64_t fh, const fuse_file_info* fi, uint64_t ino);

 private:
  // The volume root (or --subdir) is FUSE_ROOT_ID; Granary inode 1 takes the root's number.
  uint64_t ToGranary(fuse_ino_t ino) const;
  fuse_ino_t ToFuse(uint64_t ino) const;

  struct stat ToStat(const InodeAttr& a) const;
  // `ticket`: CacheTicket() before the metanode call that produced `a`.
  void ReplyEntry(fuse_req_t req, const InodeAttr& a, uint64_t ticket);
  void ReplyError(fuse_req_t req, const Status& s, const char* op);
  // Size as this mount sees it: the newest size this mount committed (a metanode read that
  // raced one of our commits, or a readdirplus page fetched before it, carries the old one), or
  // the end of bytes still buffered here.
  InodeAttr WithLocalSize(InodeAttr a);
  // Records the attributes a commit or truncate of this mount returned, if newer than known.
  void NoteCommitted(const InodeAttr& a);

  // Open handles of one inode (for local coherence: reads, stat, truncate see buffered bytes).
  void AddHandle(const std::shared_ptr<Handle>& h);
  // Hands the new handle to the kernel (replies to open/create); `reply` returns libfuse's
  // result.
  template <typename Reply>
  void Publish(std::shared_ptr<Handle> h, fuse_file_info* fi, Reply reply);
  void RemoveHandle(Handle* h);
  // Commits every dirty local handle of `ino` (before a read through the Reader, a truncate, a
  // fallocate) and invalidates the cached maps of the inode.
  Status FlushInode(uint64_t ino);
  // Commits one handle's buffered bytes durably (flush, fsync); done with `h` when it returns.
  Status CommitHandle(Handle* h);
  uint64_t DataVersion(uint64_t ino);
  void BumpDataVersion(uint64_t ino);
  // Whether the kernel may keep its page cache for `a` (unchanged since cached), and records
  // `a` as what the cache now holds.
  bool StampCache(const InodeAttr& a);
  Status CheckName(const char* name) const;
  Result<std::unique_ptr<Handle>> OpenHandle(const InodeAttr& attr);
  // How long the kernel may cache an answer (ReplyCached).
  struct Timeouts {
    double attr = 0;
    double entry = 0;
    bool negative = false;  // a missing name may be cached (for `entry`)
  };
  // Makes entry number `index` part of d's page, fetching pages from the metanode.
  Status LoadDirPage(DirHandle& d, uint64_t g, uint64_t index, bool plus);
  // Fills `out` with what d's page holds from `off` on (no metanode call; used: bytes filled).
  // Called under d.mu; the caller replies after releasing it.
  void FillDir(DirHandle& d, fuse_req_t req, fuse_ino_t ino, off_t off, bool plus,
               const Timeouts& t, std::vector<char>& out, size_t& used);

  // ------------------------------------------------------------ coherent caching (fs_cache.cpp)
  // The kernel may cache names, attributes and missing names for cache_timeout_s because the
  // mount follows the metanode's change feed and invalidates what other clients change.
  void StartChangeFeed();
  void FollowChanges();
  void Invalidate(const ChangesReply& reply);
  // Taken before the metanode read whose answer the kernel will cache.
  uint64_t CacheTicket() const { return changes_seen_.load(); }
  // Runs `reply(timeouts)` with what an answer read after `ticket` may be cached for: the
  // feed's timeouts, or none when a change arrived meanwhile (it may be about this answer, and
  // its invalidation may already have passed), or the plain ones without the feed. Under
  // cache_mu_, so a change counted after the check is invalidated after the reply.
  template <typename Reply>
  void ReplyCached(uint64_t ticket, Reply reply) {
    std::shared_lock lock(cache_mu_);
    Timeouts t{options_.attr_timeout_s, options_.entry_timeout_s, false};
    if (feed_live_.load()) {
      t = ticket == changes_seen_.load()
              ? Timeouts{options_.cache_timeout_s, options_.cache_timeout_s, true}
              : Timeouts{};
    }
    reply(t);
  }
  // What a reset must invalidate: the names the kernel was given (last name per inode) and the
  // names it caches as missing (bounded; beyond kMaxMissing a missing name is not cached).
  static constexpr size_t kMaxMissing = 65536;
  void NoteName(uint64_t parent, std::string_view name, uint64_t ino);
  bool NoteMissing(uint64_t parent, std::string_view name);
  // Inodes whose attributes the kernel was given while the feed was followed, with which POSIX
  // ACLs they have (kAccessAcl, kDefaultAcl): an xattr query then needs no round trip to learn
  // that an ACL is absent or that the inode exists. Dropped on any change to the inode.
  static constexpr uint8_t kKnown = 1, kAccessAcl = 2, kDefaultAcl = 4;
  void NoteAttr(const InodeAttr& a, const Timeouts& t);
  uint8_t KnownAcls(uint64_t ino);  // 0 when not known
  WriterFirstLock cache_mu_;
  std::atomic<uint64_t> changes_seen_{0};
  std::atomic<bool> feed_live_{false};
  std::mutex names_mu_;
  std::unordered_map<uint64_t, std::pair<uint64_t, std::string>> names_;
  std::set<std::pair<uint64_t, std::string>> missing_;
  std::unordered_map<uint64_t, uint8_t> known_;
  std::mutex feed_mu_;
  std::condition_variable feed_cv_;
  bool feed_stop_ = false;
  std::thread feed_thread_;

  // Takes (or waits for, when `sleep`) one lock; returns the errno to reply.
  int TakeLock(fuse_req_t req, uint64_t ino, const FileLock& want, bool sleep);
  void NoteLockOwner(uint64_t fh, uint64_t ino, uint64_t owner);

  client::Client* client_;
  MountOptions options_;
  const uint64_t root_ino_;
  fuse_session* session_ = nullptr;
  Reader reader_;

  std::mutex mu_;
  std::unordered_map<uint64_t, std::vector<std::shared_ptr<Handle>>> open_;
  struct Stamp {
    uint64_t commit_version = 0;
    uint64_t generation = 0;
    uint64_t size = 0;
    int64_t mtime_sec = 0;
    uint32_t mtime_nsec = 0;
  };
  std::unordered_map<uint64_t, Stamp> stamps_;
  // Per inode the newest (generation, commit_version) this mount committed, with its size and
  // times; dropped when the kernel forgets the inode.
  struct Committed {
    uint64_t generation = 0;
    uint64_t commit_version = 0;
    uint64_t size = 0;
    Timespec mtime;
    Timespec ctime;
  };
  std::unordered_map<uint64_t, Committed> committed_;
  std::unordered_map<uint64_t, uint64_t> data_versions_;
  std::atomic<uint64_t> next_version_{1};

  // Kernel-visible handle number -> HandleRef* or DirHandle* (see InwardFile).
  uint64_t NewFh(uint64_t pointer, bool writable);
  std::mutex fh_mu_;
  std::unordered_map<uint64_t, uint64_t> fh_;
  std::unordered_set<uint64_t> fsync_owes_eio_;
  std::atomic<uint64_t> next_fh_{1};
  bool predecessor_crashed_ = false;
  // FUSE_POSIX_ACL negotiated (Init): the kernel enforces ACLs and hands creates the caller's
  // umask unapplied; the metanode applies it, or the parent's default ACL instead.
  bool posix_acl_ = false;

  // Lock owners that took POSIX locks through this mount, per inode (so that a close(2) without
  // locks costs nothing) and per kernel handle (OFD locks end with their handle).
  std::mutex locks_mu_;
  std::unordered_map<uint64_t, std::set<uint64_t>> lock_owners_;
  std::unordered_map<uint64_t, std::set<std::pair<uint64_t, uint64_t>>> fh_lock_owners_;
};

}  // namespace granary::fuse
