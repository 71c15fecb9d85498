#include "client/ec_codec.h"

#include <cstring>
#include <map>
#include <mutex>

namespace granary::client {

Result<std::shared_ptr<const EcCodec>> EcCodec::Get(int k, int m) {
  static std::mutex mu;
  static std::map<std::pair<int, int>, std::shared_ptr<const EcCodec>> codecs;
  std::lock_guard lock(mu);
  auto it = codecs.find({k, m});
  if (it != codecs.end()) return it->second;
  auto rs = ReedSolomon::Create(k, m);
  if (!rs.ok()) return rs.status();
  std::shared_ptr<const EcCodec> codec(new EcCodec(std::move(*rs)));
  codecs.emplace(std::make_pair(k, m), codec);
  return codec;
}

EcCodec::Encoded EcCodec::Encode(std::span<const uint8_t> block) const {
  Encoded e;
  const uint64_t f = EcFragmentSize(block.size(), k());
  e.fragment_size = f;
  // Data fragments that run past the block's end need a zero-padded copy.
  int padded = 0;
  for (int i = 0; i < k(); ++i) padded += (i + 1) * f > block.size() ? 1 : 0;
  e.storage = AlignedBuffer(static_cast<size_t>((m() + padded) * f));
  uint8_t* parity = e.storage.data();
  uint8_t* pad = parity + m() * f;

  std::vector<const uint8_t*> data(k());
  for (int i = 0; i < k(); ++i) {
    const uint64_t start = i * f;
    if (start + f <= block.size()) {
      data[i] = block.data() + start;
      continue;
    }
    const uint64_t have = start < block.size() ? block.size() - start : 0;
    if (have > 0) std::memcpy(pad, block.data() + start, have);
    std::memset(pad + have, 0, f - have);
    data[i] = pad;
    pad += f;
  }
  std::vector<uint8_t*> parities(m());
  for (int j = 0; j < m(); ++j) parities[j] = parity + j * f;
  rs_->Encode(data.data(), parities.data(), f);

  e.fragments.reserve(n());
  for (int i = 0; i < k(); ++i) e.fragments.emplace_back(data[i], f);
  for (int j = 0; j < m(); ++j) e.fragments.emplace_back(parities[j], f);
  return e;
}

}  // namespace granary::client
