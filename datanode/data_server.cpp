#include "datanode/data_server.h"

#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/crc32c.h"
#include "common/frame.h"
#include "common/log.h"
#include "common/metrics.h"

namespace granary::datanode {
namespace {

std::string Errno(int err) { return fmt::format("{} ({})", strerrordesc_np(err), err); }

std::string_view OpName(DataOp op) {
  switch (op) {
    case WRITE_BLOCK:
      return "write";
    case READ_BLOCK:
      return "read";
    case DELETE_BLOCK:
      return "delete";
    case PING:
      return "ping";
    default:
      return "invalid";
  }
}

// Reads exactly `n` bytes. Returns 0 on success, -1 on a clean EOF before the first byte, else
// an errno (ECONNRESET for an EOF mid-way).
int RecvExact(int fd, uint8_t* p, size_t n) {
  size_t got = 0;
  while (got < n) {
    ssize_t r = recv(fd, p + got, n - got, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return errno;
    if (r == 0) return got == 0 ? -1 : ECONNRESET;
    got += static_cast<size_t>(r);
  }
  return 0;
}

}  // namespace

struct DataServer::Metrics {
  Counter* ops_ok[5];
  Counter* ops_err[5];
  Histogram* latency[5];
  Counter* bytes_written;
  Counter* bytes_read;
  Counter* crc_failures;
  Counter* stale_epochs;
  Gauge* inflight;
  Gauge* connections;
  Gauge* budget_used;

  explicit Metrics(const std::string& node) {
    auto& r = granary::Metrics();
    std::string n = fmt::format("node=\"{}\"", node);
    for (int op = 0; op < 5; ++op) {
      std::string l = fmt::format("{},op=\"{}\"", n, OpName(static_cast<DataOp>(op)));
      ops_ok[op] = &r.GetCounter("granary_datanode_ops_total", "Data protocol requests.",
                                 l + ",result=\"ok\"");
      ops_err[op] = &r.GetCounter("granary_datanode_ops_total", "Data protocol requests.",
                                  l + ",result=\"error\"");
      latency[op] =
          &r.GetHistogram("granary_datanode_op_seconds", "Data protocol request latency.", l);
    }
    bytes_written =
        &r.GetCounter("granary_datanode_bytes_total", "Payload bytes.", n + ",op=\"write\"");
    bytes_read =
        &r.GetCounter("granary_datanode_bytes_total", "Payload bytes.", n + ",op=\"read\"");
    crc_failures = &r.GetCounter("granary_datanode_crc_failures_total",
                                 "Writes rejected because a CRC32C did not match.", n);
    stale_epochs = &r.GetCounter("granary_datanode_stale_epoch_total",
                                 "Requests rejected for a stale PG epoch.", n);
    inflight = &r.GetGauge("granary_datanode_queue_depth",
                           "Data requests admitted and not yet answered.", n);
    connections = &r.GetGauge("granary_datanode_connections", "Open data connections.", n);
    budget_used =
        &r.GetGauge("granary_datanode_budget_bytes", "Payload bytes held by admitted requests.", n);
  }
};

struct DataServer::Conn {
  explicit Conn(int f) : fd(f) {}
  ~Conn() { close(fd); }
  const int fd;
  std::mutex send_mu;
  std::mutex mu;
  std::condition_variable cv;
  size_t inflight = 0;
};

struct DataServer::Request {
  std::shared_ptr<Conn> conn;
  DataRequest header;
  AlignedBuffer payload;
  uint64_t charged = 0;  // budget bytes
  Clock::time_point start;
  DataResponse resp;
  // Chain writes: the local write and the forward finish in either order.
  std::mutex mu;
  int remaining = 0;
  Status local;
  Status remote;
  uint64_t remote_epoch = 0;
};

Result<std::unique_ptr<DataServer>> DataServer::Start(DataServerOptions options, BlockStore* store,
                                                      EpochView* epochs) {
  const HostPort at = options.listen;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  std::string port = std::to_string(at.port);
  int gai = getaddrinfo(at.host.empty() ? nullptr : at.host.c_str(), port.c_str(), &hints, &res);
  if (gai != 0) {
    return InvalidArgument(fmt::format("data listen {}: {}", at.ToString(), gai_strerror(gai)));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, freeaddrinfo);
  int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
    int err = errno;
    if (fd >= 0) close(fd);
    return Unavailable(fmt::format("data listen {}: {}", at.ToString(), Errno(err)));
  }
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  uint16_t bound_port = bound.ss_family == AF_INET6
                            ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port)
                            : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  // Named after the bound port, so N in-process datanodes on port 0 stay distinguishable.
  if (options.name.empty()) {
    options.name = fmt::format("datanode {}:{}",
                               options.advertise.empty() ? at.host : options.advertise, bound_port);
  }
  std::unique_ptr<DataServer> s(new DataServer(std::move(options), store, epochs));
  s->listen_fd_ = fd;
  s->address_ = HostPort{at.host, bound_port};
  s->acceptor_ = std::thread([raw = s.get()] { raw->AcceptLoop(); });
  return s;
}

