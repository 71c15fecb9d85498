// The gateway's HTTP side: accept, parse (Boost.Beast), authenticate, dispatch, stream the
// response, metrics. One thread per served connection from a bounded pool: libgranary calls block
// (futures), so an event loop would still need a thread per request in flight; a pool of
// `max_connections` bounds threads and memory, and further connections wait in the backlog.
#include "s3/gateway.h"

#include <fmt/format.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <condition_variable>
#include <deque>
#include <set>
#include <thread>

#include "common/log.h"
#include "common/net.h"
#include "s3/internal.h"

namespace granary::s3 {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// ---------------------------------------------------------------- context

Context::Context(GatewayOptions options, std::unique_ptr<client::Client> client,
                 std::unique_ptr<client::ObjectClient> objects)
    : options_(std::move(options)), client_(std::move(client)), objects_(std::move(objects)) {}

Result<std::string> Context::Secret(const std::string& access_key) {
  return secrets_.Get(access_key, [&]() -> Result<std::string> {
    auto key = meta().KeyGetSecret(access_key);
    if (!key.ok()) return key.status();
    return key->secret_key();
  });
}

Result<Bucket> Context::GetBucket(const std::string& name) {
  return buckets_.Get(name, [&] { return meta().BucketGet(name); });
}

void Context::ForgetBucket(const std::string& name) { buckets_.Forget(name); }

std::string HttpDate(int64_t seconds) {
  std::time_t t = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

std::string IsoDate(const Timespec& ts) {
  std::time_t t = static_cast<std::time_t>(ts.sec());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:03d}Z", buf, ts.nsec() / 1000000);
}

namespace {

std::string RequestId() {
  unsigned char raw[8];
  RAND_bytes(raw, sizeof raw);
  return Hex(std::string_view(reinterpret_cast<char*>(raw), sizeof raw));
}

struct OpMetrics {
  Counter* requests;
  Counter* errors;
  Counter* bytes_in;
  Counter* bytes_out;
  Histogram* latency;
};

OpMetrics& MetricsFor(const std::string& op) {
  static std::mutex mu;
  static std::map<std::string, OpMetrics> cache;
  std::lock_guard lock(mu);
  auto it = cache.find(op);
  if (it != cache.end()) return it->second;
  MetricsRegistry& r = Metrics();
  std::string l = fmt::format("op=\"{}\"", op);
  OpMetrics m{&r.GetCounter("granary_s3_requests_total", "S3 requests by operation", l),
              &r.GetCounter("granary_s3_errors_total", "S3 requests answered with an error", l),
              &r.GetCounter("granary_s3_received_bytes_total", "S3 request body bytes", l),
              &r.GetCounter("granary_s3_sent_bytes_total", "S3 response body bytes", l),
              &r.GetHistogram("granary_s3_request_seconds", "S3 request latency", l)};
  return cache.emplace(op, m).first->second;
}

bool WaitReadable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  int r = ::poll(&p, 1, timeout_ms);
  return r > 0;
}

// Waits up to `timeout_ms` for the next request on an idle keep-alive connection. Plain TCP:
// anything not yet parsed is in `buf`, so an empty buffer and a quiet socket mean idle.
bool WaitForRequest(tcp::socket&, beast::flat_buffer& buf, int fd, int timeout_ms) {
  return buf.size() > 0 || WaitReadable(fd, timeout_ms);
}

// TLS: a quiet socket proves nothing. Asio reads up to 17 KiB of records at a time into its own
// input buffer and OpenSSL's BIO pair, so the request a client sends right behind its handshake
// (or behind the previous request) can sit there, invisible to poll() and to SSL_has_pending,
// while the socket stays empty. So read through the TLS layer without blocking, and poll the
// socket only when OpenSSL itself asks for more bytes (would_block).
bool WaitForRequest(beast::ssl_stream<tcp::socket&>& stream, beast::flat_buffer& buf, int fd,
                    int timeout_ms) {
  if (buf.size() > 0) return true;
  tcp::socket& socket = beast::get_lowest_layer(stream);
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  beast::error_code ec;
  socket.non_blocking(true, ec);
  if (ec) return false;
  bool ready = false;
  while (true) {
    const size_t n = stream.read_some(buf.prepare(16 << 10), ec);
    if (!ec) {
      buf.commit(n);
      ready = n > 0;
      if (ready) break;
      continue;
    }
    if (ec != net::error::would_block && ec != net::error::try_again) break;  // EOF, reset
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0 || !WaitReadable(fd, static_cast<int>(left.count()))) break;
  }
  beast::error_code ignored;
  socket.non_blocking(false, ignored);
  return ready;
}

