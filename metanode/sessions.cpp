// Client sessions and the reaping of what dead clients and abandoned uploads leave behind
// (docs/metadata.md "Client sessions and reaping"). Deadlines live in memory only: a renewal
// every lease/3 per client is not worth a WAL sync, and a restart hands every client a fresh
// lease anyway. What is reaped changes through operations, like every other state change.
#include <fmt/format.h>

#include "common/log.h"
#include "common/metrics.h"
#include "metanode/apply_object.h"
#include "metanode/meta_core.h"
#include "metanode/schema.h"

namespace granary::metanode {

namespace {
// A reaped client hears "session expired" for this long; after that it would simply start over.
constexpr int64_t kTombstoneRetentionMs = 24 * 3600 * 1000;
constexpr int64_t kTombstonePruneEveryMs = 3600 * 1000;

struct SessionMetrics {
  Gauge& live;
  Counter& reaped;
  Counter& expired_uploads;
};
SessionMetrics& Meters() {
  static SessionMetrics m{
      Metrics().GetGauge("granary_metanode_sessions", "Client sessions with a live lease"),
      Metrics().GetCounter("granary_metanode_sessions_reaped_total",
                           "Client sessions whose lease expired and whose pins were dropped"),
      Metrics().GetCounter("granary_metanode_multipart_expired_total",
                           "Multipart uploads aborted because they outlived the expiry")};
  return m;
}
// Forgets completed multipart uploads older than kCompletionRetentionMs (apply_s3.cpp), in one
// operation, and only when the oldest is due: a snapshot seek per round otherwise.
void ForgetCompletions(MetaCore& core) {
  const int64_t cutoff = core.NowMs() - kCompletionRetentionMs;
  bool due = false;
  Status s = core.Snapshot()->Scan(Cf::kSystem, kCompletionTimePrefix, "", false,
                                   [&](std::string_view key, std::string_view) {
                                     due = ReadU64(key.substr(1)) < static_cast<uint64_t>(cutoff);
                                     return false;
                                   });
  if (!s.ok() || !due) return;
  Operation op;
  op.mutable_prune_completions()->set_before_ms(cutoff);
  OpReply reply = core.Mutate(std::move(op));
  if (reply.code() != Code::OK) {
    GLOG_WARN("event=multipart_completions_prune_failed error=\"{}\"", reply.message());
  }
}
}  // namespace

Status MetaCore::LoadSessions() {
  auto snap = Snapshot();
  const int64_t deadline = NowMs() + options_.client_lease_ms;
  // One short scan per distinct client: seek past each client's pins (and lock index entries:
  // a client holding only locks has a session too).
  for (std::string_view prefix : {kPinPrefix, kLockIndexPrefix}) {
    std::string start;
    for (;;) {
      uint64_t client = 0;
      GRANARY_TRY(snap->Scan(Cf::kSystem, prefix, start, false,
                             [&](std::string_view key, std::string_view) {
                               client = ReadU64(key.substr(1));
                               return false;
                             }));
      if (client == 0) break;
      {
        std::lock_guard lock(mu_);
        sessions_[client] = deadline;
      }
      if (client == UINT64_MAX) break;
      start = prefix == kPinPrefix ? PinPrefix(client + 1) : LockIndexPrefix(client + 1);
    }
  }
  std::lock_guard lock(mu_);
  Meters().live.Set(static_cast<int64_t>(sessions_.size()));
  if (!sessions_.empty()) {
    GLOG_INFO("event=sessions_loaded clients_with_pins={} lease_ms={}", sessions_.size(),
              options_.client_lease_ms);
  }
  return Status::Ok();
}

void MetaCore::TouchSession(const Operation& op) {
  const uint64_t client = op.id().client_id();
  if (client == 0) return;
  const int64_t deadline = NowMs() + options_.client_lease_ms;
  std::lock_guard lock(mu_);
  auto [it, inserted] = sessions_.try_emplace(client, deadline);
  if (!inserted) {
    it->second = std::max(it->second, deadline);
  } else {
    Meters().live.Set(static_cast<int64_t>(sessions_.size()));
  }
}

Result<KeepAliveReply> MetaCore::KeepAlive(uint64_t client_id) {
  if (client_id == 0) return InvalidArgument("keepalive: client id 0 has no session");
  SessionTombstone tomb;
  auto view = ReadView();
  GRANARY_TRY(view);
  auto reaped = (*view)->GetRecord(Cf::kSystem, SessionTombstoneKey(client_id), &tomb);
  GRANARY_TRY(reaped);
  if (*reaped) {
    return Status(
        Code::PRECONDITION_FAILED,
        fmt::format("session expired: client {:016x} was silent for over {} ms and was "
                    "reaped at {} ms ({} open-file pins dropped); start a new session",
                    client_id, options_.client_lease_ms, tomb.reaped_ms(), tomb.pins_dropped()));
  }
  Operation touch;
  touch.mutable_id()->set_client_id(client_id);
  TouchSession(touch);
  KeepAliveReply reply;
  reply.set_lease_ms(options_.client_lease_ms);
  return reply;
}

void MetaCore::ReapSessions() {
  const int64_t now = NowMs();
  std::vector<uint64_t> expired;
  bool prune = false;
  {
    std::lock_guard lock(mu_);
    for (auto it = sessions_.begin(); it != sessions_.end();) {
      if (it->second < now) {
        expired.push_back(it->first);
        it = sessions_.erase(it);
      } else {
        ++it;
      }
    }
    Meters().live.Set(static_cast<int64_t>(sessions_.size()));
    if (now - last_tombstone_prune_ms_ >= kTombstonePruneEveryMs) {
      prune = true;
      last_tombstone_prune_ms_ = now;
    }
  }
  // A lapsed client without pins leaves nothing behind: it is forgotten without an operation.
  auto snap = Snapshot();
  std::vector<uint64_t> clients;
  for (uint64_t client : expired) {
    bool pinned = false;
    auto any = [&](std::string_view, std::string_view) {
      pinned = true;
      return false;
    };
    Status s = snap->Scan(Cf::kSystem, PinPrefix(client), "", false, any);
    if (s.ok() && !pinned) s = snap->Scan(Cf::kSystem, LockIndexPrefix(client), "", false, any);
    if (!s.ok() || pinned) clients.push_back(client);
  }
  if (clients.empty() && !prune) return;
  Operation op;
  ReapSessionsOp& reap = *op.mutable_reap_sessions();
  reap.mutable_client_ids()->Add(clients.begin(), clients.end());
  reap.set_forget_before_ms(now - kTombstoneRetentionMs);
  reap.set_max_pins(options_.reap_max_pins);
  OpReply reply = Mutate(std::move(op));  // `reap` is gone with `op` from here on
  if (reply.code() != Code::OK) {
    GLOG_WARN("event=session_reap_failed clients={} error=\"{}\"", clients.size(), reply.message());
    std::lock_guard lock(mu_);
    for (uint64_t client : clients) sessions_.try_emplace(client, 0);  // next round
    return;
  }
  const SessionsReaped& done = reply.sessions_reaped();
  // Waiters on the reaped clients' locks try again now.
  for (uint64_t ino : done.lock_inodes()) lock_waiters_.Notify(ino);
  std::lock_guard lock(mu_);
  for (uint64_t client : done.unfinished()) sessions_.try_emplace(client, 0);  // next round
  const uint64_t finished = clients.size() - done.unfinished_size();
  sessions_reaped_ += finished;
  Meters().reaped.Add(finished);
  if (!clients.empty()) {
    GLOG_WARN(
        "event=sessions_reaped clients={} pins_dropped={} inodes_freed={} locks_dropped={} "
        "unfinished={} lease_ms={}",
        clients.size(), done.pins_dropped(), done.inodes_freed(), done.locks_dropped(),
        done.unfinished_size(), options_.client_lease_ms);
  }
}

void MetaCore::ExpireUploads() {
  ForgetCompletions(*this);
  if (options_.multipart_expiry_ms <= 0) return;
  const int64_t now = NowMs();
  // Expiry is measured in days: scanning every upload once a minute (or at the expiry's pace
  // when it is shorter, as in tests) is plenty.
  const int64_t every = std::clamp<int64_t>(options_.multipart_expiry_ms / 4, 0, 60000);
  if (now - last_upload_scan_ms_ < every) return;
  last_upload_scan_ms_ = now;
  std::vector<std::pair<uint64_t, std::string>> stale;
  Status s =
      Snapshot()->Scan(Cf::kSystem, "U", "", false, [&](std::string_view, std::string_view value) {
        UploadRecord rec;
        if (rec.ParseFromArray(value.data(), value.size()) &&
            now - rec.upload().initiated_ms() > options_.multipart_expiry_ms) {
          stale.emplace_back(rec.upload().volume_id(), rec.upload().upload_id());
        }
        return stale.size() < 10000;  // bounds one round
      });
  if (!s.ok()) {
    GLOG_WARN("event=multipart_expiry_scan_failed error=\"{}\"", s.ToString());
    return;
  }
  for (auto& [volume_id, upload_id] : stale) {
    // The operation an AbortMultipartUpload applies: parts freed, their slices to GC.
    Operation op;
    op.mutable_upload_abort()->set_volume_id(volume_id);
    op.mutable_upload_abort()->set_upload_id(upload_id);
    OpReply reply = Mutate(std::move(op));
    if (reply.code() == Code::NOT_FOUND) continue;  // completed or aborted meanwhile
    if (reply.code() != Code::OK) {
      GLOG_WARN("event=multipart_expire_failed volume={} upload={} error=\"{}\"", volume_id,
                upload_id, reply.message());
      continue;
    }
    GLOG_INFO("event=multipart_expired volume={} upload={} expiry_ms={}", volume_id, upload_id,
              options_.multipart_expiry_ms);
    Meters().expired_uploads.Add();
    std::lock_guard lock(mu_);
    ++multipart_expired_;
  }
}

MetaCore::SessionCounts MetaCore::session_counts() {
  std::lock_guard lock(mu_);
  return {sessions_.size(), sessions_reaped_, multipart_expired_};
}

}  // namespace granary::metanode
