// Reed-Solomon erasure coding over ISA-L (Cauchy matrix, so every K-of-(K+M) subset decodes).
// Shared by the client (encode on write, reconstruct on read) and the datanode (rebuild).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "common/status.h"

namespace granary {

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

 private:
  ReedSolomon(int k, int m);
  int k_;
  int m_;
  std::vector<uint8_t> encode_matrix_;  // (k+m) x k
  std::vector<uint8_t> encode_tables_;  // ISA-L expanded tables for the parity rows
};

}  // namespace granary
