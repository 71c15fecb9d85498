// Protocol tests: in-process datanodes (Datanode::Start with injected epochs) driven through
// common/data_connection.h and raw sockets for malformed frames.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <latch>
#include <random>

#include "common/crc32c.h"
#include "common/data_connection.h"
#include "common/frame.h"
#include "datanode/block_store.h"
#include "datanode/datanode.h"
#include "datanode/fault_device.h"
#include "granary/data.grpc.pb.h"
#include "tests/harness/test_support.h"

namespace granary::datanode {
namespace {

using granary::testing::RandomBytes;
using granary::testing::TempDir;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr uint32_t kPool = 1;
constexpr uint32_t kPg = 3;
constexpr uint64_t kEpoch = 5;

// Counts refreshes; the first one reveals `next` as the PG's epoch (a newer map).
class RefreshingEpochs : public EpochView {
 public:
  std::optional<uint64_t> PgEpoch(uint32_t, uint32_t) override { return epoch_.load(); }
  Status Refresh() override {
    refreshes_++;
    if (next_) epoch_ = next_.load();
    return Status::Ok();
  }
  uint64_t map_epoch() override { return epoch_; }
  std::atomic<uint64_t> epoch_{kEpoch};
  std::atomic<uint64_t> next_{0};
  std::atomic<int> refreshes_{0};
};

struct Node {
  TempDir dir;
  std::shared_ptr<RefreshingEpochs> epochs = std::make_shared<RefreshingEpochs>();
  std::unique_ptr<Datanode> dn;
  std::string data;

  explicit Node(uint64_t budget = 256ull << 20, std::shared_ptr<Device> device = nullptr) {
    DatanodeOptions o;
    o.data_dir = dir.str();
    // An injected device sees only file blocks (it does not wrap the small-block RocksDB).
    if (device) o.small_block_max = 0;
    o.device = std::move(device);
    o.epochs = epochs;
    o.memory_budget = budget;
    o.workers = 4;
    auto r = Datanode::Start(o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    dn = std::move(*r);
    data = dn->data_address().ToString();
  }
};

DataRequest Write(uint64_t slice, const AlignedBuffer& data, uint64_t epoch = kEpoch) {
  DataRequest r;
  r.set_op(WRITE_BLOCK);
  r.set_pool_id(kPool);
  r.set_pg(kPg);
  r.set_pg_epoch(epoch);
  r.mutable_block()->set_slice_id(slice);
  r.mutable_origin()->set_pool_id(kPool);
  r.mutable_origin()->set_pg(kPg);
  r.mutable_origin()->set_ino(11);
  for (uint32_t c : BlockCrcs(data.data(), data.size())) r.add_crcs(c);
  return r;
}

DataRequest Read(uint64_t slice, uint64_t offset = 0, uint64_t length = 0) {
  DataRequest r;
  r.set_op(READ_BLOCK);
  r.set_pool_id(kPool);
  r.set_pg(kPg);
  r.set_pg_epoch(kEpoch);
  r.mutable_block()->set_slice_id(slice);
  r.set_offset(offset);
  r.set_length(length);
  return r;
}

void AddHop(DataRequest& r, const std::string& address) {
  r.add_chain()->set_data_address(address);
}

TEST(DataServerTest, WriteThenReadReturnsBytesAndStoredCrcs) {
  Node n;
  auto pool = DataConnectionPool::Create();
  auto data = RandomBytes(3 * 4096 + 7, 1);
  auto w = pool->Call(n.data, Write(1, data), data.span(), DeadlineIn(10s));
  ASSERT_TRUE(w.ok()) << w.status().ToString();
  ASSERT_EQ(w->header.code(), Code::OK) << w->header.message();

  auto r = pool->Call(n.data, Read(1, 4096, 5000), {}, DeadlineIn(10s));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->header.code(), Code::OK) << r->header.message();
  ASSERT_EQ(r->payload.size(), 2u * 4096);  // [4096, round_up(9096)) = two units
  EXPECT_EQ(r->header.length(), 2u * 4096);
  EXPECT_EQ(r->header.crc_offset(), 4096u);
  EXPECT_EQ(0, std::memcmp(r->payload.data(), data.data() + 4096, 8192));
  EXPECT_EQ(reinterpret_cast<uintptr_t>(r->payload.data()) % kPageSize, 0u);
  auto crcs = BlockCrcs(r->payload.data(), r->payload.size());
  EXPECT_EQ(std::vector<uint32_t>(r->header.crcs().begin(), r->header.crcs().end()), crcs);

