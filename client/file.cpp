// File: buffered writes committed as new slices (DESIGN §3 commit protocol), reads resolved
// through the slice map and served block by block from the nearest intact copy.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <future>
#include <thread>

#include "client/block_io.h"
#include "client/cluster_view.h"
#include "client/ec_block_io.h"
#include "client/ec_codec.h"
#include "client/extent_reader.h"
#include "client/granary.h"
#include "client/meta_client.h"
#include "client/pool_rules.h"
#include "client/releaser.h"
#include "common/log.h"

namespace granary::client {
namespace {

using Clock = std::chrono::steady_clock;

Timespec Now() {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                std::chrono::system_clock::now().time_since_epoch())
                .count();
  Timespec t;
  t.set_sec(ns / 1000000000);
  t.set_nsec(static_cast<uint32_t>(ns % 1000000000));
  return t;
}

// Errors after which the same operation may succeed once the cluster map is fresh.
bool Retryable(const Status& s) {
  return s.code() == Code::STALE_EPOCH || s.code() == Code::UNAVAILABLE;
}

}  // namespace

File::File(Client* client, InodeAttr attr, uint64_t handle_owner)
    : client_(client),
      ino_(attr.ino()),
      handle_owner_(handle_owner),
      attr_(std::move(attr)),
      buffer_(client->options().write_buffer_bytes) {}

File::~File() {
  Status s = Close();
  if (!s.ok()) GLOG_ERROR("event=close_failed ino={} error=\"{}\"", ino_, s.ToString());
}

// One buffer being written in the background. Commits happen in the order the buffers were
// handed over (a newer byte must never be overwritten by an older one), so each flush commits
// only once its predecessor's commit is decided, and not at all when that one failed.
struct File::BackgroundFlush {
  std::vector<WriteBuffer::Run> runs;  // the bytes, kept until reaped (retry on failure)
  uint64_t end = 0;
  std::shared_future<Status> committed;  // this flush's outcome, for its successor
  std::future<Result<InodeAttr>> done;
};

uint64_t File::size() const {
  std::lock_guard lock(mu_);
  uint64_t size = std::max(attr_.size(), buffer_.end());
  for (const auto& f : background_) size = std::max(size, f->end);
  return size;
}

InodeAttr File::attr() const {
  std::lock_guard lock(mu_);
  return attr_;
}

Status File::Pwrite(std::span<const uint8_t> data, uint64_t offset) {
  std::lock_guard lock(mu_);
  if (closed_) return InvalidArgument(fmt::format("write ino {}: file is closed", ino_));
  Status earlier = ReapBackground(false);
  buffer_.Write(offset, data);
  // An earlier background failure is reported here; its bytes and these wait in the buffer
  // for the next flush.
  GRANARY_TRY(earlier);
  if (buffer_.bytes() < client_->options().write_buffer_bytes) return Status::Ok();
  if (client_->options().write_behind == 0) return FlushLocked();
  return StartBackgroundFlush();
}

Status File::StartBackgroundFlush() {
  while (background_.size() >= client_->options().write_behind) {
    // Back-pressure: the writer is ahead of storage by write_behind buffers.
    background_.front()->done.wait();
    GRANARY_TRY(ReapBackground(false));
  }
  auto flush = std::make_shared<BackgroundFlush>();
  flush->end = buffer_.end();
  flush->runs = buffer_.TakeRuns();
  std::shared_future<Status> previous =
      background_.empty() ? std::shared_future<Status>() : background_.back()->committed;
  auto outcome = std::make_shared<std::promise<Status>>();
  flush->committed = outcome->get_future().share();
  flush->done = std::async(std::launch::async, [this, flush = flush.get(), previous, outcome] {
    auto wait_for_previous = [&]() -> Status {
      if (!previous.valid()) return Status::Ok();
      Status s = previous.get();
      if (s.ok()) return s;
      return s.WithContext("an earlier write-behind flush of this file");
    };
    Result<InodeAttr> attr = WriteRuns(flush->runs, flush->end, wait_for_previous);
    outcome->set_value(attr.ok() ? Status::Ok() : attr.status());
    return attr;
  });
  background_.push_back(std::move(flush));
  return Status::Ok();
}

