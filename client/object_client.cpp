#include "client/object_client.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include <cstring>
#include <deque>
#include <thread>

#include "client/block_io.h"
#include "client/cluster_view.h"
#include "client/meta_client.h"
#include "common/rpc_status.h"

namespace granary::client {

Result<std::unique_ptr<ObjectClient>> ObjectClient::Connect(Client& client) {
  std::unique_ptr<ObjectClient> c(new ObjectClient(client));
  std::string address = client.meta().address();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  auto channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  c->stub_ = Objects::NewStub(channel);
  return c;
}

template <typename Req, typename Reply>
Status ObjectClient::Call(const char* what,
                          grpc::Status (Objects::Stub::*method)(grpc::ClientContext*, const Req&,
                                                                Reply*),
                          const Req& req, Reply* reply) {
  // Same contract as MetaClient: Unavailable is retried with the same OpId until the deadline.
  const auto deadline = std::chrono::system_clock::now() + client_.options().operation_timeout;
  auto backoff = std::chrono::milliseconds(20);
  for (;;) {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline);
    ctx.set_wait_for_ready(true);
    Status status = FromGrpcStatus(((*stub_).*method)(&ctx, req, reply));
    if (status.ok()) return status;
    if (status.code() != Code::UNAVAILABLE ||
        std::chrono::system_clock::now() + backoff >= deadline) {
      return status.WithContext(what);
    }
    std::this_thread::sleep_for(backoff);  // back-off between attempts, not synchronisation
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::seconds(1));
  }
}

Result<ObjectClient::Staged> ObjectClient::Stage(uint64_t volume_id, uint32_t uid, uint32_t gid,
                                                 uint32_t mode, const Layout* layout) {
  StageRequest req;
  *req.mutable_op() = client_.meta().NextOpId();
  req.set_volume_id(volume_id);
  req.set_uid(uid);
  req.set_gid(gid);
  req.set_mode(mode);
  if (layout) *req.mutable_layout() = *layout;
  const uint64_t owner =
      client_.meta().client_id() ^ ((++handles_ | (1ull << 62)) * 0x9E3779B97F4A7C15ull);
  req.set_handle_owner(owner);
  AttrReply reply;
  GRANARY_TRY(Call("stage object", &Objects::Stub::Stage, req, &reply));
  Staged s;
  s.attr = reply.attr();
  s.handle_owner = owner;
  s.file.reset(new File(&client_, reply.attr(), owner));
  return s;
}