template <class Stream>
class BeastBody final : public RawBody {
 public:
  BeastBody(Stream& stream, beast::flat_buffer& buf, http::request_parser<http::buffer_body>& p)
      : stream_(stream), buf_(buf), parser_(p) {}
  Result<size_t> ReadSome(std::span<uint8_t> out) override {
    if (parser_.is_done() || out.empty()) return size_t{0};
    auto& body = parser_.get().body();
    body.data = out.data();
    body.size = out.size();
    beast::error_code ec;
    http::read_some(stream_, buf_, parser_, ec);
    if (ec == http::error::need_buffer) ec = {};
    if (ec) return Unavailable(fmt::format("reading the request body: {}", ec.message()));
    size_t n = out.size() - body.size;
    if (n == 0 && !parser_.is_done()) {
      // A header-only step (chunk framing): read on.
      return ReadSome(out);
    }
    return n;
  }

 private:
  Stream& stream_;
  beast::flat_buffer& buf_;
  http::request_parser<http::buffer_body>& parser_;
};

// Closing while a client is still sending (an early error reply to a big header or body) makes
// the kernel reset the connection, and the client may lose our reply: send FIN first and
// discard what still arrives for a short while (nginx's lingering close).
void LingeringClose(int fd) {
  ::shutdown(fd, SHUT_WR);
  char sink[64 << 10];
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
  for (size_t drained = 0; drained < (8u << 20);) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
    if (left.count() <= 0) return;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return;
    const ssize_t n = ::recv(fd, sink, sizeof sink, 0);
    if (n <= 0) return;
    drained += static_cast<size_t>(n);
  }
}

}  // namespace

struct Gateway::Impl {
  GatewayOptions options;
  std::unique_ptr<Context> ctx;
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::unique_ptr<net::ssl::context> ssl;
  std::thread accept_thread;
  std::vector<std::thread> workers;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<tcp::socket> queue;
  std::set<int> active;
  bool stopping = false;
  std::string address;

  void AcceptLoop();
  void Worker();
  template <class Stream>
  void Serve(Stream& stream, int fd);
  template <class Stream>
  bool Handle(Stream& stream, beast::flat_buffer& buf,
              http::request_parser<http::buffer_body>& parser);
};

void Gateway::Impl::AcceptLoop() {
  while (true) {
    beast::error_code ec;
    tcp::socket socket(ioc);
    acceptor.accept(socket, ec);
    std::unique_lock lock(mu);
    if (stopping) return;
    if (ec) continue;
    // Back-pressure: hold the accepted connection until a worker is free.
    cv.wait(lock, [&] { return stopping || queue.size() < 16; });
    if (stopping) return;
    socket.set_option(tcp::no_delay(true), ec);
    queue.push_back(std::move(socket));
    cv.notify_all();
  }
}

void Gateway::Impl::Worker() {
  while (true) {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return stopping || !queue.empty(); });
    if (stopping) return;
    tcp::socket socket = std::move(queue.front());
    queue.pop_front();
    int fd = socket.native_handle();
    active.insert(fd);
    cv.notify_all();
    lock.unlock();
    try {
      if (ssl) {
        beast::ssl_stream<tcp::socket&> stream(socket, *ssl);
        beast::error_code ec;
        stream.handshake(net::ssl::stream_base::server, ec);
        if (!ec) {
          Serve(stream, fd);
          // Say close_notify, so a client can tell our close from a truncation, but never wait
          // for the peer's: a blocking SSL shutdown reads until the client answers or closes.
          socket.non_blocking(true, ec);
          stream.shutdown(ec);
        }
      } else {
        Serve(socket, fd);
      }
    } catch (const std::exception& e) {
      GLOG_WARN("event=s3_connection_error error=\"{}\"", e.what());
    }
    LingeringClose(fd);
    beast::error_code ec;
    socket.shutdown(tcp::socket::shutdown_both, ec);
    lock.lock();
    active.erase(fd);
    lock.unlock();
    socket.close(ec);
  }
}

