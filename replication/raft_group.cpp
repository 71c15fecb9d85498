#include "replication/raft_group.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netdb.h>
#include <signal.h>
// canonical raft 0.15 declares its API without extern "C".
extern "C" {
#include <raft.h>
#include <raft/uv.h>
}
#include <uv.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/log.h"
#include "common/net.h"
#include "replication/resolving_transport.h"

namespace granary::replication {

namespace {

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// A log entry carries the commands queued while earlier entries were in flight:
// magic, count, then (length, bytes) per command; integers little-endian u32; zero-padded to a
// multiple of 8 bytes (canonical raft 0.15's log writer does not pad entries itself, and an
// unpadded entry corrupts the batch that follows it on disk).
constexpr uint32_t kEntryMagic = 0x31465247;  // "GRF1"
constexpr size_t kMaxEntryBytes = 16 << 20;

void PutU32(std::string& out, uint32_t v) {
  char b[4] = {static_cast<char>(v), static_cast<char>(v >> 8), static_cast<char>(v >> 16),
               static_cast<char>(v >> 24)};
  out.append(b, 4);
}

uint32_t GetU32(const char* p) {
  auto u = reinterpret_cast<const uint8_t*>(p);
  return uint32_t{u[0]} | uint32_t{u[1]} << 8 | uint32_t{u[2]} << 16 | uint32_t{u[3]} << 24;
}

bool DecodeEntry(const char* data, size_t len, std::vector<std::string_view>* out) {
  if (len < 8 || GetU32(data) != kEntryMagic) return false;
  const uint32_t count = GetU32(data + 4);
  size_t at = 8;
  out->clear();
  for (uint32_t i = 0; i < count; ++i) {
    if (len - at < 4) return false;
    const uint32_t n = GetU32(data + at);
    at += 4;
    if (len - at < n) return false;
    out->emplace_back(data + at, n);
    at += n;
  }
  return len - at < 8;
}

Status RaftError(std::string_view what, int rv, const char* detail = nullptr) {
  return Unavailable(fmt::format("raft {}: {}{}{}", what, raft_strerror(rv),
                                 detail && *detail ? ": " : "", detail ? detail : ""));
}

}  // namespace

Result<std::vector<Member>> ParseMembers(std::string_view text) {
  std::vector<Member> members;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(',', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view item = text.substr(start, end - start);
    if (!item.empty()) {
      const size_t eq = item.find('=');
      uint64_t id = 0;
      if (eq == std::string_view::npos ||
          std::from_chars(item.data(), item.data() + eq, id).ptr != item.data() + eq || id == 0 ||
          id > 0xffffffffu) {
        return InvalidArgument(
            fmt::format("member '{}': expected ID=HOST:PORT with ID >= 1", item));
      }
      auto hp = ParseHostPort(item.substr(eq + 1));
      GRANARY_TRY(hp);
      if (hp->port == 0 || hp->port == 0xffff) {
        return InvalidArgument(
            fmt::format("member '{}': a fixed port below 65535 is needed", item));
      }
      for (const Member& m : members) {
        if (m.id == id) return InvalidArgument(fmt::format("member id {} named twice", id));
        if (m.address == hp->ToString()) {
          return InvalidArgument(fmt::format("member address {} named twice", m.address));
        }
      }
      members.push_back({id, hp->ToString()});
    }
    start = end + 1;
  }
  std::sort(members.begin(), members.end(),
            [](const Member& a, const Member& b) { return a.id < b.id; });
  return members;
}

std::string FormatMembers(const std::vector<Member>& members) {
  std::string out;
  for (const Member& m : members) {
    out += fmt::format("{}{}={}", out.empty() ? "" : ",", m.id, m.address);
  }
  return out;
}

Result<std::string> RaftAddressOf(std::string_view service_address) {
  auto hp = ParseHostPort(service_address);
  GRANARY_TRY(hp);
  if (hp->port == 0 || hp->port == 0xffff) {
    return InvalidArgument(fmt::format("{}: a fixed port below 65535 is needed", service_address));
  }
  return HostPort{hp->host, static_cast<uint16_t>(hp->port + 1)}.ToString();
}

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kLeader:
      return "leader";
    case Role::kFollower:
      return "follower";
    case Role::kCandidate:
      return "candidate";
    default:
      return "down";
  }
}

