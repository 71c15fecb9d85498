#include "client/write_buffer.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace granary::client {
namespace {

std::vector<uint8_t> Bytes(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 7);
  return v;
}

// Random writes and truncates against a plain byte-vector model: Overlay over zeros must give
// the model, and the runs must cover exactly the written bytes.
TEST(WriteBufferTest, MatchesAByteModelUnderRandomWritesAndTruncates) {
  std::mt19937 rng(42);
  for (int round = 0; round < 50; ++round) {
    WriteBuffer wb;
    std::vector<uint8_t> model(1 << 16, 0);
    std::vector<bool> dirty(model.size(), false);
    uint64_t size_limit = model.size();
    for (int op = 0; op < 40; ++op) {
      if (rng() % 10 == 0) {
        uint64_t t = rng() % model.size();
        wb.Truncate(t);
        for (uint64_t i = t; i < model.size(); ++i) {
          model[i] = 0;
          dirty[i] = false;
        }
        continue;
      }
      uint64_t off = rng() % (model.size() - 1);
      size_t len = 1 + rng() % std::min<uint64_t>(9000, model.size() - off);
      auto data = Bytes(len, static_cast<uint8_t>(rng()));
      wb.Write(off, data);
      for (size_t i = 0; i < len; ++i) {
        model[off + i] = data[i];
        dirty[off + i] = true;
      }
    }
    std::vector<uint8_t> out(size_limit, 0);
    wb.Overlay(0, out);
    ASSERT_EQ(out, model) << "round " << round;
    uint64_t dirty_count = std::count(dirty.begin(), dirty.end(), true);
    EXPECT_EQ(wb.bytes(), dirty_count);
    uint64_t covered = 0;
    uint64_t prev_end = 0;
    bool first = true;
    for (auto& run : wb.TakeRuns()) {
      if (!first) {
        EXPECT_GT(run.offset, prev_end);  // ordered, never touching
      }
      first = false;
      prev_end = run.end();
      for (uint64_t i = run.offset; i < run.end(); ++i) EXPECT_TRUE(dirty[i]);
      covered += run.data.size();
    }
    EXPECT_EQ(covered, dirty_count);
    EXPECT_TRUE(wb.empty());
  }
}

TEST(WriteBufferTest, SequentialAppendsGrowOneRun) {
  WriteBuffer wb;
  auto chunk = Bytes(128 * 1024, 1);
  for (int i = 0; i < 64; ++i) wb.Write(i * chunk.size(), chunk);
  auto runs = wb.TakeRuns();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].offset, 0u);
  EXPECT_EQ(runs[0].data.size(), 64 * chunk.size());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(runs[0].data.data()) % kPageSize, 0u);
}

// A streaming writer's first run is reserved whole (the buffer plus 1 MiB of slack), so filling
// it never regrows it (a regrowth copies every byte so far and doubles the capacity); small
// writes reserve only what they hold.
TEST(WriteBufferTest, StreamingWriterFillsItsBufferWithoutRegrowing) {
  constexpr size_t kMiB = 1 << 20;
  WriteBuffer wb(32 * kMiB);
  auto piece = Bytes(kMiB, 3);
  for (uint64_t off = 0; off < 33 * kMiB; off += kMiB) wb.Write(off, piece);
  auto runs = wb.TakeRuns();
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].data.size(), 33 * kMiB);
  EXPECT_EQ(runs[0].data.capacity(), 33 * kMiB);

  WriteBuffer small(32 * kMiB);
  small.Write(0, Bytes(4096, 1));
  auto small_runs = small.TakeRuns();
  ASSERT_EQ(small_runs.size(), 1u);
  EXPECT_EQ(small_runs[0].data.capacity(), 4096u);
}

TEST(WriteBufferTest, OverlayReadsOnlyTheAskedWindow) {
  WriteBuffer wb;
  wb.Write(100, Bytes(50, 3));
  std::vector<uint8_t> window(20, 0xAA);
  wb.Overlay(140, window);
  auto expect = Bytes(50, 3);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(window[i], expect[40 + i]);
  for (int i = 10; i < 20; ++i) EXPECT_EQ(window[i], 0xAA);
  EXPECT_EQ(wb.end(), 150u);
}

}  // namespace
}  // namespace granary::client
