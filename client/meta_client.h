// MetaClient: the typed client of the metanode (proto/granary/meta.proto) used by libgranary, the
// CLI, the S3 gateway and the tests.
//
// Contract:
// - Every call returns Result<T>/Status with the metanode's granary.Code (via FromGrpcStatus);
//   transport failures arrive as Unavailable.
// - Every mutating call carries an OpId {client id, seq}: the client id is random per MetaClient,
//   the sequence an atomic counter. A call that fails with Unavailable (metanode restarting,
//   connection lost) is retried with the *same* OpId until the deadline, so an operation that
//   was applied before its reply was lost returns its first answer instead of a false
//   AlreadyExists/NotFound. Other errors are returned at once.
// - Metadata group (docs/metadata-ha.md): with several addresses the client follows the leader.
//   A follower's NotLeader names the leader, and the call goes there at once; a member that
//   does not answer (refused, or silent for `attempt_timeout`) is left for the next one. The
//   retry keeps its OpId, so an operation retried across a failover is applied once.
// - Session: from its first mutating call on, a MetaClient renews its session with the metanode
//   in the background (KeepAlive every lease/3). Open-file pins (Open, Create with a handle
//   owner, staged objects) belong to that session; if the process dies, the metanode drops them
//   once the lease runs out. A client that was silent too long (stopped, partitioned) and was
//   reaped logs `event=session_expired` and continues under a new client id; files it had open
//   keep working unless they were unlinked (docs/metadata.md "Client sessions and reaping").
// - Thread-safe: one MetaClient is meant to be shared by all threads of a process.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/status.h"
#include "granary/meta.grpc.pb.h"

namespace grpc {
class Channel;
}

namespace granary::client {

// Cancels a call in flight from another thread (an interrupted F_SETLKW), and any later one.
class CallCanceller {
 public:
  void Cancel();
  bool cancelled();

 private:
  friend class MetaClient;
  std::mutex mu_;
  grpc::ClientContext* call_ = nullptr;
  bool cancelled_ = false;
};

struct MetaClientOptions {
  // "HOST:PORT[,HOST:PORT…]" (the --meta flag): one metanode, or members of the metadata group
  // (any subset; the leader is found from there).
  std::string address = "127.0.0.1:7410";
  // Budget of one call including its retries.
  std::chrono::milliseconds deadline{30000};
  // With several members: one attempt waits this long for an answer before the next member is
  // tried (a stopped or partitioned leader answers nothing).
  std::chrono::milliseconds attempt_timeout{3000};
  // First wait before retrying an Unavailable call; doubles up to 1 s.
  std::chrono::milliseconds initial_backoff{20};
  // Renew the session in the background once the first mutating call was made.
  bool keep_alive = true;
};

class MetaClient {
 public:
  // Creates the channel (no I/O; connection happens on the first call).
  static Result<std::unique_ptr<MetaClient>> Connect(MetaClientOptions options);
  ~MetaClient();

  // A fresh OpId of this client (for callers that build requests themselves).
  OpId NextOpId();
  // The session's client id (changes once if the session was reaped while this client lived).
  uint64_t client_id() const { return client_id_.load(std::memory_order_relaxed); }
  // Renews the session now (the background renewal calls it); PreconditionFailed when the
  // session was reaped.
  Result<KeepAliveReply> KeepAlive();
  // The member calls go to now (the leader, once found).
  std::string address() const;

  // One member's connection and stubs.
  struct Endpoint {
    std::string address;
    std::shared_ptr<grpc::Channel> channel;
    std::unique_ptr<Namespace::Stub> ns;
    std::unique_ptr<DataMap::Stub> data;
    std::unique_ptr<Admin::Stub> admin;
    std::unique_ptr<Cluster::Stub> cluster;
    std::unique_ptr<MetaGroup::Stub> group;
  };
  // Runs one RPC with this client's rules (leader following, retries with back-off until the
  // deadline, context naming the member): `attempt` issues it on the given member. For stubs
  // this class does not wrap (the object service).
  using Attempt = std::function<grpc::Status(Endpoint&, grpc::ClientContext&)>;
  // `budget` 0 = options.deadline; `attempt_timeout` 0 = options.attempt_timeout.
  Status Invoke(const char* what, const Attempt& attempt,
                std::chrono::milliseconds budget = std::chrono::milliseconds(0),
                std::chrono::milliseconds attempt_timeout = std::chrono::milliseconds(0));