struct RaftGroup::Impl {
  struct Pending {
    std::string command;
    ProposeDone done;
  };
  // One raft_apply in flight: the commands of one entry.
  struct Proposal {
    struct raft_apply req {};
    std::vector<ProposeDone> dones;
    int64_t sent_ms = 0;
    Impl* impl = nullptr;
  };
  struct Change {
    raft_change req{};
    Impl* impl = nullptr;
    uint64_t id = 0;
    bool then_promote = false;
    std::function<void(Status)> done;
  };
  struct Transfer {
    struct raft_transfer req {};
    Impl* impl = nullptr;
    uint64_t to = 0;
    std::function<void(Status)> done;
  };

  Impl(GroupOptions o, StateMachine& f) : options(std::move(o)), fsm(f) {}

  GroupOptions options;
  StateMachine& fsm;
  uv_loop_t loop{};
  uv_async_t wake{};
  uv_timer_t timer{};
  uv_check_t check{};
  std::unique_ptr<ResolvingTransport> transport;
  raft_io io{};
  raft_fsm raft_fsm_{};
  raft r{};
  bool io_initialised = false;
  bool raft_initialised = false;
  std::thread thread;
  int64_t lease_ms = 0;

  // Shared with other threads.
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Pending> queue;
  std::deque<std::function<void()>> tasks;
  bool stopping = false;
  bool wake_closed = false;  // uv_async_send only while false, under mu
  bool loop_done = false;
  std::string leader_address;  // guarded by mu
  uint64_t leader_id = 0;      // guarded by mu
  std::atomic<bool> leader{false};
  std::atomic<bool> ready{false};
  std::atomic<int64_t> lease_until{0};
  std::atomic<int> fence_waiters{0};
  std::atomic<uint64_t> leader_changes{0}, snapshots_taken{0}, snapshots_installed{0};

  // Loop thread only.
  unsigned inflight = 0;
  std::set<uint64_t> own_indexes;
  std::map<uint64_t, std::vector<std::shared_ptr<void>>> results;
  struct raft_barrier barrier {};
  bool barrier_inflight = false;
  bool pump_after_callbacks = false;
  int64_t barrier_sent_ms = 0;
  bool transferring = false;
  bool notified_leader = false;
  bool was_leader = false;
  uint64_t seen_leader_id = 0;
  std::string restore_from;  // leader address while a snapshot is being installed

  // ------------------------------------------------------------ helpers (loop thread)
  // False when the loop is closing: the task will not run.
  bool Post(std::function<void()> task) {
    std::lock_guard lock(mu);
    if (wake_closed) return false;
    tasks.push_back(std::move(task));
    uv_async_send(&wake);
    return true;
  }

  Status NotLeaderHere() {
    std::lock_guard lock(mu);
    return NotLeader(leader_address);
  }

  void ExtendLease(int64_t sent_ms) {
    const int64_t until = sent_ms + lease_ms;
    int64_t cur = lease_until.load();
    while (until > cur && !lease_until.compare_exchange_weak(cur, until)) {
    }
    if (fence_waiters.load() > 0) {
      std::lock_guard lock(mu);
      cv.notify_all();
    }
  }