  auto whole = pool->Call(n.data, Read(1), {}, DeadlineIn(10s));
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(whole->payload.size(), data.size());
  EXPECT_EQ(whole->header.crcs_size(), 4);
}

// A copy reported corrupt is not served until settled (docs/maintenance.md "Repair on report"):
// readers get CORRUPT and go to another copy; deleting it lifts the quarantine.
TEST(DataServerTest, QuarantinedCopyIsRefusedUntilReleased) {
  Node n;
  auto pool = DataConnectionPool::Create();
  auto data = RandomBytes(8192, 4);
  ASSERT_EQ(pool->Call(n.data, Write(3, data), data.span(), DeadlineIn(10s))->header.code(),
            Code::OK);
  BlockKey key;
  key.set_slice_id(3);
  n.dn->store().Quarantine(key);
  auto r = pool->Call(n.data, Read(3), {}, DeadlineIn(10s));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->header.code(), Code::CORRUPT);
  EXPECT_NE(r->header.message().find("quarantined"), std::string::npos) << r->header.message();
  EXPECT_EQ(r->payload.size(), 0u);
  n.dn->store().Unquarantine(key);
  r = pool->Call(n.data, Read(3), {}, DeadlineIn(10s));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->header.code(), Code::OK);
  EXPECT_EQ(0, std::memcmp(r->payload.data(), data.data(), data.size()));
  n.dn->store().Quarantine(key);
  ASSERT_TRUE(n.dn->store().Delete(key).ok());
  EXPECT_FALSE(n.dn->store().IsQuarantined(key));
}

TEST(DataServerTest, ExactErrorsForBadRequests) {
  Node n;
  auto pool = DataConnectionPool::Create();
  auto data = RandomBytes(8192, 2);

  DataRequest bad_crc = Write(2, data);
  bad_crc.set_crcs(1, bad_crc.crcs(1) ^ 0x10);
  auto r = pool->Call(n.data, bad_crc, data.span(), DeadlineIn(10s));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->header.code(), Code::CORRUPT) << r->header.message();
  EXPECT_EQ(n.dn->store().capacity().blocks, 0u);

  r = pool->Call(n.data, Read(2), {}, DeadlineIn(10s));
  EXPECT_EQ(r->header.code(), Code::NOT_FOUND);
  EXPECT_NE(r->header.message().find("datanode"), std::string::npos) << r->header.message();

  ASSERT_EQ(pool->Call(n.data, Write(2, data), data.span(), DeadlineIn(10s))->header.code(),
            Code::OK);
  r = pool->Call(n.data, Read(2, 100), {}, DeadlineIn(10s));
  EXPECT_EQ(r->header.code(), Code::INVALID_ARGUMENT);

  DataRequest unknown;
  unknown.set_op(static_cast<DataOp>(99));
  r = pool->Call(n.data, unknown, {}, DeadlineIn(10s));
  EXPECT_EQ(r->header.code(), Code::INVALID_ARGUMENT);

  DataRequest ping;
  ping.set_op(PING);
  EXPECT_EQ(pool->Call(n.data, ping, {}, DeadlineIn(10s))->header.code(), Code::OK);

  DataRequest del = Read(2);
  del.set_op(DELETE_BLOCK);
  EXPECT_EQ(pool->Call(n.data, del, {}, DeadlineIn(10s))->header.code(), Code::OK);
  EXPECT_EQ(pool->Call(n.data, del, {}, DeadlineIn(10s))->header.code(), Code::NOT_FOUND);
}

