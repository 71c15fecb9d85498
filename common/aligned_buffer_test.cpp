#include "common/aligned_buffer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

namespace granary {
namespace {

TEST(AlignedBufferTest, IsPageAlignedWithWholePageCapacity) {
  for (size_t size : {1u, 4096u, 4097u, 1u << 20}) {
    AlignedBuffer b(size);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % kPageSize, 0u) << size;
    EXPECT_EQ(b.size(), size);
    EXPECT_EQ(b.capacity() % kPageSize, 0u);
    EXPECT_GE(b.capacity(), size);
  }
}

TEST(BufferPoolTest, AcquireBlocksUntilABufferReturns) {
  auto pool = BufferPool::Create(8192, 2);
  auto a = pool->Acquire();
  auto b = pool->Acquire();
  EXPECT_EQ(pool->in_use(), 2u);
  EXPECT_FALSE(pool->TryAcquire());

  std::promise<void> got;
  std::thread waiter([&] {
    auto c = pool->Acquire();
    EXPECT_EQ(c->size(), 8192u);
    got.set_value();
  });
  auto future = got.get_future();
  EXPECT_EQ(future.wait_for(std::chrono::milliseconds(50)), std::future_status::timeout);
  a = BufferPool::Lease();  // give one back
  EXPECT_EQ(future.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  waiter.join();
  EXPECT_EQ(pool->in_use(), 1u);
}

TEST(BufferPoolTest, ReturnedBuffersAreReusedAtFullSize) {
  auto pool = BufferPool::Create(4096, 1);
  uint8_t* first = nullptr;
  {
    auto lease = pool->Acquire();
    first = lease->data();
    lease->resize(10);
  }
  auto lease = pool->Acquire();
  EXPECT_EQ(lease->data(), first);
  EXPECT_EQ(lease->size(), 4096u);
}

}  // namespace
}  // namespace granary
