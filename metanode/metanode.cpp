#include "metanode/metanode.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include "common/admin_server.h"
#include "common/log.h"
#include "metanode/service.h"
#include "replication/raft_group.h"

namespace granary::metanode {

struct Metanode::Impl {
  std::unique_ptr<MetaCore> core;
  Services services;
  std::unique_ptr<grpc::Server> server;
  std::unique_ptr<AdminServer> admin;
  std::string address;
  bool stopped = false;
};

Metanode::Metanode(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Metanode::~Metanode() { Shutdown(); }

namespace {
// A group member's service address: its entry in --peers (whose port must be the one it listens
// on), else --advertise (or the listen host) with the listen port.
Status ResolveMemberAddress(MetanodeOptions& options, const HostPort& listen) {
  MetaCoreOptions& core = options.core;
  core.bind_host = listen.host;  // Raft listens beside the gRPC port, on the same interface
  if (core.member_id == 0) {
    if (!core.peers.empty()) return InvalidArgument("--peers needs --id (this member's id)");
    return Status::Ok();
  }
  if (!core.peers.empty()) {
    auto peers = replication::ParseMembers(core.peers);
    GRANARY_TRY(peers);
    for (const auto& m : *peers) {
      if (m.id != core.member_id) continue;
      auto own = ParseHostPort(m.address);
      GRANARY_TRY(own);
      if (own->port != listen.port) {
        return InvalidArgument(fmt::format("--peers names member {} at {}, but --listen is {}",
                                           m.id, m.address, listen.ToString()));
      }
      core.member_address = m.address;
      return Status::Ok();
    }
    return InvalidArgument(
        fmt::format("--peers {} does not name this member's --id {}", core.peers, core.member_id));
  }
  std::string host = options.advertise.empty() ? listen.host : options.advertise;
  if (listen.port == 0 || host == "0.0.0.0" || host == "::") {
    return InvalidArgument("a group member started without --peers needs --advertise HOST and a "
                           "fixed --listen port");
  }
  core.member_address = HostPort{host, listen.port}.ToString();
  return Status::Ok();
}
}  // namespace

Result<std::unique_ptr<Metanode>> Metanode::Start(MetanodeOptions options) {
  auto listen = ParseHostPort(options.listen);
  GRANARY_TRY(listen);
  GRANARY_TRY(ResolveMemberAddress(options, *listen));
  auto impl = std::make_unique<Impl>();
  auto core = MetaCore::Open(options.core);
  GRANARY_TRY(core);
  impl->core = std::move(*core);
  impl->services = MakeServices(*impl->core);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen->ToString(), grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(64 << 20);
  builder.SetMaxSendMessageSize(64 << 20);
  builder.RegisterService(impl->services.ns.get());
  builder.RegisterService(impl->services.data.get());
  builder.RegisterService(impl->services.admin.get());
  builder.RegisterService(impl->services.cluster.get());
  builder.RegisterService(impl->services.objects.get());
  builder.RegisterService(impl->services.group.get());
  impl->server = builder.BuildAndStart();
  if (!impl->server || port == 0) {
    return Unavailable(fmt::format("metanode: cannot listen on {}", options.listen));
  }
  impl->address = HostPort{listen->host, static_cast<uint16_t>(port)}.ToString();
  if (!options.admin.empty()) {
    auto admin_addr = ParseHostPort(options.admin);
    GRANARY_TRY(admin_addr);
    // Healthy while this member is in a group with a leader (always, alone).
    MetaCore* core_ptr = impl->core.get();
    auto admin = AdminServer::Start(*admin_addr, Metrics(), [core_ptr] {
      auto state = core_ptr->GroupStatus();
      return state.ok() &&
             (!state->replicated() || (state->leader_id() != 0 && state->role() != "down"));
    });
    GRANARY_TRY(admin);
    impl->admin = std::move(*admin);
    // Others reach the dashboard at the host they reach this member at, not a wildcard.
    HostPort published = impl->admin->address();
    if (published.host == "0.0.0.0" || published.host == "::" || published.host.empty()) {
      auto member =
          ParseHostPort(options.core.member_address.empty()
                            ? (options.advertise.empty() ? impl->address : options.advertise + ":0")
                            : options.core.member_address);
      if (member.ok()) published.host = member->host;
    }
    impl->core->SetAdminAddress(published.ToString());
  }
  GLOG_INFO("event=metanode_started listen={} data={}", impl->address, options.core.data_dir);
  return std::unique_ptr<Metanode>(new Metanode(std::move(impl)));
}

std::string Metanode::address() const { return impl_->address; }
std::string Metanode::admin_address() const {
  return impl_->admin ? impl_->admin->address().ToString() : std::string();
}
MetaCore& Metanode::core() { return *impl_->core; }
AdminServer* Metanode::admin_server() { return impl_->admin.get(); }

void Metanode::Shutdown() {
  if (!impl_ || impl_->stopped) return;
  impl_->stopped = true;
  // Requests in flight get a short grace, then are cancelled; queued operations are answered.
  impl_->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  impl_->server->Wait();
  if (impl_->admin) impl_->admin->Stop();
  impl_->core.reset();
  GLOG_INFO("event=metanode_stopped listen={}", impl_->address);
}

}  // namespace granary::metanode