  void Pump() {
    while (inflight < options.max_inflight) {
      std::vector<Pending> batch;
      {
        std::lock_guard lock(mu);
        size_t bytes = 0;
        while (!queue.empty() &&
               (batch.empty() || bytes + queue.front().command.size() < kMaxEntryBytes)) {
          bytes += queue.front().command.size();
          batch.push_back(std::move(queue.front()));
          queue.pop_front();
        }
      }
      if (batch.empty()) return;
      if (raft_state(&r) != RAFT_LEADER || transferring) {
        Status s = NotLeaderHere();
        for (auto& p : batch) p.done(s, nullptr);
        continue;
      }
      size_t total = 8;
      for (auto& p : batch) total += 4 + p.command.size();
      total = (total + 7) / 8 * 8;
      raft_buffer buf;
      buf.len = total;
      buf.base = raft_calloc(1, total);
      std::string header;
      PutU32(header, kEntryMagic);
      PutU32(header, static_cast<uint32_t>(batch.size()));
      char* out = static_cast<char*>(buf.base);
      std::memcpy(out, header.data(), 8);
      size_t at = 8;
      auto* proposal = new Proposal;
      proposal->impl = this;
      proposal->req.data = proposal;
      proposal->sent_ms = SteadyMs();
      for (auto& p : batch) {
        std::string len;
        PutU32(len, static_cast<uint32_t>(p.command.size()));
        std::memcpy(out + at, len.data(), 4);
        std::memcpy(out + at + 4, p.command.data(), p.command.size());
        at += 4 + p.command.size();
        proposal->dones.push_back(std::move(p.done));
      }
      int rv = raft_apply(&r, &proposal->req, &buf, 1, &Impl::Applied);
      if (rv != 0) {
        raft_free(buf.base);
        Status s = rv == RAFT_NOTLEADER ? NotLeaderHere() : RaftError("propose", rv);
        for (auto& d : proposal->dones) d(s, nullptr);
        delete proposal;
        continue;
      }
      own_indexes.insert(proposal->req.index);
      ++inflight;
    }
  }

  static void Applied(struct raft_apply* req, int status, void*) {
    auto* p = static_cast<Proposal*>(req->data);
    Impl* self = p->impl;
    --self->inflight;
    self->own_indexes.erase(req->index);
    auto node = self->results.extract(req->index);
    if (status == 0) {
      self->ExtendLease(p->sent_ms);
      for (size_t i = 0; i < p->dones.size(); ++i) {
        std::shared_ptr<void> result;
        if (!node.empty() && i < node.mapped().size()) result = node.mapped()[i];
        p->dones[i](Status::Ok(), std::move(result));
      }
    } else {
      Status s = status == RAFT_LEADERSHIPLOST || status == RAFT_NOTLEADER
                     ? self->NotLeaderHere()
                     : RaftError("propose", status);
      for (auto& d : p->dones) d(s, nullptr);
    }
    delete p;
    // Not Pump() here: libraft calls this also while it tears down a deposed leader's state
    // (failing every pending request), and a raft_apply made from inside that crashed the
    // member. The loop's check handle pumps once the callback has returned.
    self->pump_after_callbacks = true;
  }

  void StartBarrier() {
    if (barrier_inflight || transferring || raft_state(&r) != RAFT_LEADER) return;
    barrier.data = this;
    barrier_sent_ms = SteadyMs();
    if (raft_barrier(&r, &barrier, &Impl::BarrierDone) == 0) barrier_inflight = true;
  }

  static void BarrierDone(struct raft_barrier* req, int status) {
    auto* self = static_cast<Impl*>(req->data);
    self->barrier_inflight = false;
    if (status != 0 || raft_state(&self->r) != RAFT_LEADER) return;
    self->ExtendLease(self->barrier_sent_ms);
    if (!self->ready.load()) {
      // Everything committed before this term is applied: reads and housekeeping may start.
      self->ready = true;
      self->notified_leader = true;
      GLOG_INFO("event=meta_leader_ready id={} term={} applied={}", self->options.id,
                self->r.current_term, raft_last_applied(&self->r));
      self->fsm.LeadershipChanged(true);
      std::lock_guard lock(self->mu);
      self->cv.notify_all();
    }
  }

  // Runs after every loop iteration: notices role and leader changes.
  void Watch() {
    if (pump_after_callbacks) {
      pump_after_callbacks = false;
      Pump();
    }
    const bool is_leader = raft_state(&r) == RAFT_LEADER;
    raft_id lid = 0;
    const char* laddr = nullptr;
    raft_leader(&r, &lid, &laddr);
    if (lid != seen_leader_id) {
      seen_leader_id = lid;
      if (lid != 0) ++leader_changes;
      std::lock_guard lock(mu);
      leader_id = lid;
      leader_address = lid == options.id || laddr == nullptr ? std::string() : std::string(laddr);
      cv.notify_all();
    }
    if (is_leader && !was_leader) {
      was_leader = true;
      leader = true;
      GLOG_INFO("event=meta_leader_elected id={} term={}", options.id, r.current_term);
      StartBarrier();
    } else if (!is_leader && was_leader) {
      was_leader = false;
      leader = false;
      ready = false;
      lease_until = 0;
      GLOG_INFO("event=meta_leader_lost id={} term={}", options.id, r.current_term);
      if (notified_leader) {
        notified_leader = false;
        fsm.LeadershipChanged(false);
      }
      {
        std::lock_guard lock(mu);
        cv.notify_all();
      }
      Pump();  // refuse what is queued
    }
  }

