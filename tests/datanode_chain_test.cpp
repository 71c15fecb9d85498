// Multi-process datanode tests: three `granary datanode` processes against an in-process fake
// metanode (Cluster service), driven over the data protocol. Covers registration, heartbeats,
// map refresh on a newer epoch, SIGTERM, and a chain whose tail is SIGKILLed mid-write.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <random>

#include "common/aligned_buffer.h"
#include "common/crc32c.h"
#include "common/data_connection.h"
#include "granary/meta.grpc.pb.h"
#include "tests/harness/process.h"

namespace granary {
namespace {
using namespace std::chrono_literals;
using testing::HttpGet;
using testing::Process;
using testing::RandomBytes;
using testing::TempDir;

constexpr uint32_t kPool = 1;
constexpr uint32_t kPg = 0;

// Just enough of the metanode: ids by uuid, heartbeats recorded, a map with only an epoch.
class FakeCluster final : public Cluster::Service {
 public:
  grpc::Status Register(grpc::ServerContext*, const RegisterRequest* req,
                        RegisterReply* reply) override {
    std::lock_guard lock(mu_);
    uint32_t& id = ids_[req->uuid()];
    if (id == 0) id = static_cast<uint32_t>(ids_.size());
    registrations_.push_back(*req);
    reply->set_node_id(id);
    reply->set_map_epoch(epoch_);
    return grpc::Status::OK;
  }
  grpc::Status Heartbeat(grpc::ServerContext*, const HeartbeatRequest* req,
                         HeartbeatReply* reply) override {
    std::lock_guard lock(mu_);
    heartbeats_.push_back(*req);
    reply->set_map_epoch(epoch_);
    return grpc::Status::OK;
  }
  grpc::Status GetClusterMap(grpc::ServerContext*, const GetClusterMapRequest* req,
                             ClusterMap* map) override {
    std::lock_guard lock(mu_);
    ++map_fetches_;
    map->set_epoch(epoch_);
    if (req->known_epoch() == epoch_) map->set_unchanged(true);
    return grpc::Status::OK;
  }

  std::mutex mu_;
  uint64_t epoch_ = 3;
  int map_fetches_ = 0;
  std::map<std::string, uint32_t> ids_;
  std::vector<RegisterRequest> registrations_;
  std::vector<HeartbeatRequest> heartbeats_;
};

struct FakeMeta {
  FakeCluster service;
  std::unique_ptr<grpc::Server> server;
  std::string address;
  FakeMeta() {
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(&service);
    server = b.BuildAndStart();
    address = "127.0.0.1:" + std::to_string(port);
  }
  ~FakeMeta() { server->Shutdown(std::chrono::system_clock::now() + 1s); }
};

struct DatanodeProcess {
  std::unique_ptr<Process> proc;
  std::string control, data, admin;

  static DatanodeProcess Start(const std::string& dir, const std::string& meta,
                               const std::string& labels) {
    DatanodeProcess p;
    p.proc = std::make_unique<Process>(std::vector<std::string>{
        testing::GranaryBinary(), "datanode", "--data", dir, "--listen", "127.0.0.1:0",
        "--data-listen", "127.0.0.1:0", "--meta", meta, "--labels", labels, "--admin",
        "127.0.0.1:0", "--heartbeat-ms", "100"});
    auto m = p.proc->WaitForLine(R"(listening control=(\S+) data=(\S+) admin=(\S+))", 30s);
    EXPECT_TRUE(m.has_value()) << p.proc->Output();
    if (m) {
      p.control = (*m)[1];
      p.data = (*m)[2];
      p.admin = (*m)[3];
    }
    return p;
  }
};

DataRequest WriteReq(uint64_t slice, const AlignedBuffer& data, uint64_t epoch) {
  DataRequest r;
  r.set_op(WRITE_BLOCK);
  r.set_pool_id(kPool);
  r.set_pg(kPg);
  r.set_pg_epoch(epoch);
  r.mutable_block()->set_slice_id(slice);
  r.mutable_origin()->set_pool_id(kPool);
  r.mutable_origin()->set_pg(kPg);
  for (uint32_t c : BlockCrcs(data.data(), data.size())) r.add_crcs(c);
  return r;
}

DataRequest ReadReq(uint64_t slice, uint64_t epoch) {
  DataRequest r;
  r.set_op(READ_BLOCK);
  r.set_pool_id(kPool);
  r.set_pg(kPg);
  r.set_pg_epoch(epoch);
  r.mutable_block()->set_slice_id(slice);
  return r;
}

TEST(DatanodeProcessTest, RegistersHeartbeatsRefreshesTheMapAndStopsOnSigterm) {
  FakeMeta meta;
  TempDir dir;
  auto dn = DatanodeProcess::Start(dir.str(), meta.address, "zone=a,rack=r1,host=h1,gpu=true");
  ASSERT_FALSE(dn.data.empty());
  ASSERT_TRUE(testing::WaitUntil(
      [&] {
        std::lock_guard lock(meta.service.mu_);
        return meta.service.heartbeats_.size() >= 2;
      },
      20s));
  std::string uuid;
  {
    std::lock_guard lock(meta.service.mu_);
    const RegisterRequest& reg = meta.service.registrations_.at(0);
    uuid = reg.uuid();
    EXPECT_EQ(reg.data_address(), dn.data);
    EXPECT_EQ(reg.address(), dn.control);
    EXPECT_EQ(reg.labels().at("gpu"), "true");
    EXPECT_EQ(reg.labels().at("rack"), "r1");
    EXPECT_GT(reg.capacity_bytes(), 0u);
    const HeartbeatRequest& hb = meta.service.heartbeats_.back();
    EXPECT_EQ(hb.node_id(), 1u);
    EXPECT_TRUE(hb.healthy());
    EXPECT_GT(hb.capacity_bytes(), 0u);
    EXPECT_EQ(hb.known_epoch(), 3u);
  }

  auto pool = DataConnectionPool::Create();
  auto data = RandomBytes(10000, 1);
  auto r = pool->Call(dn.data, WriteReq(1, data, 3), data.span(), DeadlineIn(10s));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->header.code(), Code::OK) << r->header.message();