TEST(DataServerTest, StaleEpochIsRejectedWithTheCurrentEpoch) {
  Node n;
  auto pool = DataConnectionPool::Create();
  auto data = RandomBytes(100, 3);
  auto r = pool->Call(n.data, Write(3, data, kEpoch - 1), data.span(), DeadlineIn(10s));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->header.code(), Code::STALE_EPOCH);
  EXPECT_EQ(r->header.pg_epoch(), kEpoch);
  EXPECT_EQ(n.epochs->refreshes_, 0);  // an older epoch needs no refresh

  // A newer epoch than ours makes the node refresh its map first; it then accepts.
  n.epochs->next_ = kEpoch + 1;
  r = pool->Call(n.data, Write(3, data, kEpoch + 1), data.span(), DeadlineIn(10s));
  EXPECT_EQ(r->header.code(), Code::OK) << r->header.message();
  EXPECT_EQ(n.epochs->refreshes_, 1);

  // Newer still than the refreshed map: stale, carrying what the node has.
  r = pool->Call(n.data, Write(4, data, kEpoch + 9), data.span(), DeadlineIn(10s));
  EXPECT_EQ(r->header.code(), Code::STALE_EPOCH);
  EXPECT_EQ(r->header.pg_epoch(), kEpoch + 1);
}

// Raw socket helpers for frames the client would never send.
int Dial(const HostPort& at) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(at.port);
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

// Reads one reply frame; then whether the server closed the connection.
std::pair<DataResponse, bool> ReadReplyThenEof(int fd) {
  FrameReader reader;
  while (!reader.HasFrame()) {
    auto span = reader.WritableSpan();
    ssize_t n = recv(fd, span.data(), span.size(), 0);
    if (n <= 0) return {{}, true};
    EXPECT_TRUE(reader.Commit(n).ok());
  }
  DataResponse resp;
  EXPECT_TRUE(resp.ParseFromString(reader.TakeFrame().proto_header));
  char c;
  bool eof = recv(fd, &c, 1, 0) == 0;
  return {resp, eof};
}

TEST(DataServerTest, MalformedFramesGetInvalidArgumentAndAClosedConnection) {
  Node n;
  {
    int fd = Dial(n.dn->data_address());
    uint8_t junk[24] = {'N', 'O', 'P', 'E'};
    ASSERT_EQ(write(fd, junk, sizeof junk), 24);
    auto [resp, eof] = ReadReplyThenEof(fd);
    EXPECT_EQ(resp.code(), Code::INVALID_ARGUMENT);
    EXPECT_NE(resp.message().find("bad magic"), std::string::npos) << resp.message();
    EXPECT_TRUE(eof);
    close(fd);
  }
  {
    int fd = Dial(n.dn->data_address());
    std::string frame = EncodeFramePrefix(std::string(10, '\xff'), 0);
    ASSERT_EQ(write(fd, frame.data(), frame.size()), static_cast<ssize_t>(frame.size()));
    auto [resp, eof] = ReadReplyThenEof(fd);
    EXPECT_EQ(resp.code(), Code::INVALID_ARGUMENT);
    EXPECT_NE(resp.message().find("unparsable"), std::string::npos) << resp.message();
    EXPECT_TRUE(eof);
    close(fd);
  }
  {
    int fd = Dial(n.dn->data_address());
    FrameHeader h;
    h.header_len = 4;
    h.payload_len = kMaxFramePayloadLen + 1;
    auto fixed = EncodeFixedHeader(h);
    ASSERT_EQ(write(fd, fixed.data(), fixed.size()), 24);
    auto [resp, eof] = ReadReplyThenEof(fd);
    EXPECT_EQ(resp.code(), Code::INVALID_ARGUMENT);
    EXPECT_NE(resp.message().find("payload length"), std::string::npos) << resp.message();
    close(fd);
  }
  // The server is still fine for well-formed clients.
  auto pool = DataConnectionPool::Create();
  DataRequest ping;
  ping.set_op(PING);
  EXPECT_EQ(pool->Call(n.data, ping, {}, DeadlineIn(10s))->header.code(), Code::OK);
}