  void Tick() {
    if (raft_state(&r) != RAFT_LEADER) return;
    // Renew the lease well before it runs out so reads never wait on an idle group.
    if (!ready.load() || lease_until.load() - SteadyMs() < lease_ms / 2) StartBarrier();
    Pump();
  }

  void RunTasks() {
    std::deque<std::function<void()>> run;
    {
      std::lock_guard lock(mu);
      run.swap(tasks);
    }
    for (auto& t : run) t();
    Pump();
  }

  // An entry that takes long to apply (a snapshot of a big volume copies its whole namespace)
  // blocks this loop: heartbeats and their answers wait in the sockets. Without this, the
  // election timer would count the apply as silence, and a follower would start an election (a
  // leader step down) before reading the messages that prove the group alive. The loop's clock
  // is only read at each iteration, so the time the apply took is added to it.
  void RestartElectionTimerAfter(std::chrono::steady_clock::duration took) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(took).count();
    if (ms < static_cast<int64_t>(r.election_timeout) / 4) return;
    r.election_timer_start = r.io->time(r.io) + static_cast<raft_time>(ms);
    GLOG_INFO("event=meta_long_apply ms={}", ms);
  }

  // ------------------------------------------------------------ raft_fsm callbacks
  static int FsmApply(raft_fsm* f, const raft_buffer* buf, void** result) {
    auto* self = static_cast<Impl*>(f->data);
    *result = nullptr;
    const uint64_t index = raft_last_applied(&self->r) + 1;
    std::vector<std::string_view> commands;
    if (!DecodeEntry(static_cast<const char*>(buf->base), buf->len, &commands)) {
      // A committed entry this code cannot read: applying around it would fork the state.
      GLOG_ERROR("event=meta_log_entry_unreadable index={} bytes={}", index, buf->len);
      std::abort();
    }
    if (index <= self->fsm.applied_index()) return 0;  // replay after a restart
    const auto started = std::chrono::steady_clock::now();
    auto applied = self->fsm.Apply(index, commands);
    self->RestartElectionTimerAfter(std::chrono::steady_clock::now() - started);
    if (!applied.ok()) {
      GLOG_ERROR("event=meta_apply_failed index={} error=\"{}\"", index,
                 applied.status().ToString());
      return RAFT_IOERR;
    }
    if (self->own_indexes.count(index) != 0) self->results[index] = std::move(*applied);
    return 0;
  }

  static int FsmSnapshot(raft_fsm* f, raft_buffer* bufs[], unsigned* n_bufs) {
    auto* self = static_cast<Impl*>(f->data);
    auto snap = self->fsm.Snapshot();
    if (!snap.ok()) {
      GLOG_WARN("event=meta_snapshot_failed error=\"{}\"", snap.status().ToString());
      return RAFT_BUSY;  // tried again at the next threshold
    }
    auto* arr = static_cast<raft_buffer*>(raft_malloc(sizeof(raft_buffer)));
    arr[0].len = snap->size();
    arr[0].base = raft_malloc(std::max<size_t>(snap->size(), 1));
    std::memcpy(arr[0].base, snap->data(), snap->size());
    *bufs = arr;
    *n_bufs = 1;
    ++self->snapshots_taken;
    return 0;
  }

  static int FsmRestore(raft_fsm* f, raft_buffer* buf) {
    auto* self = static_cast<Impl*>(f->data);
    std::string leader;
    if (self->raft_initialised && raft_state(&self->r) == RAFT_FOLLOWER &&
        self->r.follower_state.current_leader.address != nullptr) {
      leader = self->r.follower_state.current_leader.address;
    }
    Status s =
        self->fsm.Restore(std::string_view(static_cast<const char*>(buf->base), buf->len), leader);
    if (!s.ok()) {
      GLOG_ERROR("event=meta_snapshot_restore_failed from={} error=\"{}\"",
                 leader.empty() ? "-" : leader, s.ToString());
      return RAFT_IOERR;
    }
    raft_free(buf->base);
    if (!leader.empty()) ++self->snapshots_installed;
    return 0;
  }

  // ------------------------------------------------------------ membership
  static void ChangeDone(raft_change* req, int status) {
    auto* c = static_cast<Change*>(req->data);
    Impl* self = c->impl;
    if (status == 0 && c->then_promote) {
      // Promote once this callback has returned (no libraft call from inside its callbacks).
      c->then_promote = false;
      const bool posted = self->Post([self, c] {
        int rv = raft_assign(&self->r, &c->req, c->id, RAFT_VOTER, &Impl::ChangeDone);
        if (rv != 0) ChangeDone(&c->req, rv);
      });
      if (posted) return;
      status = RAFT_SHUTDOWN;
    }
    Status s = status == 0 ? Status::Ok()
               : status == RAFT_NOTLEADER || status == RAFT_LEADERSHIPLOST
                   ? self->NotLeaderHere()
                   : RaftError("membership change", status, raft_errmsg(&self->r));
    auto done = std::move(c->done);
    delete c;
    done(s);
  }

  static void TransferDone(struct raft_transfer* req) {
    auto* t = static_cast<Transfer*>(req->data);
    Impl* self = t->impl;
    self->transferring = false;
    raft_id lid = 0;
    const char* addr = nullptr;
    raft_leader(&self->r, &lid, &addr);
    Status s = t->to == 0 || lid == t->to
                   ? Status::Ok()
                   : Unavailable(fmt::format("leadership did not move to member {}", t->to));
    auto done = std::move(t->done);
    delete t;
    done(s);
  }

  // ------------------------------------------------------------ shutdown
  static void RaftClosed(raft* r) {
    auto* self = static_cast<Impl*>(r->data);
    raft_uv_close(&self->io);
    {
      std::lock_guard lock(self->mu);
      self->wake_closed = true;
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&self->wake), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&self->timer), nullptr);
    uv_close(reinterpret_cast<uv_handle_t*>(&self->check), nullptr);
  }

  void BeginClose() {
    std::deque<Pending> refused;
    {
      std::lock_guard lock(mu);
      refused.swap(queue);
    }
    for (auto& p : refused) p.done(Unavailable("metadata group member is stopping"), nullptr);
    uv_timer_stop(&timer);
    uv_check_stop(&check);
    if (notified_leader) {
      notified_leader = false;
      fsm.LeadershipChanged(false);
    }
    leader = false;
    ready = false;
    lease_until = 0;
    raft_close(&r, &Impl::RaftClosed);
  }
};

