#include "datanode/scrub_pacer.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

namespace granary::datanode {

namespace {
constexpr int64_t kOverrunGraceMs = 2000;
}  // namespace

bool ScrubPacer::ShouldStart(const ScrubState& s, int64_t now_ms) const {
  if (s.pass_start_ms != 0) return false;
  return s.prev_start_ms == 0 || now_ms >= s.prev_start_ms + period_ms_;
}

uint64_t ScrubPacer::DueBytes(const ScrubState& s, int64_t now_ms) const {
  if (s.pass_start_ms == 0) return 0;
  const int64_t elapsed = std::max<int64_t>(0, now_ms - s.pass_start_ms);
  if (elapsed >= period_ms_) return std::numeric_limits<uint64_t>::max();
  return static_cast<uint64_t>(static_cast<unsigned __int128>(s.pass_bytes) * elapsed /
                               static_cast<uint64_t>(period_ms_));
}

uint64_t ScrubPacer::NeededRate(const ScrubState& s) const {
  return static_cast<uint64_t>(
      (static_cast<unsigned __int128>(s.pass_bytes) * 1000 + period_ms_ - 1) / period_ms_);
}

bool ScrubPacer::Behind(const ScrubState& s, int64_t now_ms) const {
  if (s.pass_start_ms == 0) return false;
  if (throttle_ != 0 && NeededRate(s) > throttle_) return true;
  // Paced to end with its period, a pass is always a little past it when its last blocks are
  // read: only a clear overrun counts (a maintenance thread busy with repair, a slow disk).
  return now_ms - s.pass_start_ms > period_ms_ + period_ms_ / 10 + kOverrunGraceMs;
}

int64_t ScrubPacer::OldestUnscrubbedMs(const ScrubState& s, int64_t now_ms) const {
  const bool have_prev = s.prev_end_ms != 0;
  const int64_t base_start = have_prev ? s.prev_start_ms : s.created_ms;
  const int64_t base_end = have_prev ? s.prev_end_ms : s.created_ms;
  double fraction = 0;
  if (s.pass_start_ms != 0 && s.pass_bytes > 0) {
    fraction = std::min(1.0, static_cast<double>(s.done_bytes) / static_cast<double>(s.pass_bytes));
  }
  const auto verified_at =
      base_start + static_cast<int64_t>(fraction * static_cast<double>(base_end - base_start));
  return std::max<int64_t>(0, now_ms - verified_at);
}

Result<ScrubState> LoadScrubState(const std::string& path, int64_t now_ms) {
  ScrubState s;
  std::ifstream in(path);
  if (!in) {
    s.created_ms = now_ms;
    return s;
  }
  std::map<std::string, std::string> kv;
  std::string line;
  while (std::getline(in, line)) {
    auto space = line.find(' ');
    if (space != std::string::npos) kv[line.substr(0, space)] = line.substr(space + 1);
  }
  if (kv["format"] != "1") {
    return Corrupt(fmt::format("scrub state {}: unknown format '{}'", path, kv["format"]));
  }
  try {
    auto num = [&](const char* k) -> int64_t { return kv.contains(k) ? std::stoll(kv[k]) : 0; };
    auto unum = [&](const char* k) -> uint64_t { return kv.contains(k) ? std::stoull(kv[k]) : 0; };
    s.created_ms = num("created_ms");
    s.pass_start_ms = num("pass_start_ms");
    s.pass_bytes = unum("pass_bytes");
    s.done_bytes = unum("done_bytes");
    s.prev_start_ms = num("prev_start_ms");
    s.prev_end_ms = num("prev_end_ms");
    if (kv.contains("cursor")) {
      std::istringstream c(kv["cursor"]);
      uint64_t slice = 0;
      uint32_t block = 0, fragment = 0;
      if (c >> slice >> block >> fragment) {
        BlockKey key;
        key.set_slice_id(slice);
        key.set_block_index(block);
        key.set_fragment(fragment);
        s.cursor = key;
      }
    }
  } catch (const std::exception& e) {
    return Corrupt(fmt::format("scrub state {}: {}", path, e.what()));
  }
  if (s.created_ms == 0) s.created_ms = now_ms;
  return s;
}

Status SaveScrubState(const std::string& path, const ScrubState& s) {
  std::string text = fmt::format(
      "format 1\ncreated_ms {}\npass_start_ms {}\npass_bytes {}\ndone_bytes {}\n"
      "prev_start_ms {}\nprev_end_ms {}\n",
      s.created_ms, s.pass_start_ms, s.pass_bytes, s.done_bytes, s.prev_start_ms, s.prev_end_ms);
  if (s.cursor) {
    text += fmt::format("cursor {} {} {}\n", s.cursor->slice_id(), s.cursor->block_index(),
                        s.cursor->fragment());
  }
  const std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
  if (fd < 0) return Internal(fmt::format("write {}: {}", tmp, strerrordesc_np(errno)));
  const bool ok = write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  const int err = errno;
  close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    return Internal(fmt::format("write {}: {}", path, strerrordesc_np(ok ? errno : err)));
  }
  return Status::Ok();
}

}  // namespace granary::datanode
