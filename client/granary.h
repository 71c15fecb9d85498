// libgranary: files and directories of Granary volumes, for the CLI, the S3 gateway and the
// FUSE mount (DESIGN §4). A Client holds the metanode connection, the cached cluster view and
// the data connections; Files buffer writes and commit them at Flush/Close (close-to-open).
//
//   auto client = Client::Connect({.meta = "127.0.0.1:7410"});
//   auto file = (*client)->Open("default", "ckpt/model.bin", {.create = true, .truncate = true});
//   (*file)->Pwrite(bytes, 0);
//   (*file)->Close();   // durable on return: every replica/fragment fsynced, metadata committed
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "client/slice_plan.h"
#include "client/write_buffer.h"
#include "common/status.h"
#include "common/topology.h"
#include "granary/meta.pb.h"

namespace granary::client {

class MetaClient;
class ClusterView;
class BlockIo;
class EcBlockIo;
class Releaser;
class Client;

struct ClientOptions {
  std::string meta = "127.0.0.1:7410";  // HOST:PORT[,HOST:PORT…]
  // Where this client runs (zone/rack/host/gpu); readers prefer copies close to it. Empty:
  // $GRANARY_LABELS, host = this machine's hostname.
  std::string labels;
  // Per data request; a write or read fails over / retries within `operation_timeout`.
  std::chrono::milliseconds request_timeout{30000};
  std::chrono::milliseconds operation_timeout{120000};
  // A File flushes on its own once this many bytes are buffered.
  uint64_t write_buffer_bytes = 64ull << 20;
  // Write-behind: full buffers flushing in the background while the writer fills the next one
  // (0: a full buffer is flushed inside Pwrite). Memory per File is at most
  // (write_behind + 1) × write_buffer_bytes; a writer that gets ahead waits for the oldest.
  uint32_t write_behind = 2;
  // Blocks in flight per flush or read (bounds memory and sockets).
  uint32_t max_inflight_blocks = 16;
  // Erasure-coded reads: a data fragment not answered within this long is rebuilt from the
  // other fragments (docs/erasure-coding.md).
  std::chrono::milliseconds fragment_deadline{1000};
  uint32_t uid = 0;
  uint32_t gid = 0;
};

struct OpenOptions {
  bool create = false;
  bool exclusive = false;  // with create: AlreadyExists when the name exists
  bool truncate = false;
  uint32_t mode = 0644;
};

class File {
 public:
  ~File();  // closes; errors are logged (call Close to see them)
  File(const File&) = delete;
  File& operator=(const File&) = delete;

  // Reads up to out.size() bytes at `offset`; returns the count (0 at or past the end). Sees
  // this File's own buffered writes. Holes read as zeros. Never returns corrupt bytes.
  Result<size_t> Pread(std::span<uint8_t> out, uint64_t offset);
  // Buffers the bytes; they reach storage at Flush/Close, or in the background once the buffer
  // fills (write-behind). A background flush that failed is reported here; its bytes, and this
  // call's, stay buffered and are written again by the next Flush/Close.
  Status Pwrite(std::span<const uint8_t> data, uint64_t offset);
  // Sets the size (a truncate bumps the generation; concurrent writers retry their commit).
  Status Truncate(uint64_t size);
  // Makes every buffered byte durable and visible: waits for the background flushes, then
  // writes what is left (blocks fsynced on all replicas, then one metadata commit).
  Status Flush();
  Status Fsync() { return Flush(); }
  // Flush + release of the open handle. Idempotent.
  Status Close();
  // Compaction (DESIGN §2): rewrites chunk range `range_index` (64 MiB of offsets) as one new
  // slice when it is made of several, so reads resolve one reference. The bytes do not change.
  // PreconditionFailed when a writer changed the range meanwhile (nothing is lost; try later).
  Status CompactRange(uint64_t range_index);

  uint64_t ino() const { return ino_; }
  // Size including buffered writes.
  uint64_t size() const;
  // Attributes as of the last open/commit/read.
  InodeAttr attr() const;

