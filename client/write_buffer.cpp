#include "client/write_buffer.h"

#include <algorithm>
#include <cstring>

namespace granary::client {
namespace {

// Writes at least this large into an empty buffer are taken as a streaming writer's.
constexpr size_t kStreamingWrite = 128 << 10;
// The reservation's slack for the write that crosses the flush threshold (FUSE's largest).
constexpr size_t kStreamSlack = 1 << 20;

// Copies `buffer` into a new one of at least `capacity` bytes, keeping its size.
AlignedBuffer Grow(const AlignedBuffer& buffer, size_t capacity) {
  AlignedBuffer bigger(capacity);
  std::memcpy(bigger.data(), buffer.data(), buffer.size());
  bigger.resize(buffer.size());
  return bigger;
}

}  // namespace

void WriteBuffer::Write(uint64_t offset, std::span<const uint8_t> bytes) {
  if (bytes.empty()) return;
  const uint64_t end = offset + bytes.size();

  // Runs that overlap or touch [offset, end).
  auto first = runs_.upper_bound(offset);
  if (first != runs_.begin() && std::prev(first)->second.end() >= offset) --first;
  auto last = first;
  while (last != runs_.end() && last->second.offset <= end) ++last;

  if (first == last) {
    size_t capacity = bytes.size();
    if (runs_.empty() && bytes.size() >= kStreamingWrite && stream_capacity_ > 0) {
      capacity = std::max(capacity, stream_capacity_ + kStreamSlack);
    }
    Run run{offset, AlignedBuffer(capacity)};
    run.data.resize(bytes.size());
    std::memcpy(run.data.data(), bytes.data(), bytes.size());
    bytes_ += bytes.size();
    runs_.emplace(offset, std::move(run));
    return;
  }

  // Merge [first, last) with the new bytes into the first run, growing it in place when it
  // starts at or before `offset` (the sequential-append case).
  Run& base = first->second;
  const uint64_t merged_start = std::min(base.offset, offset);
  const uint64_t merged_end = std::max(std::prev(last)->second.end(), end);
  const size_t merged_size = merged_end - merged_start;
  for (auto it = first; it != last; ++it) bytes_ -= it->second.data.size();

  AlignedBuffer merged;
  if (merged_start == base.offset && merged_size <= base.data.capacity()) {
    merged = std::move(base.data);
  } else if (merged_start == base.offset) {
    merged = Grow(base.data, std::max(merged_size, base.data.capacity() * 2));
  } else {
    merged = AlignedBuffer(merged_size);
    std::memcpy(merged.data() + (base.offset - merged_start), base.data.data(), base.data.size());
  }
  merged.resize(merged_size);
  for (auto it = std::next(first); it != last; ++it) {
    std::memcpy(merged.data() + (it->second.offset - merged_start), it->second.data.data(),
                it->second.data.size());
  }
  std::memcpy(merged.data() + (offset - merged_start), bytes.data(), bytes.size());

  runs_.erase(first, last);
  bytes_ += merged_size;
  runs_.emplace(merged_start, Run{merged_start, std::move(merged)});
}

void WriteBuffer::Overlay(uint64_t offset, std::span<uint8_t> out) const {
  const uint64_t end = offset + out.size();
  auto it = runs_.upper_bound(offset);
  if (it != runs_.begin()) --it;
  for (; it != runs_.end() && it->second.offset < end; ++it) {
    const Run& run = it->second;
    uint64_t from = std::max(run.offset, offset);
    uint64_t to = std::min(run.end(), end);
    if (from >= to) continue;
    std::memcpy(out.data() + (from - offset), run.data.data() + (from - run.offset), to - from);
  }
}

void WriteBuffer::Truncate(uint64_t size) {
  auto it = runs_.lower_bound(size);
  for (auto drop = it; drop != runs_.end(); ++drop) bytes_ -= drop->second.data.size();
  runs_.erase(it, runs_.end());
  if (runs_.empty()) return;
  Run& last = std::prev(runs_.end())->second;
  if (last.end() > size) {
    bytes_ -= last.end() - size;
    last.data.resize(size - last.offset);
  }
}

std::vector<WriteBuffer::Run> WriteBuffer::TakeRuns() {
  std::vector<Run> out;
  out.reserve(runs_.size());
  for (auto& [_, run] : runs_) out.push_back(std::move(run));
  runs_.clear();
  bytes_ = 0;
  return out;
}

uint64_t WriteBuffer::end() const { return runs_.empty() ? 0 : runs_.rbegin()->second.end(); }

}  // namespace granary::client
