#include "common/admin_server.h"

#include <fmt/format.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <mutex>
#include <thread>

namespace granary {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct AdminServer::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
  MetricsRegistry* registry = nullptr;
  std::function<bool()> healthy;
  std::mutex mu;
  std::map<std::string, Handler> handlers;
  std::map<std::string, AsyncHandler> prefix_handlers;
  std::thread thread;
  HostPort bound;

  static AdminResponse Text(int status, std::string body) {
    AdminResponse r;
    r.status = status;
    r.body = std::move(body);
    return r;
  }

  // Answers at once, or hands the request to an async handler (which calls `reply` later).
  void Route(const std::string& target, const std::function<void(AdminResponse)>& reply) {
    std::string path = target.substr(0, target.find('?'));
    if (path == "/metrics") {
      AdminResponse r = Text(200, registry->Exposition());
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      return reply(std::move(r));
    }
    if (path == "/healthz") {
      bool ok = !healthy || healthy();
      return reply(Text(ok ? 200 : 503, ok ? "ok\n" : "unhealthy\n"));
    }
    Handler h;
    AsyncHandler async;
    {
      std::lock_guard lock(mu);
      auto it = handlers.find(path);
      if (it != handlers.end()) {
        h = it->second;
      } else {
        for (const auto& [prefix, handler] : prefix_handlers) {
          // The map is ordered, so a later (longer) match of the same stem wins.
          if (path.compare(0, prefix.size(), prefix) == 0) async = handler;
        }
      }
    }
    if (h) {
      auto [status, body] = h();
      AdminResponse r = Text(status, std::move(body));
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      return reply(std::move(r));
    }
    if (async) return async(target, reply);
    reply(Text(404, "not found\n"));
  }

  void Accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec) return;  // acceptor closed: shutting down
      auto session = std::make_shared<Session>(this, std::move(socket));
      session->Read();
      Accept();
    });
  }

  struct Session : std::enable_shared_from_this<Session> {
    Session(Impl* impl, tcp::socket socket) : impl(impl), stream(std::move(socket)) {}
    Impl* impl;
    beast::tcp_stream stream;
    beast::flat_buffer buffer;
    http::request<http::string_body> request;
    http::response<http::string_body> response;

    void Read() {
      stream.expires_after(std::chrono::seconds(10));
      http::async_read(stream, buffer, request,
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         if (!ec) self->Respond();
                       });
    }
    void Respond() {
      if (request.method() != http::verb::get) {
        return Write(Text(405, "method not allowed\n"));
      }
      // An async handler may answer from another thread: the reply is posted back onto the io
      // thread, which owns the stream.
      impl->Route(std::string(request.target()), [self = shared_from_this()](AdminResponse r) {
        asio::post(self->impl->io,
                   [self, r = std::move(r)]() mutable { self->Write(std::move(r)); });
      });
    }
    void Write(AdminResponse r) {
      response = {};
      response.version(request.version());
      response.result(static_cast<http::status>(r.status));
      response.set(http::field::content_type, r.content_type);
      for (const auto& [name, value] : r.headers) response.set(name, value);
      response.keep_alive(request.keep_alive());
      response.body() = std::move(r.body);
      response.prepare_payload();
      // The read's deadline may have run while an async handler worked: the write gets its own.
      stream.expires_after(std::chrono::seconds(10));
      http::async_write(stream, response,
                        [self = shared_from_this()](beast::error_code ec, size_t) {
                          if (ec || !self->response.keep_alive()) {
                            beast::error_code ignored;
                            self->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
                            return;
                          }
                          self->request = {};
                          self->Read();
                        });
    }
  };
};

AdminServer::AdminServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<AdminServer>> AdminServer::Start(const HostPort& address,
                                                        MetricsRegistry& registry,
                                                        std::function<bool()> healthy) {
  auto impl = std::make_unique<Impl>();
  impl->registry = &registry;
  impl->healthy = std::move(healthy);
  beast::error_code ec;
  auto ip = asio::ip::make_address(address.host == "localhost" ? "127.0.0.1" : address.host, ec);
  if (ec)
    return InvalidArgument(fmt::format("admin address {}: {}", address.ToString(), ec.message()));
  tcp::endpoint endpoint(ip, address.port);
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Unavailable(fmt::format("admin listen on {}: {}", address.ToString(), ec.message()));
  }
  impl->bound = HostPort{address.host, impl->acceptor.local_endpoint().port()};
  impl->Accept();
  Impl* raw = impl.get();
  impl->thread = std::thread([raw] { raw->io.run(); });
  return std::unique_ptr<AdminServer>(new AdminServer(std::move(impl)));
}

AdminServer::~AdminServer() { Stop(); }

void AdminServer::AddHandler(const std::string& path, Handler handler) {
  std::lock_guard lock(impl_->mu);
  impl_->handlers[path] = std::move(handler);
}

void AdminServer::AddPrefixHandler(const std::string& prefix, AsyncHandler handler) {
  std::lock_guard lock(impl_->mu);
  impl_->prefix_handlers[prefix] = std::move(handler);
}

HostPort AdminServer::address() const { return impl_->bound; }

void AdminServer::Stop() {
  if (!impl_->thread.joinable()) return;
  impl_->io.stop();
  impl_->thread.join();
  // The io thread is gone, so the acceptor can be closed from here.
  beast::error_code ignored;
  impl_->acceptor.close(ignored);
}

}  // namespace granary
