// The paced scrub (docs/maintenance.md "Scrub"): a pass re-reads every stored block once per
// period, keeping to its share of the period (scrub_pacer.h) and never above the scrub throttle.
// The pass state lives in DIR/scrub.state, so a restarted datanode resumes its pass.
#include <fmt/format.h>

#include <chrono>

#include "common/log.h"
#include "datanode/maintenance.h"
#include "datanode/maintenance_metrics.h"

namespace granary::datanode {

namespace {

constexpr size_t kScrubBatch = 64;

int64_t WallMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string StatePath(const BlockStore& store) { return store.dir() + "/scrub.state"; }

}  // namespace

void Maintenance::LoadScrub() {
  const int64_t now = WallMs();
  auto state = LoadScrubState(StatePath(*store_), now);
  if (!state.ok()) {
    // Starting over costs one pass; refusing to scrub would cost more.
    GLOG_WARN("event=scrub_state_reset error=\"{}\"", state.status().ToString());
    ScrubState fresh;
    fresh.created_ms = now;
    state = fresh;
  }
  std::lock_guard lock(scrub_mu_);
  scrub_ = *state;
  scrub_saved_ms_ = now;
}

ScrubProgress Maintenance::scrub_progress() {
  const int64_t now = WallMs();
  std::lock_guard lock(scrub_mu_);
  ScrubProgress p;
  p.set_pass_bytes(scrub_.pass_start_ms != 0 ? scrub_.pass_bytes : 0);
  p.set_done_bytes(scrub_.pass_start_ms != 0 ? scrub_.done_bytes : 0);
  p.set_oldest_unscrubbed_ms(pacer_.OldestUnscrubbedMs(scrub_, now));
  p.set_behind(pacer_.Behind(scrub_, now));
  p.set_period_ms(pacer_.period_ms());
  p.set_passes_done(scrub_passes_);
  return p;
}

void Maintenance::FillHeartbeat(HeartbeatRequest* req) {
  ScrubProgress p = scrub_progress();
  M().scrub_pass_bytes.Set(static_cast<int64_t>(p.pass_bytes()));
  M().scrub_done_bytes.Set(static_cast<int64_t>(p.done_bytes()));
  M().scrub_oldest.Set(p.oldest_unscrubbed_ms() / 1000);
  M().scrub_behind.Set(p.behind() ? 1 : 0);
  *req->mutable_scrub() = std::move(p);
}

bool Maintenance::ScrubStep() {
  const auto step_end = std::chrono::steady_clock::now() + options_.interval;
  std::optional<BlockKey> cursor;
  {
    std::lock_guard lock(scrub_mu_);
    const int64_t now = WallMs();
    if (scrub_.pass_start_ms == 0) {
      if (!pacer_.ShouldStart(scrub_, now)) return false;
      scrub_.pass_start_ms = now;
      scrub_.pass_bytes = store_->capacity().used_bytes;
      scrub_.done_bytes = 0;
      scrub_.cursor.reset();
      scrub_behind_logged_ = false;
      GLOG_DEBUG("event=scrub_pass_start bytes={} period_s={}", scrub_.pass_bytes,
                 pacer_.period_ms() / 1000.0);
      SaveScrubState(StatePath(*store_), scrub_).PermitUnchecked();
      scrub_saved_ms_ = now;
    }
    if (pacer_.Behind(scrub_, now) && !scrub_behind_logged_) {
      scrub_behind_logged_ = true;
      GLOG_WARN(
          "event=scrub_behind bytes={} period_s={} needed_MiBps={:.1f} throttle_MiBps={:.1f} "
          "elapsed_s={}",
          scrub_.pass_bytes, pacer_.period_ms() / 1000.0, pacer_.NeededRate(scrub_) / 1048576.0,
          options_.scrub_bytes_per_second / 1048576.0, (now - scrub_.pass_start_ms) / 1000);
    }
    cursor = scrub_.cursor;
  }
  while (!stopping()) {
    // The pass ends when it reaches the last block, early or late: blocks stored after that
    // were verified on write (their CRCs), and the next pass starts on the period.
    auto batch = store_->ListAfter(cursor ? &*cursor : nullptr, kScrubBatch);
    if (batch.empty()) {
      std::lock_guard lock(scrub_mu_);
      const int64_t now = WallMs();
      // A summary of a whole pass (once per period, a week by default) is worth an info line;
      // a pass over an empty store is not.
      spdlog::log(scrub_.done_bytes > 0 ? spdlog::level::info : spdlog::level::debug,
                  "event=scrub_pass_done bytes={} seconds={:.1f} period_s={}", scrub_.done_bytes,
                  (now - scrub_.pass_start_ms) / 1000.0, pacer_.period_ms() / 1000.0);
      scrub_.prev_start_ms = scrub_.pass_start_ms;
      scrub_.prev_end_ms = now;
      scrub_.pass_start_ms = 0;
      scrub_.cursor.reset();
      ++scrub_passes_;
      M().scrub_passes.Add();
      SaveScrubState(StatePath(*store_), scrub_).PermitUnchecked();
      scrub_saved_ms_ = now;
      return false;
    }
    {
      std::lock_guard lock(scrub_mu_);
      // Blocks stored during the pass join its schedule.
      scrub_.pass_bytes = std::max(scrub_.pass_bytes, store_->capacity().used_bytes);
      if (scrub_.done_bytes >= pacer_.DueBytes(scrub_, WallMs())) return false;  // on schedule
    }
    if (std::chrono::steady_clock::now() >= step_end) return true;
    for (const BlockInfo& info : batch) {
      cursor = info.key();
      // A quarantined copy is already being verified or replaced.
      if (!store_->IsQuarantined(info.key())) ScrubBlock(info);
      {
        std::lock_guard lock(scrub_mu_);
        scrub_.cursor = cursor;
        scrub_.done_bytes += info.length();
        scrub_.pass_bytes = std::max(scrub_.pass_bytes, scrub_.done_bytes);
        const int64_t now = WallMs();
        // Saved now and then: a restart resumes about where the pass was.
        if (now - scrub_saved_ms_ >= std::min<int64_t>(10000, pacer_.period_ms() / 20 + 1)) {
          SaveScrubState(StatePath(*store_), scrub_).PermitUnchecked();
          scrub_saved_ms_ = now;
        }
      }
      if (!Throttle(info.length(), options_.scrub_bytes_per_second)) return false;
      std::lock_guard lock(scrub_mu_);
      if (scrub_.done_bytes >= pacer_.DueBytes(scrub_, WallMs())) break;
      if (std::chrono::steady_clock::now() >= step_end) break;
    }
  }
  return false;
}

}  // namespace granary::datanode