template <class Stream>
void Gateway::Impl::Serve(Stream& stream, int fd) {
  beast::flat_buffer buf;
  while (true) {
    // An idle keep-alive connection ends after a minute.
    if (!WaitForRequest(stream, buf, fd, 60000)) return;
    http::request_parser<http::buffer_body> parser;
    parser.header_limit(16 << 10);
    // PUT sizes are checked by the handlers. (Boost 1.74 compares against an empty optional as
    // "smaller than anything", so "no limit" must be spelled as the largest value.)
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    beast::error_code ec;
    http::read_header(stream, buf, parser, ec);
    if (ec == http::error::end_of_stream || ec == net::error::eof ||
        ec == net::error::connection_reset) {
      return;
    }
    if (ec) {
      const bool too_big = ec == http::error::header_limit || ec == http::error::buffer_overflow;
      S3Error e = too_big ? Err(400, "RequestHeaderSectionTooLarge",
                                "Your request header section exceeds the maximum allowed size.")
                          : Err(400, "BadRequest", "malformed HTTP request: " + ec.message());
      http::response<http::string_body> res{static_cast<http::status>(e.http), 11};
      Request none;
      none.request_id = RequestId();
      res.set(http::field::content_type, "application/xml");
      res.set(http::field::connection, "close");
      res.body() = ErrorXml(e, none);
      res.prepare_payload();
      http::write(stream, res, ec);
      return;
    }
    if (!Handle(stream, buf, parser)) return;
  }
}