DataServer::DataServer(DataServerOptions options, BlockStore* store, EpochView* epochs)
    : options_(std::move(options)),
      store_(store),
      epochs_(epochs),
      forward_(DataConnectionPool::Create()),
      metrics_(std::make_unique<Metrics>(options_.name)),
      workers_(std::make_unique<WorkerPool>(options_.workers, "dn-worker")),
      budget_(std::make_unique<ByteBudget>(options_.memory_budget)) {}

DataServer::~DataServer() { Stop(); }

void DataServer::Stop() {
  if (stopping_.exchange(true)) return;
  shutdown(listen_fd_, SHUT_RDWR);
  if (acceptor_.joinable()) acceptor_.join();
  close(listen_fd_);
  {
    std::unique_lock lock(conns_mu_);
    for (auto& [fd, weak] : conns_) {
      if (auto c = weak.lock()) {
        shutdown(c->fd, SHUT_RDWR);
        std::lock_guard conn_lock(c->mu);  // no lost wake-up for a reader at its in-flight cap
        c->cv.notify_all();
      }
    }
  }
  budget_->Abort();
  {
    std::unique_lock lock(conns_mu_);
    readers_done_.wait(lock, [&] { return readers_ == 0; });
  }
  // Unblocks workers sending downstream and fails forwards in flight; their completions queue
  // onto the workers, which then drain (replies fail fast on the closed sockets).
  forward_->CloseAll();
  workers_->Stop();
  // Joins the downstream receivers, so no completion can run once Stop returns.
  forward_.reset();
}

void DataServer::AcceptLoop() {
  while (!stopping_) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (!stopping_) GLOG_ERROR("event=data_accept_failed error=\"{}\"", Errno(errno));
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval tv{};
    tv.tv_sec = options_.send_timeout.count() / 1000;
    tv.tv_usec = (options_.send_timeout.count() % 1000) * 1000;
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    auto conn = std::make_shared<Conn>(fd);
    {
      std::lock_guard lock(conns_mu_);
      if (stopping_) return;  // conn closes its fd
      conns_[fd] = conn;
      ++readers_;
    }
    metrics_->connections->Add(1);
    std::thread([this, conn] { ReadLoop(conn); }).detach();
  }
}

