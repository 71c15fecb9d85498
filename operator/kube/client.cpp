#include "operator/kube/client.h"

#include <cpprest/containerstream.h>
#include <cpprest/http_client.h>
#include <fmt/format.h>
#include <pplx/threadpool.h>

#include <chrono>
#include <fstream>
#include <mutex>
#include <sstream>

namespace granary::kube {

namespace http = web::http;
using http::client::http_client;
using http::client::http_client_config;

Code CodeFromApi(int http_status, std::string_view reason) {
  if (reason == "NotFound") return Code::NOT_FOUND;
  if (reason == "AlreadyExists") return Code::ALREADY_EXISTS;
  if (reason == "Conflict") return Code::STALE_GENERATION;
  if (reason == "Expired" || reason == "Gone") return Code::STALE_EPOCH;
  if (reason == "Invalid" || reason == "BadRequest" || reason == "MethodNotAllowed" ||
      reason == "UnsupportedMediaType" || reason == "RequestEntityTooLarge") {
    return Code::INVALID_ARGUMENT;
  }
  if (reason == "Unauthorized" || reason == "Forbidden") return Code::PERMISSION_DENIED;
  if (reason == "TooManyRequests" || reason == "ServiceUnavailable" || reason == "Timeout" ||
      reason == "ServerTimeout") {
    return Code::UNAVAILABLE;
  }
  switch (http_status) {
    case 400:
    case 405:
    case 415:
    case 422:
      return Code::INVALID_ARGUMENT;
    case 401:
    case 403:
      return Code::PERMISSION_DENIED;
    case 404:
      return Code::NOT_FOUND;
    case 409:
      return Code::STALE_GENERATION;
    case 410:
      return Code::STALE_EPOCH;
    case 429:
    case 502:
    case 503:
    case 504:
      return Code::UNAVAILABLE;
    default:
      return Code::INTERNAL;
  }
}

Status StatusFromApi(int http_status, const std::string& body) {
  Json s = Json::parse(body, nullptr, false);
  std::string reason;
  std::string message;
  if (s.is_object() && s.value("kind", "") == "Status") {
    reason = s.value("reason", "");
    message = s.value("message", "");
    http_status = s.value("code", http_status);
  } else {
    message = body.substr(0, 200);  // not from the API server itself (a proxy, a load balancer)
  }
  return Status(
      CodeFromApi(http_status, reason),
      fmt::format("{} (HTTP {}): {}", reason.empty() ? "Unknown" : reason, http_status, message));
}

namespace {

constexpr auto kTokenRefresh = std::chrono::seconds(60);

void InitThreadPool() {
  // cpprest's default pool is 40 threads; ours only completes I/O (callers block on .get()).
  static std::once_flag once;
  std::call_once(once, [] {
    try {
      crossplat::threadpool::initialize_with_threads(4);
    } catch (const std::exception&) {
      // Already initialised by someone else in the process: theirs serves us too.
    }
  });
}

std::string WithQuery(const std::string& path,
                      std::initializer_list<std::pair<const char*, std::string>> query) {
  web::uri_builder b(path);
  for (const auto& [k, v] : query) {
    if (!v.empty()) b.append_query(k, v);
  }
  return b.to_string();
}

class CpprestWatch : public WatchStream {
 public:
  CpprestWatch(std::unique_ptr<http_client> client, pplx::cancellation_token_source cts,
               http::http_response response, std::string what)
      : client_(std::move(client)),
        cts_(std::move(cts)),
        response_(std::move(response)),
        body_(response_.body()),
        what_(std::move(what)) {}
  ~CpprestWatch() override {
    cts_.cancel();
    try {
      body_.close().wait();
    } catch (...) {
      // A cut stream can only fail to close; nothing to tell anyone.
    }
  }

  Result<std::optional<WatchEvent>> Next() override {
    while (true) {
      concurrency::streams::container_buffer<std::string> line;
      try {
        size_t n = body_.read_line(line).get();
        if (n == 0 && line.collection().empty()) {
          if (cts_.get_token().is_canceled()) return Unavailable(what_ + ": cancelled");
          if (body_.is_eof()) return std::optional<WatchEvent>();
          continue;
        }
      } catch (const std::exception& e) {
        return Unavailable(fmt::format("{}: stream cut: {}", what_, e.what()));
      }
      const std::string& text = line.collection();
      if (text.find_first_not_of(" \r\n") == std::string::npos) continue;
      Json event = Json::parse(text, nullptr, false);
      if (!event.is_object() || !event.contains("type")) {
        return Internal(fmt::format("{}: undecodable event: {}", what_, text.substr(0, 200)));
      }
      std::string type = event["type"];
      WatchEvent out{WatchEvent::Type::kAdded, std::move(event["object"])};
      if (type == "ADDED") {
        out.type = WatchEvent::Type::kAdded;
      } else if (type == "MODIFIED") {
        out.type = WatchEvent::Type::kModified;
      } else if (type == "DELETED") {
        out.type = WatchEvent::Type::kDeleted;
      } else if (type == "BOOKMARK") {
        out.type = WatchEvent::Type::kBookmark;
      } else if (type == "ERROR") {
        return StatusFromApi(out.object.value("code", 500), out.object.dump()).WithContext(what_);
      } else {
        return Internal(fmt::format("{}: unknown event type {}", what_, type));
      }
      return std::optional<WatchEvent>(std::move(out));
    }
  }

