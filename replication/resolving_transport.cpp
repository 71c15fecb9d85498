#include "replication/resolving_transport.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netdb.h>

#include <cstring>

#include "common/net.h"

namespace granary::replication {

struct ResolvingTransport::Resolve {
  uv_getaddrinfo_t getaddrinfo{};
  ResolvingTransport* self = nullptr;
  raft_uv_connect* req = nullptr;
  raft_id id = 0;
  uint16_t port = 0;
  raft_uv_connect_cb cb = nullptr;
};

Result<std::unique_ptr<ResolvingTransport>> ResolvingTransport::Create(uv_loop_t* loop,
                                                                       const std::string& bind) {
  std::unique_ptr<ResolvingTransport> t(new ResolvingTransport());
  t->loop_ = loop;
  if (raft_uv_tcp_init(&t->inner_, loop) != 0) return Internal("raft: tcp transport init");
  t->inner_initialised_ = true;
  t->inner_.data = t.get();
  if (raft_uv_tcp_set_bind_address(&t->inner_, bind.c_str()) != 0) {
    return InvalidArgument(fmt::format("raft: cannot bind to {} (an IPv4 address is needed)", bind));
  }
  t->outer_.impl = t.get();
  t->outer_.init = &ResolvingTransport::Init;
  t->outer_.listen = &ResolvingTransport::Listen;
  t->outer_.connect = &ResolvingTransport::Connect;
  t->outer_.close = &ResolvingTransport::Close;
  return t;
}

ResolvingTransport::~ResolvingTransport() {
  if (inner_initialised_) raft_uv_tcp_close(&inner_);
}

int ResolvingTransport::Init(raft_uv_transport* t, raft_id id, const char* address) {
  auto* self = static_cast<ResolvingTransport*>(t->impl);
  int rv = self->inner_.init(&self->inner_, id, address);
  if (rv != 0) std::memcpy(t->errmsg, self->inner_.errmsg, sizeof(t->errmsg));
  return rv;
}

int ResolvingTransport::Listen(raft_uv_transport* t, raft_uv_accept_cb cb) {
  auto* self = static_cast<ResolvingTransport*>(t->impl);
  self->accept_cb_ = cb;
  int rv = self->inner_.listen(&self->inner_, &ResolvingTransport::Accepted);
  if (rv != 0) std::memcpy(t->errmsg, self->inner_.errmsg, sizeof(t->errmsg));
  return rv;
}

void ResolvingTransport::Accepted(raft_uv_transport* inner, raft_id id, const char* address,
                                  uv_stream_t* stream) {
  auto* self = static_cast<ResolvingTransport*>(inner->data);
  self->accept_cb_(&self->outer_, id, address, stream);
}

int ResolvingTransport::Connect(raft_uv_transport* t, raft_uv_connect* req, raft_id id,
                                const char* address, raft_uv_connect_cb cb) {
  auto* self = static_cast<ResolvingTransport*>(t->impl);
  auto hp = ParseHostPort(address);
  if (!hp.ok() || hp->port == 0xffff) {
    std::snprintf(t->errmsg, sizeof(t->errmsg), "bad member address %s", address);
    return RAFT_NOCONNECTION;
  }
  const uint16_t raft_port = hp->port + 1;
  in_addr literal{};
  if (inet_pton(AF_INET, hp->host.c_str(), &literal) == 1) {
    std::string target = fmt::format("{}:{}", hp->host, raft_port);
    int rv = self->inner_.connect(&self->inner_, req, id, target.c_str(), cb);
    if (rv != 0) std::memcpy(t->errmsg, self->inner_.errmsg, sizeof(t->errmsg));
    return rv;
  }
  auto* r = new Resolve;
  r->self = self;
  r->req = req;
  r->id = id;
  r->port = raft_port;
  r->cb = cb;
  r->getaddrinfo.data = r;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  int rv = uv_getaddrinfo(self->loop_, &r->getaddrinfo, &ResolvingTransport::Resolved,
                          hp->host.c_str(), nullptr, &hints);
  if (rv != 0) {
    delete r;
    std::snprintf(t->errmsg, sizeof(t->errmsg), "resolve %s: %s", address, uv_strerror(rv));
    return RAFT_NOCONNECTION;
  }
  ++self->resolving_;
  return 0;
}

void ResolvingTransport::Resolved(uv_getaddrinfo_t* gai, int status, struct addrinfo* res) {
  std::unique_ptr<Resolve> r(static_cast<Resolve*>(gai->data));
  ResolvingTransport* self = r->self;
  --self->resolving_;
  std::string target;
  if (status == 0 && res != nullptr) {
    char ip[INET_ADDRSTRLEN] = {};
    auto* in = reinterpret_cast<sockaddr_in*>(res->ai_addr);
    inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
    target = fmt::format("{}:{}", ip, r->port);
  }
  if (res != nullptr) uv_freeaddrinfo(res);
  if (self->closing_) {
    r->cb(r->req, nullptr, RAFT_CANCELED);
    self->MaybeFinishClose();
    return;
  }
  if (target.empty()) {
    r->cb(r->req, nullptr, RAFT_NOCONNECTION);
    return;
  }
  if (self->inner_.connect(&self->inner_, r->req, r->id, target.c_str(), r->cb) != 0) {
    r->cb(r->req, nullptr, RAFT_NOCONNECTION);
  }
}

void ResolvingTransport::Close(raft_uv_transport* t, raft_uv_transport_close_cb cb) {
  auto* self = static_cast<ResolvingTransport*>(t->impl);
  self->closing_ = true;
  self->close_cb_ = cb;
  self->inner_.close(&self->inner_, &ResolvingTransport::InnerClosed);
}

void ResolvingTransport::InnerClosed(raft_uv_transport* inner) {
  auto* self = static_cast<ResolvingTransport*>(inner->data);
  self->inner_closed_ = true;
  self->MaybeFinishClose();
}

void ResolvingTransport::MaybeFinishClose() {
  // Lookups in flight finish (as cancelled) before the transport may be released.
  if (!closing_ || !inner_closed_ || resolving_ > 0 || close_cb_ == nullptr) return;
  auto cb = close_cb_;
  close_cb_ = nullptr;
  cb(&outer_);
}

}  // namespace granary::replication
