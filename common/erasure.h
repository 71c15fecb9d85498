// Reed-Solomon erasure coding over ISA-L (Cauchy matrix, so every K-of-(K+M) subset decodes).
// Shared by the client (encode on write, reconstruct on read) and the datanode (rebuild).
// The fragment format (docs/erasure-coding.md) is fixed here too, so both sides agree on it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/status.h"

namespace granary {

// Bytes in each of the K+M fragments of an erasure-coded block of `block_length` bytes:
// ceil(block_length / K) rounded up to 4 KiB, so that fragment reads and CRC units stay page
// aligned. Data fragment i holds block bytes [i*F, (i+1)*F); bytes past the block's end are
// zeros. Part of the on-disk format: never changes.
inline uint64_t EcFragmentSize(uint64_t block_length, int data_count) {
  const uint64_t k = static_cast<uint64_t>(data_count);
  const uint64_t per = (block_length + k - 1) / k;
  return (per + 4095) / 4096 * 4096;
}

class ReedSolomon {
 public:
  static constexpr int kMaxData = 16;
  static constexpr int kMaxParity = 4;

  // InvalidArgument unless 1 <= data <= 16 and 1 <= parity <= 4.
  static Result<std::unique_ptr<ReedSolomon>> Create(int data, int parity);

  int data_count() const { return k_; }
  int parity_count() const { return m_; }

  // Computes the M parity fragments from the K data fragments, each `length` bytes.
  void Encode(const uint8_t* const* data, uint8_t* const* parity, size_t length) const;

  // fragments[i] for i in [0, K+M) points at `length` bytes; present[i] says whether it holds
  // valid data. Missing fragments are rebuilt in place. InvalidArgument when fewer than K are
  // present.
  Status Reconstruct(uint8_t* const* fragments, const std::vector<bool>& present,
                     size_t length) const;

  // Rebuilds only the fragments with want[i] set (each must be missing), from the first K
  // present ones — a reader that lost a data fragment need not recompute parity. Other missing
  // fragments are left untouched. InvalidArgument when fewer than K are present or a wanted
  // fragment is marked present.
  Status Reconstruct(uint8_t* const* fragments, const std::vector<bool>& present,
                     const std::vector<bool>& want, size_t length) const;

 private:
  ReedSolomon(int k, int m);
  int k_;
  int m_;
  std::vector<uint8_t> encode_matrix_;  // (k+m) x k
  std::vector<uint8_t> encode_tables_;  // ISA-L expanded tables for the parity rows
};

}  // namespace granary