  // ------------------------------------------------------------ namespace
  Result<InodeAttr> Lookup(uint64_t parent, std::string_view name);
  Result<InodeAttr> GetAttr(uint64_t ino);
  // `req.op` is filled in when unset.
  Result<InodeAttr> SetAttr(SetAttrRequest req);
  Result<InodeAttr> Mkdir(uint64_t parent, std::string_view name, uint32_t mode = 0755,
                          uint32_t uid = 0, uint32_t gid = 0);
  Result<InodeAttr> Mkdir(MkdirRequest req);  // `req.op` is filled in when unset
  // O_CREAT; `exclusive` = O_EXCL (AlreadyExists when the name exists), `truncate` = O_TRUNC.
  Result<InodeAttr> Create(CreateRequest req);
  Result<InodeAttr> Create(uint64_t parent, std::string_view name, uint32_t mode = 0644,
                           bool exclusive = true);
  Status Unlink(uint64_t parent, std::string_view name);
  Status Rmdir(uint64_t parent, std::string_view name);
  Result<RenameReply> Rename(uint64_t parent, std::string_view name, uint64_t new_parent,
                             std::string_view new_name, RenameFlags flags = RENAME_FLAG_PLAIN);
  // Names strictly after `after`, at most `limit` (0 = server default); eof when none is left.
  Result<ReadDirReply> ReadDir(uint64_t ino, std::string_view after = "", uint32_t limit = 0,
                               bool plus = false);
  Result<InodeAttr> Symlink(uint64_t parent, std::string_view name, std::string_view target,
                            uint32_t uid = 0, uint32_t gid = 0);
  Result<std::string> ReadLink(uint64_t ino);
  Result<InodeAttr> Link(uint64_t ino, uint64_t new_parent, std::string_view new_name);
  Status SetXattr(uint64_t ino, std::string_view name, std::string_view value,
                  SetXattrRequest::Mode mode = SetXattrRequest::XATTR_MODE_ANY);
  Status SetXattr(SetXattrRequest req);  // `req.op` is filled in when unset
  Result<std::string> GetXattr(uint64_t ino, std::string_view name);
  Result<std::vector<std::string>> ListXattr(uint64_t ino);
  Status RemoveXattr(uint64_t ino, std::string_view name);
  Result<StatFsReply> StatFs(uint64_t ino);
  Result<InodeAttr> Fallocate(uint64_t ino, uint64_t offset, uint64_t length, uint32_t mode = 0);
  // Open handles pin an unlinked inode (orphan list) until released; `owner` identifies the
  // handle holder (a mount, a gateway).
  Result<InodeAttr> Open(uint64_t ino, uint64_t owner);
  Status Release(uint64_t ino, uint64_t owner);

  // File locks (docs/mount.md "Locks"), held under this client's session. `req.op` is filled
  // in when unset; a refused lock is a reply with granted = false, not an error.
  Result<LockReply> Lock(LockRequest req);
  Result<GetLockReply> GetLock(const GetLockRequest& req);
  // Waits (up to req.timeout_ms) until the inode's lock table is no longer at req.version.
  // With `cancel` cancelled meanwhile, returns an error at once (check cancel->cancelled()).
  Result<LockWaitReply> LockWait(const LockWaitRequest& req, CallCanceller* cancel = nullptr);
  Result<ListLocksReply> ListLocks(uint64_t holder);

  // Several namespace mutations in one call, applied in order (meta.proto BatchRequest); each
  // operation's OpId is filled in when unset. One result per operation; an error means the
  // call as a whole failed (a retry is deduplicated operation by operation).
  Result<BatchReply> Batch(BatchRequest req);
  // Long-polls the namespace change feed (up to req.timeout_ms); req.client_id is this
  // client's, so its own changes are left out.
  Result<ChangesReply> Changes(ChangesRequest req);

  // ------------------------------------------------------------ slice maps
  // Reserves `slice_count` slice ids and `bytes` of quota under a lease.
  Result<AllocateReply> Allocate(uint64_t ino, uint32_t slice_count, uint64_t bytes);
  // Appends slices; StaleGeneration when the file was truncated since Allocate (or the intent
  // was reaped): allocate and write again.
  Result<InodeAttr> Commit(CommitRequest req);
  Status Abandon(uint64_t intent_id);
  // Resolved extents of [offset, offset+length) (length 0 = to the end), holes omitted.
  Result<ReadMapReply> ReadMap(uint64_t ino, uint64_t offset = 0, uint64_t length = 0);

