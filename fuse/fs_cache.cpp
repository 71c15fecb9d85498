// Coherent caching (docs/mount.md "Coherent caching"): the mount follows the metanode's change
// feed (metanode/change_feed.h) and invalidates the kernel's cached names and attributes the
// moment another client changes them, so the kernel may keep them for cache_timeout_s and a
// stat of an unchanged file never crosses the network.
#include <fmt/format.h>

#include "client/meta_client.h"
#include "common/log.h"
#include "fuse/fs.h"

namespace granary::fuse {

namespace {
constexpr uint32_t kPollMs = 5000;
}  // namespace

void GranaryFs::StartChangeFeed() {
  if (options_.cache_timeout_s <= 0 || feed_thread_.joinable()) return;
  feed_thread_ = std::thread([this] { FollowChanges(); });
}

void GranaryFs::StopChangeFeed() {
  {
    std::lock_guard lock(feed_mu_);
    feed_stop_ = true;
  }
  feed_cv_.notify_all();
  if (feed_thread_.joinable()) feed_thread_.join();
  feed_live_ = false;
}

void GranaryFs::NoteName(uint64_t parent, std::string_view name, uint64_t ino) {
  if (options_.cache_timeout_s <= 0) return;
  std::lock_guard lock(names_mu_);
  names_[ino] = {parent, std::string(name)};
  missing_.erase({parent, std::string(name)});
}

bool GranaryFs::NoteMissing(uint64_t parent, std::string_view name) {
  std::lock_guard lock(names_mu_);
  if (missing_.size() >= kMaxMissing) return false;
  missing_.emplace(parent, std::string(name));
  return true;
}

void GranaryFs::NoteAttr(const InodeAttr& a, const Timeouts& t) {
  if (!t.negative) return;  // only what the feed keeps coherent
  std::lock_guard lock(names_mu_);
  known_[a.ino()] = static_cast<uint8_t>(kKnown | (a.access_acl() ? kAccessAcl : 0) |
                                         (a.default_acl() ? kDefaultAcl : 0));
}

uint8_t GranaryFs::KnownAcls(uint64_t ino) {
  if (!feed_live_.load()) return 0;
  std::lock_guard lock(names_mu_);
  auto it = known_.find(ino);
  return it == known_.end() ? 0 : it->second;
}

void GranaryFs::FollowChanges() {
  uint64_t epoch = 0, since = 0;
  auto backoff = std::chrono::milliseconds(100);
  while (true) {
    {
      std::lock_guard lock(feed_mu_);
      if (feed_stop_) return;
    }
    ChangesRequest req;
    req.set_epoch(epoch);
    req.set_since(since);
    req.set_timeout_ms(kPollMs);
    Result<ChangesReply> reply = client_->meta().Changes(req);
    if (!reply.ok()) {
      // Nothing tells us of other clients' changes meanwhile: answers carry the plain
      // timeouts until the feed is back (and a reset, if changes were lost, clears the rest).
      if (feed_live_.exchange(false)) {
        GLOG_WARN("event=change_feed_lost error=\"{}\"", reply.status().ToString());
        std::lock_guard lock(names_mu_);
        known_.clear();
      }
      std::unique_lock lock(feed_mu_);
      feed_cv_.wait_for(lock, backoff, [&] { return feed_stop_; });
      backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
      continue;
    }
    backoff = std::chrono::milliseconds(100);
    if (reply->reset() || reply->changes_size() > 0) Invalidate(*reply);
    if (!feed_live_.exchange(true)) {
      GLOG_INFO("event=change_feed_following epoch={} reset={}", reply->epoch(), reply->reset());
    }
    epoch = reply->epoch();
    since = reply->next();
  }
}

void GranaryFs::Invalidate(const ChangesReply& reply) {
  {
    // Counted first: an answer read before this change and not yet sent is then sent uncached.
    std::unique_lock lock(cache_mu_);
    ++changes_seen_;
  }
  std::vector<std::pair<uint64_t, std::string>> entries;
  std::vector<uint64_t> inodes;
  {
    std::lock_guard lock(names_mu_);
    if (reply.reset()) {
      for (const auto& [ino, name] : names_) {
        entries.push_back(name);
        inodes.push_back(ino);
      }
      entries.insert(entries.end(), missing_.begin(), missing_.end());
      missing_.clear();
      known_.clear();
    }
    for (const Change& c : reply.changes()) {
      if (c.ino() != 0) {
        inodes.push_back(c.ino());
        known_.erase(c.ino());
      }
      if (c.parent() != 0) {
        entries.emplace_back(c.parent(), c.name());
        missing_.erase({c.parent(), c.name()});
      }
    }
  }
  // Outside names_mu_: the kernel may wait for a request on the directory to finish first.
  // Unknown names and inodes are refused (ENOENT): nothing was cached.
  for (const auto& [parent, name] : entries) {
    fuse_lowlevel_notify_inval_entry(session_, ToFuse(parent), name.data(), name.size());
  }
  for (uint64_t ino : inodes) fuse_lowlevel_notify_inval_inode(session_, ToFuse(ino), -1, 0);
}

}  // namespace granary::fuse