Status File::ReapBackground(bool all) {
  Status first_error;
  std::vector<std::shared_ptr<BackgroundFlush>> failed;
  while (!background_.empty()) {
    auto& oldest = background_.front();
    if (!all && first_error.ok() &&
        oldest->done.wait_for(std::chrono::seconds(0)) != std::future_status::ready) {
      break;
    }
    Result<InodeAttr> attr = oldest->done.get();
    if (attr.ok() && first_error.ok()) {
      attr_ = *attr;
    } else {
      // After a failure every later flush fails too (it never commits): all go back.
      if (first_error.ok()) first_error = attr.status();
      failed.push_back(oldest);
    }
    background_.pop_front();
  }
  if (failed.empty()) return Status::Ok();
  std::vector<WriteBuffer::Run> newer = buffer_.TakeRuns();
  for (auto& f : failed) {
    for (auto& r : f->runs) buffer_.Write(r.offset, r.data.span());
  }
  for (auto& r : newer) buffer_.Write(r.offset, r.data.span());
  return first_error.WithContext(fmt::format("write-behind ino {}", ino_));
}

Status File::Truncate(uint64_t size) {
  std::lock_guard lock(mu_);
  GRANARY_TRY(FlushLocked());
  SetAttrRequest req;
  req.set_ino(ino_);
  req.set_valid(SETATTR_SIZE);
  req.set_size(size);
  auto attr = client_->meta().SetAttr(req);
  if (!attr.ok())
    return attr.status().WithContext(fmt::format("truncate ino {} to {}", ino_, size));
  attr_ = *attr;
  return Status::Ok();
}

Status File::Flush() {
  std::lock_guard lock(mu_);
  return FlushLocked();
}

Status File::Close() {
  std::lock_guard lock(mu_);
  if (closed_) return Status::Ok();
  Status flushed = FlushLocked();
  closed_ = true;
  // The pin goes in the background (releaser.h): nothing durable waits on it.
  client_->releaser_->Release(ino_, handle_owner_);
  return flushed;
}

Status File::FlushLocked() {
  // A background failure is not final: its bytes are back in the buffer and written again now.
  Status background = ReapBackground(true);
  if (!background.ok()) {
    GLOG_WARN("event=write_behind_failed ino={} error=\"{}\"", ino_, background.ToString());
  }
  if (buffer_.empty()) return Status::Ok();
  const uint64_t end = buffer_.end();
  std::vector<WriteBuffer::Run> runs = buffer_.TakeRuns();
  Result<InodeAttr> attr = WriteRuns(runs, end, {});
  if (!attr.ok()) {
    // Keep the bytes so a later Flush/Close can try again.
    for (auto& r : runs) buffer_.Write(r.offset, r.data.span());
    return attr.status().WithContext(fmt::format("flush ino {}", ino_));
  }
  attr_ = *attr;
  return Status::Ok();
}

Result<InodeAttr> File::WriteRuns(const std::vector<WriteBuffer::Run>& runs, uint64_t end,
                                  const std::function<Status()>& before_commit) {
  std::vector<DirtyRun> dirty;
  for (const auto& r : runs) dirty.push_back({r.offset, r.data.size(), r.data.data()});
  std::vector<PlannedSlice> slices = PlanSlices(dirty);
  // A truncate between allocate and commit (StaleGeneration) means: allocate and write again.
  Result<InodeAttr> attr = FlushOnce(slices, end, nullptr, before_commit);
  for (int attempt = 1; attempt < 3 && attr.status().code() == Code::STALE_GENERATION; ++attempt) {
    GLOG_INFO("event=commit_retry ino={} reason=stale_generation attempt={}", ino_, attempt);
    attr = FlushOnce(slices, end, nullptr, before_commit);
  }
  return attr;
}

Status File::CompactRange(uint64_t range_index) {
  std::lock_guard lock(mu_);
  GRANARY_TRY(FlushLocked());
  const uint64_t start = range_index * kChunkRangeSize;
  auto map = client_->meta().ReadMap(ino_, start, kChunkRangeSize);
  if (!map.ok()) return map.status().WithContext(fmt::format("compact ino {}", ino_));
  if (map->extents_size() <= 1) return Status::Ok();
  const uint64_t lo = map->extents(0).file_offset();
  const Extent& last = map->extents(map->extents_size() - 1);
  const uint64_t hi = last.file_offset() + last.length();
  AlignedBuffer bytes(hi - lo);
  Status read = ReadExtents(*client_, map->attr().layout(), map->extents(), bytes.span(), lo);
  if (read.code() == Code::STALE_EPOCH) {
    GRANARY_TRY(client_->cluster().Refresh());
    read = ReadExtents(*client_, map->attr().layout(), map->extents(), bytes.span(), lo);
  }
  GRANARY_TRY(read);
  std::vector<PlannedSlice> slices = PlanSlices({{lo, hi - lo, bytes.data()}});
  auto attr = FlushOnce(slices, 0, &*map);
  if (!attr.ok()) {
    return attr.status().WithContext(fmt::format("compact ino {} range {}", ino_, range_index));
  }
  attr_ = *attr;
  return Status::Ok();
}

