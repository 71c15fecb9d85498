#include "client/ec_block_io.h"

#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "common/crc32c.h"
#include "common/log.h"
#include "common/metrics.h"

namespace granary::client {
namespace {

using Clock = std::chrono::steady_clock;

uint64_t AlignDown(uint64_t x) { return x / kCrcBlockSize * kCrcBlockSize; }
uint64_t AlignUp(uint64_t x) { return (x + kCrcBlockSize - 1) / kCrcBlockSize * kCrcBlockSize; }

Counter& Rebuilt(const char* reason) {
  return Metrics().GetCounter("granary_client_ec_fragments_rebuilt_total",
                              "EC data fragments a reader rebuilt from other fragments, by why "
                              "the fragment itself was not used.",
                              fmt::format("reason=\"{}\"", reason));
}

Counter& DegradedWrites() {
  static Counter& c = Metrics().GetCounter(
      "granary_client_ec_degraded_writes_total",
      "EC blocks written with some fragments skipped because their member was down.");
  return c;
}

BlockKey FragmentKey(const BlockKey& key, int fragment) {
  BlockKey k = key;
  k.set_fragment(static_cast<uint32_t>(fragment));
  return k;
}

}  // namespace

class EcBlockIo::SlowNodes {
 public:
  void Mark(uint32_t node, Clock::time_point until) {
    std::lock_guard lock(mu_);
    until_[node] = until;
  }
  bool IsSlow(uint32_t node) {
    std::lock_guard lock(mu_);
    auto it = until_.find(node);
    if (it == until_.end()) return false;
    if (Clock::now() < it->second) return true;
    until_.erase(it);
    return false;
  }

 private:
  std::mutex mu_;
  std::unordered_map<uint32_t, Clock::time_point> until_;
};

EcBlockIo::EcBlockIo(BlockIo& io, EcReadOptions options)
    : io_(io), options_(options), slow_(std::make_unique<SlowNodes>()) {}

EcBlockIo::~EcBlockIo() = default;

// ---- writes ----------------------------------------------------------------------------------

std::future<Status> EcBlockIo::WriteAsync(const BlockTarget& target, const BlockKey& key,
                                          const BlockOrigin& origin, std::span<const uint8_t> block,
                                          const EcCodec& codec, uint32_t min_fragments) {
  struct State {
    EcCodec::Encoded encoded;
    std::mutex mu;
    int remaining = 0;
    Status first_error;
    std::promise<Status> done;
    void Finish(Status s) {
      bool last = false;
      Status result;
      {
        std::lock_guard lock(mu);
        if (!s.ok() && first_error.ok()) first_error = std::move(s);
        last = --remaining == 0;
        if (last) result = first_error;
      }
      if (last) done.set_value(std::move(result));
    }
  };
  auto state = std::make_shared<State>();
  auto future = state->done.get_future();
  const int n = codec.n();
  const std::string what = fmt::format("write slice {} block {} (ec {}+{})", key.slice_id(),
                                       key.block_index(), codec.k(), codec.m());
  if (static_cast<int>(target.members.size()) < n) {
    state->done.set_value(
        Unavailable(fmt::format("pool {} pg {} has {} members, {} needed", target.pool_id,
                                target.pg, target.members.size(), n))
            .WithContext(what));
    return future;
  }
  int up = 0;
  for (int i = 0; i < n; ++i) {
    const Replica& r = target.members[i];
    up += r.up && !r.data_address.empty() ? 1 : 0;
  }
  if (up < static_cast<int>(min_fragments)) {
    state->done.set_value(Unavailable(fmt::format("pool {} pg {}: {} of {} members up, {} needed",
                                                  target.pool_id, target.pg, up, n, min_fragments))
                              .WithContext(what));
    return future;
  }
  if (up < n) DegradedWrites().Add();
  state->encoded = codec.Encode(block);
  state->remaining = up + 1;  // +1: the loop below holds the state open until every write is sent
  for (int i = 0; i < n; ++i) {
    const Replica& r = target.members[i];
    if (!r.up || r.data_address.empty()) continue;
    io_.WriteAsync(target.OnlyMember(i), FragmentKey(key, i), origin, state->encoded.fragments[i],
                   1, [state](Status s) { state->Finish(std::move(s)); });
  }
  state->Finish(Status::Ok());
  return future;
}

// ---- reads -----------------------------------------------------------------------------------

class EcBlockIo::PendingRead {
 public:
  // One READ_BLOCK issued for this block: fragment and the aligned fragment range asked for.
  struct Request {
    int fragment = 0;
    uint64_t offset = 0;
    uint64_t length = 0;
    bool gather = false;        // issued to rebuild lost fragments (else a first-try data read)
    bool skipped_slow = false;  // not sent: the node recently missed a fragment deadline
  };
  struct Arrival {
    size_t request = 0;
    Result<DataReply> reply = Internal("unset");
  };
  // Callbacks run on connection receiver threads: they only queue the reply here.
  struct Inbox {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Arrival> arrivals;
  };
  // A data fragment's share of the caller's range: fragment bytes [begin, end) go to
  // out[out_offset, out_offset + end - begin).
  struct Want {
    int fragment = 0;
    uint64_t begin = 0;
    uint64_t end = 0;
    uint64_t out_offset = 0;
    bool delivered = false;
  };

