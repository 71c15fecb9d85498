#include "common/data_connection.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "common/frame.h"
#include "common/net.h"

namespace granary {
namespace {

int PollMillis(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  if (left.count() <= 0) return 0;
  return static_cast<int>(std::min<int64_t>(left.count() + 1, 1 << 30));
}

std::string Errno(int err) { return fmt::format("{} ({})", strerrordesc_np(err), err); }

}  // namespace

Status ReplyStatus(const DataReply& reply, const std::string& address) {
  if (reply.header.code() == Code::OK) return Status::Ok();
  return Status(reply.header.code(),
                fmt::format("datanode {}: {}", address, reply.header.message()));
}

struct DataConnection::Pending {
  DoneCallback done;
  Clock::time_point deadline;
};

Result<std::shared_ptr<DataConnection>> DataConnection::Connect(const std::string& address,
                                                                Clock::time_point deadline) {
  auto hp = ParseHostPort(address);
  if (!hp.ok()) return hp.status().WithContext("data connection");
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  std::string port = std::to_string(hp->port);
  int gai = getaddrinfo(hp->host.c_str(), port.c_str(), &hints, &res);
  if (gai != 0) {
    return Unavailable(fmt::format("datanode {}: resolve: {}", address, gai_strerror(gai)));
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> guard(res, freeaddrinfo);
  int last_err = ECONNREFUSED;
  for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      last_err = errno;
      continue;
    }
    int rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      int pr = poll(&p, 1, PollMillis(deadline));
      if (pr == 0) {
        close(fd);
        return Unavailable(fmt::format("datanode {}: connect: deadline exceeded", address));
      }
      int err = 0;
      socklen_t len = sizeof err;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
      rc = err == 0 ? 0 : -1;
      errno = err;
    }
    if (rc != 0) {
      last_err = errno;
      close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    std::shared_ptr<DataConnection> conn(new DataConnection(address, fd));
    conn->receiver_ = std::thread([raw = conn.get()] { raw->ReceiveLoop(); });
    return conn;
  }
  return Unavailable(fmt::format("datanode {}: connect: {}", address, Errno(last_err)));
}

DataConnection::DataConnection(std::string address, int fd)
    : address_(std::move(address)), fd_(fd) {
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
}

DataConnection::~DataConnection() {
  Close();
  if (receiver_.joinable()) {
    // The last reference may be dropped by a callback running on the receiver itself.
    if (receiver_.get_id() == std::this_thread::get_id()) {
      receiver_.detach();
    } else {
      receiver_.join();
    }
  }
  close(fd_);
  close(wake_fd_);
}

bool DataConnection::healthy() const {
  std::lock_guard lock(mu_);
  return !failed_;
}

size_t DataConnection::pending() const {
  std::lock_guard lock(mu_);
  return pending_.size();
}

void DataConnection::Wake() {
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
}

void DataConnection::Fail(const Status& status) {
  std::map<uint64_t, std::unique_ptr<Pending>> failed;
  {
    std::lock_guard lock(mu_);
    if (!failed_) {
      failed_ = true;
      failure_ = status;
    }
    failed.swap(pending_);
  }
  shutdown(fd_, SHUT_RDWR);
  Wake();
  for (auto& [id, p] : failed) p->done(failure_);
}

void DataConnection::Close() {
  Fail(Unavailable(fmt::format("datanode {}: connection closed", address_)));
}

Status DataConnection::SendAll(iovec* iov, int iovcnt, Clock::time_point deadline) {
  while (iovcnt > 0) {
    ssize_t n = writev(fd_, iov, std::min(iovcnt, IOV_MAX));
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN) {
        return Unavailable(fmt::format("datanode {}: send: {}", address_, Errno(errno)));
      }
      pollfd p{fd_, POLLOUT, 0};
      int pr = poll(&p, 1, PollMillis(deadline));
      if (pr == 0)
        return Unavailable(fmt::format("datanode {}: send: deadline exceeded", address_));
      continue;
    }
    size_t left = static_cast<size_t>(n);
    while (iovcnt > 0 && left >= iov->iov_len) {
      left -= iov->iov_len;
      ++iov;
      --iovcnt;
    }
    if (iovcnt > 0) {
      iov->iov_base = static_cast<uint8_t*>(iov->iov_base) + left;
      iov->iov_len -= left;
    }
  }
  return Status::Ok();
}

std::future<Result<DataReply>> DataConnection::CallAsync(DataRequest request,
                                                         std::span<const uint8_t> payload,
                                                         Clock::time_point deadline) {
  auto promise = std::make_shared<std::promise<Result<DataReply>>>();
  auto future = promise->get_future();
  CallAsync(std::move(request), payload, deadline,
            [promise](Result<DataReply> r) { promise->set_value(std::move(r)); });
  return future;
}

void DataConnection::CallAsync(DataRequest request, std::span<const uint8_t> payload,
                               Clock::time_point deadline, DoneCallback done) {
  if (payload.size() > kMaxFramePayloadLen) {
    done(InvalidArgument(fmt::format("datanode {}: payload of {} bytes over the frame limit {}",
                                     address_, payload.size(), kMaxFramePayloadLen)));
    return;
  }
  auto pending = std::make_unique<Pending>();
  pending->deadline = deadline;
  pending->done = std::move(done);
  uint64_t id;
  {
    std::unique_lock lock(mu_);
    if (failed_) {
      Status failure = failure_;
      lock.unlock();
      pending->done(failure);
      return;
    }
    id = next_id_++;
    pending_.emplace(id, std::move(pending));
  }
  Wake();  // the receiver recomputes its earliest deadline
  request.set_request_id(id);
  std::string prefix = EncodeFramePrefix(request.SerializeAsString(), payload.size());
  iovec iov[2] = {{prefix.data(), prefix.size()},
                  {const_cast<uint8_t*>(payload.data()), payload.size()}};
  Status sent;
  {
    std::lock_guard send_lock(send_mu_);
    sent = SendAll(iov, payload.empty() ? 1 : 2, deadline);
  }
  // A partly sent frame leaves the stream unusable, so any send failure fails the connection
  // (and with it this request).
  if (!sent.ok()) Fail(sent);
}