Result<ObjectClient::Staged> ObjectClient::StageWithData(uint64_t volume_id, uint32_t uid,
                                                         uint32_t gid, uint32_t mode,
                                                         std::span<const uint8_t> data,
                                                         CommitRequest* commit) {
  std::vector<DirtyRun> runs{{0, data.size(), data.data()}};
  std::vector<PlannedSlice> slices = data.empty() ? std::vector<PlannedSlice>{} : PlanSlices(runs);
  StageRequest req;
  *req.mutable_op() = client_.meta().NextOpId();
  req.set_volume_id(volume_id);
  req.set_uid(uid);
  req.set_gid(gid);
  req.set_mode(mode);
  req.set_allocate_slices(static_cast<uint32_t>(slices.size()));
  req.set_allocate_bytes(data.size());
  const uint64_t owner =
      client_.meta().client_id() ^ ((++handles_ | (1ull << 62)) * 0x9E3779B97F4A7C15ull);
  req.set_handle_owner(owner);
  StageReply reply;
  GRANARY_TRY(Call("stage object", &Objects::Stub::StageWrite, req, &reply));
  Staged s;
  s.attr = reply.attr();
  s.handle_owner = owner;
  s.file.reset(new File(&client_, reply.attr(), owner));
  if (slices.empty()) return s;
  const AllocateReply& alloc = reply.allocation();
  auto fail = [&](Status st) -> Result<Staged> {
    s.file->Close().PermitUnchecked();  // drops the staged inode
    return st.WithContext(fmt::format("write staged object inode {}", s.attr.ino()));
  };
  ClusterView& view = client_.cluster();
  BlockIo& io = client_.blocks();
  const Layout& layout = alloc.layout();
  auto pool = view.Pool(layout.pool_id());
  if (!pool.ok()) {
    Status r = view.Refresh();
    if (!r.ok()) return fail(r);
    pool = view.Pool(layout.pool_id());
  }
  if (!pool.ok()) return fail(pool.status());
  if (pool->redundancy() == Redundancy::ERASURE_CODED_POOL) {
    return fail(InvalidArgument(
        fmt::format("pool {} is erasure-coded; EC writes are not built yet", pool->name())));
  }
  const uint32_t block_size = layout.block_size() ? layout.block_size() : pool->block_size();
  const uint32_t size = pool->replicas() ? pool->replicas() : 1;
  const uint32_t min_members = pool->min_size() ? pool->min_size() : size - size / 2;
  struct Job {
    BlockKey key;
    BlockOrigin origin;
    std::span<const uint8_t> data;
    std::future<Status> done;
  };
  std::vector<Job> jobs;
  for (size_t i = 0; i < slices.size(); ++i) {
    for (uint32_t b = 0; b < BlockCount(slices[i].length, block_size); ++b) {
      Job j;
      j.key.set_slice_id(alloc.first_slice_id() + i);
      j.key.set_block_index(b);
      j.origin.set_ino(s.attr.ino());
      j.origin.set_range_index(slices[i].file_offset / kChunkRangeSize);
      j.origin.set_encoding(Encoding::REPLICATED);
      j.data = {slices[i].data + uint64_t{b} * block_size,
                BlockLength(slices[i].length, block_size, b)};
      jobs.push_back(std::move(j));
    }
  }
  // Small bodies: every block in flight at once; a failed one is retried on a fresh map.
  for (Job& j : jobs) {
    auto target = view.Locate(layout, j.key.slice_id(), j.key.block_index());
    if (!target.ok()) {
      Status r = view.Refresh();
      if (r.ok()) target = view.Locate(layout, j.key.slice_id(), j.key.block_index());
    }
    if (!target.ok()) return fail(target.status());
    j.done = io.WriteAsync(*target, j.key, j.origin, j.data, min_members);
  }
  for (Job& j : jobs) {
    Status st = j.done.get();
    auto backoff = std::chrono::milliseconds(50);
    for (int attempt = 0; !st.ok() && attempt < 5 &&
                          (st.code() == Code::STALE_EPOCH || st.code() == Code::UNAVAILABLE);
         ++attempt) {
      std::this_thread::sleep_for(backoff);  // back-off between retries, not synchronisation
      backoff *= 2;
      Status r = view.Refresh();
      if (!r.ok()) {
        st = r;
        continue;
      }
      auto target = view.Locate(layout, j.key.slice_id(), j.key.block_index());
      if (!target.ok()) return fail(target.status());
      st = io.WriteAsync(*target, j.key, j.origin, j.data, min_members).get();
    }
    if (!st.ok()) return fail(st);
  }
  commit->set_ino(s.attr.ino());
  commit->set_intent_id(alloc.intent_id());
  commit->set_generation(alloc.generation());
  commit->set_end(data.size());
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  commit->mutable_mtime()->set_sec(ns / 1000000000);
  commit->mutable_mtime()->set_nsec(static_cast<uint32_t>(ns % 1000000000));
  for (auto& r : CommitRanges(slices, alloc.first_slice_id(), Encoding::REPLICATED)) {
    *commit->add_ranges() = std::move(r);
  }
  return s;
}

void ObjectClient::Detach(File& file) {
  std::lock_guard lock(file.mu_);
  file.closed_ = true;
}

Result<ObjectInfo> ObjectClient::Publish(PublishRequest req) {
  *req.mutable_op() = client_.meta().NextOpId();
  ObjectReply reply;
  GRANARY_TRY(Call("publish object", &Objects::Stub::Publish, req, &reply));
  return std::move(*reply.mutable_info());
}

Result<bool> ObjectClient::Delete(uint64_t volume_id, const std::string& key) {
  ObjectDeleteRequest req;
  *req.mutable_op() = client_.meta().NextOpId();
  req.set_volume_id(volume_id);
  req.set_key(key);
  ObjectDeleteReply reply;
  GRANARY_TRY(Call("delete object", &Objects::Stub::Delete, req, &reply));
  return reply.existed();
}

Result<ObjectGetReply> ObjectClient::Get(uint64_t volume_id, const std::string& key,
                                         bool with_extents) {
  ObjectGetRequest req;
  req.set_volume_id(volume_id);
  req.set_key(key);
  req.set_with_extents(with_extents);
  ObjectGetReply reply;
  GRANARY_TRY(Call("get object", &Objects::Stub::Get, req, &reply));
  return reply;
}

Result<ObjectListReply> ObjectClient::List(const ObjectListRequest& req) {
  ObjectListReply reply;
  GRANARY_TRY(Call("list objects", &Objects::Stub::List, req, &reply));
  return reply;
}

Result<Upload> ObjectClient::UploadCreate(UploadCreateRequest req) {
  *req.mutable_op() = client_.meta().NextOpId();
  UploadReply reply;
  GRANARY_TRY(Call("create upload", &Objects::Stub::UploadCreate, req, &reply));
  return std::move(*reply.mutable_upload());
}

Result<Upload> ObjectClient::UploadPartCommit(UploadPartRequest req) {
  *req.mutable_op() = client_.meta().NextOpId();
  UploadReply reply;
  GRANARY_TRY(Call("commit part", &Objects::Stub::UploadPartCommit, req, &reply));
  return std::move(*reply.mutable_upload());
}

