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
        n_(codec.n()),
        fragment_size_(fragment_size),
        started_(Clock::now()),
        hard_deadline_(hard_deadline),
        inbox_(std::make_shared<Inbox>()),
        failure_(n_),
        reason_(n_, nullptr),
        good_(n_),
        awaiting_(n_, false) {}

  std::string What() const {
    return fmt::format("read slice {} block {} (ec {}+{})", key_.slice_id(), key_.block_index(),
                       codec_.k(), codec_.m());
  }

  size_t Issue(int fragment, uint64_t offset, uint64_t length, bool gather,
               bool skip_slow = false) {
    const size_t id = requests_.size();
    requests_.push_back({fragment, offset, length, gather, skip_slow});
    if (!gather) awaiting_[fragment] = true;
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

  // Phase 1: the first tries of the data fragments, until each answered or `deadline` (from the
  // block's first request) passed. Good bytes go to `out`.
  void FirstTries(std::chrono::milliseconds deadline, std::span<uint8_t> out) {
    // At least a quarter of the deadline from now: a reader still busy with earlier blocks of
    // its pipeline must not count its own lateness against the datanode.
    const auto until =
        std::min(std::max(started_ + deadline, Clock::now() + deadline / 4), hard_deadline_);
    for (size_t answered = 0; answered < requests_.size(); ++answered) {
      auto a = Next(until);
      if (!a) break;
      if (!FirstTryAnswered(*a, out)) continue;
      good_[requests_[a->request].fragment] = std::move(*a->reply);
    }
  }

  // Phase 2: rebuilds the undelivered data fragments over the union U of their (aligned)
  // ranges, from any K fragments holding U intact — data fragments already read when they cover
  // U, then the nearest others. Late first tries are still used.
  Status Rebuild(std::chrono::milliseconds deadline, SlowNodes& slow, std::span<uint8_t> out);

  size_t target_members() const { return target_.members.size(); }
  uint32_t target_pool() const { return target_.pool_id; }
  uint32_t target_pg() const { return target_.pg; }
  int codec_n() const { return n_; }

  size_t Undelivered() const {
    return std::count_if(wants_.begin(), wants_.end(), [](const Want& w) { return !w.delivered; });
  }

  std::vector<Want> wants_;

 private:
  std::optional<Arrival> Next(Clock::time_point until) {
    std::unique_lock lock(inbox_->mu);
    if (!inbox_->cv.wait_until(lock, until, [&] { return !inbox_->arrivals.empty(); })) {
      return std::nullopt;
    }
    Arrival a = std::move(inbox_->arrivals.front());
    inbox_->arrivals.pop_front();
    return a;
  }

  // CRC-checks a reply to `r`; on failure records why the fragment cannot be used.
  bool Check(const Request& r, Result<DataReply>& reply) {
    const Replica& member = target_.members[r.fragment];
    Status s = reply.ok() ? io_.CheckReply(*reply, member, FragmentKey(key_, r.fragment), r.offset,
                                           r.length)
                          : reply.status();
    if (s.ok()) return true;
    stale_ = stale_ || s.code() == Code::STALE_EPOCH;
    failure_[r.fragment] =
        fmt::format("fragment {} on node {}: {}", r.fragment, member.node_id, s.ToString());
    reason_[r.fragment] = r.skipped_slow              ? "slow"
                          : s.code() == Code::CORRUPT ? "corrupt"
                                                      : "unavailable";
    GLOG_DEBUG("event=ec_fragment_failed slice={} block={} fragment={} error=\"{}\"",
               key_.slice_id(), key_.block_index(), r.fragment, s.ToString());
    return false;
  }

  // A first try answered: checked, and its bytes copied out when good.
  bool FirstTryAnswered(Arrival& a, std::span<uint8_t> out) {
    const Request& r = requests_[a.request];
    awaiting_[r.fragment] = false;
    if (!Check(r, a.reply)) return false;
    for (Want& w : wants_) {
      if (w.fragment != r.fragment || w.delivered) continue;
      const uint64_t start = a.reply->header.crc_offset();
      std::memcpy(out.data() + w.out_offset, a.reply->payload.data() + (w.begin - start),
                  w.end - w.begin);
      w.delivered = true;
    }
    return true;
  }

  Status NotEnough(int sources) const {
    std::string detail;
    for (const std::string& f : failure_) {
      if (f.empty()) continue;
      if (!detail.empty()) detail += "; ";
      detail += f;
    }
    return Status(stale_ ? Code::STALE_EPOCH : Code::UNAVAILABLE,
                  fmt::format("only {} of {} needed fragments readable: {}", sources, codec_.k(),
                              detail))
        .WithContext(What());
  }

  BlockIo& io_;
  const BlockTarget target_;
  const BlockKey key_;
  const EcCodec& codec_;
  const int n_;
  const uint64_t fragment_size_;
  const Clock::time_point started_;
  const Clock::time_point hard_deadline_;
  std::shared_ptr<Inbox> inbox_;
  std::vector<Request> requests_;
  // Per fragment: why it cannot be used (empty while usable) and the metric reason, its
  // verified first-try reply, and whether that first try is still unanswered.
  std::vector<std::string> failure_;
  std::vector<const char*> reason_;
  std::vector<std::optional<DataReply>> good_;
  std::vector<bool> awaiting_;
  bool stale_ = false;
};