void DataServer::ReadLoop(std::shared_ptr<Conn> conn) {
  while (!stopping_) {
    std::array<uint8_t, kFixedHeaderSize> fixed;
    int err = RecvExact(conn->fd, fixed.data(), fixed.size());
    if (err != 0) break;  // EOF or reset: the client went away
    auto h = DecodeFixedHeader(fixed);
    if (!h.ok()) {
      // The stream cannot be resynchronised: say why (request_id 0) and hang up.
      DataResponse resp;
      resp.set_code(Code::INVALID_ARGUMENT);
      resp.set_message(fmt::format("{}: {}", options_.name, h.status().message()));
      SendReply(*conn, resp, {});
      break;
    }
    {
      std::unique_lock lock(conn->mu);
      conn->cv.wait(
          lock, [&] { return stopping_ || conn->inflight < options_.max_inflight_per_connection; });
      ++conn->inflight;
    }
    auto req = std::make_shared<Request>();
    req->conn = conn;
    req->charged = std::min(h->payload_len, options_.memory_budget);
    bool admitted = budget_->Acquire(req->charged);
    if (admitted) metrics_->budget_used->Set(static_cast<int64_t>(budget_->used()));
    FrameReader reader;
    bool ok = admitted && reader.Feed(fixed).ok();
    while (ok && !reader.HasFrame()) {
      auto span = reader.WritableSpan();
      ssize_t r = recv(conn->fd, span.data(), span.size(), 0);
      if (r < 0 && errno == EINTR) continue;
      ok = r > 0 && reader.Commit(static_cast<size_t>(r)).ok();
    }
    if (ok) {
      Frame frame = reader.TakeFrame();
      if (!req->header.ParseFromString(frame.proto_header)) {
        DataResponse resp;
        resp.set_code(Code::INVALID_ARGUMENT);
        resp.set_message(fmt::format("{}: unparsable DataRequest header", options_.name));
        SendReply(*conn, resp, {});
        ok = false;
      }
      req->payload = std::move(frame.payload);
    }
    if (!ok) {
      if (admitted) budget_->Release(req->charged);
      std::lock_guard lock(conn->mu);
      --conn->inflight;
      break;
    }
    req->start = Clock::now();
    metrics_->inflight->Add(1);
    workers_->Submit([this, req] { Handle(req); });
  }
  shutdown(conn->fd, SHUT_RDWR);
  metrics_->connections->Add(-1);
  std::lock_guard lock(conns_mu_);
  conns_.erase(conn->fd);
  --readers_;
  readers_done_.notify_all();
}