TEST(DataServerTest, ManyRequestsInFlightOnOneConnectionUnderASmallBudget) {
  Node n(/*budget=*/256 * 1024);  // forces back-pressure: 64 x 64 KiB in flight
  auto conn = DataConnection::Connect(n.data, DeadlineIn(10s));
  ASSERT_TRUE(conn.ok());
  constexpr int kCount = 64;
  std::vector<AlignedBuffer> blocks;
  for (int i = 0; i < kCount; ++i) blocks.push_back(RandomBytes(64 * 1024, 100 + i));
  std::vector<std::future<Result<DataReply>>> writes;
  for (int i = 0; i < kCount; ++i) {
    writes.push_back(
        (*conn)->CallAsync(Write(1000 + i, blocks[i]), blocks[i].span(), DeadlineIn(30s)));
  }
  for (auto& f : writes) {
    auto r = f.get();
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_EQ(r->header.code(), Code::OK) << r->header.message();
  }
  std::vector<std::future<Result<DataReply>>> reads;
  for (int i = 0; i < kCount; ++i) {
    reads.push_back((*conn)->CallAsync(Read(1000 + i), {}, DeadlineIn(30s)));
  }
  for (int i = 0; i < kCount; ++i) {
    auto r = reads[i].get();
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(r->payload.size(), blocks[i].size());
    EXPECT_EQ(0, std::memcmp(r->payload.data(), blocks[i].data(), blocks[i].size()));
  }
  EXPECT_EQ((*conn)->pending(), 0u);
}

TEST(DataServerTest, ChainWriteStoresOnEveryMemberAndNamesAFailedOne) {
  Node head, mid, tail;
  auto pool = DataConnectionPool::Create();
  auto data = RandomBytes(4 * 4096, 4);
  DataRequest w = Write(7, data);
  AddHop(w, mid.data);
  AddHop(w, tail.data);
  auto r = pool->Call(head.data, w, data.span(), DeadlineIn(10s));
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->header.code(), Code::OK) << r->header.message();
  for (Node* n : {&head, &mid, &tail}) {
    auto back = pool->Call(n->data, Read(7), {}, DeadlineIn(10s));
    ASSERT_EQ(back->header.code(), Code::OK);
    EXPECT_EQ(0, std::memcmp(back->payload.data(), data.data(), data.size()));
  }

  // A stale epoch at the tail comes back as STALE_EPOCH carrying the tail's epoch.
  tail.epochs->epoch_ = kEpoch + 2;
  DataRequest w2 = Write(8, data);
  AddHop(w2, mid.data);
  AddHop(w2, tail.data);
  r = pool->Call(head.data, w2, data.span(), DeadlineIn(10s));
  EXPECT_EQ(r->header.code(), Code::STALE_EPOCH) << r->header.message();
  EXPECT_EQ(r->header.pg_epoch(), kEpoch + 2);

  // The tail goes away: the write fails, naming it.
  std::string tail_address = tail.data;
  tail.dn->Stop();
  DataRequest w3 = Write(9, data);
  AddHop(w3, mid.data);
  AddHop(w3, tail_address);
  r = pool->Call(head.data, w3, data.span(), DeadlineIn(10s));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->header.code(), Code::UNAVAILABLE);
  EXPECT_NE(r->header.message().find(tail_address), std::string::npos) << r->header.message();
}

TEST(DataServerTest, ControlServiceListsCountsAndDeletesBlocks) {
  Node n;
  auto pool = DataConnectionPool::Create();
  auto data = RandomBytes(5000, 5);
  for (uint64_t s = 1; s <= 3; ++s) {
    ASSERT_EQ(pool->Call(n.data, Write(s, data), data.span(), DeadlineIn(10s))->header.code(),
              Code::OK);
  }
  auto stub = DataControl::NewStub(
      grpc::CreateChannel(n.dn->control_address().ToString(), grpc::InsecureChannelCredentials()));
  {
    grpc::ClientContext ctx;
    DataNodeStatusReply st;
    ASSERT_TRUE(stub->Status(&ctx, DataNodeStatusRequest(), &st).ok());
    EXPECT_EQ(st.blocks(), 3u);
    EXPECT_GT(st.used_bytes(), 3u * 5000);
    EXPECT_GT(st.capacity_bytes(), st.used_bytes());
    EXPECT_EQ(st.map_epoch(), kEpoch);
  }
  {
    grpc::ClientContext ctx;
    ListBlocksRequest req;
    req.set_pool_id(kPool);
    req.set_pg(kPg);
    ListBlocksReply list;
    ASSERT_TRUE(stub->ListBlocks(&ctx, req, &list).ok());
    ASSERT_EQ(list.blocks_size(), 3);
    EXPECT_EQ(list.blocks(0).length(), 5000u);
    EXPECT_EQ(list.blocks(0).origin().ino(), 11u);
  }
  {
    grpc::ClientContext ctx;
    DeleteBlocksRequest req;
    req.add_blocks()->set_slice_id(1);
    req.add_blocks()->set_slice_id(2);
    req.add_blocks()->set_slice_id(99);  // already absent: not an error
    DeleteBlocksReply reply;
    ASSERT_TRUE(stub->DeleteBlocks(&ctx, req, &reply).ok());
    EXPECT_EQ(reply.deleted(), 2u);
  }
  EXPECT_EQ(n.dn->store().capacity().blocks, 1u);
}