RaftGroup::RaftGroup(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RaftGroup::~RaftGroup() { Stop(); }

namespace {
bool Pristine(const std::string& dir) {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name == "metadata1" || name == "metadata2") return false;
  }
  return true;
}

Result<std::string> BindAddress(const GroupOptions& o) {
  auto hp = ParseHostPort(o.address);
  GRANARY_TRY(hp);
  std::string host = o.bind_host.empty() ? hp->host : o.bind_host;
  in_addr literal{};
  if (inet_pton(AF_INET, host.c_str(), &literal) != 1) {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    addrinfo* res = nullptr;
    if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0 || res == nullptr) {
      return InvalidArgument(fmt::format("raft: cannot resolve listen host {}", host));
    }
    char ip[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr, ip, sizeof(ip));
    freeaddrinfo(res);
    host = ip;
  }
  return fmt::format("{}:{}", host, hp->port + 1);
}
}  // namespace

Result<std::unique_ptr<RaftGroup>> RaftGroup::Start(GroupOptions options, StateMachine& fsm) {
  if (options.id == 0) return InvalidArgument("raft: member id must be >= 1");
  // libuv writes to peers' sockets; a peer that went away must cost EPIPE, not the process.
  signal(SIGPIPE, SIG_IGN);
  std::error_code ec;
  std::filesystem::create_directories(options.dir, ec);
  if (ec) return Internal(fmt::format("raft: create {}: {}", options.dir, ec.message()));
  auto bind = BindAddress(options);
  GRANARY_TRY(bind);
  const bool pristine = Pristine(options.dir);
  if (!pristine) {
    // This member may have acknowledged a leader's entry just before it stopped; the leader
    // counts on it not voting for another one within an election timeout (the read lease).
    std::this_thread::sleep_for(std::chrono::milliseconds(
        static_cast<int64_t>(options.election_timeout_ms * (1.0 + options.clock_drift))));
  }

  auto impl = std::make_unique<Impl>(std::move(options), fsm);
  Impl& g = *impl;
  const GroupOptions& o = g.options;
  g.lease_ms = static_cast<int64_t>(o.election_timeout_ms * (1.0 - o.clock_drift));
  if (uv_loop_init(&g.loop) != 0) return Internal("raft: uv_loop_init");
  auto cleanup_loop = [&g] {
    uv_run(&g.loop, UV_RUN_DEFAULT);
    uv_loop_close(&g.loop);
  };
  auto transport = ResolvingTransport::Create(&g.loop, *bind);
  if (!transport.ok()) {
    cleanup_loop();
    return transport.status();
  }
  g.transport = std::move(*transport);
  int rv = raft_uv_init(&g.io, &g.loop, o.dir.c_str(), g.transport->transport());
  if (rv != 0) {
    std::string msg = g.io.errmsg;
    g.transport.reset();
    cleanup_loop();
    return RaftError("open log " + o.dir, rv, msg.c_str());
  }
  g.io_initialised = true;
  raft_uv_set_snapshot_compression(&g.io, false);
  g.raft_fsm_.version = 1;
  g.raft_fsm_.data = &g;
  g.raft_fsm_.apply = &Impl::FsmApply;
  g.raft_fsm_.snapshot = &Impl::FsmSnapshot;
  g.raft_fsm_.restore = &Impl::FsmRestore;
  rv = raft_init(&g.r, &g.io, &g.raft_fsm_, o.id, o.address.c_str());
  if (rv != 0) {
    std::string msg = raft_errmsg(&g.r);
    raft_uv_close(&g.io);
    cleanup_loop();
    g.transport.reset();
    return RaftError("init", rv, msg.c_str());
  }
  g.r.data = &g;
  g.raft_initialised = true;
  raft_set_election_timeout(&g.r, o.election_timeout_ms);
  raft_set_heartbeat_timeout(&g.r, o.heartbeat_ms);
  raft_set_snapshot_threshold(&g.r, o.snapshot_threshold);
  raft_set_snapshot_trailing(&g.r, o.snapshot_trailing);
  raft_set_pre_vote(&g.r, true);
  raft_set_install_snapshot_timeout(&g.r, 120000);

  auto fail_after_init = [&](Status s) -> Status {
    raft_close(&g.r, [](raft* r) { raft_uv_close(&static_cast<Impl*>(r->data)->io); });
    cleanup_loop();
    g.transport.reset();
    return s;
  };
  if (pristine && !o.bootstrap.empty()) {
    raft_configuration conf;
    raft_configuration_init(&conf);
    for (const Member& m : o.bootstrap) {
      raft_configuration_add(&conf, m.id, m.address.c_str(), RAFT_VOTER);
    }
    rv = raft_bootstrap(&g.r, &conf);
    raft_configuration_close(&conf);
    if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) {
      return fail_after_init(RaftError("bootstrap", rv, raft_errmsg(&g.r)));
    }
  }
  rv = raft_start(&g.r);
  if (rv != 0) return fail_after_init(RaftError("start", rv, raft_errmsg(&g.r)));

  g.wake.data = &g;
  uv_async_init(&g.loop, &g.wake, [](uv_async_t* h) { static_cast<Impl*>(h->data)->RunTasks(); });
  g.timer.data = &g;
  uv_timer_init(&g.loop, &g.timer);
  uv_timer_start(
      &g.timer, [](uv_timer_t* h) { static_cast<Impl*>(h->data)->Tick(); }, o.heartbeat_ms,
      o.heartbeat_ms);
  g.check.data = &g;
  uv_check_init(&g.loop, &g.check);
  uv_check_start(&g.check, [](uv_check_t* h) { static_cast<Impl*>(h->data)->Watch(); });
  GLOG_INFO("event=meta_raft_started id={} address={} raft={} dir={} bootstrap={}", o.id, o.address,
            *bind, o.dir, pristine && !o.bootstrap.empty() ? "yes" : "no");
  g.thread = std::thread([&g] {
    uv_run(&g.loop, UV_RUN_DEFAULT);
    std::lock_guard lock(g.mu);
    g.loop_done = true;
    g.wake_closed = true;
    g.cv.notify_all();
  });
  return std::unique_ptr<RaftGroup>(new RaftGroup(std::move(impl)));
}