void DataServer::SendReply(Conn& conn, const DataResponse& resp, std::span<const uint8_t> payload) {
  std::string prefix = EncodeFramePrefix(resp.SerializeAsString(), payload.size());
  std::lock_guard lock(conn.send_mu);
  iovec iov[2] = {{prefix.data(), prefix.size()},
                  {const_cast<uint8_t*>(payload.data()), payload.size()}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = payload.empty() ? 1 : 2;
  while (msg.msg_iovlen > 0) {
    ssize_t n = sendmsg(conn.fd, &msg, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      shutdown(conn.fd, SHUT_RDWR);  // a partial frame: the stream is unusable
      return;
    }
    size_t left = static_cast<size_t>(n);
    while (msg.msg_iovlen > 0 && left >= msg.msg_iov->iov_len) {
      left -= msg.msg_iov->iov_len;
      ++msg.msg_iov;
      --msg.msg_iovlen;
    }
    if (msg.msg_iovlen > 0) {
      msg.msg_iov->iov_base = static_cast<uint8_t*>(msg.msg_iov->iov_base) + left;
      msg.msg_iov->iov_len -= left;
    }
  }
}

bool DataServer::CheckEpoch(Request& req) {
  const DataRequest& h = req.header;
  auto epoch = epochs_->PgEpoch(h.pool_id(), h.pg());
  if (!epoch || *epoch < h.pg_epoch()) {
    // The client has seen a newer map than we have: catch up before judging.
    Status st = epochs_->Refresh();
    if (!st.ok()) GLOG_WARN("event=map_refresh_failed error=\"{}\"", st.ToString());
    epoch = epochs_->PgEpoch(h.pool_id(), h.pg());
  }
  if (epoch && *epoch == h.pg_epoch()) return true;
  metrics_->stale_epochs->Add();
  req.resp.set_code(Code::STALE_EPOCH);
  req.resp.set_pg_epoch(epoch.value_or(0));
  req.resp.set_message(fmt::format("{}: pool {} pg {}: request epoch {}, current epoch {}",
                                   options_.name, h.pool_id(), h.pg(), h.pg_epoch(),
                                   epoch ? std::to_string(*epoch) : "unknown"));
  return false;
}

void DataServer::Handle(std::shared_ptr<Request> req) {
  req->resp.set_request_id(req->header.request_id());
  DataOp op = req->header.op();
  if (op == PING) return Finish(*req);
  if (op != WRITE_BLOCK && op != READ_BLOCK && op != DELETE_BLOCK) {
    req->resp.set_code(Code::INVALID_ARGUMENT);
    req->resp.set_message(fmt::format("{}: unknown op {}", options_.name, static_cast<int>(op)));
    return Finish(*req);
  }
  if (!CheckEpoch(*req)) return Finish(*req);
  if (op == WRITE_BLOCK) return HandleWrite(std::move(req));
  if (op == READ_BLOCK) return HandleRead(std::move(req));
  Status st = store_->Delete(req->header.block());
  if (!st.ok()) {
    req->resp.set_code(st.code());
    req->resp.set_message(fmt::format("{}: {}", options_.name, st.message()));
  }
  Finish(*req);
}

bool DataServer::ReadSoon(const DataRequest& h) const {
  // Erasure-coded fragments are each read where they are; a replicated block is read first
  // from the PG's first member.
  if (h.origin().encoding() != Encoding::REPLICATED || !options_.node_id) return true;
  const uint32_t self = options_.node_id();
  std::optional<uint32_t> first = epochs_->FirstMember(h.pool_id(), h.pg());
  // Not registered yet, or a PG the map does not place: keep the copy, as before direct writes.
  return self == 0 || !first || *first == self;
}

void DataServer::HandleWrite(std::shared_ptr<Request> req) {
  const DataRequest& h = req->header;
  std::span<const uint8_t> data(req->payload.data(), req->payload.size());
  std::span<const uint32_t> crcs(h.crcs().data(), static_cast<size_t>(h.crcs_size()));
  // Checked before forwarding too, so corrupt bytes never travel down the chain.
  long bad = crcs.size() == CrcCount(data.size())
                 ? FirstCrcMismatch(data.data(), data.size(), crcs.data(), crcs.size())
                 : -1;
  if (h.chain_size() == 0 || bad >= 0 || crcs.size() != CrcCount(data.size())) {
    Status st = store_->Write(h.block(), h.origin(), data, crcs, ReadSoon(h));
    if (st.code() == Code::CORRUPT) metrics_->crc_failures->Add();
    if (!st.ok()) {
      req->resp.set_code(st.code());
      req->resp.set_message(fmt::format("{}: {}", options_.name, st.message()));
    } else {
      metrics_->bytes_written->Add(data.size());
    }
    return Finish(*req);
  }
  req->remaining = 2;
  workers_->Submit([this, req] {
    const DataRequest& h = req->header;
    Status st =
        store_->Write(h.block(), h.origin(), req->payload.span(),
                      std::span<const uint32_t>(h.crcs().data(), h.crcs_size()), ReadSoon(h));
    JoinChain(req, true, std::move(st), 0);
  });
  DataRequest fwd = h;
  fwd.mutable_chain()->DeleteSubrange(0, 1);
  std::string next = h.chain(0).data_address();
  if (stopping_) {
    return JoinChain(req, false, Unavailable("shutting down"), 0);
  }
  forward_->CallAsync(next, std::move(fwd), data, DeadlineIn(options_.forward_timeout),
                      [this, req, next](Result<DataReply> r) {
                        Status st;
                        uint64_t epoch = 0;
                        if (!r.ok()) {
                          st = r.status();
                        } else {
                          st = ReplyStatus(*r, next);
                          epoch = r->header.pg_epoch();
                        }
                        // Runs on the connection's receiver thread, which must not block: hand
                        // over.
                        workers_->Submit([this, req, st = std::move(st), epoch]() mutable {
                          JoinChain(req, false, std::move(st), epoch);
                        });
                      });
}

void DataServer::JoinChain(const std::shared_ptr<Request>& req, bool local, Status st,
                           uint64_t epoch) {
  {
    std::lock_guard lock(req->mu);
    if (local) {
      req->local = std::move(st);
    } else {
      req->remote = std::move(st);
      req->remote_epoch = epoch;
    }
    if (--req->remaining > 0) return;
  }
  if (!req->local.ok()) {
    if (req->local.code() == Code::CORRUPT) metrics_->crc_failures->Add();
    req->resp.set_code(req->local.code());
    req->resp.set_message(fmt::format("{}: {}", options_.name, req->local.message()));
  } else if (!req->remote.ok()) {
    req->resp.set_code(req->remote.code());
    req->resp.set_message(fmt::format("{}: forward to {}: {}", options_.name,
                                      req->header.chain(0).data_address(), req->remote.message()));
    if (req->remote.code() == Code::STALE_EPOCH) req->resp.set_pg_epoch(req->remote_epoch);
  } else {
    metrics_->bytes_written->Add(req->payload.size());
  }
  Finish(*req);
}

void DataServer::HandleRead(std::shared_ptr<Request> req) {
  const DataRequest& h = req->header;
  if (store_->IsQuarantined(h.block())) {
    // Reported corrupt and not yet verified or replaced: readers go to another copy, and are
    // not asked to report it again (the reply is not a CRC mismatch).
    req->resp.set_code(Code::CORRUPT);
    req->resp.set_message(fmt::format("{}: slice {} block {} fragment {} is quarantined",
                                      options_.name, h.block().slice_id(), h.block().block_index(),
                                      h.block().fragment()));
    return Finish(*req);
  }
  auto plan = store_->PrepareRead(h.block(), h.offset(), h.length());
  if (!plan.ok()) {
    req->resp.set_code(plan.status().code());
    req->resp.set_message(fmt::format("{}: {}", options_.name, plan.status().message()));
    return Finish(*req);
  }
  req->resp.set_length(plan->length);
  req->resp.set_crc_offset(plan->crc_offset);
  for (uint32_t c : plan->crcs) req->resp.add_crcs(c);
  std::string prefix = EncodeFramePrefix(req->resp.SerializeAsString(), plan->length);
  Conn& conn = *req->conn;
  {
    std::lock_guard lock(conn.send_mu);
    bool ok = true;
    size_t sent = 0;
    while (ok && sent < prefix.size()) {
      ssize_t n = send(conn.fd, prefix.data() + sent, prefix.size() - sent,
                       MSG_NOSIGNAL | (plan->length ? MSG_MORE : 0));
      if (n < 0 && errno == EINTR) continue;
      ok = n > 0;
      if (ok) sent += static_cast<size_t>(n);
    }
    // The payload goes from the page cache to the socket without passing through us (a small
    // block's from the plan's buffer); the reader checks it against the CRCs in the header.
    off_t off = static_cast<off_t>(plan->file_offset);
    uint64_t left = plan->length;
    while (ok && left > 0) {
      ssize_t n = plan->file ? sendfile(conn.fd, plan->file->fd(), &off, left)
                             : send(conn.fd, plan->memory.data() + (plan->length - left), left,
                                    MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      ok = n > 0;
      if (ok) left -= static_cast<uint64_t>(n);
    }
    if (!ok) shutdown(conn.fd, SHUT_RDWR);  // a partial frame: the stream is unusable
  }
  metrics_->bytes_read->Add(plan->length);
  Complete(*req);
}

void DataServer::Finish(Request& req) {
  SendReply(*req.conn, req.resp, {});
  Complete(req);
}

void DataServer::FillIoCounters(IoCounters* out) const {
  const Metrics& m = *metrics_;
  out->set_read_ops(m.ops_ok[READ_BLOCK]->value() + m.ops_err[READ_BLOCK]->value());
  out->set_write_ops(m.ops_ok[WRITE_BLOCK]->value() + m.ops_err[WRITE_BLOCK]->value());
  out->set_read_bytes(m.bytes_read->value());
  out->set_write_bytes(m.bytes_written->value());
  uint64_t errors = 0;
  for (const Counter* c : m.ops_err) errors += c->value();
  out->set_errors(errors);
  auto cumulative = [](const Histogram& h, google::protobuf::RepeatedField<uint64_t>* buckets) {
    for (size_t i = 0; i < h.bounds().size(); ++i) buckets->Add(h.bucket_count(i));
    buckets->Add(h.count());
  };
  cumulative(*m.latency[READ_BLOCK], out->mutable_read_latency());
  cumulative(*m.latency[WRITE_BLOCK], out->mutable_write_latency());
}

void DataServer::Complete(Request& req) {
  int op = req.header.op() >= 0 && req.header.op() < 5 ? req.header.op() : 0;
  double seconds = std::chrono::duration<double>(Clock::now() - req.start).count();
  metrics_->latency[op]->Observe(seconds);
  (req.resp.code() == Code::OK ? metrics_->ops_ok : metrics_->ops_err)[op]->Add();
  budget_->Release(req.charged);
  metrics_->budget_used->Set(static_cast<int64_t>(budget_->used()));
  metrics_->inflight->Add(-1);
  {
    std::lock_guard lock(req.conn->mu);
    --req.conn->inflight;
  }
  req.conn->cv.notify_all();
}

}  // namespace granary::datanode
