// A fixed set of named worker threads draining one queue (CONVENTIONS: no thread per request).
// The queue is bounded by its producers: the data server admits a request only within its byte
// budget and per-connection in-flight cap.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace granary::datanode {

class WorkerPool {
 public:
  WorkerPool(size_t threads, std::string name);
  ~WorkerPool() { Stop(); }
  void Submit(std::function<void()> task);
  size_t queued();
  // Runs what is queued, then joins.
  void Stop();

 private:
  void Run();
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

// A byte budget: Acquire blocks while admitting `n` would exceed the limit (one request larger
// than the whole budget is admitted alone). This is the data server's back-pressure: a
// connection whose next frame does not fit is simply not read.
class ByteBudget {
 public:
  explicit ByteBudget(uint64_t limit) : limit_(limit) {}
  // False when Abort() was called.
  bool Acquire(uint64_t n);
  void Release(uint64_t n);
  void Abort();
  uint64_t used();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  const uint64_t limit_;
  uint64_t used_ = 0;
  bool aborted_ = false;
};

}  // namespace granary::datanode