void RaftGroup::Stop() {
  if (!impl_) return;
  Impl& g = *impl_;
  {
    std::lock_guard lock(g.mu);
    if (g.stopping) {
      if (!g.thread.joinable()) return;
    }
    g.stopping = true;
  }
  g.Post([&g] { g.BeginClose(); });
  if (g.thread.joinable()) g.thread.join();
  // Tasks posted after the loop ended never run: answer what waits on them.
  std::deque<Impl::Pending> left;
  std::deque<std::function<void()>> tasks;
  {
    std::lock_guard lock(g.mu);
    left.swap(g.queue);
    tasks.swap(g.tasks);
  }
  for (auto& p : left) p.done(Unavailable("metadata group member is stopping"), nullptr);
  if (uv_loop_alive(&g.loop) == 0) uv_loop_close(&g.loop);
  g.transport.reset();
}

void RaftGroup::Propose(std::string command, ProposeDone done) {
  Impl& g = *impl_;
  if (!g.leader.load()) {
    done(g.NotLeaderHere(), nullptr);
    return;
  }
  std::unique_lock lock(g.mu);
  if (g.stopping || g.wake_closed) {
    lock.unlock();
    done(Unavailable("metadata group member is stopping"), nullptr);
    return;
  }
  g.queue.push_back({std::move(command), std::move(done)});
  uv_async_send(&g.wake);
}