  // The metanode moves to epoch 4; a client that already knows it is served after the
  // datanode refreshes, and the old epoch becomes stale.
  {
    std::lock_guard lock(meta.service.mu_);
    meta.service.epoch_ = 4;
  }
  r = pool->Call(dn.data, WriteReq(2, data, 4), data.span(), DeadlineIn(10s));
  EXPECT_EQ(r->header.code(), Code::OK) << r->header.message();
  r = pool->Call(dn.data, WriteReq(3, data, 3), data.span(), DeadlineIn(10s));
  EXPECT_EQ(r->header.code(), Code::STALE_EPOCH);
  EXPECT_EQ(r->header.pg_epoch(), 4u);

  // The admin endpoint serves the datanode's metrics and health.
  auto [code, body] = HttpGet(dn.admin, "/metrics");
  EXPECT_EQ(code, 200);
  EXPECT_NE(body.find("granary_datanode_ops_total"), std::string::npos);
  EXPECT_NE(body.find("granary_datanode_stale_epoch_total"), std::string::npos);
  EXPECT_EQ(HttpGet(dn.admin, "/healthz").first, 200);

  dn.proc->Signal(SIGTERM);
  auto status = dn.proc->Wait(20s);
  ASSERT_TRUE(status.has_value());
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << dn.proc->Output();
  EXPECT_NE(dn.proc->Output().find("event=datanode_stopped"), std::string::npos);

  // Restarted on the same directory: same uuid, same node id, the block is still there.
  auto again = DatanodeProcess::Start(dir.str(), meta.address, "zone=a");
  ASSERT_TRUE(testing::WaitUntil(
      [&] {
        std::lock_guard lock(meta.service.mu_);
        return meta.service.registrations_.size() >= 2;
      },
      20s));
  {
    std::lock_guard lock(meta.service.mu_);
    EXPECT_EQ(meta.service.registrations_.back().uuid(), uuid);
    EXPECT_EQ(meta.service.ids_.size(), 1u);
  }
  r = pool->Call(again.data, ReadReq(1, 4), {}, DeadlineIn(10s));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->header.code(), Code::OK) << r->header.message();
  EXPECT_EQ(r->payload.size(), data.size());
}

