#include "datanode/worker_pool.h"

#include <pthread.h>

namespace granary::datanode {

WorkerPool::WorkerPool(size_t threads, std::string name) {
  for (size_t i = 0; i < threads; ++i) {
    threads_.emplace_back([this] { Run(); });
    pthread_setname_np(threads_.back().native_handle(), name.substr(0, 15).c_str());
  }
}

void WorkerPool::Submit(std::function<void()> task) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(task));
  }
  cv_.notify_one();
}

size_t WorkerPool::queued() {
  std::lock_guard lock(mu_);
  return queue_.size();
}

void WorkerPool::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void WorkerPool::Run() {
  while (true) {
    std::function<void()> task;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

bool ByteBudget::Acquire(uint64_t n) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return aborted_ || used_ == 0 || used_ + n <= limit_; });
  if (aborted_) return false;
  used_ += n;
  return true;
}

void ByteBudget::Release(uint64_t n) {
  {
    std::lock_guard lock(mu_);
    used_ -= n;
  }
  cv_.notify_all();
}

void ByteBudget::Abort() {
  {
    std::lock_guard lock(mu_);
    aborted_ = true;
  }
  cv_.notify_all();
}

uint64_t ByteBudget::used() {
  std::lock_guard lock(mu_);
  return used_;
}

}  // namespace granary::datanode