  // ------------------------------------------------------------ admin
  Result<PoolSpec> PoolCreate(const PoolSpec& spec);
  Result<std::vector<PoolSpec>> PoolList();
  Result<Volume> VolumeCreate(std::string_view name, std::string_view pool = "",
                              uint64_t quota_bytes = 0, uint64_t quota_inodes = 0);
  // A clone (docs/snapshots.md): `req.from_volume` or `req.from_snapshot` set; op filled in.
  Result<Volume> VolumeCreate(VolumeCreateRequest req);
  // Snapshot VOLUME@NAME of a live volume (one metadata operation, no data copied).
  Result<Volume> SnapshotCreate(std::string_view volume, std::string_view name);
  // The snapshots of `volume` (every volume's when empty), with their exclusive bytes.
  Result<std::vector<Volume>> SnapshotList(std::string_view volume = "");
  Status SnapshotDelete(std::string_view volume, std::string_view name);
  Result<Volume> VolumeGet(std::string_view name);
  Result<Volume> VolumeGetById(uint64_t id);
  Result<std::vector<Volume>> VolumeList();
  Status VolumeDelete(std::string_view name);
  Result<Volume> VolumeSetQuota(std::string_view name, uint64_t quota_bytes, uint64_t quota_inodes);
  // Generates the access key and secret when empty; the reply holds the secret.
  Result<AccessKey> KeyCreate(std::string_view name = "", std::string_view access_key = "",
                              std::string_view secret_key = "");
  Result<AccessKey> KeyGetSecret(std::string_view access_key);
  Result<std::vector<AccessKey>> KeyList();
  Status KeyDelete(std::string_view access_key);
  // Without `volume`: a new volume of the bucket's name that the bucket owns.
  Result<Bucket> BucketCreate(std::string_view name, std::string_view owner,
                              std::string_view volume = "", std::string_view pool = "");
  // The same with every field of the request (the operator records the Kubernetes owner);
  // `req.op` is filled in here.
  Result<Bucket> BucketCreate(BucketCreateRequest req);
  Result<Bucket> BucketGet(std::string_view name);
  Result<std::vector<Bucket>> BucketList();
  Status BucketDelete(std::string_view name);
  Result<Bucket> BucketGrant(std::string_view name, std::string_view access_key, Access access);
  Result<BackupReply> Backup(std::string_view dir = "");
  // Locality and warm-ups (docs/locality.md). Locality and list walk the namespace under the
  // path (O(files)): they may take minutes on a huge volume. `budget` 0 waits that long (as
  // snapshot calls do); a caller that must not (a reconciler) passes its own.
  Result<VolumeLocalityReply> VolumeLocality(
      std::string_view volume, std::string_view path = "",
      std::chrono::milliseconds budget = std::chrono::milliseconds(0));
  Result<Warmup> WarmupCreate(std::string_view name, std::string_view volume, std::string_view path,
                              const std::vector<std::string>& hosts,
                              std::chrono::milliseconds budget = std::chrono::milliseconds(0));
  Result<std::vector<Warmup>> WarmupList(
      std::string_view name = "", std::chrono::milliseconds budget = std::chrono::milliseconds(0));
  Status WarmupDelete(std::string_view name,
                      std::chrono::milliseconds budget = std::chrono::milliseconds(0));

  // ------------------------------------------------------------ cluster
  Result<RegisterReply> Register(const RegisterRequest& req);
  Result<HeartbeatReply> Heartbeat(const HeartbeatRequest& req);
  // `unchanged` is set (and nothing else) when known_epoch is current.
  Result<ClusterMap> GetClusterMap(uint64_t known_epoch = 0);
  Status ReportCorruption(const ReportCorruptionRequest& req);
  Result<ClusterStatusReply> ClusterStatus();
  Result<CompactionCandidatesReply> CompactionCandidates(uint32_t limit);
  Result<CheckSlicesReply> CheckSlices(const CheckSlicesRequest& req);
  Result<PgBlocksReply> PgBlocks(const PgBlocksRequest& req);
  Status CompactionDone(uint64_t ino, uint64_t range_index);
  Status WarmDone(const WarmDoneRequest& req);

  // ------------------------------------------------------------ metadata group
  // The view of the member at `address` (empty: the leader, found as for any call).
  Result<MetaGroupStatus> GroupStatus(std::string_view address = "");
  Status AddMember(uint64_t id, std::string_view address);
  Status RemoveMember(uint64_t id);

  // The raw stubs of the member calls go to now, for what is not wrapped here.
  Namespace::Stub& namespace_stub() { return *Current().ns; }

 private:
  Endpoint& Current();
  Endpoint& EndpointFor(const std::string& address);  // creates it when new
  Endpoint* Next(Endpoint* after);                    // the next configured member

  MetaClientOptions options_;
  std::vector<std::string> configured_;  // the --meta list
  mutable std::mutex endpoints_mu_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;  // never shrinks: references stay valid
  Endpoint* current_ = nullptr;                       // guarded by endpoints_mu_
  std::atomic<uint64_t> client_id_{0};
  std::atomic<uint64_t> seq_{0};
  // Background session renewal (started by the first NextOpId).
  void KeepAliveLoop();
  std::once_flag keep_alive_started_;
  std::mutex keep_alive_mu_;
  std::condition_variable keep_alive_cv_;
  bool keep_alive_stop_ = false;
  bool keep_alive_unsupported_ = false;
  grpc::ClientContext* keep_alive_call_ = nullptr;  // in flight, cancelled on shutdown
  std::thread keep_alive_thread_;

  template <typename Stub, typename Req, typename Reply>
  Status Call(const char* what, std::unique_ptr<Stub> Endpoint::*stub,
              grpc::Status (Stub::*method)(grpc::ClientContext*, const Req&, Reply*),
              const Req& req, Reply* reply);
  // `budget` 0: minutes (a namespace walk or copy); otherwise that budget per call and attempt.
  template <typename Req, typename Reply>
  Status CallLong(const char* what,
                  grpc::Status (Admin::Stub::*method)(grpc::ClientContext*, const Req&, Reply*),
                  const Req& req, Reply* reply,
                  std::chrono::milliseconds budget = std::chrono::milliseconds(0));
};

}  // namespace granary::client