Status RaftGroup::ReadFence(std::chrono::milliseconds wait) {
  Impl& g = *impl_;
  auto valid = [&g] {
    return g.ready.load() && g.leader.load() && SteadyMs() < g.lease_until.load();
  };
  if (valid()) return Status::Ok();
  if (!g.leader.load()) return g.NotLeaderHere();
  g.Post([&g] { g.StartBarrier(); });
  ++g.fence_waiters;
  std::unique_lock lock(g.mu);
  bool ok = g.cv.wait_for(lock, wait, [&] { return valid() || !g.leader.load() || g.stopping; });
  --g.fence_waiters;
  if (ok && valid()) return Status::Ok();
  if (!g.leader.load()) return NotLeader(g.leader_address);
  return Unavailable("the metadata leader cannot reach a majority of its group");
}

bool RaftGroup::is_leader() const { return impl_->leader.load(); }

std::string RaftGroup::leader_address() const {
  std::lock_guard lock(impl_->mu);
  return impl_->leader_address;
}

uint64_t RaftGroup::id() const { return impl_->options.id; }

GroupCounters RaftGroup::counters() const {
  return {impl_->leader_changes.load(), impl_->snapshots_taken.load(),
          impl_->snapshots_installed.load()};
}

Result<GroupView> RaftGroup::View() {
  Impl& g = *impl_;
  auto promise = std::make_shared<std::promise<GroupView>>();
  auto future = promise->get_future();
  g.Post([&g, promise] {
    GroupView v;
    raft* r = &g.r;
    v.id = g.options.id;
    switch (raft_state(r)) {
      case RAFT_LEADER:
        v.role = Role::kLeader;
        break;
      case RAFT_FOLLOWER:
        v.role = Role::kFollower;
        break;
      case RAFT_CANDIDATE:
        v.role = Role::kCandidate;
        break;
      default:
        v.role = Role::kUnavailable;
    }
    v.term = r->current_term;
    raft_id lid = 0;
    const char* laddr = nullptr;
    raft_leader(r, &lid, &laddr);
    v.leader_id = lid;
    v.leader_address = laddr ? laddr : "";
    v.commit_index = r->commit_index;
    v.applied_index = raft_last_applied(r);
    v.last_index = raft_last_index(r);
    v.snapshot_index = r->log.snapshot.last_index;
    for (unsigned i = 0; i < r->configuration.n; ++i) {
      const raft_server& s = r->configuration.servers[i];
      MemberView m;
      m.member = {s.id, s.address ? s.address : ""};
      m.voter = s.role == RAFT_VOTER;
      if (raft_state(r) == RAFT_LEADER && r->leader_state.progress != nullptr) {
        m.match_index =
            s.id == g.options.id ? raft_last_index(r) : r->leader_state.progress[i].match_index;
      }
      v.members.push_back(std::move(m));
    }
    promise->set_value(std::move(v));
  });
  if (future.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    return Unavailable("metadata group member is not running");
  }
  return future.get();
}

