// Page-aligned buffers, always (DESIGN §4): a kernel<->user copy into a non-aligned buffer is
// several times slower, and malloc of 1 MiB returns page+16.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

namespace granary {

inline constexpr size_t kPageSize = 4096;

inline size_t RoundUpToPage(size_t n) { return (n + kPageSize - 1) & ~(kPageSize - 1); }

class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  // Capacity rounds up to whole pages; size starts at `size`.
  explicit AlignedBuffer(size_t size);
  AlignedBuffer(AlignedBuffer&& other) noexcept { *this = std::move(other); }
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept;
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { std::free(data_); }

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  bool empty() const { return size_ == 0; }
  // Shrinks or grows within capacity (never reallocates; asserts otherwise).
  void resize(size_t size);
  std::span<uint8_t> span() { return {data_, size_}; }
  std::span<const uint8_t> span() const { return {data_, size_}; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

// A bounded set of equal-sized aligned buffers. Acquire blocks when all are out, which is the
// back-pressure that bounds a server's memory.
class BufferPool : public std::enable_shared_from_this<BufferPool> {
 public:
  class Lease;

  static std::shared_ptr<BufferPool> Create(size_t buffer_size, size_t max_buffers);

  // Blocks until a buffer is free. The buffer's size is reset to buffer_size().
  Lease Acquire();
  // Returns an empty lease when every buffer is out.
  Lease TryAcquire();

  size_t buffer_size() const { return buffer_size_; }
  size_t max_buffers() const { return max_buffers_; }
  size_t in_use() const;

 private:
  BufferPool(size_t buffer_size, size_t max_buffers)
      : buffer_size_(buffer_size), max_buffers_(max_buffers) {}
  AlignedBuffer TakeLocked();
  void Return(AlignedBuffer buffer);

  const size_t buffer_size_;
  const size_t max_buffers_;
  mutable std::mutex mu_;
  std::condition_variable freed_;
  std::vector<AlignedBuffer> free_;
  size_t outstanding_ = 0;
};

// A buffer on loan from a pool; returns itself when destroyed.
class BufferPool::Lease {
 public:
  Lease() = default;
  Lease(Lease&&) noexcept = default;
  Lease& operator=(Lease&& other) noexcept;
  ~Lease();

  explicit operator bool() const { return pool_ != nullptr; }
  AlignedBuffer& operator*() { return buffer_; }
  AlignedBuffer* operator->() { return &buffer_; }

 private:
  friend class BufferPool;
  Lease(std::shared_ptr<BufferPool> pool, AlignedBuffer buffer)
      : pool_(std::move(pool)), buffer_(std::move(buffer)) {}
  std::shared_ptr<BufferPool> pool_;
  AlignedBuffer buffer_;
};

}  // namespace granary
