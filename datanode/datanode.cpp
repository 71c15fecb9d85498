#include "datanode/datanode.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/rpc_status.h"
#include "datanode/block_store.h"
#include "datanode/data_server.h"
#include "datanode/meta_session.h"
#include "granary/data.grpc.pb.h"

namespace granary::datanode {
namespace {

// DataControl on --listen: status, block listing (repair, fsck) and batch deletes (GC).
class ControlService final : public DataControl::Service {
 public:
  ControlService(BlockStore* store, std::function<uint32_t()> node_id, EpochView* epochs,
                 std::function<Maintenance*()> maintenance)
      : store_(store),
        node_id_(std::move(node_id)),
        epochs_(epochs),
        maintenance_(std::move(maintenance)) {}

  grpc::Status RepairNow(grpc::ServerContext*, const RepairNowRequest*, RepairNowReply*) override {
    Maintenance* m = maintenance_();
    if (m == nullptr) {
      return ToGrpcStatus(InvalidArgument("datanode runs without a metanode"));
    }
    m->RequestRepair();
    return grpc::Status::OK;
  }

  grpc::Status Status(grpc::ServerContext*, const DataNodeStatusRequest*,
                      DataNodeStatusReply* reply) override {
    Capacity c = store_->capacity();
    reply->set_node_id(node_id_());
    reply->set_capacity_bytes(c.capacity_bytes);
    reply->set_used_bytes(c.used_bytes);
    reply->set_blocks(c.blocks);
    reply->set_map_epoch(epochs_->map_epoch());
    return grpc::Status::OK;
  }

  grpc::Status ListBlocks(grpc::ServerContext*, const ListBlocksRequest* req,
                          ListBlocksReply* reply) override {
    for (auto& info : store_->List(req->pool_id(), req->pg(), req->all())) {
      *reply->add_blocks() = std::move(info);
    }
    return grpc::Status::OK;
  }

  grpc::Status DeleteBlocks(grpc::ServerContext*, const DeleteBlocksRequest* req,
                            DeleteBlocksReply* reply) override {
    uint64_t deleted = 0;
    std::vector<BlockKey> keys(req->blocks().begin(), req->blocks().end());
    for (uint64_t id : req->slice_ids()) {
      for (auto& key : store_->KeysOfSlice(id)) keys.push_back(std::move(key));
    }
    for (const auto& key : keys) {
      granary::Status st = store_->Delete(key);
      if (st.ok()) {
        ++deleted;
      } else if (st.code() != Code::NOT_FOUND) {  // already gone is what the caller wants
        return ToGrpcStatus(st.WithContext(fmt::format("delete blocks ({} deleted)", deleted)));
      }
    }
    reply->set_deleted(deleted);
    return grpc::Status::OK;
  }