Result<InodeAttr> File::FlushOnce(const std::vector<PlannedSlice>& planned, uint64_t end,
                                  const ReadMapReply* replacing,
                                  const std::function<Status()>& before_commit) {
  uint64_t bytes = 0;
  for (const auto& s : planned) bytes += s.length;
  auto alloc = client_->meta().Allocate(ino_, static_cast<uint32_t>(planned.size()), bytes);
  if (!alloc.ok()) return alloc.status().WithContext("allocate");
  auto pool = LayoutPool(client_->cluster(), alloc->layout().pool_id());
  if (!pool.ok()) return pool.status();
  const uint32_t block_size = LayoutBlockSize(alloc->layout(), *pool);
  std::vector<PlannedSlice> slices = planned;
  for (PlannedSlice& s : slices) s.encoding = SliceEncoding(*pool, s.length, block_size);
  GRANARY_TRY(WriteBlocks(slices, *alloc, *pool));
  if (before_commit) {
    if (Status s = before_commit(); !s.ok()) {
      Status abandoned = client_->meta().Abandon(alloc->intent_id());
      if (!abandoned.ok()) GLOG_WARN("event=abandon_failed error=\"{}\"", abandoned.ToString());
      return s;
    }
  }

  CommitRequest commit;
  commit.set_ino(ino_);
  commit.set_intent_id(alloc->intent_id());
  commit.set_generation(alloc->generation());
  if (replacing != nullptr) {
    commit.set_replace_ranges(true);
    *commit.mutable_expect() = replacing->extents();
  } else {
    commit.set_end(end);
    *commit.mutable_mtime() = Now();
  }
  for (auto& r : CommitRanges(slices, alloc->first_slice_id(), Encoding::REPLICATED)) {
    *commit.add_ranges() = std::move(r);
  }
  auto attr = client_->meta().Commit(commit);
  if (!attr.ok()) {
    // Refused for good (a truncate or a racing writer): the written slices are garbage now,
    // not when the lease runs out. A retry allocates afresh.
    if (attr.status().code() == Code::STALE_GENERATION ||
        attr.status().code() == Code::PRECONDITION_FAILED) {
      Status abandoned = client_->meta().Abandon(alloc->intent_id());
      if (!abandoned.ok()) GLOG_WARN("event=abandon_failed error=\"{}\"", abandoned.ToString());
    }
    return attr.status().WithContext("commit");
  }
  return attr;
}

