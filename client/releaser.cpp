#include "client/releaser.h"

#include <chrono>
#include <vector>

#include "common/log.h"

namespace granary::client {

Releaser::Releaser(MetaClient& meta) : meta_(meta), thread_([this] { Run(); }) {}

Releaser::~Releaser() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void Releaser::Release(uint64_t ino, uint64_t owner) {
  {
    std::lock_guard lock(mu_);
    queue_.emplace_back(ino, owner);
  }
  cv_.notify_one();
}

void Releaser::Drain() {
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [&] { return queue_.empty() && sending_ == 0; });
}

void Releaser::Run() {
  auto backoff = std::chrono::milliseconds(50);
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping with nothing left
    BatchRequest req;
    std::vector<std::pair<uint64_t, uint64_t>> taken;
    while (!queue_.empty() && taken.size() < kMaxBatch) {
      taken.push_back(queue_.front());
      queue_.pop_front();
    }
    sending_ = taken.size();
    lock.unlock();
    for (const auto& [ino, owner] : taken) {
      ReleaseRequest* r = req.add_ops()->mutable_release();
      r->set_ino(ino);
      r->set_handle_owner(owner);
    }
    Result<BatchReply> reply = meta_.Batch(std::move(req));
    lock.lock();
    sending_ = 0;
    if (reply.ok()) {
      backoff = std::chrono::milliseconds(50);
      for (int i = 0; i < reply->results_size(); ++i) {
        const BatchResult& r = reply->results(i);
        if (r.code() != Code::OK && r.code() != Code::NOT_FOUND) {
          GLOG_WARN("event=release_failed ino={} error=\"{}\"", taken[i].first, r.message());
        }
      }
    } else if (stopping_) {
      // Shutting down and the metanode does not answer: the session reaper frees the pins.
      GLOG_WARN("event=release_failed count={} error=\"{}\"", taken.size(),
                reply.status().ToString());
      queue_.clear();
    } else {
      // Not lost: tried again (MetaClient already retried within its deadline).
      GLOG_WARN("event=release_retry count={} error=\"{}\"", taken.size(),
                reply.status().ToString());
      queue_.insert(queue_.begin(), taken.begin(), taken.end());
      cv_.wait_for(lock, backoff, [&] { return stopping_; });
      backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
    }
    if (queue_.empty()) idle_cv_.notify_all();
  }
}

}  // namespace granary::client
