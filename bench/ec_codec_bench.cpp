// Erasure coding through libgranary's own path (client/ec_codec.h: what a writer runs per block,
// what a reader runs to rebuild lost data fragments) against raw ISA-L ec_encode_data on the
// same buffers, in the same run, alternating so that both see the same machine state. Prints
// one JSON line per code shape.
//
//   ec_codec_bench [--block-mib 4] [--blocks 16] [--rounds 9] [--shapes 4+2,8+3]
//
// Figures are GB/s of user data (K data fragments) through the coder; CRC32C and the network
// are not part of them (bench/ec.sh measures the whole path).
#include <fmt/format.h>
#include <isa-l/erasure_code.h>
#include <malloc.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "client/ec_codec.h"
#include "common/aligned_buffer.h"
#include "common/log.h"

using namespace granary;
using Clock = std::chrono::steady_clock;

namespace {

// The fastest round: on a shared machine, interference only ever slows a round down.
double Best(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }

template <typename F>
double Seconds(F&& f) {
  auto t0 = Clock::now();
  f();
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

int Run(int k, int m, size_t block, size_t blocks, int rounds) {
  auto codec = client::EcCodec::Get(k, m);
  if (!codec.ok()) {
    std::fprintf(stderr, "%s\n", codec.status().ToString().c_str());
    return 1;
  }
  const size_t f = EcFragmentSize(block, k);
  if (f * k != block) {
    std::fprintf(stderr, "block %zu is not K whole fragments; pick another size\n", block);
    return 1;
  }
  // The same blocks for both coders.
  std::vector<AlignedBuffer> data;
  std::vector<AlignedBuffer> parity;
  std::mt19937_64 rng(1);
  for (size_t b = 0; b < blocks; ++b) {
    data.emplace_back(block);
    for (size_t i = 0; i < block; i += 8) {
      uint64_t x = rng();
      std::memcpy(data.back().data() + i, &x, 8);
    }
    parity.emplace_back(m * f);
  }
  std::vector<uint8_t> matrix((k + m) * k);
  std::vector<uint8_t> tables(32 * k * m);
  gf_gen_cauchy1_matrix(matrix.data(), k + m, k);
  ec_init_tables(k, m, &matrix[k * k], tables.data());

  // Raw ISA-L writes each block's parity into one reused buffer, as the client path's allocator
  // hands the same freed buffer back block after block: both keep their parity cache-hot.
  AlignedBuffer scratch(m * f);
  auto encode_into = [&](size_t b, uint8_t* out) {
    uint8_t* src[16];
    uint8_t* dst[4];
    for (int i = 0; i < k; ++i) src[i] = data[b].data() + i * f;
    for (int j = 0; j < m; ++j) dst[j] = out + j * f;
    ec_encode_data(static_cast<int>(f), k, m, tables.data(), src, dst);
  };
  auto raw_encode = [&] {
    for (size_t b = 0; b < blocks; ++b) encode_into(b, scratch.data());
  };
  size_t sink = 0;
  auto client_encode = [&] {
    for (size_t b = 0; b < blocks; ++b) {
      client::EcCodec::Encoded e = (*codec)->Encode(data[b].span());
      sink += e.fragments.back()[0];
    }
  };

  // Decode: the first M data fragments are lost and rebuilt from the rest. Raw ISA-L gets the
  // decode tables precomputed once; the client path derives them per call, as a reader does.
  std::vector<int> lost;
  for (int i = 0; i < m; ++i) lost.push_back(i);
  std::vector<int> survivors;
  for (int i = m; i < k + m && static_cast<int>(survivors.size()) < k; ++i) survivors.push_back(i);
  std::vector<uint8_t> sub(k * k), inv(k * k), decode((m)*k), decode_tables(32 * k * m);
  for (int r = 0; r < k; ++r) {
    for (int c = 0; c < k; ++c) sub[r * k + c] = matrix[survivors[r] * k + c];
  }
  gf_invert_matrix(sub.data(), inv.data(), k);
  for (int e = 0; e < m; ++e) {
    for (int c = 0; c < k; ++c) decode[e * k + c] = inv[lost[e] * k + c];
  }
  ec_init_tables(k, m, decode.data(), decode_tables.data());
  for (size_t b = 0; b < blocks; ++b) encode_into(b, parity[b].data());  // decoders' inputs
  std::vector<AlignedBuffer> rebuilt;
  for (size_t b = 0; b < blocks; ++b) rebuilt.emplace_back(m * f);
  auto fragment = [&](size_t b, int i) -> uint8_t* {
    return i < k ? data[b].data() + i * f : parity[b].data() + (i - k) * f;
  };
  auto raw_decode = [&] {
    for (size_t b = 0; b < blocks; ++b) {
      uint8_t* src[16];
      uint8_t* dst[4];
      for (int i = 0; i < k; ++i) src[i] = fragment(b, survivors[i]);
      for (int e = 0; e < m; ++e) dst[e] = rebuilt[b].data() + e * f;
      ec_encode_data(static_cast<int>(f), k, m, decode_tables.data(), src, dst);
    }
  };
  std::vector<bool> present(k + m, true), want(k + m, false);
  for (int i : lost) present[i] = false, want[i] = true;
  bool decode_ok = true;
  auto client_decode = [&] {
    for (size_t b = 0; b < blocks; ++b) {
      uint8_t* ptrs[20];
      for (int i = 0; i < k + m; ++i) ptrs[i] = fragment(b, i);
      for (int e = 0; e < m; ++e) ptrs[lost[e]] = rebuilt[b].data() + e * f;
      decode_ok = decode_ok && (*codec)->Decode(ptrs, present, want, f).ok();
    }
  };

  // Warm up each, then alternate rounds.
  raw_encode();
  client_encode();
  raw_decode();
  client_decode();
  if (std::memcmp(rebuilt[0].data(), data[0].data(), m * f) != 0 || !decode_ok) {
    std::fprintf(stderr, "decode mismatch\n");
    return 1;
  }
  std::vector<double> re, ce, rd, cd;
  for (int r = 0; r < rounds; ++r) {
    re.push_back(Seconds(raw_encode));
    ce.push_back(Seconds(client_encode));
    rd.push_back(Seconds(raw_decode));
    cd.push_back(Seconds(client_decode));
  }
  const double bytes = static_cast<double>(block) * blocks;
  auto gbps = [&](double s) { return bytes / s / 1e9; };
  const double raw_enc = gbps(Best(re)), cli_enc = gbps(Best(ce));
  const double raw_dec = gbps(Best(rd)), cli_dec = gbps(Best(cd));
  std::printf(
      "{\"bench\":\"ec_codec\",\"k\":%d,\"m\":%d,\"block_KiB\":%zu,\"blocks\":%zu,\"rounds\":%d,"
      "\"encode_raw_GBps\":%.2f,\"encode_client_GBps\":%.2f,\"encode_ratio\":%.2f,"
      "\"decode_raw_GBps\":%.2f,\"decode_client_GBps\":%.2f,\"decode_ratio\":%.2f,"
      "\"lost_fragments\":%d,\"target_ratio\":0.9,\"sink\":%zu}\n",
      k, m, block >> 10, blocks, rounds, raw_enc, cli_enc, cli_enc / raw_enc, raw_dec, cli_dec,
      cli_dec / raw_dec, m, sink % 2);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"EC coder: libgranary's path vs raw ISA-L"};
  size_t block_mib = 4, blocks = 16;
  int rounds = 9;
  std::string shapes = "4+2,8+3";
  app.add_option("--block-mib", block_mib, "block size")->capture_default_str();
  app.add_option("--blocks", blocks, "blocks per round")->capture_default_str();
  app.add_option("--rounds", rounds, "timed rounds (the best is reported)")->capture_default_str();
  app.add_option("--shapes", shapes, "K+M list")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  InitLogging("bench", "warn");
  // As the granary binary does: large buffers come from the heap and are reused.
  mallopt(M_MMAP_THRESHOLD, 128 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  size_t pos = 0;
  while (pos < shapes.size()) {
    size_t comma = shapes.find(',', pos);
    if (comma == std::string::npos) comma = shapes.size();
    std::string shape = shapes.substr(pos, comma - pos);
    pos = comma + 1;
    int k = 0, m = 0;
    if (std::sscanf(shape.c_str(), "%d+%d", &k, &m) != 2) {
      std::fprintf(stderr, "bad shape '%s'\n", shape.c_str());
      return 2;
    }
    if (int rc = Run(k, m, block_mib << 20, blocks, rounds); rc != 0) return rc;
  }
  return 0;
}