Result<ObjectInfo> ObjectClient::UploadComplete(UploadCompleteRequest req) {
  *req.mutable_op() = client_.meta().NextOpId();
  ObjectReply reply;
  GRANARY_TRY(Call("complete upload", &Objects::Stub::UploadComplete, req, &reply));
  return std::move(*reply.mutable_info());
}

Status ObjectClient::UploadAbort(uint64_t volume_id, const std::string& upload_id) {
  UploadAbortRequest req;
  *req.mutable_op() = client_.meta().NextOpId();
  req.set_volume_id(volume_id);
  req.set_upload_id(upload_id);
  Empty reply;
  return Call("abort upload", &Objects::Stub::UploadAbort, req, &reply);
}

Result<Upload> ObjectClient::UploadGet(uint64_t volume_id, const std::string& upload_id) {
  UploadGetRequest req;
  req.set_volume_id(volume_id);
  req.set_upload_id(upload_id);
  UploadReply reply;
  GRANARY_TRY(Call("get upload", &Objects::Stub::UploadGet, req, &reply));
  return std::move(*reply.mutable_upload());
}

Result<UploadListReply> ObjectClient::UploadList(uint64_t volume_id, const std::string& prefix) {
  UploadListRequest req;
  req.set_volume_id(volume_id);
  req.set_prefix(prefix);
  UploadListReply reply;
  GRANARY_TRY(Call("list uploads", &Objects::Stub::UploadList, req, &reply));
  return reply;
}

Status ObjectClient::Read(const ObjectGetReply& object, uint64_t offset, std::span<uint8_t> out) {
  // The same block walk as File::ReadExtents, but over a read map fixed at open (File re-reads
  // the map on every Pread, which would mix versions of a replaced object).
  ClusterView& view = client_.cluster();
  BlockIo& io = client_.blocks();
  const Layout& layout = object.info().attr().layout();
  if (view.epoch() == 0) GRANARY_TRY(view.Refresh());
  uint32_t block_size = layout.block_size();
  if (block_size == 0) {
    auto pool = view.Pool(layout.pool_id());
    if (!pool.ok()) return pool.status();
    block_size = pool->block_size();
  }
  std::memset(out.data(), 0, out.size());
  struct Piece {
    BlockTarget target;
    BlockKey key;
    uint64_t block_offset;
    std::span<uint8_t> dest;
  };
  auto plan = [&](std::vector<Piece>& pieces) -> Status {
    const uint64_t end = offset + out.size();
    for (const Extent& e : object.extents()) {
      uint64_t from = std::max(e.file_offset(), offset);
      uint64_t to = std::min(e.file_offset() + e.length(), end);
      if (from >= to) continue;
      uint64_t s_from = e.offset_in_slice() + (from - e.file_offset());
      uint64_t s_to = s_from + (to - from);
      for (uint64_t b = s_from / block_size; b * block_size < s_to; ++b) {
        uint64_t b_from = std::max(s_from, b * block_size);
        uint64_t b_to = std::min(s_to, (b + 1) * block_size);
        auto target = view.Locate(layout, e.slice_id(), b);
        if (!target.ok()) return target.status();
        Piece p;
        p.target = target->ForRead();  // a PG move: the previous members hold the data
        p.key.set_slice_id(e.slice_id());
        p.key.set_block_index(static_cast<uint32_t>(b));
        p.block_offset = b_from - b * block_size;
        p.dest = out.subspan(from + (b_from - s_from) - offset, b_to - b_from);
        pieces.push_back(std::move(p));
      }
    }
    return Status::Ok();
  };
  auto run = [&](const std::vector<Piece>& pieces) -> Status {
    const size_t window = client_.options().max_inflight_blocks;
    std::deque<std::pair<size_t, BlockIo::PendingRead>> inflight;
    Status first_error;
    size_t next = 0;
    while (next < pieces.size() || !inflight.empty()) {
      while (next < pieces.size() && inflight.size() < window && first_error.ok()) {
        const Piece& p = pieces[next];
        inflight.emplace_back(next, io.StartRead(p.target, p.key, p.block_offset, p.dest.size()));
        ++next;
      }
      if (inflight.empty()) break;
      auto [index, pending] = std::move(inflight.front());
      inflight.pop_front();
      const Piece& p = pieces[index];
      Status s = io.FinishRead(std::move(pending), p.target, p.key, p.block_offset, p.dest);
      if (!s.ok() && first_error.ok()) first_error = std::move(s);
    }
    return first_error;
  };
  std::vector<Piece> pieces;
  GRANARY_TRY(plan(pieces));
  Status s = run(pieces);
  if (s.code() == Code::STALE_EPOCH || s.code() == Code::UNAVAILABLE) {
    GRANARY_TRY(view.Refresh());
    pieces.clear();
    GRANARY_TRY(plan(pieces));
    s = run(pieces);
  }
  return s.WithContext(fmt::format("read object '{}' at {}", object.info().key(), offset));
}

}  // namespace granary::client