 private:
  BlockStore* store_;
  std::function<uint32_t()> node_id_;
  EpochView* epochs_;
  std::function<Maintenance*()> maintenance_;
};

}  // namespace

struct Datanode::Impl {
  DatanodeOptions options;
  std::unique_ptr<BlockStore> store;
  std::unique_ptr<MetaSession> session;
  std::unique_ptr<Maintenance> maintenance;
  EpochView* epochs = nullptr;
  std::unique_ptr<DataServer> data;
  std::unique_ptr<ControlService> control;
  std::unique_ptr<grpc::Server> grpc;
  HostPort control_address;
  bool stopped = false;
};

Result<std::unique_ptr<Datanode>> Datanode::Start(DatanodeOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  DatanodeOptions& o = impl->options;
  if (o.data_dir.empty()) return InvalidArgument("datanode: --data is required");
  if (o.meta.empty() && !o.epochs) return InvalidArgument("datanode: --meta is required");
  if (!o.device) o.device = NewUringDevice();
  if (o.advertise.empty()) o.advertise = o.listen.host;

  BlockStoreOptions store_options;
  store_options.small_block_max = o.small_block_max;
  store_options.direct_write_min = o.direct_write_min;
  auto store = BlockStore::Open(o.data_dir, o.device, store_options);
  if (!store.ok()) return store.status().WithContext("datanode: open " + o.data_dir);
  impl->store = std::move(*store);

  if (!o.meta.empty()) {
    MetaSessionOptions mo;
    mo.meta = o.meta;
    mo.data_dir = o.data_dir;
    mo.labels = o.labels;
    mo.heartbeat_interval = o.heartbeat_interval;
    BlockStore* st = impl->store.get();
    auto session = MetaSession::Create(std::move(mo), st, [st] { return st->io_errors() == 0; });
    if (!session.ok()) return session.status().WithContext("datanode");
    impl->session = std::move(*session);
  }
  impl->epochs = o.epochs ? o.epochs.get() : &impl->session->epochs();
  if (impl->session) {
    // Before the data server starts: a read or write that finds a stored copy damaged tells
    // the maintenance worker, which quarantines it at once (docs/maintenance.md).
    impl->maintenance =
        std::make_unique<Maintenance>(o.maintenance, impl->store.get(), impl->session.get());
    impl->store->SetDamageListener(
        [m = impl->maintenance.get()](const BlockKey& key, const std::string& detail) {
          m->ReportLocal(key, detail, SOURCE_DATANODE);
        });
  }

  DataServerOptions ds;
  ds.listen = o.data_listen;
  ds.workers = o.workers;
  ds.memory_budget = o.memory_budget;
  ds.advertise = o.advertise;
  ds.node_id = [raw = impl.get()] { return raw->session ? raw->session->node_id() : 0; };
  auto data = DataServer::Start(ds, impl->store.get(), impl->epochs);
  if (!data.ok()) return data.status().WithContext("datanode");
  impl->data = std::move(*data);

  impl->control = std::make_unique<ControlService>(
      impl->store.get(), [raw = impl.get()] { return raw->session ? raw->session->node_id() : 0; },
      impl->epochs, [raw = impl.get()] { return raw->maintenance.get(); });
  grpc::ServerBuilder builder;
  int bound = 0;
  builder.AddListeningPort(o.listen.ToString(), grpc::InsecureServerCredentials(), &bound);
  builder.RegisterService(impl->control.get());
  impl->grpc = builder.BuildAndStart();
  if (!impl->grpc || bound == 0) {
    impl->data->Stop();
    return Unavailable(fmt::format("datanode: cannot listen on {}", o.listen.ToString()));
  }
  impl->control_address = HostPort{o.listen.host, static_cast<uint16_t>(bound)};
  HostPort data_address{o.advertise, impl->data->address().port};
  GLOG_INFO("event=datanode_listening control={} data={} dir={}", impl->control_address.ToString(),
            data_address.ToString(), o.data_dir);
  if (impl->session) {
    impl->session->SetAddresses(HostPort{o.advertise, impl->control_address.port}.ToString(),
                                data_address.ToString());
    Maintenance* m = impl->maintenance.get();
    impl->session->SetRepairProgress([m] { return m->progress(); });
    DataServer* data_server = impl->data.get();
    impl->session->SetHeartbeatHooks(
        [m, data_server](HeartbeatRequest* req) {
          m->FillHeartbeat(req);
          data_server->FillIoCounters(req->mutable_io());
        },
        [m](const HeartbeatReply& reply) { m->OnHeartbeatReply(reply); });
    impl->session->Start();
    impl->maintenance->Start();
  }
  return std::unique_ptr<Datanode>(new Datanode(std::move(impl)));
}

Datanode::Datanode(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Datanode::~Datanode() { Stop(); }

void Datanode::Stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  if (impl_->maintenance) impl_->maintenance->Stop();
  if (impl_->session) impl_->session->Stop();
  impl_->data->Stop();
  impl_->grpc->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  impl_->grpc->Wait();
  GLOG_INFO("event=datanode_stopped dir={}", impl_->options.data_dir);
}

HostPort Datanode::control_address() const { return impl_->control_address; }
Maintenance* Datanode::maintenance() { return impl_->maintenance.get(); }
HostPort Datanode::data_address() const {
  return HostPort{impl_->options.advertise, impl_->data->address().port};
}
uint32_t Datanode::node_id() const { return impl_->session ? impl_->session->node_id() : 0; }
bool Datanode::healthy() const { return impl_->store->io_errors() == 0; }
BlockStore& Datanode::store() { return *impl_->store; }

}  // namespace granary::datanode