TEST(DatanodeProcessTest, ChainTailKilledMidWriteLosesNothingAcknowledged) {
  FakeMeta meta;
  TempDir d0, d1, d2;
  auto head = DatanodeProcess::Start(d0.str(), meta.address, "host=h0");
  auto mid = DatanodeProcess::Start(d1.str(), meta.address, "host=h1");
  auto tail = DatanodeProcess::Start(d2.str(), meta.address, "host=h2");
  ASSERT_FALSE(tail.data.empty());
  const std::string tail_data = tail.data;

  auto pool = DataConnectionPool::Create();
  std::map<uint64_t, std::vector<uint32_t>> acked;  // slice -> CRCs of what was acknowledged
  std::vector<std::string> failures;
  bool killed = false;
  uint64_t slice = 0;
  constexpr size_t kInFlight = 8;
  for (int batch = 0; batch < 40 && failures.size() < 16; ++batch) {
    std::vector<AlignedBuffer> payloads;
    std::vector<std::future<Result<DataReply>>> replies;
    std::vector<uint64_t> slices;
    for (size_t i = 0; i < kInFlight; ++i) {
      payloads.push_back(RandomBytes(256 * 1024, static_cast<uint32_t>(++slice)));
      DataRequest w = WriteReq(slice, payloads.back(), 3);
      w.add_chain()->set_data_address(mid.data);
      w.add_chain()->set_data_address(tail_data);
      replies.push_back(pool->CallAsync(head.data, w, payloads.back().span(), DeadlineIn(20s)));
      slices.push_back(slice);
    }
    if (!killed && acked.size() >= 24) {
      tail.proc->Kill();  // SIGKILL while this batch is in flight
      killed = true;
    }
    for (size_t i = 0; i < replies.size(); ++i) {
      auto r = replies[i].get();
      ASSERT_TRUE(r.ok()) << r.status().ToString();  // the head itself stays up
      if (r->header.code() == Code::OK) {
        acked[slices[i]] = BlockCrcs(payloads[i].data(), payloads[i].size());
      } else {
        EXPECT_EQ(r->header.code(), Code::UNAVAILABLE) << r->header.message();
        failures.push_back(r->header.message());
      }
    }
  }
  ASSERT_TRUE(killed);
  ASSERT_FALSE(failures.empty());
  // Every failure names the member that went away: only the mid forwards to the tail, so this
  // is the mid's own error reply relayed by the head ("forward to <mid>: … forward to <tail>:
  // …"), never a broken head->mid link.
  for (const auto& f : failures) {
    EXPECT_NE(f.find("forward to " + tail_data), std::string::npos) << f;
  }

  // The tail comes back on its directory: every acknowledged block is on all three members.
  auto tail2 = DatanodeProcess::Start(d2.str(), meta.address, "host=h2");
  ASSERT_FALSE(tail2.data.empty());
  for (const auto& [s, crcs] : acked) {
    for (const std::string& at : {head.data, mid.data, tail2.data}) {
      auto r = pool->Call(at, ReadReq(s, 3), {}, DeadlineIn(10s));
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      ASSERT_EQ(r->header.code(), Code::OK)
          << "slice " << s << " on " << at << ": " << r->header.message();
      EXPECT_EQ(BlockCrcs(r->payload.data(), r->payload.size()), crcs);
      EXPECT_EQ(std::vector<uint32_t>(r->header.crcs().begin(), r->header.crcs().end()), crcs);
    }
  }
  EXPECT_GE(acked.size(), 24u);
}

// Small blocks live in the datanode's RocksDB and are acknowledged after its WAL sync (shared
// by concurrent writers): SIGKILL right after acknowledgements, and while more writes are in
// flight, loses none of the acknowledged ones.
TEST(DatanodeProcessTest, SmallBlocksAcknowledgedBeforeSigkillSurviveIt) {
  FakeMeta meta;
  TempDir d0;
  auto node = DatanodeProcess::Start(d0.str(), meta.address, "host=h0");
  ASSERT_FALSE(node.data.empty());
  auto pool = DataConnectionPool::Create();
  std::map<uint64_t, std::vector<uint32_t>> acked;
  uint64_t slice = 0;
  bool killed = false;
  constexpr size_t kInFlight = 16;
  for (int batch = 0; batch < 100 && !killed; ++batch) {
    std::vector<AlignedBuffer> payloads;
    std::vector<std::future<Result<DataReply>>> replies;
    std::vector<uint64_t> slices;
    for (size_t i = 0; i < kInFlight; ++i) {
      ++slice;
      payloads.push_back(RandomBytes(4096 * (1 + slice % 4), static_cast<uint32_t>(slice)));
      replies.push_back(pool->CallAsync(node.data, WriteReq(slice, payloads.back(), 3),
                                        payloads.back().span(), DeadlineIn(20s)));
      slices.push_back(slice);
    }
    if (acked.size() >= 160) {
      node.proc->Kill();  // SIGKILL with this batch in flight
      killed = true;
    }
    for (size_t i = 0; i < replies.size(); ++i) {
      auto r = replies[i].get();
      if (r.ok() && r->header.code() == Code::OK) {
        acked[slices[i]] = BlockCrcs(payloads[i].data(), payloads[i].size());
      } else {
        ASSERT_TRUE(killed) << (r.ok() ? r->header.message() : r.status().ToString());
      }
    }
  }
  ASSERT_TRUE(killed);
  auto again = DatanodeProcess::Start(d0.str(), meta.address, "host=h0");
  ASSERT_FALSE(again.data.empty());
  for (const auto& [s, crcs] : acked) {
    auto r = pool->Call(again.data, ReadReq(s, 3), {}, DeadlineIn(10s));
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    ASSERT_EQ(r->header.code(), Code::OK) << "slice " << s << ": " << r->header.message();
    EXPECT_EQ(BlockCrcs(r->payload.data(), r->payload.size()), crcs) << "slice " << s;
    EXPECT_EQ(std::vector<uint32_t>(r->header.crcs().begin(), r->header.crcs().end()), crcs);
  }
  // They are small blocks: none became a file.
  size_t files = 0;
  std::error_code ec;
  for (auto& e : std::filesystem::recursive_directory_iterator(d0.str() + "/blocks", ec)) {
    files += e.is_regular_file();
  }
  EXPECT_EQ(files, 0u);
  EXPECT_GE(acked.size(), 160u);
}

}  // namespace
}  // namespace granary
