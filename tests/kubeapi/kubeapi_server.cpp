#include "tests/kubeapi/kubeapi_server.h"

#include <fmt/format.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <set>
#include <thread>

#include "tests/kubeapi/store.h"

namespace granary::kubeapi {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

std::string UrlDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else if (s[i] == '+') {
      out += ' ';
    } else {
      out += s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> ParseQuery(std::string_view q) {
  std::map<std::string, std::string> out;
  while (!q.empty()) {
    auto amp = q.find('&');
    std::string_view kv = q.substr(0, amp);
    auto eq = kv.find('=');
    out[UrlDecode(kv.substr(0, eq))] =
        eq == std::string_view::npos ? "" : UrlDecode(kv.substr(eq + 1));
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return out;
}

std::vector<std::string> SplitPath(std::string_view p) {
  std::vector<std::string> out;
  for (size_t i = 0; i < p.size();) {
    auto j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    if (j > i) out.push_back(UrlDecode(p.substr(i, j - i)));
    i = j + 1;
  }
  return out;
}

struct Route {
  const ResourceType* type = nullptr;
  std::string ns;
  std::string name;
  bool status = false;
};

}  // namespace

// Thread per connection: watches block for minutes on the store's condition variable, and a
// test server serves a handful of clients, so blocking code is the simplest correct shape.
struct KubeApiServer::Impl {
  ServerOptions options;
  Store store;
  asio::io_context io;
  tcp::acceptor acceptor{io};
  std::unique_ptr<asio::ssl::context> ssl;
  std::thread accept_thread;
  std::mutex mu;
  std::condition_variable cv;
  std::set<int> fds;
  int active = 0;
  std::atomic<bool> stopping{false};

  void AcceptLoop() {
    while (!stopping) {
      beast::error_code ec;
      tcp::socket sock(io);
      acceptor.accept(sock, ec);
      if (ec) {
        if (stopping) return;
        continue;
      }
      std::lock_guard lock(mu);
      fds.insert(sock.native_handle());
      active++;
      std::thread([this, s = std::move(sock)]() mutable { Serve(std::move(s)); }).detach();
    }
  }

  void Serve(tcp::socket sock) {
    int fd = sock.native_handle();
    beast::error_code ec;
    if (ssl) {
      asio::ssl::stream<tcp::socket&> stream(sock, *ssl);
      stream.handshake(asio::ssl::stream_base::server, ec);
      if (!ec) {
        // A client certificate the CA verified authenticates like a token does.
        X509* peer = SSL_get_peer_certificate(stream.native_handle());
        bool by_certificate = peer != nullptr;
        X509_free(peer);
        // No TLS close_notify exchange: it would wait on the peer; the TCP close below ends it.
        ServeRequests(stream, by_certificate);
      }
    } else {
      ServeRequests(sock, false);
    }
    {
      // Out of the set before close, so Stop never shuts down a reused descriptor number.
      std::lock_guard lock(mu);
      fds.erase(fd);
    }
    sock.shutdown(tcp::socket::shutdown_both, ec);
    sock.close(ec);
    std::lock_guard lock(mu);
    active--;
    cv.notify_all();
  }

  template <typename Stream>
  void ServeRequests(Stream& sock, bool by_certificate) {
    beast::flat_buffer buf;
    beast::error_code ec;
    while (!stopping) {
      http::request<http::string_body> req;
      http::read(sock, buf, req, ec);
      if (ec) break;
      std::string target(req.target());
      auto qpos = target.find('?');
      auto query = ParseQuery(qpos == std::string::npos ? "" : target.substr(qpos + 1));
      std::string path = target.substr(0, qpos);
      Reply reply;
      bool authorized = options.bearer_token.empty() || by_certificate ||
                        req[http::field::authorization] == "Bearer " + options.bearer_token;
      if (!authorized) {
        reply = ErrorReply(401, "Unauthorized", "Unauthorized");
      } else if (req.method() == http::verb::get &&
                 (query["watch"] == "true" || query["watch"] == "1")) {
        Route route;
        if (auto err = Resolve(path, route)) {
          reply = *err;
        } else {
          try {
            Watch(sock, req, route, query);
          } catch (const std::exception& e) {
            // Malformed parameters: the stream (if begun) is cut, the server lives on.
          }
          break;  // a watch owns its connection to the end
        }
      } else {
        // A malformed number or a JSON value of the wrong type is the client's fault (400),
        // never a reason for the server to die.
        try {
          reply = Handle(req, path, query);
        } catch (const std::exception& e) {
          reply = ErrorReply(400, "BadRequest", e.what());
        }
      }
      http::response<http::string_body> res{static_cast<http::status>(reply.code), req.version()};
      res.set(http::field::content_type, "application/json");
      res.keep_alive(req.keep_alive());
      res.body() = reply.body.is_null() ? "" : reply.body.dump();
      res.prepare_payload();
      http::write(sock, res, ec);
      if (ec || !req.keep_alive()) break;
    }
  }

  // Maps a REST path to a resource; a Reply when it names nothing.
  std::optional<Reply> Resolve(const std::string& path, Route& route) {
    auto seg = SplitPath(path);
    std::string group;
    size_t i;
    if (seg.size() >= 2 && seg[0] == "api" && seg[1] == "v1") {
      i = 2;
    } else if (seg.size() >= 3 && seg[0] == "apis") {
      group = seg[1];
      i = 3;
    } else {
      return ErrorReply(404, "NotFound", "the server could not find the requested resource");
    }
    std::vector<std::string> rest(seg.begin() + static_cast<std::ptrdiff_t>(i), seg.end());
    if (rest.size() >= 3 && rest[0] == "namespaces" && rest[2] != "status") {
      route.ns = rest[1];
      rest.erase(rest.begin(), rest.begin() + 2);
    }
    if (rest.empty() || rest.size() > 3 || (rest.size() == 3 && rest[2] != "status")) {
      return ErrorReply(404, "NotFound", "the server could not find the requested resource");
    }
    route.type = store.FindType(group, rest[0]);
    if (!route.type || (!route.type->namespaced && !route.ns.empty())) {
      return ErrorReply(404, "NotFound", "the server could not find the requested resource");
    }
    if (rest.size() >= 2) route.name = rest[1];
    route.status = rest.size() == 3;
    if (route.type->namespaced && !route.name.empty() && route.ns.empty()) {
      return ErrorReply(404, "NotFound", "the server could not find the requested resource");
    }
    return std::nullopt;
  }

  Reply Handle(const http::request<http::string_body>& req, const std::string& path,
               std::map<std::string, std::string>& query) {
    if (path.rfind("/testing/", 0) == 0) return Testing(req, path, query);
    if (path == "/healthz" || path == "/readyz" || path == "/livez") return {200, "ok"};
    if (req.method() == http::verb::get) {
      if (auto doc = Discovery(path)) return {200, std::move(*doc)};
    }
    Route r;
    if (auto err = Resolve(path, r)) return *err;
    Json body;
    if (!req.body().empty()) {
      body = Json::parse(req.body(), nullptr, false);
      if (body.is_discarded()) return ErrorReply(400, "BadRequest", "request body is not JSON");
    }
    const ResourceType& t = *r.type;
    switch (req.method()) {
      case http::verb::get:
        if (!r.name.empty()) return store.Get(t, r.ns, r.name);
        return store.List(
            t, r.ns,
            {query["labelSelector"], query["fieldSelector"],
             query["limit"].empty() ? 0 : std::stoll(query["limit"]), query["continue"]});
      case http::verb::post:
        if (!r.name.empty() || (t.namespaced && r.ns.empty())) {
          return ErrorReply(405, "MethodNotAllowed", "POST is only allowed on a collection");
        }
        return store.Create(t, r.ns, std::move(body));
      case http::verb::put:
        if (r.name.empty()) return ErrorReply(405, "MethodNotAllowed", "PUT needs a name");
        return store.Update(t, r.ns, r.name, std::move(body), r.status);
      case http::verb::patch: {
        if (r.name.empty()) return ErrorReply(405, "MethodNotAllowed", "PATCH needs a name");
        std::string ct(req[http::field::content_type]);
        if (ct.rfind("application/merge-patch+json", 0) != 0) {
          return ErrorReply(415, "UnsupportedMediaType",
                            "the body of the request was in an unknown format - accepted media "
                            "types include: application/merge-patch+json");
        }
        return store.MergePatch(t, r.ns, r.name, body, r.status);
      }
      case http::verb::delete_: {
        if (r.name.empty()) return ErrorReply(405, "MethodNotAllowed", "DELETE needs a name");
        DeleteQuery q;
        q.propagation = query["propagationPolicy"];
        if (body.is_object()) {
          q.propagation = body.value("propagationPolicy", q.propagation);
          if (body.contains("preconditions")) {
            const Json& p = body["preconditions"];
            if (p.contains("resourceVersion")) q.precondition_rv = p["resourceVersion"];
            if (p.contains("uid")) q.precondition_uid = p["uid"];
          }
        }
        return store.Delete(t, r.ns, r.name, q);
      }
      default:
        return ErrorReply(405, "MethodNotAllowed", "method not allowed");
    }
  }

  // The discovery documents kubectl reads before it sends anything (legacy, non-aggregated
  // form: a client asking for aggregated discovery falls back to it on a plain JSON reply).
  std::optional<Json> Discovery(const std::string& path) {
    auto seg = SplitPath(path);
    const auto types = store.Types();
    if (seg.size() == 1 && seg[0] == "version") {
      return Json{{"major", "1"},
                  {"minor", "31"},
                  {"gitVersion", "v1.31.0-granary-kubeapi"},
                  {"platform", "linux/amd64"}};
    }
    if (seg.size() == 1 && seg[0] == "api") {
      return Json{{"kind", "APIVersions"},
                  {"versions", {"v1"}},
                  {"serverAddressByClientCIDRs",
                   {{{"clientCIDR", "0.0.0.0/0"},
                     {"serverAddress", fmt::format("{}:{}", options.listen_host, Port())}}}}};
    }
    if (seg.size() == 1 && seg[0] == "apis") {
      std::map<std::string, std::set<std::string>> versions;
      for (const auto& t : types)
        if (!t.group.empty()) versions[t.group].insert(t.version);
      Json groups = Json::array();
      for (const auto& [group, vs] : versions) {
        Json list = Json::array();
        for (const auto& v : vs)
          list.push_back({{"groupVersion", group + "/" + v}, {"version", v}});
        groups.push_back({{"name", group}, {"versions", list}, {"preferredVersion", list.back()}});
      }
      return Json{{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", groups}};
    }
    std::string group, version;
    if (seg.size() == 2 && seg[0] == "api") {
      version = seg[1];
    } else if (seg.size() == 3 && seg[0] == "apis") {
      group = seg[1];
      version = seg[2];
    } else {
      return std::nullopt;
    }
    Json resources = Json::array();
    for (const auto& t : types) {
      if (t.group != group || t.version != version) continue;
      std::string singular = t.kind;
      for (auto& c : singular) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      resources.push_back(
          {{"name", t.plural},
           {"singularName", singular},
           {"namespaced", t.namespaced},
           {"kind", t.kind},
           {"verbs", {"create", "delete", "get", "list", "patch", "update", "watch"}}});
      if (t.has_status) {
        resources.push_back({{"name", t.plural + "/status"},
                             {"singularName", ""},
                             {"namespaced", t.namespaced},
                             {"kind", t.kind},
                             {"verbs", {"get", "patch", "update"}}});
      }
    }
    if (resources.empty()) return std::nullopt;  // an unknown group/version: 404 as usual
    return Json{{"kind", "APIResourceList"},
                {"apiVersion", "v1"},
                {"groupVersion", group.empty() ? version : group + "/" + version},
                {"resources", resources}};
  }

  uint16_t Port() const {
    beast::error_code ec;
    return acceptor.local_endpoint(ec).port();
  }

  Reply Testing(const http::request<http::string_body>& req, const std::string& path,
                std::map<std::string, std::string>& query) {
    if (req.method() != http::verb::post) return ErrorReply(405, "MethodNotAllowed", "POST only");
    if (path == "/testing/compact") {
      store.Compact();
    } else if (path == "/testing/drop-watches") {
      store.DropWatches();
    } else if (path == "/testing/bookmarks") {
      store.SendBookmarks();
    } else if (path == "/testing/ready") {
      Status s =
          store.MarkReady(query["group"], query["resource"], query["namespace"], query["name"],
                          query["replicas"].empty() ? -1 : std::stoi(query["replicas"]));
      if (!s.ok())
        return ErrorReply(s.code() == Code::NOT_FOUND ? 404 : 400, "NotFound", s.message());
    } else {
      return ErrorReply(404, "NotFound", "unknown testing hook");
    }
    return {200, Json{{"kind", "Status"}, {"status", "Success"}}};
  }

  template <typename Stream>
  void Watch(Stream& sock, const http::request<http::string_body>& req, const Route& r,
             std::map<std::string, std::string>& query) {
    WatchState w;
    w.type = r.type;
    w.query = {r.ns, query["resourceVersion"], query["labelSelector"], query["fieldSelector"],
               query["allowWatchBookmarks"] == "true"};
    w.bookmark_interval = std::chrono::milliseconds(options.bookmark_interval_ms);
    w.next_bookmark = std::chrono::steady_clock::now() + w.bookmark_interval;
    int timeout_s = query["timeoutSeconds"].empty() ? 1800 : std::stoi(query["timeoutSeconds"]);
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    beast::error_code ec;
    if (auto err = store.OpenWatch(w)) {
      http::response<http::string_body> res{static_cast<http::status>(err->code), req.version()};
      res.set(http::field::content_type, "application/json");
      res.body() = err->body.dump();
      res.prepare_payload();
      http::write(sock, res, ec);
      return;
    }
    struct Closer {
      Store& store;
      WatchState& w;
      ~Closer() { store.CloseWatch(w); }  // on every way out, exceptions included
    } closer{store, w};
    http::response<http::empty_body> res{http::status::ok, req.version()};
    res.set(http::field::content_type, "application/json");
    res.set(http::field::transfer_encoding, "chunked");
    http::response_serializer<http::empty_body> sr{res};
    http::write_header(sock, sr, ec);
    while (!ec) {
      auto lines = store.NextLines(w, deadline);
      if (lines.empty()) {
        if (w.dropped || stopping) break;  // cut: no terminating chunk
        if (w.done || std::chrono::steady_clock::now() >= deadline) {
          asio::write(sock, http::make_chunk_last(), ec);
          break;
        }
        continue;
      }
      for (auto& line : lines) {
        line += '\n';
        asio::write(sock, http::make_chunk(asio::buffer(line)), ec);
        if (ec) break;
      }
    }
  }
};

KubeApiServer::KubeApiServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::unique_ptr<KubeApiServer>> KubeApiServer::Start(ServerOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  beast::error_code ec;
  auto ip = asio::ip::make_address(options.listen_host, ec);
  if (ec) return InvalidArgument("kubeapi listen address " + options.listen_host);
  tcp::endpoint endpoint(ip, options.port);
  impl->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(endpoint, ec);
  if (!ec) impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Unavailable(fmt::format("kubeapi listen on {}:{}: {}", options.listen_host, options.port,
                                   ec.message()));
  }
  if (!options.tls_cert_pem.empty()) {
    try {
      impl->ssl = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_server);
      impl->ssl->use_certificate_chain(asio::buffer(options.tls_cert_pem));
      impl->ssl->use_private_key(asio::buffer(options.tls_key_pem), asio::ssl::context::pem);
      if (!options.client_ca_pem.empty()) {
        impl->ssl->add_certificate_authority(asio::buffer(options.client_ca_pem));
        impl->ssl->set_verify_mode(asio::ssl::verify_peer);  // optional: tokens still work
      }
    } catch (const std::exception& e) {
      return InvalidArgument(fmt::format("kubeapi TLS: {}", e.what()));
    }
  }
  Impl* raw = impl.get();
  impl->accept_thread = std::thread([raw] { raw->AcceptLoop(); });
  return std::unique_ptr<KubeApiServer>(new KubeApiServer(std::move(impl)));
}

KubeApiServer::~KubeApiServer() { Stop(); }

std::string KubeApiServer::url() const {
  return fmt::format("{}://{}:{}", impl_->ssl ? "https" : "http", impl_->options.listen_host,
                     port());
}

uint16_t KubeApiServer::port() const {
  beast::error_code ec;
  return impl_->acceptor.local_endpoint(ec).port();
}

void KubeApiServer::AddResource(ResourceType type) { impl_->store.AddType(std::move(type)); }
void KubeApiServer::Compact() { impl_->store.Compact(); }
void KubeApiServer::DropWatches() { impl_->store.DropWatches(); }
void KubeApiServer::SendBookmarks() { impl_->store.SendBookmarks(); }

Status KubeApiServer::MarkReady(const std::string& group, const std::string& plural,
                                const std::string& ns, const std::string& name, int replicas) {
  return impl_->store.MarkReady(group, plural, ns, name, replicas);
}

void KubeApiServer::RefuseWrites(const std::string& group, const std::string& plural,
                                 const std::string& ns, int code, const std::string& reason,
                                 const std::string& message) {
  impl_->store.RefuseWrites(group, plural, ns, ErrorReply(code, reason, message));
}

void KubeApiServer::ClearRefusals() { impl_->store.ClearRefusals(); }

Result<nlohmann::json> KubeApiServer::Object(const std::string& group, const std::string& plural,
                                             const std::string& ns, const std::string& name) const {
  return impl_->store.Object(group, plural, ns, name);
}

size_t KubeApiServer::open_watches() const { return impl_->store.open_watches(); }
uint64_t KubeApiServer::resource_version() const { return impl_->store.resource_version(); }

void KubeApiServer::Stop() {
  if (!impl_->accept_thread.joinable()) return;
  impl_->stopping = true;
  ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);  // wakes the blocked accept()
  impl_->accept_thread.join();
  impl_->store.Shutdown();
  std::unique_lock lock(impl_->mu);
  for (int fd : impl_->fds) ::shutdown(fd, SHUT_RDWR);
  impl_->cv.wait(lock, [&] { return impl_->active == 0; });
  beast::error_code ec;
  impl_->acceptor.close(ec);
}

}  // namespace granary::kubeapi
