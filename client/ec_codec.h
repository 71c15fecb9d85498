// The client's erasure coding of one block (docs/erasure-coding.md): a full block becomes K data
// fragments and M parity fragments of EcFragmentSize(block, K) bytes each (common/erasure.h).
// Data fragments are views into the caller's block wherever they lie wholly inside it; only a
// fragment that runs past the block's end is copied (zero-padded), so a block that is a whole
// number of fragments is encoded without copying a data byte.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "common/aligned_buffer.h"
#include "common/erasure.h"
#include "common/status.h"

namespace granary::client {

class EcCodec {
 public:
  // One shared codec per shape (the ISA-L tables are built once). InvalidArgument outside
  // 1 <= K <= 16, 1 <= M <= 4.
  static Result<std::shared_ptr<const EcCodec>> Get(int k, int m);

  int k() const { return rs_->data_count(); }
  int m() const { return rs_->parity_count(); }
  int n() const { return k() + m(); }
  const ReedSolomon& rs() const { return *rs_; }

  struct Encoded {
    uint64_t fragment_size = 0;
    // K + M fragments, each fragment_size bytes; data ones may point into the encoded block,
    // which must then outlive this.
    std::vector<std::span<const uint8_t>> fragments;
    AlignedBuffer storage;  // parity fragments, then any padded data fragment
  };

  // Encodes `block` (1 byte or more).
  Encoded Encode(std::span<const uint8_t> block) const;

  // Rebuilds the fragments with want[i] set, in place, from the first K with present[i] set;
  // each pointer covers `length` bytes (the same byte range of every fragment).
  Status Decode(uint8_t* const* fragments, const std::vector<bool>& present,
                const std::vector<bool>& want, size_t length) const {
    return rs_->Reconstruct(fragments, present, want, length);
  }

 private:
  explicit EcCodec(std::unique_ptr<ReedSolomon> rs) : rs_(std::move(rs)) {}
  std::unique_ptr<ReedSolomon> rs_;
};

}  // namespace granary::client
