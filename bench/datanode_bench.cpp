// Raw data-protocol throughput, one client -> one datanode over loopback TCP: WRITE_BLOCK
// (each acknowledged after fsync of the block file and its directory) and READ_BLOCK (served
// from the page cache with sendfile, CRC-verified by the client). The datanode runs in this
// process with injected epochs, so no metanode is needed. Prints one JSON object.
//
//   datanode_bench --dir DIR [--mib 256] [--block-kib 4096] [--depth 8] [--small-block-kib 64]
#include <fmt/format.h>
#include <malloc.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <random>

#include "common/crc32c.h"
#include "common/data_connection.h"
#include "common/log.h"
#include "datanode/datanode.h"

using namespace granary;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
  CLI::App app{"datanode data-protocol benchmark"};
  std::string dir;
  uint64_t mib = 256, block_kib = 4096;
  size_t depth = 8;
  app.add_option("--dir", dir, "data directory (created, then removed)")->required();
  app.add_option("--mib", mib, "MiB to write and read")->capture_default_str();
  app.add_option("--block-kib", block_kib, "block size in KiB")->capture_default_str();
  app.add_option("--depth", depth, "requests in flight")->capture_default_str();
  uint64_t small_kib = datanode::DatanodeOptions{}.small_block_max >> 10;
  app.add_option("--small-block-kib", small_kib, "blocks up to this size go to RocksDB (0: off)")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  InitLogging("bench", "warn");
  // As `granary datanode` does (cmd/datanode_main.cpp): large frame buffers come from the heap
  // and are reused, instead of fresh page-faulted mmaps per 4 MiB payload.
  mallopt(M_MMAP_THRESHOLD, 128 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);

  auto epochs = std::make_shared<datanode::StaticEpochs>();
  epochs->SetDefault(1);
  datanode::DatanodeOptions o;
  o.data_dir = dir;
  o.epochs = epochs;
  o.small_block_max = small_kib << 10;
  auto dn = datanode::Datanode::Start(o);
  if (!dn.ok()) {
    std::fprintf(stderr, "%s\n", dn.status().ToString().c_str());
    return 1;
  }
  std::string addr = (*dn)->data_address().ToString();
  auto conn = DataConnection::Connect(addr, DeadlineIn(10s));
  if (!conn.ok()) return 1;

  const size_t block = block_kib * 1024;
  const uint64_t count = mib * 1024 * 1024 / block;
  AlignedBuffer payload(block);
  std::mt19937_64 rng(1);
  for (size_t i = 0; i < block / 8; ++i) reinterpret_cast<uint64_t*>(payload.data())[i] = rng();
  std::vector<uint32_t> crcs = BlockCrcs(payload.data(), payload.size());

  auto run = [&](bool write) -> double {
    auto start = Clock::now();
    std::deque<std::future<Result<DataReply>>> inflight;
    uint64_t errors = 0;
    auto reap = [&] {
      auto r = inflight.front().get();
      inflight.pop_front();
      if (!r.ok() || r->header.code() != Code::OK) {
        ++errors;
        return;
      }
      if (!write) {
        std::span<const uint32_t> want(r->header.crcs().data(), r->header.crcs_size());
        if (FirstCrcMismatch(r->payload.data(), r->payload.size(), want.data(), want.size()) >= 0) {
          ++errors;
        }
      }
    };
    for (uint64_t i = 0; i < count; ++i) {
      DataRequest req;
      req.set_op(write ? WRITE_BLOCK : READ_BLOCK);
      req.set_pg_epoch(1);
      req.mutable_block()->set_slice_id(i + 1);
      if (write) {
        for (uint32_t c : crcs) req.add_crcs(c);
      }
      inflight.push_back(
          (*conn)->CallAsync(req, write ? payload.span() : std::span<uint8_t>(), DeadlineIn(60s)));
      if (inflight.size() >= depth) reap();
    }
    while (!inflight.empty()) reap();
    double secs = std::chrono::duration<double>(Clock::now() - start).count();
    if (errors) std::fprintf(stderr, "%lu errors\n", static_cast<unsigned long>(errors));
    return static_cast<double>(count * block) / secs / 1e6;
  };
  double write_mbps = run(true);
  double read_mbps = run(false);
  (*conn)->Close();
  (*dn)->Stop();
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  const double mb_per_block = static_cast<double>(block) / 1e6;
  std::printf(
      "{\"write_MBps\": %.1f, \"read_MBps\": %.1f, \"write_ops\": %.0f, \"read_ops\": %.0f, "
      "\"block_KiB\": %lu, \"depth\": %zu, \"small_block_kib\": %lu}\n",
      write_mbps, read_mbps, write_mbps / mb_per_block, read_mbps / mb_per_block,
      static_cast<unsigned long>(block_kib), depth, static_cast<unsigned long>(small_kib));
  return 0;
}