template <class Stream>
bool Gateway::Impl::Handle(Stream& stream, beast::flat_buffer& buf,
                           http::request_parser<http::buffer_body>& parser) {
  const auto start = std::chrono::steady_clock::now();
  auto& h = parser.get();
  Request req;
  req.request_id = RequestId();
  req.method = std::string(h.method_string());
  req.target = std::string(h.target());
  size_t qpos = req.target.find('?');
  req.raw_path = req.target.substr(0, qpos);
  std::optional<S3Error> early;
  auto path = UriDecode(req.raw_path);
  auto query = qpos == std::string::npos ? std::optional<Params>(Params{})
                                         : ParseQuery(req.target.substr(qpos + 1));
  if (!path || !query || req.raw_path.empty() || req.raw_path[0] != '/') {
    early = Err(400, "InvalidURI", "Couldn't parse the specified URI.");
  } else {
    req.path = *path;
    req.query = std::move(*query);
  }
  for (const auto& f : h) {
    std::string name(f.name_string());
    for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    req.headers.all.emplace(std::move(name), std::string(f.value()));
  }
  req.host = req.headers.Get("host");
  if (auto len = parser.content_length()) {
    req.has_content_length = true;
    req.content_length = *len;
  }
  // Bucket and key: virtual-host style under --domain, else path style.
  if (!early) {
    std::string host = req.host.substr(
        0, req.host.rfind(':') == std::string::npos ? req.host.size() : req.host.rfind(':'));
    const std::string& domain = options.domain;
    std::string rest = req.path.substr(1);
    if (!domain.empty() && host.size() > domain.size() + 1 && host.ends_with("." + domain)) {
      req.bucket = host.substr(0, host.size() - domain.size() - 1);
      req.key = rest;
      req.virtual_host = true;
    } else {
      size_t slash = rest.find('/');
      req.bucket = rest.substr(0, slash);
      req.key = slash == std::string::npos ? "" : rest.substr(slash + 1);
    }
  }
  BeastBody<Stream> raw(stream, buf, parser);
  req.raw = &raw;

  std::string op = "unknown";
  Identity id;
  Outcome outcome = S3Error{};
  const bool expects_continue = req.headers.Get("expect") == "100-continue";
  bool continued = false;
  if (early) {
    outcome = *early;
  } else if (req.method == "OPTIONS") {
    // A CORS preflight carries no credentials: answered from the bucket's rules alone.
    op = "OptionsPreflight";
    outcome = Preflight(*ctx, req);
  } else if (auto denied = Authenticate(*ctx, req, &id)) {
    outcome = *denied;
  } else {
    if (expects_continue && !parser.is_done()) {
      http::response<http::empty_body> cont{http::status::continue_, 11};
      beast::error_code ec;
      http::write(stream, cont, ec);
      continued = !ec;
    }
    outcome = Dispatch(*ctx, req, id, &op);
  }

  beast::error_code ec;
  bool keep_alive = h.keep_alive();
  // An unread request body would be parsed as the next request: read it away if small. A
  // client that asked for 100-continue and got a final answer instead may never send its body
  // (or send it after its own timeout), so neither wait for it nor guess: close after replying.
  const bool small_rest = !req.has_content_length || req.content_length <= (1 << 20);
  if (!parser.is_done() && (!small_rest || (expects_continue && !continued))) keep_alive = false;
  if (keep_alive && !parser.is_done()) {
    std::vector<uint8_t> sink(64 << 10);
    uint64_t drained = 0;
    while (!parser.is_done() && drained < (1 << 20)) {
      auto n = raw.ReadSome(std::span<uint8_t>(sink.data(), sink.size()));
      if (!n.ok() || *n == 0) break;
      drained += *n;
    }
    if (!parser.is_done()) keep_alive = false;
  }
  OpMetrics& m = MetricsFor(op);
  m.requests->Add();
  const bool head = req.method == "HEAD";
  // An actual cross-origin request gets its CORS headers on errors too, so that a browser
  // script can read the error (s3-tests checks a 404 for them).
  std::vector<std::pair<std::string, std::string>> cors;
  if (!early && req.method != "OPTIONS" && req.headers.Find("origin")) {
    cors = CorsHeaders(*ctx, req);
  }
  if (auto* e = std::get_if<S3Error>(&outcome)) {
    m.errors->Add();
    GLOG_DEBUG("event=s3_error op={} code={} status={} message=\"{}\"", op, e->code, e->http,
               e->message);
    http::response<http::string_body> res{static_cast<http::status>(e->http), h.version()};
    res.set(http::field::server, "granary");
    res.set("x-amz-request-id", req.request_id);
    res.set(http::field::content_type, "application/xml");
    for (auto& [k, v] : cors) res.set(k, v);
    if (!head) res.body() = ErrorXml(*e, req);
    res.prepare_payload();
    res.keep_alive(keep_alive);
    http::write(stream, res, ec);
  } else {
    Response& r = std::get<Response>(outcome);
    for (auto& h : cors) r.headers.push_back(std::move(h));
    m.bytes_in->Add(r.bytes_in);
    if (r.stream && !head) {
      http::response<http::buffer_body> res{static_cast<http::status>(r.status), h.version()};
      res.set(http::field::server, "granary");
      res.set("x-amz-request-id", req.request_id);
      for (auto& [k, v] : r.headers) res.set(k, v);
      res.content_length(r.stream_length);
      res.keep_alive(keep_alive);
      res.body().data = nullptr;
      res.body().more = true;
      http::response_serializer<http::buffer_body> sr{res};
      http::write_header(stream, sr, ec);
      uint64_t sent = 0;
      Status s = ec ? Unavailable(ec.message()) : Status::Ok();
      if (s.ok()) {
        s = r.stream([&](std::span<const uint8_t> data) -> Status {
          res.body().data = const_cast<uint8_t*>(data.data());
          res.body().size = data.size();
          res.body().more = true;
          http::write(stream, sr, ec);
          if (ec == http::error::need_buffer) ec = {};
          if (ec) return Unavailable(fmt::format("sending to the client: {}", ec.message()));
          sent += data.size();
          return Status::Ok();
        });
      }
      m.bytes_out->Add(sent);
      if (!s.ok() || sent != r.stream_length) {
        // Headers are out: the only honest signal left is to cut the connection short.
        GLOG_WARN("event=s3_stream_failed op={} key={} error=\"{}\"", op, req.key, s.ToString());
        return false;
      }
      res.body().data = nullptr;
      res.body().size = 0;
      res.body().more = false;
      http::write(stream, sr, ec);
    } else {
      http::response<http::string_body> res{static_cast<http::status>(r.status), h.version()};
      res.set(http::field::server, "granary");
      res.set("x-amz-request-id", req.request_id);
      for (auto& [k, v] : r.headers) res.set(k, v);
      if (head || r.stream) {
        res.keep_alive(keep_alive);
        if (r.stream) res.content_length(r.stream_length);
        http::response_serializer<http::string_body> sr{res};
        http::write_header(stream, sr, ec);
      } else {
        res.body() = std::move(r.body);
        res.prepare_payload();
        res.keep_alive(keep_alive);
        m.bytes_out->Add(res.body().size());
        http::write(stream, res, ec);
      }
    }
  }
  m.latency->Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  return !ec && keep_alive;
}