  void Cancel() override { cts_.cancel(); }

 private:
  std::unique_ptr<http_client> client_;
  pplx::cancellation_token_source cts_;
  http::http_response response_;
  concurrency::streams::istream body_;
  std::string what_;
};

}  // namespace

struct Client::Impl {
  Config config;
  http_client_config http_config;
  std::unique_ptr<http_client> http;
  std::mutex token_mu;
  std::string token;
  std::chrono::steady_clock::time_point token_read;
  std::atomic<uint64_t> requests{0};

  std::string Token() {
    std::lock_guard lock(token_mu);
    if (!config.token_file.empty() &&
        std::chrono::steady_clock::now() - token_read > kTokenRefresh) {
      std::ifstream in(config.token_file);
      std::stringstream ss;
      if (in && (ss << in.rdbuf())) {
        token = ss.str();
        while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
      }
      token_read = std::chrono::steady_clock::now();
    }
    return token;
  }

  http::http_request Request(const http::method& method, const std::string& path_query) {
    http::http_request req(method);
    req.set_request_uri(path_query);
    req.headers().add(http::header_names::accept, "application/json");
    std::string t = Token();
    if (!t.empty()) req.headers().add(http::header_names::authorization, "Bearer " + t);
    return req;
  }

  // One round trip: the decoded JSON body on 2xx, the API's error otherwise.
  Result<Json> Send(const http::method& method, const std::string& path_query,
                    const Json* body = nullptr,
                    const std::string& content_type = "application/json") {
    http::http_request req = Request(method, path_query);
    if (body) req.set_body(body->dump(), content_type);
    requests.fetch_add(1, std::memory_order_relaxed);
    std::string what = fmt::format("{} {}", method, path_query);
    try {
      http::http_response resp = http->request(req).get();
      std::string text = resp.extract_utf8string(true).get();
      int code = resp.status_code();
      if (code < 200 || code >= 300) return StatusFromApi(code, text).WithContext(what);
      if (text.empty()) return Json::object();
      Json j = Json::parse(text, nullptr, false);
      if (j.is_discarded()) return Internal(what + ": reply is not JSON");
      return j;
    } catch (const std::exception& e) {
      return Unavailable(fmt::format("{}: {}", what, e.what()));
    }
  }

