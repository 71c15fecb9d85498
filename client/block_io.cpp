#include "client/block_io.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "common/crc32c.h"
#include "common/log.h"
#include "common/metrics.h"

namespace granary::client {
namespace {

Counter& CorruptCopies() {
  static Counter& c = Metrics().GetCounter("granary_client_corrupt_copies_total",
                                           "Block copies whose CRC did not match on read.");
  return c;
}

// Bytes of verified copies read, by distance from the reader (0 local … 3 remote).
Counter& ReadBytes(int distance) {
  static Counter* by_distance[4] = {
      &Metrics().GetCounter("granary_client_read_bytes_total",
                            "Verified bytes read from datanodes, by distance from the client.",
                            "distance=\"local\""),
      &Metrics().GetCounter("granary_client_read_bytes_total", "", "distance=\"rack\""),
      &Metrics().GetCounter("granary_client_read_bytes_total", "", "distance=\"zone\""),
      &Metrics().GetCounter("granary_client_read_bytes_total", "", "distance=\"remote\""),
  };
  return *by_distance[std::clamp(distance, 0, 3)];
}

// The fraction of verified read bytes that came from datanodes on this client's own host (a
// mount's local-read ratio, docs/locality.md), kept current with every read.
void CountRead(int distance, uint64_t bytes) {
  ReadBytes(distance).Add(bytes);
  static Gauge& ratio = Metrics().GetGauge(
      "granary_client_read_local_ratio",
      "Fraction of verified bytes read from datanodes on this client's own host");
  static std::atomic<uint64_t> local{0}, all{0};
  const uint64_t l = (distance <= 0 ? local.fetch_add(bytes) + bytes : local.load());
  const uint64_t a = all.fetch_add(bytes) + bytes;
  ratio.SetFraction(a == 0 ? 0 : static_cast<double>(l) / static_cast<double>(a));
}

}  // namespace

BlockIo::BlockIo(std::shared_ptr<DataConnectionPool> pool, BlockIoOptions options,
                 CorruptionReporter report_corruption)
    : pool_(std::move(pool)), options_(options), report_corruption_(std::move(report_corruption)) {}

std::future<Status> BlockIo::WriteAsync(const BlockTarget& target, const BlockKey& key,
                                        const BlockOrigin& origin, std::span<const uint8_t> data,
                                        uint32_t min_members) {
  auto reply = std::make_shared<std::promise<Status>>();
  auto future = reply->get_future();
  WriteAsync(target, key, origin, data, min_members,
             [reply](Status s) { reply->set_value(std::move(s)); });
  return future;
}

void BlockIo::WriteAsync(const BlockTarget& target, const BlockKey& key, const BlockOrigin& origin,
                         std::span<const uint8_t> data, uint32_t min_members, WriteDone done) {
  const std::string what =
      key.fragment() == 0 && origin.encoding() != Encoding::ERASURE_CODED
          ? fmt::format("write slice {} block {}", key.slice_id(), key.block_index())
          : fmt::format("write slice {} block {} fragment {}", key.slice_id(), key.block_index(),
                        key.fragment());
  std::vector<const Replica*> up;
  for (const Replica* r : target.WriteSet()) {
    if (r->up && !r->data_address.empty()) up.push_back(r);
  }
  if (up.empty() || up.size() < min_members) {
    done(Unavailable(fmt::format("pool {} pg {}: {} of {} members up, {} needed", target.pool_id,
                                 target.pg, up.size(), target.members.size(), min_members))
             .WithContext(what));
    return;
  }
  DataRequest req;
  req.set_op(DataOp::WRITE_BLOCK);
  req.set_pool_id(target.pool_id);
  req.set_pg(target.pg);
  req.set_pg_epoch(target.pg_epoch);
  *req.mutable_block() = key;
  *req.mutable_origin() = origin;
  req.mutable_origin()->set_pool_id(target.pool_id);
  req.mutable_origin()->set_pg(target.pg);
  std::vector<uint32_t> crcs;
  AppendBlockCrcs(data.data(), data.size(), crcs);
  req.mutable_crcs()->Assign(crcs.begin(), crcs.end());
  for (size_t i = 1; i < up.size(); ++i) {
    ChainHop* hop = req.add_chain();
    hop->set_node_id(up[i]->node_id);
    hop->set_data_address(up[i]->data_address);
  }
  const std::string head = up[0]->data_address;
  pool_->CallAsync(head, std::move(req), data, DeadlineIn(options_.request_timeout),
                   [done = std::move(done), head, what](Result<DataReply> r) {
                     if (!r.ok()) {
                       done(r.status().WithContext(what));
                       return;
                     }
                     done(ReplyStatus(*r, head).WithContext(what));
                   });
}

DataRequest BlockIo::ReadRequest(const BlockTarget& target, const BlockKey& key, uint64_t offset,
                                 uint64_t length) const {
  // The datanode serves 4 KiB-aligned ranges so that every byte comes with the writer's CRC.
  uint64_t start = offset / kCrcBlockSize * kCrcBlockSize;
  uint64_t end = offset + length;
  DataRequest req;
  req.set_op(DataOp::READ_BLOCK);
  req.set_pool_id(target.pool_id);
  req.set_pg(target.pg);
  req.set_pg_epoch(target.pg_epoch);
  *req.mutable_block() = key;
  req.set_offset(start);
  req.set_length(end - start);
  return req;
}

Status BlockIo::CheckReply(const DataReply& reply, const Replica& replica, const BlockKey& key,
                           uint64_t offset, uint64_t length) {
  GRANARY_TRY(ReplyStatus(reply, replica.data_address));
  const uint64_t start = reply.header.crc_offset();
  const size_t have = reply.payload.size();
  if (start > offset || start + have < offset + length) {
    return Corrupt(fmt::format("{} returned [{}, {}) for [{}, {})", replica.data_address, start,
                               start + have, offset, offset + length));
  }
  long bad = FirstCrcMismatch(reply.payload.data(), have, reply.header.crcs().data(),
                              reply.header.crcs_size());
  if (bad >= 0) {
    std::string detail = fmt::format(
        "crc mismatch at block offset {} (slice {} block {} fragment {}) from node {} at {}",
        start + bad * kCrcBlockSize, key.slice_id(), key.block_index(), key.fragment(),
        replica.node_id, replica.data_address);
    CorruptCopies().Add();
    GLOG_WARN("event=corrupt_copy node={} slice={} block={} fragment={} offset={}", replica.node_id,
              key.slice_id(), key.block_index(), key.fragment(), start + bad * kCrcBlockSize);
    if (report_corruption_) report_corruption_(replica.node_id, key, detail);
    return Corrupt(detail);
  }
  CountRead(replica.distance, have);
  return Status::Ok();
}

Status BlockIo::Verify(const DataReply& reply, const Replica& replica, const BlockKey& key,
                       uint64_t offset, std::span<uint8_t> out) {
  GRANARY_TRY(CheckReply(reply, replica, key, offset, out.size()));
  std::memcpy(out.data(), reply.payload.data() + (offset - reply.header.crc_offset()), out.size());
  return Status::Ok();
}

void BlockIo::ReadAsync(const BlockTarget& target, const Replica& replica, const BlockKey& key,
                        uint64_t offset, uint64_t length, Clock::time_point deadline,
                        ReadDone done) {
  if (replica.data_address.empty()) {
    done(Unavailable(fmt::format("node {} has no data address", replica.node_id)));
    return;
  }
  pool_->CallAsync(replica.data_address, ReadRequest(target, key, offset, length), {}, deadline,
                   std::move(done));
}

BlockIo::PendingRead BlockIo::StartRead(const BlockTarget& target, const BlockKey& key,
                                        uint64_t offset, uint64_t length) {
  PendingRead pending;
  if (target.read_order.empty()) {
    std::promise<Result<DataReply>> p;
    p.set_value(Unavailable(fmt::format("pool {} pg {}: no members", target.pool_id, target.pg)));
    pending.reply = p.get_future();
    return pending;
  }
  const Replica& first = target.members[target.read_order[0]];
  pending.reply = pool_->CallAsync(first.data_address, ReadRequest(target, key, offset, length), {},
                                   DeadlineIn(options_.request_timeout));
  return pending;
}

Status BlockIo::FinishRead(PendingRead pending, const BlockTarget& target, const BlockKey& key,
                           uint64_t offset, std::span<uint8_t> out) {
  Status last = Unavailable("no copy tried");
  Status stale = Status::Ok();
  for (size_t i = pending.tried; i < target.read_order.size(); ++i) {
    const Replica& replica = target.members[target.read_order[i]];
    Result<DataReply> reply =
        i == pending.tried
            ? pending.reply.get()
            : pool_->Call(replica.data_address, ReadRequest(target, key, offset, out.size()), {},
                          DeadlineIn(options_.request_timeout));
    Status s = reply.ok() ? Verify(*reply, replica, key, offset, out) : reply.status();
    if (s.ok()) return s;
    GLOG_DEBUG("event=read_failover node={} slice={} block={} error=\"{}\"", replica.node_id,
               key.slice_id(), key.block_index(), s.ToString());
    if (s.code() == Code::STALE_EPOCH) stale = s;
    last = std::move(s);
  }
  // A member on a newer map means ours is stale (the PG may have moved): say so, so that the
  // caller refreshes the map and tries the new members, whatever failed last.
  if (!stale.ok()) last = std::move(stale);
  return last.WithContext(fmt::format("read slice {} block {}", key.slice_id(), key.block_index()));
}

Status BlockIo::Read(const BlockTarget& target, const BlockKey& key, uint64_t offset,
                     std::span<uint8_t> out) {
  return FinishRead(StartRead(target, key, offset, out.size()), target, key, offset, out);
}

}  // namespace granary::client