Result<DataReply> DataConnection::Call(DataRequest request, std::span<const uint8_t> payload,
                                       Clock::time_point deadline) {
  return CallAsync(std::move(request), payload, deadline).get();
}

void DataConnection::ReceiveLoop() {
  FrameReader reader;
  while (true) {
    Clock::time_point earliest = Clock::time_point::max();
    std::vector<std::unique_ptr<Pending>> expired;
    std::vector<uint64_t> expired_ids;
    {
      std::lock_guard lock(mu_);
      if (failed_) return;
      // Expire requests whose deadline passed; a late reply is then dropped unmatched.
      auto now = Clock::now();
      for (auto it = pending_.begin(); it != pending_.end();) {
        if (it->second->deadline <= now) {
          expired.push_back(std::move(it->second));
          expired_ids.push_back(it->first);
          it = pending_.erase(it);
        } else {
          earliest = std::min(earliest, it->second->deadline);
          ++it;
        }
      }
    }
    // Callbacks run without the lock: they may issue new calls on this connection.
    for (size_t i = 0; i < expired.size(); ++i) {
      expired[i]->done(Unavailable(
          fmt::format("datanode {}: request {}: deadline exceeded", address_, expired_ids[i])));
    }
    pollfd fds[2] = {{fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int timeout = earliest == Clock::time_point::max() ? -1 : PollMillis(earliest);
    int pr = poll(fds, 2, timeout);
    if (pr < 0 && errno != EINTR) {
      Fail(Unavailable(fmt::format("datanode {}: poll: {}", address_, Errno(errno))));
      return;
    }
    if (fds[1].revents & POLLIN) {
      uint64_t v;
      (void)!read(wake_fd_, &v, sizeof v);
    }
    if (!(fds[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    while (true) {
      auto span = reader.WritableSpan();
      ssize_t n = recv(fd_, span.data(), span.size(), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) break;
      if (n <= 0) {
        std::string why = n == 0 ? "connection closed by peer" : Errno(errno);
        Fail(Unavailable(fmt::format("datanode {}: receive: {}", address_, why)));
        return;
      }
      Status st = reader.Commit(static_cast<size_t>(n));
      if (!st.ok()) {
        Fail(Unavailable(fmt::format("datanode {}: bad reply frame: {}", address_, st.message())));
        return;
      }
      if (!reader.HasFrame()) continue;
      Frame frame = reader.TakeFrame();
      DataReply reply;
      if (!reply.header.ParseFromString(frame.proto_header)) {
        Fail(Unavailable(fmt::format("datanode {}: unparsable reply header", address_)));
        return;
      }
      reply.payload = std::move(frame.payload);
      std::unique_ptr<Pending> p;
      {
        std::lock_guard lock(mu_);
        auto it = pending_.find(reply.header.request_id());
        if (it != pending_.end()) {
          p = std::move(it->second);
          pending_.erase(it);
        }
      }
      if (p) p->done(std::move(reply));
    }
  }
}

DataConnectionPool::~DataConnectionPool() { CloseAll(); }

Result<std::shared_ptr<DataConnection>> DataConnectionPool::Get(const std::string& address,
                                                                Clock::time_point deadline) {
  {
    std::lock_guard lock(mu_);
    auto it = conns_.find(address);
    if (it != conns_.end() && it->second->healthy()) return it->second;
  }
  // Dial outside the lock. When dials race, the first one stored wins and the others are closed
  // unused: replacing a connection that already carries requests would drop its last reference
  // once its callers return, and its destructor would fail those requests ("connection closed")
  // although nothing went wrong on the wire.
  auto conn = DataConnection::Connect(address, deadline);
  if (!conn.ok()) return conn.status();
  std::lock_guard lock(mu_);
  std::shared_ptr<DataConnection>& slot = conns_[address];
  if (slot && slot->healthy()) return slot;  // ours is closed when `conn` goes out of scope
  slot = *conn;
  return slot;
}

Result<DataReply> DataConnectionPool::Call(const std::string& address, DataRequest request,
                                           std::span<const uint8_t> payload,
                                           Clock::time_point deadline) {
  return CallAsync(address, std::move(request), payload, deadline).get();
}

std::future<Result<DataReply>> DataConnectionPool::CallAsync(const std::string& address,
                                                             DataRequest request,
                                                             std::span<const uint8_t> payload,
                                                             Clock::time_point deadline) {
  auto conn = Get(address, deadline);
  if (!conn.ok()) {
    std::promise<Result<DataReply>> p;
    p.set_value(conn.status());
    return p.get_future();
  }
  return (*conn)->CallAsync(std::move(request), payload, deadline);
}

void DataConnectionPool::CallAsync(const std::string& address, DataRequest request,
                                   std::span<const uint8_t> payload, Clock::time_point deadline,
                                   DataConnection::DoneCallback done) {
  auto conn = Get(address, deadline);
  if (!conn.ok()) {
    done(conn.status());
    return;
  }
  (*conn)->CallAsync(std::move(request), payload, deadline, std::move(done));
}

void DataConnectionPool::CloseAll() {
  std::map<std::string, std::shared_ptr<DataConnection>> conns;
  {
    std::lock_guard lock(mu_);
    conns.swap(conns_);
  }
  for (auto& [a, c] : conns) c->Close();
}

}  // namespace granary