  PendingRead(BlockIo& io, const BlockTarget& target, const BlockKey& key, const EcCodec& codec,
              uint64_t fragment_size, Clock::time_point hard_deadline)
      : io_(io),
        target_(target),
        key_(key),
        codec_(codec),
        fragment_size_(fragment_size),
        started_(Clock::now()),
        hard_deadline_(hard_deadline),
        inbox_(std::make_shared<Inbox>()) {}

  size_t Issue(int fragment, uint64_t offset, uint64_t length, bool gather,
               bool skip_slow = false) {
    const size_t id = requests_.size();
    requests_.push_back({fragment, offset, length, gather, skip_slow});
    auto inbox = inbox_;
    auto done = [inbox, id](Result<DataReply> r) {
      std::lock_guard lock(inbox->mu);
      inbox->arrivals.push_back({id, std::move(r)});
      inbox->cv.notify_one();
    };
    const Replica& member = target_.members[fragment];
    if (!member.up) {
      done(Unavailable(fmt::format("node {} is down", member.node_id)));
    } else if (skip_slow) {
      done(Unavailable(fmt::format("node {} missed a fragment deadline recently", member.node_id)));
    } else {
      io_.ReadAsync(target_, member, FragmentKey(key_, fragment), offset, length, hard_deadline_,
                    std::move(done));
    }
    return id;
  }

  std::optional<Arrival> Next(Clock::time_point until) {
    std::unique_lock lock(inbox_->mu);
    if (!inbox_->cv.wait_until(lock, until, [&] { return !inbox_->arrivals.empty(); })) {
      return std::nullopt;
    }
    Arrival a = std::move(inbox_->arrivals.front());
    inbox_->arrivals.pop_front();
    return a;
  }