 private:
  friend class Client;
  friend class ObjectClient;  // object_client.h: Files over staged (unnamed) inodes
  struct BackgroundFlush;
  File(Client* client, InodeAttr attr, uint64_t handle_owner);
  Status FlushLocked();
  // Hands the full buffer to a background flush (waiting for the oldest when `write_behind`
  // are already running).
  Status StartBackgroundFlush();
  // Waits for background flushes, oldest first: every one, or (`all` false) those already done.
  // The first failure is returned; the failed flushes' bytes (and those of the flushes after
  // them, which never commit) go back into the buffer under any newer bytes.
  Status ReapBackground(bool all);
  // Allocates, writes and commits `runs` (retrying a StaleGeneration). `before_commit` runs
  // between the block writes and the commit; an error from it abandons the written slices.
  Result<InodeAttr> WriteRuns(const std::vector<WriteBuffer::Run>& runs, uint64_t end,
                              const std::function<Status()>& before_commit);
  // One attempt: allocate, write every block of `slices`, commit.
  // `replacing`: commit as a compaction of the ranges that map described.
  Result<InodeAttr> FlushOnce(const std::vector<PlannedSlice>& slices, uint64_t end,
                              const ReadMapReply* replacing = nullptr,
                              const std::function<Status()>& before_commit = {});
  Status WriteBlocks(const std::vector<PlannedSlice>& slices, const AllocateReply& alloc,
                     const PoolSpec& pool);

  Client* client_;
  const uint64_t ino_;
  const uint64_t handle_owner_;  // this handle's pin on the inode (orphan list)
  mutable std::mutex mu_;
  InodeAttr attr_;
  WriteBuffer buffer_;
  std::deque<std::shared_ptr<BackgroundFlush>> background_;  // oldest first
  bool closed_ = false;
};

class Client {
 public:
  static Result<std::unique_ptr<Client>> Connect(const ClientOptions& options);
  ~Client();

  // `path` is relative to the volume root; "" or "/" is the root. Components are separated by
  // '/'; empty components are skipped.
  Result<InodeAttr> Resolve(std::string_view volume, std::string_view path);
  Result<std::unique_ptr<File>> Open(std::string_view volume, std::string_view path,
                                     const OpenOptions& options = {});
  Result<std::unique_ptr<File>> OpenInode(const InodeAttr& attr);
  // Creates (or, unless exclusive, opens an existing) file and opens it in one durable metanode
  // operation; the writer host is this client's.
  Result<std::unique_ptr<File>> CreateFile(CreateRequest req);
  // Creates the directory (and with `parents` any missing ancestors; an existing directory is
  // then fine).
  Result<InodeAttr> Mkdir(std::string_view volume, std::string_view path, uint32_t mode = 0755,
                          bool parents = false);
  // Removes a file, symlink or empty directory.
  Status Remove(std::string_view volume, std::string_view path);
  // Every entry of a directory, in name order (with attributes).
  Result<std::vector<DirEntry>> List(std::string_view volume, std::string_view path);

  MetaClient& meta() { return *meta_; }
  ClusterView& cluster() { return *cluster_; }
  BlockIo& blocks() { return *blocks_; }
  EcBlockIo& ec_blocks() { return *ec_blocks_; }
  const ClientOptions& options() const { return options_; }
  // Waits until the pins of closed files are released at the metanode (closing does not wait:
  // releaser.h).
  void DrainReleases();

 private:
  friend class File;
  friend class ObjectClient;  // staged objects pin their inodes with this client's owners
  Client() = default;
  Result<uint64_t> VolumeRoot(std::string_view volume);
  // The volume root's attributes and the components of `path` below it.
  Result<std::pair<InodeAttr, std::vector<std::string>>> RootAndComponents(std::string_view volume,
                                                                           std::string_view path);
  // Parent directory inode and final name of `path`.
  Result<std::pair<uint64_t, std::string>> ResolveParent(std::string_view volume,
                                                         std::string_view path);

  ClientOptions options_;
  std::unique_ptr<MetaClient> meta_;
  std::unique_ptr<ClusterView> cluster_;
  std::unique_ptr<BlockIo> blocks_;
  std::unique_ptr<EcBlockIo> ec_blocks_;
  std::unique_ptr<Releaser> releaser_;  // after meta_: it is stopped (drained) first
  // A new pin owner per handle: closing one handle does not unpin another.
  uint64_t NextHandleOwner();
  std::atomic<uint64_t> handles_opened_{0};
};

}  // namespace granary::client
