#include "client/compactor.h"

#include "client/meta_client.h"
#include "common/log.h"
#include "common/metrics.h"

namespace granary::client {

namespace {
Counter& Compacted() {
  static Counter& c = Metrics().GetCounter("granary_client_compacted_ranges_total",
                                           "Chunk ranges rewritten into one slice by compaction");
  return c;
}
}  // namespace

Result<std::unique_ptr<Compactor>> Compactor::Start(const std::string& meta,
                                                    std::chrono::milliseconds interval,
                                                    std::function<bool()> active) {
  ClientOptions o;
  o.meta = meta;
  auto client = Client::Connect(o);
  if (!client.ok()) return client.status().WithContext("compactor");
  return std::make_unique<Compactor>(std::move(*client), interval, std::move(active));
}

Compactor::Compactor(std::unique_ptr<Client> client, std::chrono::milliseconds interval,
                     std::function<bool()> active)
    : client_(std::move(client)), interval_(interval), active_(std::move(active)) {
  thread_ = std::thread([this] { Loop(); });
}

Compactor::~Compactor() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Compactor::Loop() {
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, interval_, [&] { return stopping_; })) {
    if (active_ && !active_()) continue;
    lock.unlock();
    auto done = RunOnce();
    if (!done.ok())
      GLOG_WARN("event=compaction_round_failed error=\"{}\"", done.status().ToString());
    lock.lock();
  }
}

Result<uint64_t> Compactor::RunOnce(uint32_t limit) {
  MetaClient& meta = client_->meta();
  auto candidates = meta.CompactionCandidates(limit);
  GRANARY_TRY(candidates);
  uint64_t rewritten = 0;
  for (const CompactionCandidate& c : candidates->candidates()) {
    auto attr = meta.GetAttr(c.ino());
    Status st = attr.status();
    if (attr.ok() && attr->type() == REGULAR) {
      auto file = client_->OpenInode(*attr);
      st = file.status();
      if (file.ok()) {
        st = (*file)->CompactRange(c.range_index());
        Status closed = (*file)->Close();
        if (st.ok()) st = closed;
      }
    }
    if (st.ok()) {
      ++rewritten;
      Compacted().Add();
    } else if (st.code() == Code::PRECONDITION_FAILED) {
      continue;  // a writer changed the range: it stays queued for the next round
    } else if (st.code() != Code::NOT_FOUND && attr.ok() && attr->type() == REGULAR) {
      GLOG_WARN("event=compaction_failed ino={} range={} error=\"{}\"", c.ino(), c.range_index(),
                st.ToString());
      continue;
    }
    // Rewritten, or nothing left to compact (file gone, not a file): off the queue.
    GRANARY_TRY(meta.CompactionDone(c.ino(), c.range_index()));
  }
  return rewritten;
}

}  // namespace granary::client