Status File::WriteBlocks(const std::vector<PlannedSlice>& slices, const AllocateReply& alloc,
                         const PoolSpec& pool) {
  ClusterView& view = client_->cluster();
  BlockIo& io = client_->blocks();
  EcBlockIo& ec_io = client_->ec_blocks();
  const Layout& layout = alloc.layout();
  const uint32_t block_size = LayoutBlockSize(layout, pool);
  const uint32_t min_members = MinMembers(pool);
  const bool ec_pool = IsEcPool(pool);
  std::shared_ptr<const EcCodec> codec;
  if (ec_pool) {
    auto c =
        EcCodec::Get(static_cast<int>(pool.data_chunks()), static_cast<int>(pool.coding_chunks()));
    if (!c.ok()) return c.status().WithContext(fmt::format("pool {}", pool.name()));
    codec = std::move(*c);
  }
  const auto deadline = Clock::now() + client_->options().operation_timeout;

  struct Job {
    BlockKey key;
    BlockOrigin origin;
    std::span<const uint8_t> data;
    bool erasure_coded = false;
  };
  std::vector<Job> jobs;
  for (size_t i = 0; i < slices.size(); ++i) {
    const PlannedSlice& s = slices[i];
    for (uint32_t b = 0; b < BlockCount(s.length, block_size); ++b) {
      Job job;
      job.key.set_slice_id(alloc.first_slice_id() + i);
      job.key.set_block_index(b);
      job.erasure_coded = BlockIsErasureCoded(s.encoding, s.length, block_size, b);
      job.origin.set_ino(ino_);
      job.origin.set_range_index(s.file_offset / kChunkRangeSize);
      job.origin.set_encoding(job.erasure_coded ? Encoding::ERASURE_CODED : Encoding::REPLICATED);
      job.data = {s.data + uint64_t{b} * block_size, BlockLength(s.length, block_size, b)};
      jobs.push_back(std::move(job));
    }
  }

  // One attempt at one block: EC fragments fan out; replicated blocks go down a chain (in an
  // EC pool, over the PG's first M+1 members).
  auto start = [&](const Job& job, const BlockTarget& target) -> std::future<Status> {
    if (job.erasure_coded) {
      return ec_io.WriteAsync(target, job.key, job.origin, job.data, *codec, min_members);
    }
    if (ec_pool) {
      return io.WriteAsync(target.FirstMembers(EcReplicaCount(pool)), job.key, job.origin, job.data,
                           EcReplicaMinimum(pool));
    }
    return io.WriteAsync(target, job.key, job.origin, job.data, min_members);
  };

  // Writes one block until it succeeds, the error is final, or the deadline passes. The map is
  // refetched between tries: a StaleEpoch or a dead member is resolved by the metanode's next
  // epoch (replacement or a degraded set). Writes are idempotent, so a whole EC block is sent
  // again (fragments already stored answer OK without touching the disk).
  auto write_with_retry = [&](const Job& job, Status first) -> Status {
    Status s = std::move(first);
    auto backoff = std::chrono::milliseconds(50);
    while (Retryable(s) && Clock::now() + backoff < deadline) {
      GLOG_DEBUG("event=block_write_retry slice={} block={} error=\"{}\"", job.key.slice_id(),
                 job.key.block_index(), s.ToString());
      std::this_thread::sleep_for(backoff);  // back-off between retries, not synchronisation
      backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
      Status refreshed = view.Refresh();
      if (!refreshed.ok()) {
        s = refreshed;
        continue;
      }
      auto target = view.Locate(layout, job.key.slice_id(), job.key.block_index());
      if (!target.ok()) return target.status();
      s = start(job, *target).get();
    }
    return s;
  };

  // Pipeline: up to max_inflight_blocks writes outstanding, spread over the stripe's PGs.
  struct Inflight {
    size_t job;
    std::future<Status> done;
  };
  std::deque<Inflight> inflight;
  Status first_error;
  auto reap_one = [&]() {
    Inflight f = std::move(inflight.front());
    inflight.pop_front();
    Status s = f.done.get();
    if (!s.ok()) s = write_with_retry(jobs[f.job], std::move(s));
    if (!s.ok() && first_error.ok()) first_error = std::move(s);
  };
  for (size_t j = 0; j < jobs.size() && first_error.ok(); ++j) {
    auto target = view.Locate(layout, jobs[j].key.slice_id(), jobs[j].key.block_index());
    if (!target.ok() && target.status().code() == Code::UNAVAILABLE) {
      Status refreshed = view.Refresh();
      if (refreshed.ok()) {
        target = view.Locate(layout, jobs[j].key.slice_id(), jobs[j].key.block_index());
      } else {
        target = refreshed;
      }
    }
    if (!target.ok()) {
      first_error = target.status();
      break;
    }
    inflight.push_back({j, start(jobs[j], *target)});
    if (inflight.size() >= client_->options().max_inflight_blocks) reap_one();
  }
  while (!inflight.empty()) reap_one();
  return first_error;
}

Result<size_t> File::Pread(std::span<uint8_t> out, uint64_t offset) {
  std::lock_guard lock(mu_);
  // Background flushes land first, so storage holds every byte not in the buffer (a failed
  // one's bytes are back in the buffer; its error is for the next write, fsync or close).
  if (Status s = ReapBackground(true); !s.ok()) {
    GLOG_WARN("event=write_behind_failed ino={} error=\"{}\"", ino_, s.ToString());
  }
  const uint64_t buffered_end = buffer_.end();
  auto map = client_->meta().ReadMap(ino_, offset, out.size());
  if (!map.ok()) return map.status().WithContext(fmt::format("read map ino {}", ino_));
  attr_ = map->attr();
  const uint64_t size = std::max(attr_.size(), buffered_end);
  if (offset >= size) return size_t{0};
  const size_t n = std::min<uint64_t>(out.size(), size - offset);
  std::span<uint8_t> window = out.first(n);

  Status s = ReadExtents(*client_, map->attr().layout(), map->extents(), window, offset);
  // A datanode on a newer epoch: refresh once and read again.
  if (s.code() == Code::STALE_EPOCH) {
    GRANARY_TRY(client_->cluster().Refresh());
    s = ReadExtents(*client_, map->attr().layout(), map->extents(), window, offset);
  }
  if (!s.ok()) return s.WithContext(fmt::format("read ino {} at {}", ino_, offset));
  buffer_.Overlay(offset, window);
  return n;
}

}  // namespace granary::client
