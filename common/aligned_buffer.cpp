#include "common/aligned_buffer.h"

#include <cassert>
#include <new>
#include <utility>

namespace granary {

AlignedBuffer::AlignedBuffer(size_t size) : size_(size), capacity_(RoundUpToPage(size)) {
  if (capacity_ == 0) capacity_ = kPageSize;
  void* p = nullptr;
  if (posix_memalign(&p, kPageSize, capacity_) != 0) throw std::bad_alloc();
  data_ = static_cast<uint8_t*>(p);
}

AlignedBuffer& AlignedBuffer::operator=(AlignedBuffer&& other) noexcept {
  if (this != &other) {
    std::free(data_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    capacity_ = std::exchange(other.capacity_, 0);
  }
  return *this;
}

void AlignedBuffer::resize(size_t size) {
  assert(size <= capacity_ && "AlignedBuffer::resize beyond capacity");
  size_ = size;
}

std::shared_ptr<BufferPool> BufferPool::Create(size_t buffer_size, size_t max_buffers) {
  return std::shared_ptr<BufferPool>(new BufferPool(buffer_size, max_buffers));
}

AlignedBuffer BufferPool::TakeLocked() {
  ++outstanding_;
  if (!free_.empty()) {
    AlignedBuffer b = std::move(free_.back());
    free_.pop_back();
    b.resize(buffer_size_);
    return b;
  }
  return AlignedBuffer(buffer_size_);
}

BufferPool::Lease BufferPool::Acquire() {
  std::unique_lock lock(mu_);
  freed_.wait(lock, [&] { return outstanding_ < max_buffers_; });
  return Lease(shared_from_this(), TakeLocked());
}

BufferPool::Lease BufferPool::TryAcquire() {
  std::lock_guard lock(mu_);
  if (outstanding_ >= max_buffers_) return {};
  return Lease(shared_from_this(), TakeLocked());
}

size_t BufferPool::in_use() const {
  std::lock_guard lock(mu_);
  return outstanding_;
}

void BufferPool::Return(AlignedBuffer buffer) {
  {
    std::lock_guard lock(mu_);
    --outstanding_;
    free_.push_back(std::move(buffer));
  }
  freed_.notify_one();
}

BufferPool::Lease& BufferPool::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    if (pool_) pool_->Return(std::move(buffer_));
    pool_ = std::move(other.pool_);
    buffer_ = std::move(other.buffer_);
  }
  return *this;
}

BufferPool::Lease::~Lease() {
  if (pool_) pool_->Return(std::move(buffer_));
}

}  // namespace granary