TEST(DataServerTest, DiskEioIsUnavailableAndMarksTheNodeUnhealthy) {
  auto dev = std::make_shared<FaultInjectionDevice>(NewUringDevice());
  Node n(256ull << 20, dev);
  auto pool = DataConnectionPool::Create();
  auto data = RandomBytes(4096, 6);
  EXPECT_TRUE(n.dn->healthy());
  dev->Inject("sync", EIO, 1);
  auto r = pool->Call(n.data, Write(5, data), data.span(), DeadlineIn(10s));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->header.code(), Code::UNAVAILABLE);
  EXPECT_NE(r->header.message().find("EIO"), std::string::npos) << r->header.message();
  EXPECT_FALSE(n.dn->healthy());
  EXPECT_EQ(pool->Call(n.data, Read(5), {}, DeadlineIn(10s))->header.code(), Code::NOT_FOUND);
}

// A datanode's first forwards to its next chain member dial from several workers at once. Every
// one of those requests must be answered: a racing dial must not close a connection that already
// carries requests (it once failed them with "connection closed", flaking the chain test).
TEST(DataConnectionTest, RacingFirstCallsThroughAFreshPoolAllSucceed) {
  Node n;
  constexpr int kThreads = 8;
  for (int round = 0; round < 20; ++round) {
    auto pool = DataConnectionPool::Create();
    std::latch start(kThreads);
    std::vector<std::future<Result<DataReply>>> replies(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        DataRequest ping;
        ping.set_op(PING);
        start.arrive_and_wait();
        replies[t] = pool->CallAsync(n.data, ping, {}, DeadlineIn(10s));
      });
    }
    for (auto& th : threads) th.join();
    for (auto& f : replies) {
      auto r = f.get();
      ASSERT_TRUE(r.ok()) << "round " << round << ": " << r.status().ToString();
      EXPECT_EQ(r->header.code(), Code::OK) << r->header.message();
    }
  }
}

TEST(DataConnectionTest, DeadlineAndConnectionLossFailPendingRequestsWithTheAddress) {
  // A listener that never accepts: connect succeeds (backlog), no reply ever comes.
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  ASSERT_EQ(bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(lfd, 4), 0);
  socklen_t len = sizeof a;
  getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
  std::string address = fmt::format("127.0.0.1:{}", ntohs(a.sin_port));

  auto conn = DataConnection::Connect(address, DeadlineIn(5s));
  ASSERT_TRUE(conn.ok());
  DataRequest ping;
  ping.set_op(PING);
  auto start = Clock::now();
  auto r = (*conn)->Call(ping, {}, DeadlineIn(200ms));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::UNAVAILABLE);
  EXPECT_NE(r.status().message().find("deadline exceeded"), std::string::npos);
  EXPECT_NE(r.status().message().find(address), std::string::npos);
  EXPECT_LT(Clock::now() - start, 5s);

  // Now the peer accepts and hangs up: every pending request fails at once.
  auto f1 = (*conn)->CallAsync(ping, {}, DeadlineIn(60s));
  auto f2 = (*conn)->CallAsync(ping, {}, DeadlineIn(60s));
  int afd = accept(lfd, nullptr, nullptr);
  close(afd);
  for (auto* f : {&f1, &f2}) {
    auto res = f->get();
    EXPECT_EQ(res.status().code(), Code::UNAVAILABLE);
    EXPECT_NE(res.status().message().find(address), std::string::npos);
  }
  EXPECT_FALSE((*conn)->healthy());
  close(lfd);

  // Nothing listens: connect fails with Unavailable naming the address.
  auto none = DataConnection::Connect(address, DeadlineIn(5s));
  EXPECT_EQ(none.status().code(), Code::UNAVAILABLE);
  EXPECT_NE(none.status().message().find(address), std::string::npos);
}

}  // namespace
}  // namespace granary::datanode