void RaftGroup::AddMember(Member member, std::function<void(Status)> done) {
  Impl& g = *impl_;
  g.Post([&g, member, done = std::move(done)]() mutable {
    auto* c = new Impl::Change;
    c->impl = &g;
    c->req.data = c;
    c->id = member.id;
    c->then_promote = true;
    c->done = std::move(done);
    int rv = raft_add(&g.r, &c->req, member.id, member.address.c_str(), &Impl::ChangeDone);
    if (rv != 0) {
      Status s = rv == RAFT_NOTLEADER ? g.NotLeaderHere()
                 : rv == RAFT_DUPLICATEID || rv == RAFT_DUPLICATEADDRESS
                     ? AlreadyExists(fmt::format("member {} ({}) is already in the group: {}",
                                                 member.id, member.address, raft_errmsg(&g.r)))
                     : RaftError("add member", rv, raft_errmsg(&g.r));
      auto d = std::move(c->done);
      delete c;
      d(s);
    }
  });
}

void RaftGroup::RemoveMember(uint64_t id, std::function<void(Status)> done) {
  Impl& g = *impl_;
  g.Post([&g, id, done = std::move(done)]() mutable {
    if (id == g.options.id && raft_state(&g.r) == RAFT_LEADER) {
      // The leader hands over first; the retry reaches the new leader, which removes it.
      auto* t = new Impl::Transfer;
      t->impl = &g;
      t->req.data = t;
      t->to = 0;
      t->done = [](Status) {};
      g.transferring = true;
      g.lease_until = 0;
      if (raft_transfer(&g.r, &t->req, 0, &Impl::TransferDone) != 0) {
        g.transferring = false;
        delete t;
      }
      done(Unavailable("member " + std::to_string(id) +
                       " is the leader: leadership is being handed over; retry"));
      return;
    }
    auto* c = new Impl::Change;
    c->impl = &g;
    c->req.data = c;
    c->id = id;
    c->done = std::move(done);
    int rv = raft_remove(&g.r, &c->req, id, &Impl::ChangeDone);
    if (rv != 0) {
      Status s = rv == RAFT_NOTLEADER ? g.NotLeaderHere()
                 : rv == RAFT_BADID   ? NotFound(fmt::format("member {} is not in the group", id))
                                      : RaftError("remove member", rv, raft_errmsg(&g.r));
      auto d = std::move(c->done);
      delete c;
      d(s);
    }
  });
}

void RaftGroup::TransferLeadership(uint64_t to, std::function<void(Status)> done) {
  Impl& g = *impl_;
  g.Post([&g, to, done = std::move(done)]() mutable {
    auto* t = new Impl::Transfer;
    t->impl = &g;
    t->req.data = t;
    t->to = to;
    t->done = std::move(done);
    // No lease reads while a transfer may let another member win an election early.
    g.transferring = true;
    g.lease_until = 0;
    int rv = raft_transfer(&g.r, &t->req, to, &Impl::TransferDone);
    if (rv != 0) {
      g.transferring = false;
      auto d = std::move(t->done);
      delete t;
      d(rv == RAFT_NOTLEADER ? g.NotLeaderHere()
                             : RaftError("transfer leadership", rv, raft_errmsg(&g.r)));
    }
  });
}

}  // namespace granary::replication