  Result<std::unique_ptr<WatchStream>> Watch(const std::string& path_query, int timeout_seconds) {
    http_client_config cfg = http_config;
    // cpprest's timeout is an inactivity timeout on the socket: give the server's own stream
    // timeout room to end the watch cleanly first.
    cfg.set_timeout(std::chrono::seconds(timeout_seconds + 30));
    std::unique_ptr<http_client> client;
    std::string what = "watch " + path_query;
    try {
      client = std::make_unique<http_client>(config.server, cfg);
    } catch (const std::exception& e) {
      return InvalidArgument(fmt::format("{}: {}", what, e.what()));
    }
    pplx::cancellation_token_source cts;
    requests.fetch_add(1, std::memory_order_relaxed);
    try {
      http::http_response resp =
          client->request(Request(http::methods::GET, path_query), cts.get_token()).get();
      int code = resp.status_code();
      if (code != 200) {
        return StatusFromApi(code, resp.extract_utf8string(true).get()).WithContext(what);
      }
      return std::unique_ptr<WatchStream>(
          new CpprestWatch(std::move(client), std::move(cts), std::move(resp), std::move(what)));
    } catch (const std::exception& e) {
      return Unavailable(fmt::format("{}: {}", what, e.what()));
    }
  }
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::Create(Config config) {
  InitThreadPool();
  if (config.server.empty()) return InvalidArgument("kube client: no API server address");
  auto impl = std::make_unique<Impl>();
  impl->config = std::move(config);
  impl->token = impl->config.token;
  impl->token_read = std::chrono::steady_clock::now();
  http_client_config& cfg = impl->http_config;
  cfg.set_timeout(std::chrono::seconds(30));
  cfg.set_validate_certificates(!impl->config.insecure_skip_tls_verify);
  std::string ca = impl->config.ca_pem;
  std::string cert = impl->config.client_cert_pem;
  std::string key = impl->config.client_key_pem;
  cfg.set_ssl_context_callback([ca, cert, key](boost::asio::ssl::context& ctx) {
    if (!ca.empty()) ctx.add_certificate_authority(boost::asio::buffer(ca));
    if (!cert.empty()) {
      ctx.use_certificate_chain(boost::asio::buffer(cert));
      ctx.use_private_key(boost::asio::buffer(key), boost::asio::ssl::context::pem);
    }
  });
  try {
    impl->http = std::make_unique<http_client>(impl->config.server, cfg);
  } catch (const std::exception& e) {
    return InvalidArgument(fmt::format("kube client for {}: {}", impl->config.server, e.what()));
  }
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

const Config& Client::config() const { return impl_->config; }
uint64_t Client::requests() const { return impl_->requests.load(std::memory_order_relaxed); }

Result<Json> Client::Get(const Resource& r, std::string_view ns, std::string_view name) {
  return impl_->Send(http::methods::GET, r.Path(ns, name));
}

Result<ObjectList> Client::List(const Resource& r, std::string_view ns,
                                const ListOptions& options) {
  for (int attempt = 0;; ++attempt) {
    ObjectList out;
    std::string cont;
    Status failed;
    do {
      auto page = impl_->Send(
          http::methods::GET,
          WithQuery(r.Path(ns), {{"labelSelector", options.label_selector},
                                 {"fieldSelector", options.field_selector},
                                 {"limit", options.limit > 0 ? std::to_string(options.limit) : ""},
                                 {"continue", cont}}));
      if (!page.ok()) {
        failed = page.status();
        break;
      }
      for (auto& item : (*page)["items"]) {
        // Items of built-in lists carry no kind/apiVersion; handlers want whole objects.
        if (!item.contains("kind")) item["kind"] = r.kind;
        if (!item.contains("apiVersion")) item["apiVersion"] = r.ApiVersion();
        out.items.push_back(std::move(item));
      }
      const Json& meta = (*page)["metadata"];
      if (out.resource_version.empty()) out.resource_version = meta.value("resourceVersion", "");
      cont = meta.value("continue", "");
    } while (!cont.empty());
    if (failed.ok()) return out;
    bool expired_mid_list = failed.code() == Code::STALE_EPOCH && !out.items.empty();
    if (!expired_mid_list || attempt > 0) return failed.WithContext("list " + r.plural);
  }
}

Result<Json> Client::Create(const Resource& r, const Json& object) {
  return impl_->Send(http::methods::POST, r.Path(NamespaceOf(object)), &object);
}

Result<Json> Client::Update(const Resource& r, const Json& object) {
  return impl_->Send(http::methods::PUT, r.Path(NamespaceOf(object), NameOf(object)), &object);
}

Result<Json> Client::UpdateStatus(const Resource& r, const Json& object) {
  return impl_->Send(http::methods::PUT, r.Path(NamespaceOf(object), NameOf(object), "status"),
                     &object);
}

Result<Json> Client::MergePatch(const Resource& r, std::string_view ns, std::string_view name,
                                const Json& patch, bool status) {
  return impl_->Send(http::methods::PATCH, r.Path(ns, name, status ? "status" : ""), &patch,
                     "application/merge-patch+json");
}

Status Client::Delete(const Resource& r, std::string_view ns, std::string_view name,
                      const DeleteOptions& options) {
  Json body = {{"kind", "DeleteOptions"}, {"apiVersion", "v1"}};
  if (!options.propagation_policy.empty()) body["propagationPolicy"] = options.propagation_policy;
  if (!options.precondition_resource_version.empty()) {
    body["preconditions"] = {{"resourceVersion", options.precondition_resource_version}};
  }
  return impl_->Send(http::methods::DEL, r.Path(ns, name), &body).status();
}

Result<Json> Client::Modify(const Resource& r, std::string_view ns, std::string_view name,
                            const std::function<Status(Json&)>& mutate, bool status, int attempts) {
  Status last;
  for (int i = 0; i < attempts; ++i) {
    auto current = Get(r, ns, name);
    if (!current.ok()) return current.status();
    Json object = std::move(*current);
    GRANARY_TRY(mutate(object));
    auto written = status ? UpdateStatus(r, object) : Update(r, object);
    if (written.ok() || written.status().code() != Code::STALE_GENERATION) return written;
    last = written.status();
  }
  return last.WithContext(
      fmt::format("modify {} {} after {} conflicts", r.plural, MakeKey(ns, name), attempts));
}

Result<std::unique_ptr<WatchStream>> Client::Watch(const Resource& r, std::string_view ns,
                                                   const WatchOptions& options) {
  std::string pq =
      WithQuery(r.Path(ns), {{"watch", "true"},
                             {"resourceVersion", options.resource_version},
                             {"labelSelector", options.label_selector},
                             {"fieldSelector", options.field_selector},
                             {"allowWatchBookmarks", options.allow_bookmarks ? "true" : ""},
                             {"timeoutSeconds", std::to_string(options.timeout_seconds)}});
  return impl_->Watch(pq, options.timeout_seconds);
}

}  // namespace granary::kube