  BlockIo& io_;
  const BlockTarget target_;
  const BlockKey key_;
  const EcCodec& codec_;
  const uint64_t fragment_size_;
  const Clock::time_point started_;
  const Clock::time_point hard_deadline_;
  std::shared_ptr<Inbox> inbox_;
  std::vector<Request> requests_;
  std::vector<Want> wants_;
};

void EcBlockIo::PendingReadDeleter::operator()(PendingRead* p) const { delete p; }

EcBlockIo::PendingReadPtr EcBlockIo::StartRead(const BlockTarget& target, const BlockKey& key,
                                               const EcCodec& codec, uint64_t block_length,
                                               uint64_t offset, uint64_t length) {
  const uint64_t f = EcFragmentSize(block_length, codec.k());
  PendingReadPtr p(
      new PendingRead(io_, target, key, codec, f, Clock::now() + options_.request_timeout));
  const uint64_t end = offset + length;
  for (uint64_t i = offset / f; i * f < end && length > 0; ++i) {
    PendingRead::Want w;
    w.fragment = static_cast<int>(i);
    w.begin = std::max(offset, i * f) - i * f;
    w.end = std::min(end, (i + 1) * f) - i * f;
    w.out_offset = i * f + w.begin - offset;
    p->wants_.push_back(w);
  }
  if (static_cast<int>(target.members.size()) < codec.n()) return p;  // FinishRead says why
  for (const auto& w : p->wants_) {
    const bool slow = slow_->IsSlow(target.members[w.fragment].node_id);
    p->Issue(w.fragment, AlignDown(w.begin), w.end - AlignDown(w.begin), /*gather=*/false, slow);
  }
  return p;
}

Status EcBlockIo::FinishRead(PendingReadPtr pending, std::span<uint8_t> out) {
  PendingRead& p = *pending;
  const int k = p.codec_.k();
  const int n = p.codec_.n();
  const std::string what = fmt::format("read slice {} block {} (ec {}+{})", p.key_.slice_id(),
                                       p.key_.block_index(), k, p.codec_.m());
  if (static_cast<int>(p.target_.members.size()) < n) {
    return Unavailable(fmt::format("pool {} pg {} has {} members, {} needed", p.target_.pool_id,
                                   p.target_.pg, p.target_.members.size(), n))
        .WithContext(what);
  }
  if (p.wants_.empty()) return Status::Ok();

  // Per fragment: why it could not be used (empty while usable), and its verified reply.
  std::vector<std::string> failure(n);
  std::vector<const char*> reason(n, nullptr);
  std::vector<std::optional<DataReply>> good(n);
  bool stale = false;

  auto check = [&](const PendingRead::Request& r, Result<DataReply>& reply) -> bool {
    const Replica& member = p.target_.members[r.fragment];
    Status s = reply.ok() ? p.io_.CheckReply(*reply, member, FragmentKey(p.key_, r.fragment),
                                             r.offset, r.length)
                          : reply.status();
    if (s.ok()) return true;
    stale = stale || s.code() == Code::STALE_EPOCH;
    failure[r.fragment] =
        fmt::format("fragment {} on node {}: {}", r.fragment, member.node_id, s.ToString());
    reason[r.fragment] = r.skipped_slow              ? "slow"
                         : s.code() == Code::CORRUPT ? "corrupt"
                                                     : "unavailable";
    GLOG_DEBUG("event=ec_fragment_failed slice={} block={} fragment={} error=\"{}\"",
               p.key_.slice_id(), p.key_.block_index(), r.fragment, s.ToString());
    return false;
  };
  auto deliver = [&](PendingRead::Want& w, const DataReply& reply) {
    const uint64_t start = reply.header.crc_offset();
    std::memcpy(out.data() + w.out_offset, reply.payload.data() + (w.begin - start),
                w.end - w.begin);
    w.delivered = true;
  };
  auto want_of = [&](int fragment) -> PendingRead::Want* {
    for (auto& w : p.wants_) {
      if (w.fragment == fragment) return &w;
    }
    return nullptr;
  };
  auto undelivered = [&] {
    return std::count_if(p.wants_.begin(), p.wants_.end(),
                         [](const auto& w) { return !w.delivered; });
  };

  // Phase 1: the data fragments, until each answered or the fragment deadline passed.
  const auto first_deadline = std::min(p.started_ + options_.fragment_deadline, p.hard_deadline_);
  // First tries still unanswered, by fragment (a late answer is still welcome in phase 2).
  std::vector<bool> awaiting(n, false);
  for (const auto& r : p.requests_) awaiting[r.fragment] = true;
  size_t answered = 0;
  while (answered < p.requests_.size()) {
    auto a = p.Next(first_deadline);
    if (!a) break;
    ++answered;
    const PendingRead::Request& r = p.requests_[a->request];
    awaiting[r.fragment] = false;
    if (!check(r, a->reply)) continue;
    deliver(*want_of(r.fragment), *a->reply);
    good[r.fragment] = std::move(*a->reply);
  }
  if (undelivered() == 0) return Status::Ok();

  // Phase 2: rebuild the undelivered ones over the union U of their (aligned) ranges, from any
  // K fragments holding U intact — data fragments already read when they cover it, then the
  // nearest others.
  std::vector<bool> lost(n, false);
  uint64_t u_begin = p.fragment_size_, u_end = 0;
  for (const auto& w : p.wants_) {
    if (w.delivered) continue;
    lost[w.fragment] = true;
    if (!reason[w.fragment]) {
      reason[w.fragment] = "slow";
      slow_->Mark(p.target_.members[w.fragment].node_id,
                  Clock::now() + 10 * options_.fragment_deadline);
      failure[w.fragment] =
          fmt::format("fragment {} on node {}: no answer within {} ms", w.fragment,
                      p.target_.members[w.fragment].node_id, options_.fragment_deadline.count());
    }
    u_begin = std::min(u_begin, AlignDown(w.begin));
    u_end = std::max(u_end, std::min(AlignUp(w.end), p.fragment_size_));
  }
  const uint64_t u_length = u_end - u_begin;
  auto covers = [&](const DataReply& reply) {
    const uint64_t start = reply.header.crc_offset();
    return start <= u_begin && start + reply.payload.size() >= u_end;
  };
  std::vector<uint8_t*> source(n, nullptr);
  int sources = 0;
  for (int i = 0; i < n; ++i) {
    if (good[i] && covers(*good[i])) {
      source[i] = good[i]->payload.data() + (u_begin - good[i]->header.crc_offset());
      ++sources;
    }
  }
  // Candidates, nearest first: fragments neither failed, nor lost, nor already a source.
  std::vector<int> candidates, slow_candidates;
  for (size_t i : p.target_.read_order) {
    const int f = static_cast<int>(i);
    if (f >= n || lost[f] || source[f] || !failure[f].empty()) continue;
    (slow_->IsSlow(p.target_.members[f].node_id) ? slow_candidates : candidates).push_back(f);
  }
  candidates.insert(candidates.end(), slow_candidates.begin(), slow_candidates.end());
  size_t next_candidate = 0;
  int asked = 0;  // gather reads outstanding
  auto ask_one = [&]() -> bool {
    if (next_candidate >= candidates.size()) return false;
    p.Issue(candidates[next_candidate++], u_begin, u_length, /*gather=*/true);
    ++asked;
    return true;
  };
  for (int i = sources; i < k && ask_one(); ++i) {
  }
  std::vector<std::optional<DataReply>> gathered(n);
  auto hedge = std::min(Clock::now() + options_.fragment_deadline, p.hard_deadline_);
  while (sources < k && undelivered() > 0) {
    if (asked == 0 && next_candidate >= candidates.size()) {
      // Nothing left to ask; late first-try answers may still arrive until the hard deadline.
      hedge = p.hard_deadline_;
      if (std::none_of(p.wants_.begin(), p.wants_.end(),
                       [&](const auto& w) { return !w.delivered && awaiting[w.fragment]; })) {
        break;
      }
    }
    auto a = p.Next(hedge);
    if (!a) {
      if (Clock::now() >= p.hard_deadline_) break;
      ask_one();  // hedge: one more fragment every fragment_deadline without enough answers
      hedge = std::min(Clock::now() + options_.fragment_deadline, p.hard_deadline_);
      continue;
    }
    const PendingRead::Request& r = p.requests_[a->request];
    if (!r.gather) {
      // A late first-try answer of a lost data fragment: use it as it is.
      awaiting[r.fragment] = false;
      if (!check(r, a->reply)) continue;
      PendingRead::Want* w = want_of(r.fragment);
      if (!w->delivered) deliver(*w, *a->reply);
      continue;
    }
    --asked;
    if (!check(r, a->reply)) {
      ask_one();
      continue;
    }
    gathered[r.fragment] = std::move(*a->reply);
    source[r.fragment] = gathered[r.fragment]->payload.data() +
                         (u_begin - gathered[r.fragment]->header.crc_offset());
    ++sources;
  }
  if (undelivered() == 0) return Status::Ok();

  if (sources < k) {
    std::string detail;
    for (int i = 0; i < n; ++i) {
      if (failure[i].empty()) continue;
      if (!detail.empty()) detail += "; ";
      detail += failure[i];
    }
    std::string message =
        fmt::format("only {} of {} needed fragments readable: {}", sources, k, detail);
    return Status(stale ? Code::STALE_EPOCH : Code::UNAVAILABLE, message).WithContext(what);
  }

  // Rebuild the lost data fragments over U. Fragments that were answered meanwhile are not
  // rebuilt again.
  std::vector<bool> present(n, false), want(n, false);
  int lost_count = 0;
  for (int i = 0; i < n; ++i) present[i] = source[i] != nullptr;
  for (const auto& w : p.wants_) {
    if (w.delivered || present[w.fragment]) continue;
    want[w.fragment] = true;
    ++lost_count;
  }
  AlignedBuffer rebuilt(static_cast<size_t>(u_length * lost_count));
  std::vector<uint8_t*> fragments = source;
  int slot = 0;
  for (int i = 0; i < n; ++i) {
    if (want[i]) fragments[i] = rebuilt.data() + u_length * slot++;
  }
  GRANARY_TRY(p.codec_.Decode(fragments.data(), present, want, u_length).WithContext(what));
  for (auto& w : p.wants_) {
    if (w.delivered) continue;
    if (present[w.fragment]) {  // gathered itself after all: copy from its own bytes
      std::memcpy(out.data() + w.out_offset, source[w.fragment] + (w.begin - u_begin),
                  w.end - w.begin);
    } else {
      std::memcpy(out.data() + w.out_offset, fragments[w.fragment] + (w.begin - u_begin),
                  w.end - w.begin);
      Rebuilt(reason[w.fragment]).Add();
      GLOG_INFO("event=ec_fragment_rebuilt slice={} block={} fragment={} reason={} detail=\"{}\"",
                p.key_.slice_id(), p.key_.block_index(), w.fragment, reason[w.fragment],
                failure[w.fragment]);
    }
    w.delivered = true;
  }
  return Status::Ok();
}

}  // namespace granary::client