Gateway::Gateway(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Gateway::~Gateway() { Stop(); }

Result<std::unique_ptr<Gateway>> Gateway::Start(GatewayOptions options) {
  auto listen = ParseHostPort(options.listen);
  GRANARY_TRY(listen);
  client::ClientOptions co;
  co.meta = options.meta;
  co.write_buffer_bytes = options.write_buffer_bytes;
  co.write_behind = options.write_behind;
  auto client = client::Client::Connect(co);
  GRANARY_TRY(client);
  auto objects = client::ObjectClient::Connect(**client);
  GRANARY_TRY(objects);
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->ctx = std::make_unique<Context>(options, std::move(*client), std::move(*objects));
  if (!options.tls_cert.empty() || !options.tls_key.empty()) {
    if (options.tls_cert.empty() || options.tls_key.empty()) {
      return InvalidArgument("--tls-cert and --tls-key go together");
    }
    impl->ssl = std::make_unique<net::ssl::context>(net::ssl::context::tls_server);
    beast::error_code ec;
    impl->ssl->use_certificate_chain_file(options.tls_cert, ec);
    if (!ec) impl->ssl->use_private_key_file(options.tls_key, net::ssl::context::pem, ec);
    if (ec) return InvalidArgument(fmt::format("TLS certificate/key: {}", ec.message()));
    // No client-initiated renegotiation: besides its known DoS cost, it is the one way a read
    // makes OpenSSL write, and WaitForRequest reads with the socket non-blocking.
    SSL_CTX_set_options(impl->ssl->native_handle(), SSL_OP_NO_RENEGOTIATION);
  }
  beast::error_code ec;
  tcp::endpoint ep(net::ip::make_address(listen->host, ec), listen->port);
  if (ec) return InvalidArgument(fmt::format("--listen {}: {}", options.listen, ec.message()));
  impl->acceptor.open(ep.protocol(), ec);
  if (!ec) impl->acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) impl->acceptor.bind(ep, ec);
  if (!ec) impl->acceptor.listen(1024, ec);
  if (ec)
    return Unavailable(fmt::format("s3: cannot listen on {}: {}", options.listen, ec.message()));
  auto bound = impl->acceptor.local_endpoint();
  impl->address = HostPort{listen->host, bound.port()}.ToString();
  Impl* raw = impl.get();
  for (int i = 0; i < std::max(1, options.max_connections); ++i) {
    raw->workers.emplace_back([raw] { raw->Worker(); });
  }
  raw->accept_thread = std::thread([raw] { raw->AcceptLoop(); });
  GLOG_INFO("event=s3_started listen={} meta={} tls={}", raw->address, options.meta,
            raw->ssl ? "yes" : "no");
  return std::unique_ptr<Gateway>(new Gateway(std::move(impl)));
}

std::string Gateway::address() const { return impl_->address; }
std::string Gateway::endpoint() const {
  return (impl_->ssl ? "https://" : "http://") + impl_->address;
}

void Gateway::Stop() {
  if (!impl_) return;
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopping) return;
    impl_->stopping = true;
    // Wake the blocking accept and every blocking read.
    ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);
    for (int fd : impl_->active) ::shutdown(fd, SHUT_RDWR);
    impl_->cv.notify_all();
  }
  if (impl_->accept_thread.joinable()) impl_->accept_thread.join();
  for (auto& w : impl_->workers) w.join();
  beast::error_code ec;
  impl_->acceptor.close(ec);
  GLOG_INFO("event=s3_stopped listen={}", impl_->address);
}

}  // namespace granary::s3
