// Snapshot benchmark (docs/snapshots.md): the time and metadata a snapshot of a volume of N files
// costs, for files of two sizes (it must not grow with the data bytes), beside raw RocksDB
// writing the same number of records in one synced batch on the same disk. One JSON object.
//   build/bench/snapshot_bench [--files 1000,100000] [--small 4096] [--large 67108864]
//                              [--clients 16] [--dir /tmp]
// The files' slices are committed as metadata only (no datanode holds their bytes): a snapshot
// reads and writes metadata alone, so the figure is the same with the bytes on disk.
#include <absl/synchronization/mutex.h>
#include <rocksdb/db.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "client/meta_client.h"
#include "common/log.h"
#include "metanode/metanode.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t sum = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) sum += e.file_size();
  }
  return sum;
}

// `records` random-keyed 200-byte records in one synced WriteBatch: what writing the snapshot's
// records costs the store at least.
double RawBatch(const std::string& path, uint64_t records) {
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::Open(options, path, &raw).ok()) return 0;
  std::unique_ptr<rocksdb::DB> db(raw);
  const auto start = Clock::now();
  rocksdb::WriteBatch batch;
  std::string value(200, 'v');
  for (uint64_t i = 0; i < records; ++i) {
    const uint64_t k = i * 0x9E3779B97F4A7C15ull;
    batch.Put(rocksdb::Slice(reinterpret_cast<const char*>(&k), 8), value);
  }
  rocksdb::WriteOptions wo;
  wo.sync = true;
  if (!db->Write(wo, &batch).ok()) return 0;
  return Seconds(start);
}

// Fills volume `name` with `files` files of `bytes` each (one committed slice per 64 MiB range),
// 1,000 to a directory, from `clients` threads.
bool Fill(granary::client::MetaClientOptions co, const granary::Volume& volume, uint64_t files,
          uint64_t bytes, int clients) {
  std::atomic<uint64_t> next{0};
  std::atomic<bool> failed{false};
  std::vector<uint64_t> dirs;
  auto mc = granary::client::MetaClient::Connect(co);
  if (!mc.ok()) return false;
  for (uint64_t d = 0; d * 1000 < files; ++d) {
    auto dir = (*mc)->Mkdir(volume.root_ino(), "d" + std::to_string(d));
    if (!dir.ok()) return false;
    dirs.push_back(dir->ino());
  }
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&] {
      auto m = granary::client::MetaClient::Connect(co);
      if (!m.ok()) {
        failed = true;
        return;
      }
      constexpr uint64_t kRange = 64ull << 20;
      for (uint64_t i = next++; i < files && !failed; i = next++) {
        auto f = (*m)->Create(dirs[i / 1000], "f" + std::to_string(i));
        const uint64_t ranges = (bytes + kRange - 1) / kRange;
        auto a = f.ok() ? (*m)->Allocate(f->ino(), static_cast<uint32_t>(ranges), bytes)
                        : granary::Result<granary::AllocateReply>(f.status());
        if (!a.ok()) {
          std::fprintf(stderr, "fill: %s\n", a.status().ToString().c_str());
          failed = true;
          return;
        }
        granary::CommitRequest req;
        req.set_ino(f->ino());
        req.set_intent_id(a->intent_id());
        req.set_generation(a->generation());
        for (uint64_t r = 0; r < ranges; ++r) {
          const uint64_t len = std::min(kRange, bytes - r * kRange);
          auto* range = req.add_ranges();
          range->set_range_index(r);
          auto* s = range->add_slices();
          s->set_slice_id(a->first_slice_id() + r);
          s->set_slice_length(len);
          s->set_length(len);
        }
        req.set_end(bytes);
        if (auto c = (*m)->Commit(req); !c.ok()) {
          std::fprintf(stderr, "commit: %s\n", c.status().ToString().c_str());
          failed = true;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  return !failed;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"snapshot benchmark"};
  std::vector<uint64_t> counts = {1000, 100000};
  uint64_t small = 4096, large = 64ull << 20;
  int clients = 16;
  std::string base = fs::temp_directory_path().string();
  app.add_option("--files", counts, "volume sizes in files")->delimiter(',')->capture_default_str();
  app.add_option("--small", small, "bytes per file, small variant")->capture_default_str();
  app.add_option("--large", large, "bytes per file, large variant")->capture_default_str();
  app.add_option("--clients", clients, "threads filling the volumes")->capture_default_str();
  app.add_option("--dir", base, "where the databases go")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  granary::InitLogging("bench", "warn");
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  const std::string dir = base + "/granary-snapshot-bench-" + std::to_string(getpid());
  fs::create_directories(dir);
  granary::metanode::MetanodeOptions options;
  options.core.data_dir = dir + "/meta";
  options.listen = "127.0.0.1:0";
  auto node = granary::metanode::Metanode::Start(options);
  if (!node.ok()) {
    std::fprintf(stderr, "start metanode: %s\n", node.status().ToString().c_str());
    return 1;
  }
  granary::client::MetaClientOptions co;
  co.address = (*node)->address();
  co.deadline = std::chrono::minutes(10);
  co.attempt_timeout = std::chrono::minutes(5);
  auto mc = granary::client::MetaClient::Connect(co);
  if (!mc.ok()) return 1;

  nlohmann::json out;
  out["bench"] = "snapshot";
  out["runs"] = nlohmann::json::array();
  for (uint64_t files : counts) {
    for (uint64_t bytes : {small, large}) {
      const std::string name = "v" + std::to_string(files) + "-" + std::to_string(bytes);
      auto volume = (*mc)->VolumeCreate(name);
      if (!volume.ok()) return 1;
      auto fill_start = Clock::now();
      if (!Fill(co, *volume, files, bytes, clients)) return 1;
      const double fill_s = Seconds(fill_start);
      const uint64_t before = DirBytes(options.core.data_dir);
      const auto start = Clock::now();
      auto snap = (*mc)->SnapshotCreate(name, "s");
      const double snap_s = Seconds(start);
      if (!snap.ok()) {
        std::fprintf(stderr, "snapshot: %s\n", snap.status().ToString().c_str());
        return 1;
      }
      const uint64_t grew = DirBytes(options.core.data_dir) - before;
      // Per file the snapshot writes an inode, a dentry and a chunk record per range, and bumps
      // each slice's reference count.
      const uint64_t ranges = (bytes + (64ull << 20) - 1) / (64ull << 20);
      const uint64_t records = files * (2 + 2 * ranges);
      const double raw_s = RawBatch(dir + "/raw-" + name, records);
      const auto del_start = Clock::now();
      const bool deleted = (*mc)->SnapshotDelete(name, "s").ok();
      const double del_s = Seconds(del_start);
      out["runs"].push_back({{"files", files},
                             {"bytes_per_file", bytes},
                             {"volume_bytes", files * bytes},
                             {"fill_s", fill_s},
                             {"snapshot_s", snap_s},
                             {"snapshot_inodes", snap->used_inodes()},
                             {"metadata_bytes_written", grew},
                             {"raw_rocksdb_batch_s", raw_s},
                             {"snapshot_vs_raw", raw_s > 0 ? snap_s / raw_s : 0},
                             {"delete_s", deleted ? del_s : -1}});
      std::fprintf(stderr, "files=%lu bytes=%lu snapshot=%.3fs raw=%.3fs metadata=%lu\n", files,
                   bytes, snap_s, raw_s, grew);
    }
  }
  node->reset();
  fs::remove_all(dir);
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