Status EcBlockIo::PendingRead::Rebuild(std::chrono::milliseconds deadline, SlowNodes& slow,
                                       std::span<uint8_t> out) {
  const int k = codec_.k();
  std::vector<bool> lost(n_, false);
  uint64_t u_begin = fragment_size_, u_end = 0;
  for (const Want& w : wants_) {
    if (w.delivered) continue;
    lost[w.fragment] = true;
    if (!reason_[w.fragment]) {  // no answer yet: late
      reason_[w.fragment] = "slow";
      slow.Mark(target_.members[w.fragment].node_id, Clock::now() + 10 * deadline);
      failure_[w.fragment] =
          fmt::format("fragment {} on node {}: no answer within {} ms", w.fragment,
                      target_.members[w.fragment].node_id, deadline.count());
    }
    u_begin = std::min(u_begin, AlignDown(w.begin));
    u_end = std::max(u_end, std::min(AlignUp(w.end), fragment_size_));
  }
  const uint64_t u_length = u_end - u_begin;

  // Sources: pointers to U in K (or more) intact fragments.
  std::vector<uint8_t*> source(n_, nullptr);
  int sources = 0;
  auto add_source = [&](int f, DataReply& reply) {
    const uint64_t start = reply.header.crc_offset();
    if (start > u_begin || start + reply.payload.size() < u_end) return;
    source[f] = reply.payload.data() + (u_begin - start);
    ++sources;
  };
  for (int i = 0; i < n_; ++i) {
    if (good_[i]) add_source(i, *good_[i]);
  }
  // Candidates, nearest first, recently slow nodes last: neither failed, lost, nor a source.
  std::vector<int> candidates, slow_candidates;
  for (size_t i : target_.read_order) {
    const int f = static_cast<int>(i);
    if (f >= n_ || lost[f] || source[f] || !failure_[f].empty()) continue;
    (slow.IsSlow(target_.members[f].node_id) ? slow_candidates : candidates).push_back(f);
  }
  candidates.insert(candidates.end(), slow_candidates.begin(), slow_candidates.end());
  size_t next_candidate = 0;
  int asked = 0;  // gather reads outstanding
  auto ask_one = [&] {
    if (next_candidate >= candidates.size()) return;
    Issue(candidates[next_candidate++], u_begin, u_length, /*gather=*/true);
    ++asked;
  };
  for (int i = sources; i < k; ++i) ask_one();

  std::vector<std::optional<DataReply>> gathered(n_);
  auto hedge = std::min(Clock::now() + deadline, hard_deadline_);
  while (sources < k && Undelivered() > 0) {
    if (asked == 0 && next_candidate >= candidates.size()) {
      // Nothing left to ask: only a late first try can still help, until the hard deadline.
      hedge = hard_deadline_;
      if (std::none_of(wants_.begin(), wants_.end(),
                       [&](const Want& w) { return !w.delivered && awaiting_[w.fragment]; })) {
        break;
      }
    }
    auto a = Next(hedge);
    if (!a) {
      if (Clock::now() >= hard_deadline_) break;
      ask_one();  // hedge: one more fragment each deadline without enough answers
      hedge = std::min(Clock::now() + deadline, hard_deadline_);
      continue;
    }
    const Request& r = requests_[a->request];
    if (!r.gather) {
      FirstTryAnswered(*a, out);
      continue;
    }
    --asked;
    if (!Check(r, a->reply)) {
      ask_one();
      continue;
    }
    gathered[r.fragment] = std::move(*a->reply);
    add_source(r.fragment, *gathered[r.fragment]);
  }
  if (Undelivered() == 0) return Status::Ok();
  if (sources < k) return NotEnough(sources);

  // Rebuild what is still undelivered (not fragments that answered late meanwhile).
  std::vector<bool> present(n_, false), want(n_, false);
  int wanted = 0;
  for (int i = 0; i < n_; ++i) present[i] = source[i] != nullptr;
  for (const Want& w : wants_) {
    if (w.delivered) continue;
    want[w.fragment] = true;
    ++wanted;
  }
  AlignedBuffer rebuilt(static_cast<size_t>(u_length * wanted));
  std::vector<uint8_t*> fragments = source;
  int slot = 0;
  for (int i = 0; i < n_; ++i) {
    if (want[i]) fragments[i] = rebuilt.data() + u_length * slot++;
  }
  GRANARY_TRY(codec_.Decode(fragments.data(), present, want, u_length).WithContext(What()));
  for (Want& w : wants_) {
    if (w.delivered) continue;
    std::memcpy(out.data() + w.out_offset, fragments[w.fragment] + (w.begin - u_begin),
                w.end - w.begin);
    w.delivered = true;
    Rebuilt(reason_[w.fragment]).Add();
    GLOG_INFO("event=ec_fragment_rebuilt slice={} block={} fragment={} reason={} detail=\"{}\"",
              key_.slice_id(), key_.block_index(), w.fragment, reason_[w.fragment],
              failure_[w.fragment]);
  }
  return Status::Ok();
}

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
  if (static_cast<int>(p.target_members()) < p.codec_n()) {
    return Unavailable(fmt::format("pool {} pg {} has {} members, {} needed", p.target_pool(),
                                   p.target_pg(), p.target_members(), p.codec_n()))
        .WithContext(p.What());
  }
  if (p.wants_.empty()) return Status::Ok();
  p.FirstTries(options_.fragment_deadline, out);
  if (p.Undelivered() == 0) return Status::Ok();
  return p.Rebuild(options_.fragment_deadline, *slow_, out);
}

}  // namespace granary::client
