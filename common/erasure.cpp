#include "common/erasure.h"

#include <fmt/format.h>
#include <isa-l/erasure_code.h>

namespace granary {

ReedSolomon::ReedSolomon(int k, int m)
    : k_(k), m_(m), encode_matrix_((k + m) * k), encode_tables_(32 * k * m) {
  gf_gen_cauchy1_matrix(encode_matrix_.data(), k + m, k);
  ec_init_tables(k, m, &encode_matrix_[k * k], encode_tables_.data());
}

Result<std::unique_ptr<ReedSolomon>> ReedSolomon::Create(int data, int parity) {
  if (data < 1 || data > kMaxData || parity < 1 || parity > kMaxParity) {
    return InvalidArgument(fmt::format("erasure code {}+{}: K must be 1..{} and M 1..{}", data,
                                       parity, kMaxData, kMaxParity));
  }
  return std::unique_ptr<ReedSolomon>(new ReedSolomon(data, parity));
}

void ReedSolomon::Encode(const uint8_t* const* data, uint8_t* const* parity, size_t length) const {
  ec_encode_data(static_cast<int>(length), k_, m_, const_cast<uint8_t*>(encode_tables_.data()),
                 const_cast<uint8_t**>(data), const_cast<uint8_t**>(parity));
}

Status ReedSolomon::Reconstruct(uint8_t* const* fragments, const std::vector<bool>& present,
                                size_t length) const {
  std::vector<bool> want(present.size());
  for (size_t i = 0; i < present.size(); ++i) want[i] = !present[i];
  return Reconstruct(fragments, present, want, length);
}

Status ReedSolomon::Reconstruct(uint8_t* const* fragments, const std::vector<bool>& present,
                                const std::vector<bool>& want, size_t length) const {
  const int n = k_ + m_;
  if (static_cast<int>(present.size()) != n || static_cast<int>(want.size()) != n) {
    return InvalidArgument(
        fmt::format("reconstruct: {} presence and {} wanted flags for {} fragments", present.size(),
                    want.size(), n));
  }
  std::vector<int> survivors;
  std::vector<int> missing;
  for (int i = 0; i < n; ++i) {
    if (want[i] && present[i]) {
      return InvalidArgument(fmt::format("reconstruct: fragment {} is wanted but present", i));
    }
    if (present[i] && static_cast<int>(survivors.size()) < k_) survivors.push_back(i);
    if (want[i]) missing.push_back(i);
  }
  if (missing.empty()) return Status::Ok();
  if (static_cast<int>(survivors.size()) < k_) {
    return InvalidArgument(
        fmt::format("reconstruct: only {} of {} needed fragments present", survivors.size(), k_));
  }

  // Rows of the encode matrix for the survivors, inverted, give data from survivors.
  std::vector<uint8_t> survivor_matrix(k_ * k_);
  for (int r = 0; r < k_; ++r) {
    for (int c = 0; c < k_; ++c)
      survivor_matrix[r * k_ + c] = encode_matrix_[survivors[r] * k_ + c];
  }
  std::vector<uint8_t> inverse(k_ * k_);
  if (gf_invert_matrix(survivor_matrix.data(), inverse.data(), k_) != 0) {
    return Internal("reconstruct: survivor matrix is singular");
  }

  // Each missing fragment's row expressed over the survivors.
  const int nmissing = static_cast<int>(missing.size());
  std::vector<uint8_t> decode_matrix(nmissing * k_);
  for (int e = 0; e < nmissing; ++e) {
    int row = missing[e];
    if (row < k_) {
      for (int c = 0; c < k_; ++c) decode_matrix[e * k_ + c] = inverse[row * k_ + c];
    } else {
      for (int c = 0; c < k_; ++c) {
        uint8_t acc = 0;
        for (int j = 0; j < k_; ++j) {
          acc ^= gf_mul(encode_matrix_[row * k_ + j], inverse[j * k_ + c]);
        }
        decode_matrix[e * k_ + c] = acc;
      }
    }
  }
  std::vector<uint8_t> tables(32 * k_ * nmissing);
  ec_init_tables(k_, nmissing, decode_matrix.data(), tables.data());
  std::vector<uint8_t*> sources(k_);
  for (int i = 0; i < k_; ++i) sources[i] = fragments[survivors[i]];
  std::vector<uint8_t*> targets(nmissing);
  for (int e = 0; e < nmissing; ++e) targets[e] = fragments[missing[e]];
  ec_encode_data(static_cast<int>(length), k_, nmissing, tables.data(), sources.data(),
                 targets.data());
  return Status::Ok();
}

}  // namespace granary
