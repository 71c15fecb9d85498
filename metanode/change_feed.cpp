#include "metanode/change_feed.h"

#include <algorithm>

namespace granary::metanode {

namespace {
// A position's changes are numbered position << kShift | n.
constexpr int kShift = 20;
}  // namespace

ChangeFeed::ChangeFeed() : timer_([this] { TimerLoop(); }) {}

ChangeFeed::~ChangeFeed() {
  std::map<uint64_t, Waiter> waiters;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    waiters.swap(waiters_);
  }
  cv_.notify_all();
  timer_.join();
  for (auto& [id, w] : waiters) w.done(ChangesReply());
}

void ChangeFeed::Start(uint64_t epoch, uint64_t position) {
  std::lock_guard lock(mu_);
  epoch_ = epoch;
  entries_.clear();
  valid_from_ = next_ = position << kShift;
}

void ChangeFeed::Append(uint64_t position, std::vector<FeedChange> changes) {
  std::vector<std::pair<Done, ChangesReply>> answers;
  {
    std::lock_guard lock(mu_);
    uint64_t seq = position << kShift;
    if (seq < next_) return;  // applied again after a restart: already numbered
    for (size_t n = 0; n < changes.size() && n < (1u << kShift); ++n) {
      entries_.push_back({seq + n, std::move(changes[n])});
    }
    next_ = seq + std::min<size_t>(changes.size(), 1u << kShift);
    if (next_ == seq) next_ = seq + 1;  // an empty position still moves the stream on
    while (entries_.size() > kCapacity) {
      valid_from_ = entries_.front().seq + 1;
      entries_.pop_front();
    }
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      ChangesReply reply;
      if (Answer(it->second.req, &reply) && (reply.reset() || reply.changes_size() > 0)) {
        answers.emplace_back(std::move(it->second.done), std::move(reply));
        it = waiters_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& [done, reply] : answers) done(std::move(reply));
}

bool ChangeFeed::Answer(const ChangesRequest& req, ChangesReply* reply) const {
  reply->set_epoch(epoch_);
  if (req.epoch() != epoch_ || req.since() < valid_from_ || req.since() > next_) {
    reply->set_reset(true);
    reply->set_next(next_);
    return true;
  }
  const uint32_t max = req.max() == 0 ? kMaxPerReply : std::min(req.max(), kMaxPerReply);
  auto it = std::lower_bound(entries_.begin(), entries_.end(), req.since(),
                             [](const Entry& e, uint64_t seq) { return e.seq < seq; });
  uint64_t next = next_;
  for (; it != entries_.end(); ++it) {
    if (static_cast<uint32_t>(reply->changes_size()) == max) {
      next = it->seq;
      break;
    }
    if (it->change.client != 0 && it->change.client == req.client_id()) continue;
    *reply->add_changes() = it->change.change;
  }
  reply->set_next(next);
  return reply->changes_size() > 0;
}

void ChangeFeed::Poll(const ChangesRequest& req, Done done) {
  ChangesReply reply;
  {
    std::lock_guard lock(mu_);
    if (!stopping_ && !Answer(req, &reply) && req.timeout_ms() > 0) {
      const auto wait = std::chrono::milliseconds(std::min(req.timeout_ms(), kMaxWaitMs));
      // Nothing of interest yet: wait from where this answer ends (own changes skipped).
      ChangesRequest from = req;
      from.set_since(reply.next());
      waiters_.emplace(next_waiter_++,
                       Waiter{from, std::chrono::steady_clock::now() + wait, std::move(done)});
      cv_.notify_all();
      return;
    }
  }
  done(std::move(reply));
}

void ChangeFeed::TimerLoop() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    auto now = std::chrono::steady_clock::now();
    auto wake = now + std::chrono::seconds(1);
    std::vector<std::pair<Done, ChangesReply>> expired;
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (it->second.deadline <= now) {
        ChangesReply reply;
        reply.set_epoch(epoch_);
        reply.set_next(it->second.req.since());
        expired.emplace_back(std::move(it->second.done), std::move(reply));
        it = waiters_.erase(it);
      } else {
        wake = std::min(wake, it->second.deadline);
        ++it;
      }
    }
    if (!expired.empty()) {
      lock.unlock();
      for (auto& [done, reply] : expired) done(std::move(reply));
      lock.lock();
      continue;
    }
    cv_.wait_until(lock, wake);
  }
}

}  // namespace granary::metanode
