#include "metanode/service.h"

#include <fmt/format.h>

#include <memory>
#include <mutex>

#include "metanode/locality.h"
#include "metanode/object_service.h"
#include "metanode/reader.h"
#include "metanode/service_util.h"

namespace granary::metanode {

namespace {

using grpc::ServerContext;

constexpr int kMaxBatchOps = 1024;

class NamespaceService final : public Namespace::CallbackService {
 public:
  explicit NamespaceService(MetaCore& core) : core_(core) {}

  grpc::ServerUnaryReactor* Lookup(grpc::CallbackServerContext* ctx, const LookupRequest* req,
                                   EntryReply* out) override {
    return Done(
        ctx, Answer(Read(core_,
                         [&](Txn& view) { return QueryLookup(view, req->parent(), req->name()); }),
                    [&](InodeAttr& a) { *out->mutable_attr() = std::move(a); }));
  }
  grpc::ServerUnaryReactor* GetAttr(grpc::CallbackServerContext* ctx, const GetAttrRequest* req,
                                    AttrReply* out) override {
    return Done(ctx, Answer(Read(core_, [&](Txn& view) { return QueryGetAttr(view, req->ino()); }),
                            [&](InodeAttr& a) { *out->mutable_attr() = std::move(a); }));
  }
  grpc::ServerUnaryReactor* SetAttr(grpc::CallbackServerContext* ctx, const SetAttrRequest* req,
                                    AttrReply* out) override {
    return MutateAsync(
        core_, ctx, req->op(), [&](Operation& op) { *op.mutable_setattr() = *req; },
        [out](OpReply& r) { *out = r.attr(); });
  }
  grpc::ServerUnaryReactor* Mkdir(grpc::CallbackServerContext* ctx, const MkdirRequest* req,
                                  EntryReply* out) override {
    return MutateAsync(
        core_, ctx, req->op(), [&](Operation& op) { *op.mutable_mkdir() = *req; },
        [out](OpReply& r) { *out = r.entry(); });
  }
  grpc::ServerUnaryReactor* Create(grpc::CallbackServerContext* ctx, const CreateRequest* req,
                                   EntryReply* out) override {
    return MutateAsync(
        core_, ctx, req->op(), [&](Operation& op) { *op.mutable_create() = *req; },
        [out](OpReply& r) { *out = r.entry(); });
  }
  grpc::ServerUnaryReactor* Unlink(grpc::CallbackServerContext* ctx, const UnlinkRequest* req,
                                   Empty*) override {
    return MutateAsync(
        core_, ctx, req->op(), [&](Operation& op) { *op.mutable_unlink() = *req; },
        [](OpReply&) {});
  }
  grpc::ServerUnaryReactor* Rmdir(grpc::CallbackServerContext* ctx, const RmdirRequest* req,
                                  Empty*) override {
    return MutateAsync(
        core_, ctx, req->op(), [&](Operation& op) { *op.mutable_rmdir() = *req; }, [](OpReply&) {});
  }
  grpc::ServerUnaryReactor* Rename(grpc::CallbackServerContext* ctx, const RenameRequest* req,
                                   RenameReply* out) override {
    return MutateAsync(
        core_, ctx, req->op(), [&](Operation& op) { *op.mutable_rename() = *req; },
        [out](OpReply& r) { *out = r.rename(); });
  }
  grpc::ServerUnaryReactor* ReadDir(grpc::CallbackServerContext* ctx, const ReadDirRequest* req,
                                    ReadDirReply* out) override {
    return Done(ctx, Answer(Read(core_, [&](Txn& view) { return QueryReadDir(view, *req); }),
                            [&](ReadDirReply& r) { *out = std::move(r); }));
  }
  grpc::ServerUnaryReactor* Symlink(grpc::CallbackServerContext* ctx, const SymlinkRequest* req,
                                    EntryReply* out) override {
    return MutateAsync(
        core_, ctx, req->op(), [&](Operation& op) { *op.mutable_symlink() = *req; },
        [out](OpReply& r) { *out = r.entry(); });
  }
  grpc::ServerUnaryReactor* ReadLink(grpc::CallbackServerContext* ctx, const ReadLinkRequest* req,
                                     ReadLinkReply* out) override {
    return Done(ctx, Answer(Read(core_, [&](Txn& view) { return QueryReadLink(view, req->ino()); }),
                            [&](std::string& t) { out->set_target(std::move(t)); }));
  }
  grpc::ServerUnaryReactor* Link(grpc::CallbackServerContext* ctx, const LinkRequest* req,
                                 EntryReply* out) override {
    return MutateAsync(
        core_, ctx, req->op(), [&](Operation& op) { *op.mutable_link() = *req; },
        [out](OpReply& r) { *out = r.entry(); });
  }
  grpc::ServerUnaryReactor* SetXattr(grpc::CallbackServerContext* ctx, const SetXattrRequest* req,
                                     Empty*) override {
    return MutateAsync(
        core_, ctx, req->op(), [&](Operation& op) { *op.mutable_setxattr() = *req; },
        [](OpReply&) {});
  }
  grpc::ServerUnaryReactor* GetXattr(grpc::CallbackServerContext* ctx, const GetXattrRequest* req,
                                     GetXattrReply* out) override {
    return Done(
        ctx,
        Answer(Read(core_, [&](Txn& view) { return QueryGetXattr(view, req->ino(), req->name()); }),
               [&](std::string& v) { out->set_value(std::move(v)); }));
  }
  grpc::ServerUnaryReactor* ListXattr(grpc::CallbackServerContext* ctx, const ListXattrRequest* req,
                                      ListXattrReply* out) override {
    return Done(ctx,
                Answer(Read(core_, [&](Txn& view) { return QueryListXattr(view, req->ino()); }),
                       [&](ListXattrReply& r) { *out = std::move(r); }));
  }
  grpc::ServerUnaryReactor* RemoveXattr(grpc::CallbackServerContext* ctx,
                                        const RemoveXattrRequest* req, Empty*) override {
    return MutateAsync(
        core_, ctx, req->op(), [&](Operation& op) { *op.mutable_removexattr() = *req; },
        [](OpReply&) {});
  }
  grpc::ServerUnaryReactor* StatFs(grpc::CallbackServerContext* ctx, const StatFsRequest* req,
                                   StatFsReply* out) override {
    return Done(ctx, Answer(Read(core_, [&](Txn& view) { return QueryStatFs(view, req->ino()); }),
                            [&](StatFsReply& r) { *out = std::move(r); }));
  }
  grpc::ServerUnaryReactor* Fallocate(grpc::CallbackServerContext* ctx, const FallocateRequest* req,
                                      AttrReply* out) override {
    return MutateAsync(
        core_, ctx, req->op(), [&](Operation& op) { *op.mutable_fallocate() = *req; },
        [out](OpReply& r) { *out = r.attr(); });
  }
  grpc::ServerUnaryReactor* Open(grpc::CallbackServerContext* ctx, const OpenRequest* req,
                                 AttrReply* out) override {
    return MutateAsync(
        core_, ctx, req->op(), [&](Operation& op) { *op.mutable_open() = *req; },
        [out](OpReply& r) { *out = r.attr(); });
  }
  grpc::ServerUnaryReactor* Release(grpc::CallbackServerContext* ctx, const ReleaseRequest* req,
                                    Empty*) override {
    return MutateAsync(
        core_, ctx, req->op(), [&](Operation& op) { *op.mutable_release() = *req; },
        [](OpReply&) {});
  }
  grpc::ServerUnaryReactor* Lock(grpc::CallbackServerContext* ctx, const LockRequest* req,
                                 LockReply* out) override {
    const uint64_t ino = req->ino();
    return MutateAsync(
        core_, ctx, req->op(), [&](Operation& op) { *op.mutable_lock() = *req; },
        [this, out, ino](OpReply& r) {
          *out = r.lock();
          if (out->granted()) core_.lock_waiters().Notify(ino);
        });
  }
  grpc::ServerUnaryReactor* GetLock(grpc::CallbackServerContext* ctx, const GetLockRequest* req,
                                    GetLockReply* out) override {
    return Done(ctx, Answer(Read(core_, [&](Txn& view) { return QueryGetLock(view, *req); }),
                            [&](GetLockReply& r) { *out = std::move(r); }));
  }
  // A long poll (lock_waiters.h): registered first, then the version is read, so a change that
  // lands in between is never missed.
  grpc::ServerUnaryReactor* LockWait(grpc::CallbackServerContext* ctx, const LockWaitRequest* req,
                                     LockWaitReply* out) override {
    auto* reactor = ctx->DefaultReactor();
    // `req` may be gone once the waiter is answered (from another thread): copied first.
    const uint64_t ino = req->ino(), seen = req->version();
    LockWaiters& waiters = core_.lock_waiters();
    uint64_t id = waiters.Add(*req, [reactor, out](LockWaitReply r) {
      *out = std::move(r);
      reactor->Finish(grpc::Status::OK);
    });
    if (id == 0) {
      out->set_deadlock(true);
      reactor->Finish(grpc::Status::OK);
      return reactor;
    }
    auto version = Read(core_, [&](Txn& view) { return QueryLockVersion(view, ino); });
    if (!version.ok()) {
      if (waiters.Remove(id)) reactor->Finish(ToGrpcStatus(version.status()));
    } else if (*version != seen) {
      waiters.Wake(id);
    }
    return reactor;
  }
  grpc::ServerUnaryReactor* ListLocks(grpc::CallbackServerContext* ctx, const ListLocksRequest* req,
                                      ListLocksReply* out) override {
    return Done(ctx,
                Answer(Read(core_, [&](Txn& view) { return QueryListLocks(view, req->holder()); }),
                       [&](ListLocksReply& r) { *out = std::move(r); }));
  }
  // Every operation is submitted before the first can be answered, so they travel together
  // (one log entry when they fit); the reply goes once the last is durable.
  grpc::ServerUnaryReactor* Batch(grpc::CallbackServerContext* ctx, const BatchRequest* req,
                                  BatchReply* out) override {
    auto* reactor = ctx->DefaultReactor();
    if (req->ops_size() > kMaxBatchOps) {
      reactor->Finish(ToGrpcStatus(InvalidArgument(fmt::format(
          "a batch holds at most {} operations, not {}", kMaxBatchOps, req->ops_size()))));
      return reactor;
    }
    if (req->ops_size() == 0) {
      reactor->Finish(grpc::Status::OK);
      return reactor;
    }
    struct State {
      std::mutex mu;
      int left;
    };
    auto state = std::make_shared<State>();
    state->left = req->ops_size();
    for (int i = 0; i < req->ops_size(); ++i) out->add_results();
    for (int i = 0; i < req->ops_size(); ++i) {
      const BatchOp& b = req->ops(i);
      Operation op;
      switch (b.op_case()) {
        case BatchOp::kCreate:
          *op.mutable_id() = b.create().op();
          *op.mutable_create() = b.create();
          break;
        case BatchOp::kMkdir:
          *op.mutable_id() = b.mkdir().op();
          *op.mutable_mkdir() = b.mkdir();
          break;
        case BatchOp::kUnlink:
          *op.mutable_id() = b.unlink().op();
          *op.mutable_unlink() = b.unlink();
          break;
        case BatchOp::kRmdir:
          *op.mutable_id() = b.rmdir().op();
          *op.mutable_rmdir() = b.rmdir();
          break;
        case BatchOp::kSetattr:
          *op.mutable_id() = b.setattr().op();
          *op.mutable_setattr() = b.setattr();
          break;
        case BatchOp::kRelease:
          *op.mutable_id() = b.release().op();
          *op.mutable_release() = b.release();
          break;
        case BatchOp::kSymlink:
          *op.mutable_id() = b.symlink().op();
          *op.mutable_symlink() = b.symlink();
          break;
        case BatchOp::kLink:
          *op.mutable_id() = b.link().op();
          *op.mutable_link() = b.link();
          break;
        case BatchOp::kRename:
          *op.mutable_id() = b.rename().op();
          *op.mutable_rename() = b.rename();
          break;
        case BatchOp::OP_NOT_SET:
          break;
      }
      BatchResult* result = out->mutable_results(i);
      auto answer = [reactor, state, result](OpReply reply) {
        result->set_code(reply.code());
        result->set_message(reply.message());
        if (reply.has_entry())
          *result->mutable_attr() = std::move(*reply.mutable_entry()->mutable_attr());
        if (reply.has_attr())
          *result->mutable_attr() = std::move(*reply.mutable_attr()->mutable_attr());
        if (reply.has_rename()) *result->mutable_rename() = std::move(*reply.mutable_rename());
        std::lock_guard lock(state->mu);
        if (--state->left == 0) reactor->Finish(grpc::Status::OK);
      };
      if (b.op_case() == BatchOp::OP_NOT_SET) {
        answer(ErrorReply(InvalidArgument(fmt::format("batch operation {} is empty", i))));
        continue;
      }
      core_.MutateAsync(std::move(op), std::move(answer));
    }
    return reactor;
  }
  grpc::ServerUnaryReactor* Changes(grpc::CallbackServerContext* ctx, const ChangesRequest* req,
                                    ChangesReply* out) override {
    auto* reactor = ctx->DefaultReactor();
    core_.changes().Poll(*req, [reactor, out](ChangesReply r) {
      *out = std::move(r);
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }
  grpc::ServerUnaryReactor* KeepAlive(grpc::CallbackServerContext* ctx, const KeepAliveRequest* req,
                                      KeepAliveReply* out) override {
    return Done(ctx, Answer(core_.KeepAlive(req->client_id()),
                            [&](KeepAliveReply& r) { *out = std::move(r); }));
  }

 private:
  MetaCore& core_;
};

class DataMapService final : public DataMap::CallbackService {
 public:
  explicit DataMapService(MetaCore& core) : core_(core) {}
  grpc::ServerUnaryReactor* Allocate(grpc::CallbackServerContext* ctx, const AllocateRequest* req,
                                     AllocateReply* out) override {
    return MutateAsync(
        core_, ctx, req->op(), [&](Operation& op) { *op.mutable_allocate() = *req; },
        [out](OpReply& r) { *out = r.allocate(); });
  }
  grpc::ServerUnaryReactor* Commit(grpc::CallbackServerContext* ctx, const CommitRequest* req,
                                   AttrReply* out) override {
    return MutateAsync(
        core_, ctx, req->op(), [&](Operation& op) { *op.mutable_commit() = *req; },
        [out](OpReply& r) { *out = r.attr(); });
  }
  grpc::ServerUnaryReactor* Abandon(grpc::CallbackServerContext* ctx, const AbandonRequest* req,
                                    Empty*) override {
    return MutateAsync(
        core_, ctx, req->op(), [&](Operation& op) { *op.mutable_abandon() = *req; },
        [](OpReply&) {});
  }
  grpc::ServerUnaryReactor* ReadMap(grpc::CallbackServerContext* ctx, const ReadMapRequest* req,
                                    ReadMapReply* out) override {
    return Done(ctx, Answer(Read(core_, [&](Txn& view) { return QueryReadMap(view, *req); }),
                            [&](ReadMapReply& r) { *out = std::move(r); }));
  }

 private:
  MetaCore& core_;
};

class AdminService final : public Admin::Service {
 public:
  explicit AdminService(MetaCore& core) : core_(core) {}
  grpc::Status PoolCreate(ServerContext*, const PoolCreateRequest* req, PoolReply* out) override {
    return Mutate(
        core_, req->op(), [&](Operation& op) { *op.mutable_pool_create() = *req; },
        [&](OpReply& r) { *out = r.pool(); });
  }
  grpc::Status PoolList(ServerContext*, const Empty*, PoolListReply* out) override {
    return Answer(Read(core_, [&](Txn& view) { return QueryPools(view); }),
                  [&](PoolListReply& r) { *out = std::move(r); });
  }
  grpc::Status VolumeCreate(ServerContext*, const VolumeCreateRequest* req,
                            VolumeReply* out) override {
    return Mutate(
        core_, req->op(), [&](Operation& op) { *op.mutable_volume_create() = *req; },
        [&](OpReply& r) { *out = r.volume(); });
  }
  grpc::Status VolumeGet(ServerContext*, const VolumeGetRequest* req, VolumeReply* out) override {
    return Answer(Read(core_, [&](Txn& view) { return QueryVolume(view, *req); }),
                  [&](Volume& v) { *out->mutable_volume() = std::move(v); });
  }
  grpc::Status VolumeList(ServerContext*, const Empty*, VolumeListReply* out) override {
    return Answer(Read(core_, [&](Txn& view) { return QueryVolumes(view); }),
                  [&](VolumeListReply& r) { *out = std::move(r); });
  }
  grpc::Status VolumeDelete(ServerContext*, const VolumeDeleteRequest* req, Empty*) override {
    return Mutate(
        core_, req->op(), [&](Operation& op) { *op.mutable_volume_delete() = *req; },
        [](OpReply&) {});
  }
  grpc::Status VolumeSetQuota(ServerContext*, const VolumeSetQuotaRequest* req,
                              VolumeReply* out) override {
    return Mutate(
        core_, req->op(), [&](Operation& op) { *op.mutable_volume_set_quota() = *req; },
        [&](OpReply& r) { *out = r.volume(); });
  }
  grpc::Status KeyCreate(ServerContext*, const KeyCreateRequest* req, KeyReply* out) override {
    return Answer(core_.KeyCreate(*req), [&](AccessKey& k) { *out->mutable_key() = std::move(k); });
  }
  grpc::Status KeyGetSecret(ServerContext*, const KeyGetRequest* req, KeyReply* out) override {
    return Answer(core_.KeyGetSecret(req->access_key()),
                  [&](AccessKey& k) { *out->mutable_key() = std::move(k); });
  }
  grpc::Status KeyList(ServerContext*, const Empty*, KeyListReply* out) override {
    return Answer(Read(core_, [&](Txn& view) { return QueryKeys(view); }),
                  [&](KeyListReply& r) { *out = std::move(r); });
  }
  grpc::Status KeyDelete(ServerContext*, const KeyDeleteRequest* req, Empty*) override {
    return Mutate(
        core_, req->op(), [&](Operation& op) { *op.mutable_key_delete() = *req; }, [](OpReply&) {});
  }
  grpc::Status BucketCreate(ServerContext*, const BucketCreateRequest* req,
                            BucketReply* out) override {
    return Mutate(
        core_, req->op(), [&](Operation& op) { *op.mutable_bucket_create() = *req; },
        [&](OpReply& r) { *out = r.bucket(); });
  }
  grpc::Status BucketGet(ServerContext*, const BucketGetRequest* req, BucketReply* out) override {
    return Answer(Read(core_, [&](Txn& view) { return QueryBucket(view, req->name()); }),
                  [&](Bucket& b) { *out->mutable_bucket() = std::move(b); });
  }
  grpc::Status BucketList(ServerContext*, const Empty*, BucketListReply* out) override {
    return Answer(Read(core_, [&](Txn& view) { return QueryBuckets(view); }),
                  [&](BucketListReply& r) { *out = std::move(r); });
  }
  grpc::Status BucketDelete(ServerContext*, const BucketDeleteRequest* req, Empty*) override {
    return Mutate(
        core_, req->op(), [&](Operation& op) { *op.mutable_bucket_delete() = *req; },
        [](OpReply&) {});
  }
  grpc::Status BucketGrant(ServerContext*, const BucketGrantRequest* req,
                           BucketReply* out) override {
    return Mutate(
        core_, req->op(), [&](Operation& op) { *op.mutable_bucket_grant() = *req; },
        [&](OpReply& r) { *out = r.bucket(); });
  }
  grpc::Status SnapshotCreate(ServerContext*, const SnapshotCreateRequest* req,
                              VolumeReply* out) override {
    return Mutate(
        core_, req->op(), [&](Operation& op) { *op.mutable_snapshot_create() = *req; },
        [&](OpReply& r) { *out = r.volume(); });
  }
  grpc::Status SnapshotList(ServerContext*, const SnapshotListRequest* req,
                            VolumeListReply* out) override {
    return Answer(Read(core_, [&](Txn& view) { return QuerySnapshots(view, *req); }),
                  [&](VolumeListReply& r) { *out = std::move(r); });
  }
  grpc::Status SnapshotDelete(ServerContext*, const SnapshotDeleteRequest* req, Empty*) override {
    return Mutate(
        core_, req->op(), [&](Operation& op) { *op.mutable_snapshot_delete() = *req; },
        [](OpReply&) {});
  }
  grpc::Status VolumeLocality(ServerContext*, const VolumeLocalityRequest* req,
                              VolumeLocalityReply* out) override {
    return Answer(Read(core_, [&](Txn& view) { return QueryVolumeLocality(view, *req); }),
                  [&](VolumeLocalityReply& r) { *out = std::move(r); });
  }
  grpc::Status WarmupCreate(ServerContext*, const WarmupCreateRequest* req,
                            WarmupReply* out) override {
    return Mutate(
        core_, req->op(), [&](Operation& op) { *op.mutable_warmup_create() = *req; },
        [&](OpReply& r) { *out = r.warmup(); });
  }
  grpc::Status WarmupList(ServerContext*, const WarmupListRequest* req,
                          WarmupListReply* out) override {
    return Answer(Read(core_, [&](Txn& view) { return QueryWarmups(view, *req); }),
                  [&](WarmupListReply& r) { *out = std::move(r); });
  }
  grpc::Status WarmupDelete(ServerContext*, const WarmupDeleteRequest* req, Empty*) override {
    return Mutate(
        core_, req->op(), [&](Operation& op) { *op.mutable_warmup_delete() = *req; },
        [](OpReply&) {});
  }
  grpc::Status Backup(ServerContext*, const BackupRequest* req, BackupReply* out) override {
    return Answer(core_.Backup(req->dir()), [&](BackupReply& r) { *out = std::move(r); });
  }

 private:
  MetaCore& core_;
};

class ClusterService final : public Cluster::Service {
 public:
  explicit ClusterService(MetaCore& core) : core_(core) {}
  grpc::Status Register(ServerContext*, const RegisterRequest* req, RegisterReply* out) override {
    grpc::Status s = Mutate(
        core_, OpId(), [&](Operation& op) { *op.mutable_node_register() = *req; },
        [&](OpReply& r) { *out = r.node_register(); });
    if (!s.ok()) return s;
    // The first heartbeat is the registration itself.
    HeartbeatRequest hb;
    hb.set_node_id(out->node_id());
    hb.set_capacity_bytes(req->capacity_bytes());
    hb.set_used_bytes(req->used_bytes());
    hb.set_healthy(true);
    return Answer(core_.Heartbeat(hb), [](HeartbeatReply&) {});
  }
  grpc::Status Heartbeat(ServerContext*, const HeartbeatRequest* req,
                         HeartbeatReply* out) override {
    return Answer(core_.Heartbeat(*req), [&](HeartbeatReply& r) { *out = r; });
  }
  grpc::Status GetClusterMap(ServerContext*, const GetClusterMapRequest* req,
                             ClusterMap* out) override {
    return Answer(core_.GetClusterMap(req->known_epoch()),
                  [&](ClusterMap& m) { *out = std::move(m); });
  }
  grpc::Status ReportCorruption(ServerContext*, const ReportCorruptionRequest* req,
                                Empty*) override {
    return ToGrpcStatus(core_.ReportCorruption(*req));
  }
  grpc::Status ResolveCorruption(ServerContext*, const ResolveCorruptionRequest* req,
                                 Empty*) override {
    return ToGrpcStatus(core_.ResolveCorruption(*req));
  }
  grpc::Status Status(ServerContext*, const Empty*, ClusterStatusReply* out) override {
    return Answer(core_.ClusterStatus(), [&](ClusterStatusReply& r) { *out = std::move(r); });
  }
  grpc::Status IoHistory(ServerContext*, const IoHistoryRequest* req,
                         IoHistoryReply* out) override {
    return Answer(core_.GetIoHistory(*req), [&](IoHistoryReply& r) { *out = std::move(r); });
  }
  grpc::Status CheckSlices(ServerContext*, const CheckSlicesRequest* req,
                           CheckSlicesReply* out) override {
    return Answer(core_.CheckSlices(*req), [&](CheckSlicesReply& r) { *out = std::move(r); });
  }
  grpc::Status CompactionCandidates(ServerContext*, const CompactionCandidatesRequest* req,
                                    CompactionCandidatesReply* out) override {
    return Answer(core_.CompactionCandidates(req->limit()),
                  [&](CompactionCandidatesReply& r) { *out = std::move(r); });
  }
  grpc::Status CompactionDone(ServerContext*, const CompactionDoneRequest* req, Empty*) override {
    return Mutate(
        core_, req->op(), [&](Operation& op) { *op.mutable_compaction_done() = *req; },
        [](OpReply&) {});
  }
  grpc::Status WarmDone(ServerContext*, const WarmDoneRequest* req, Empty*) override {
    return ToGrpcStatus(core_.WarmDone(*req));
  }
  grpc::Status PgBlocks(ServerContext*, const PgBlocksRequest* req, PgBlocksReply* out) override {
    return Answer(core_.PgBlocks(*req), [&](PgBlocksReply& r) { *out = std::move(r); });
  }

 private:
  MetaCore& core_;
};

}  // namespace

Services MakeServices(MetaCore& core) {
  Services s;
  s.ns = std::make_unique<NamespaceService>(core);
  s.data = std::make_unique<DataMapService>(core);
  s.admin = std::make_unique<AdminService>(core);
  s.cluster = std::make_unique<ClusterService>(core);
  s.objects = MakeObjectService(core);
  s.group = MakeGroupService(core);
  return s;
}

}  // namespace granary::metanode
