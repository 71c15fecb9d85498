// nullfs: the FUSE transport limit for bench/mount.sh. A flat directory of files that remember
// only their size: writes are discarded, reads return zeros. Same libfuse3 low-level API,
// threads, 1 MiB requests and readahead as `granary mount`, so the ratio isolates Granary.
//   nullfs MOUNTPOINT      (foreground; SIGTERM/SIGINT unmount)
#define FUSE_USE_VERSION FUSE_MAKE_VERSION(3, 12)
#include <fuse3/fuse_lowlevel.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace {

struct Node {
  fuse_ino_t ino;
  uint64_t size;
  mode_t mode;
};
std::mutex mu;
std::map<std::string, Node> files;
std::map<fuse_ino_t, std::string> names;
fuse_ino_t next_ino = 2;
const std::vector<char> kZeros(1 << 20, 0);

struct stat Stat(fuse_ino_t ino, mode_t mode, uint64_t size) {
  struct stat st {};
  st.st_ino = ino;
  st.st_mode = mode;
  st.st_nlink = 1;
  st.st_size = static_cast<off_t>(size);
  st.st_blksize = 1 << 20;
  return st;
}

bool Find(fuse_ino_t ino, Node* out) {
  auto n = names.find(ino);
  if (n == names.end()) return false;
  *out = files[n->second];
  return true;
}

void Init(void*, fuse_conn_info* conn) {
  conn->max_write = 1 << 20;
  conn->max_read = 1 << 20;
  conn->max_readahead = 8 << 20;
  conn->want |= FUSE_CAP_ASYNC_READ | FUSE_CAP_PARALLEL_DIROPS;
  conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
  conn->max_background = 64;
}

void Entry(fuse_req_t req, const Node& n) {
  fuse_entry_param e{};
  e.ino = n.ino;
  e.attr = Stat(n.ino, n.mode, n.size);
  e.attr_timeout = e.entry_timeout = 1.0;
  fuse_reply_entry(req, &e);
}

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  std::lock_guard l(mu);
  auto it = files.find(name);
  if (parent != FUSE_ROOT_ID || it == files.end()) return (void)fuse_reply_err(req, ENOENT);
  Entry(req, it->second);
}

void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  if (ino == FUSE_ROOT_ID) {
    struct stat st = Stat(ino, S_IFDIR | 0777, 0);
    return (void)fuse_reply_attr(req, &st, 1.0);
  }
  std::lock_guard l(mu);
  Node n;
  if (!Find(ino, &n)) return (void)fuse_reply_err(req, ENOENT);
  struct stat st = Stat(ino, n.mode, n.size);
  fuse_reply_attr(req, &st, 1.0);
}

void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
  std::lock_guard l(mu);
  auto n = names.find(ino);
  if (n == names.end()) return (void)fuse_reply_err(req, ENOENT);
  Node& node = files[n->second];
  if (to_set & FUSE_SET_ATTR_SIZE) node.size = static_cast<uint64_t>(attr->st_size);
  struct stat st = Stat(ino, node.mode, node.size);
  fuse_reply_attr(req, &st, 1.0);
}

void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
  std::lock_guard l(mu);
  auto [it, fresh] = files.try_emplace(name, Node{next_ino, 0, S_IFREG | (mode & 0777)});
  if (fresh) names[next_ino++] = name;
  fuse_entry_param e{};
  e.ino = it->second.ino;
  e.attr = Stat(e.ino, it->second.mode, it->second.size);
  e.attr_timeout = e.entry_timeout = 1.0;
  fuse_reply_create(req, &e, fi);
}

void Unlink(fuse_req_t req, fuse_ino_t, const char* name) {
  std::lock_guard l(mu);
  auto it = files.find(name);
  if (it == files.end()) return (void)fuse_reply_err(req, ENOENT);
  names.erase(it->second.ino);
  files.erase(it);
  fuse_reply_err(req, 0);
}

void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  uint64_t fsize;
  {
    std::lock_guard l(mu);
    Node n;
    if (!Find(ino, &n)) return (void)fuse_reply_err(req, ENOENT);
    fsize = n.size;
  }
  size_t count = static_cast<uint64_t>(off) >= fsize
                     ? 0
                     : std::min<uint64_t>({uint64_t{size}, fsize - static_cast<uint64_t>(off),
                                           uint64_t{kZeros.size()}});
  fuse_reply_buf(req, kZeros.data(), count);
}

void Write(fuse_req_t req, fuse_ino_t ino, const char*, size_t size, off_t off, fuse_file_info*) {
  std::lock_guard l(mu);
  auto n = names.find(ino);
  if (n == names.end()) return (void)fuse_reply_err(req, ENOENT);
  Node& node = files[n->second];
  node.size = std::max<uint64_t>(node.size, static_cast<uint64_t>(off) + size);
  fuse_reply_write(req, size);
}

void ReadDir(fuse_req_t req, fuse_ino_t, size_t size, off_t off, fuse_file_info*) {
  fuse_reply_buf(req, nullptr, 0);  // listing is not part of the benchmark
}

void Ok(fuse_req_t req, fuse_ino_t, fuse_file_info*) { fuse_reply_err(req, 0); }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: nullfs MOUNTPOINT\n");
    return 2;
  }
  fuse_lowlevel_ops ops{};
  ops.init = Init;
  ops.lookup = Lookup;
  ops.getattr = GetAttr;
  ops.setattr = SetAttr;
  ops.create = Create;
  ops.unlink = Unlink;
  ops.open = [](fuse_req_t req, fuse_ino_t, fuse_file_info* fi) { fuse_reply_open(req, fi); };
  ops.read = Read;
  ops.write = Write;
  ops.flush = Ok;
  ops.release = Ok;
  ops.fsync = [](fuse_req_t req, fuse_ino_t, int, fuse_file_info*) { fuse_reply_err(req, 0); };
  ops.opendir = [](fuse_req_t req, fuse_ino_t, fuse_file_info* fi) { fuse_reply_open(req, fi); };
  ops.readdir = ReadDir;
  ops.releasedir = Ok;
  ops.getxattr = [](fuse_req_t req, fuse_ino_t, const char*, size_t) {
    fuse_reply_err(req, ENODATA);
  };
  char* args_v[] = {argv[0], const_cast<char*>("-o"),
                    const_cast<char*>("fsname=nullfs,allow_other,max_read=1048576")};
  fuse_args args = FUSE_ARGS_INIT(3, args_v);
  fuse_session* se = fuse_session_new(&args, &ops, sizeof ops, nullptr);
  if (se == nullptr || fuse_set_signal_handlers(se) != 0) return 1;
  if (fuse_session_mount(se, argv[1]) != 0) return 1;
  std::printf("nullfs mounted on %s\n", argv[1]);
  std::fflush(stdout);
  fuse_loop_config* cfg = fuse_loop_cfg_create();
  fuse_loop_cfg_set_max_threads(cfg, 32);
  int rc = fuse_session_loop_mt(se, cfg);
  fuse_loop_cfg_destroy(cfg);
  fuse_session_unmount(se);
  fuse_remove_signal_handlers(se);
  fuse_session_destroy(se);
  return rc;
}
