// A level-triggered controller: informers put object keys on a work queue; workers hand each key
// to the reconciler, which reads the current state (from the informers' caches) and drives the
// world towards it. The reconciler never sees *what* changed, only *which* object to look at, so
// a missed or merged event costs nothing. An error requeues the key with per-key exponential
// back-off (under the queue's global rate limit); success forgets the back-off and may ask to be
// called again after a delay. A key is never reconciled by two workers at once.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "operator/runtime/informer.h"
#include "operator/runtime/work_queue.h"

namespace granary::runtime {

struct ReconcileResult {
  std::chrono::milliseconds requeue_after{0};  // > 0: reconcile again after this
};

// Called with a key ("ns/name" or "name"). The object may be gone: reconcile that too.
using Reconciler = std::function<Result<ReconcileResult>(const std::string& key)>;

struct ControllerOptions {
  std::string name;  // metrics label and log field
  int workers = 1;
  RateLimit rate_limit;
};

class Controller {
 public:
  Controller(ControllerOptions options, Reconciler reconciler,
             MetricsRegistry& metrics = Metrics());
  ~Controller();  // Stop()

  // Reconcile this informer's objects (before Start).
  void For(Informer& informer);
  // Reconcile the controlling owner of this informer's objects (ownerReferences with
  // controller=true and kind `owner_kind`); `owner_namespaced` says how to build its key.
  void Owns(Informer& informer, const std::string& owner_kind, bool owner_namespaced = true);

  void Enqueue(const std::string& key);
  // Starts the workers and enqueues every key of the For() informers (a leader that just took
  // over looks at everything once). Stop, then Start again, is allowed.
  void Start();
  void Stop();
  bool running() const { return running_; }

  WorkQueue& queue() { return queue_; }
  const std::string& name() const { return options_.name; }
  uint64_t reconciles() const { return reconciles_; }
  uint64_t failures() const { return failures_; }

 private:
  void Work();

  ControllerOptions options_;
  Reconciler reconciler_;
  WorkQueue queue_;
  std::vector<Informer*> primaries_;
  std::vector<std::thread> workers_;
  std::atomic<bool> running_{false};
  std::atomic<uint64_t> reconciles_{0};
  std::atomic<uint64_t> failures_{0};
  Counter* ok_total_;
  Counter* error_total_;
  Counter* requeue_total_;
  Histogram* seconds_;
};

}  // namespace granary::runtime
