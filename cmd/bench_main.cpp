// `granary bench datapath --meta ADDR [--size-mib 1024] [--path default/bench.dat] [--labels L]`:
// writes then reads one file through libgranary and prints one JSON object with MB/s. The
// scripts in bench/ put it beside the physical limits (iperf3, fio, RocksDB) measured in the
// same run. `granary bench create --dir VOLUME/DIR --count N`: fills a directory with N empty
// files through batched creates (bench/mount.sh's million-entry listing).
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "client/granary.h"
#include "client/meta_client.h"
#include "cmd/process.h"
#include "cmd/roles.h"
#include "common/aligned_buffer.h"
#include "common/config.h"
#include "common/log.h"

namespace granary::cmd {
namespace {

using Clock = std::chrono::steady_clock;

// The client of one bench run, or nullptr once the reason is printed.
std::unique_ptr<client::Client> Connect(const client::ClientOptions& options) {
  auto c = client::Client::Connect(options);
  if (!c.ok()) {
    std::fprintf(stderr, "bench: %s\n", c.status().ToString().c_str());
    return nullptr;
  }
  return std::move(*c);
}

// "VOLUME/PATH" -> {VOLUME, PATH}.
std::pair<std::string, std::string> VolumeAndPath(const std::string& target) {
  const size_t slash = target.find('/');
  return {target.substr(0, slash), slash == std::string::npos ? "" : target.substr(slash + 1)};
}

int Datapath(const std::string& meta, uint64_t size_mib, const std::string& target,
             uint64_t chunk_mib, uint64_t buffer_mib, uint32_t inflight,
             const std::string& labels) {
  client::ClientOptions options;
  options.meta = meta;
  options.labels = labels;
  options.write_buffer_bytes = buffer_mib << 20;
  options.max_inflight_blocks = inflight;
  auto c = Connect(options);
  if (!c) return 1;
  const auto [volume, path] = VolumeAndPath(target);
  const uint64_t size = size_mib << 20;
  const size_t chunk = chunk_mib << 20;
  AlignedBuffer buf(chunk);
  for (size_t i = 0; i < chunk; ++i) buf.data()[i] = static_cast<uint8_t>(i * 131 + 7);

  auto t0 = Clock::now();
  auto f = c->Open(volume, path, {.create = true, .truncate = true});
  if (!f.ok()) {
    std::fprintf(stderr, "bench: %s\n", f.status().ToString().c_str());
    return 1;
  }
  for (uint64_t off = 0; off < size; off += chunk) {
    Status s = (*f)->Pwrite({buf.data(), std::min<uint64_t>(chunk, size - off)}, off);
    if (!s.ok()) {
      std::fprintf(stderr, "bench: %s\n", s.ToString().c_str());
      return 1;
    }
  }
  Status closed = (*f)->Close();  // durable: every replica fsynced, metadata committed
  if (!closed.ok()) {
    std::fprintf(stderr, "bench: %s\n", closed.ToString().c_str());
    return 1;
  }
  double write_s = std::chrono::duration<double>(Clock::now() - t0).count();

  auto t1 = Clock::now();
  auto r = c->Open(volume, path);
  if (!r.ok()) {
    std::fprintf(stderr, "bench: %s\n", r.status().ToString().c_str());
    return 1;
  }
  uint64_t read = 0;
  bool intact = true;
  while (read < size) {
    auto n = (*r)->Pread({buf.data(), chunk}, read);
    if (!n.ok() || *n == 0) {
      std::fprintf(stderr, "bench: read at %llu: %s\n", static_cast<unsigned long long>(read),
                   n.ok() ? "short file" : n.status().ToString().c_str());
      return 1;
    }
    intact = intact && buf.data()[0] == 7;
    read += *n;
  }
  double read_s = std::chrono::duration<double>(Clock::now() - t1).count();
  (void)(*r)->Close();
  (void)c->Remove(volume, path);

  nlohmann::json out = {{"bytes", size},
                        {"write_MBps", size / write_s / 1e6},
                        {"read_MBps", size / read_s / 1e6},
                        {"write_seconds", write_s},
                        {"read_seconds", read_s},
                        {"intact", intact}};
  std::printf("%s\n", out.dump().c_str());
  return intact ? 0 : 1;
}

// Creates `count` empty files named f0, f1, … in directory VOLUME/DIR (made if missing), `batch`
// per Batch call (several namespace operations per RPC and per replicated log entry), with
// `inflight` calls at a time. Prints creates/s.
int CreateMany(const std::string& meta, const std::string& target, uint64_t count, uint32_t batch,
               uint32_t inflight) {
  client::ClientOptions options;
  options.meta = meta;
  auto c = Connect(options);
  if (!c) return 1;
  const auto [volume, path] = VolumeAndPath(target);
  auto dir = c->Mkdir(volume, path, 0755, /*parents=*/true);
  if (!dir.ok()) {
    std::fprintf(stderr, "bench: %s\n", dir.status().ToString().c_str());
    return 1;
  }
  std::atomic<uint64_t> next{0}, failed{0};
  std::string first_error;
  std::mutex mu;
  auto t0 = Clock::now();
  std::vector<std::thread> workers;
  for (uint32_t w = 0; w < std::max(inflight, 1u); ++w) {
    workers.emplace_back([&] {
      while (true) {
        const uint64_t from = next.fetch_add(batch);
        if (from >= count) return;
        BatchRequest req;
        for (uint64_t i = from; i < std::min<uint64_t>(count, from + batch); ++i) {
          CreateRequest* r = req.add_ops()->mutable_create();
          r->set_parent(dir->ino());
          r->set_name(fmt::format("f{}", i));
          r->set_mode(0644);
          r->set_exclusive(true);
        }
        auto reply = c->meta().Batch(std::move(req));
        std::string error;
        if (!reply.ok()) {
          failed += batch;
          error = reply.status().ToString();
        } else {
          for (const BatchResult& r : reply->results()) {
            if (r.code() == Code::OK) continue;
            ++failed;
            error = r.message();
          }
        }
        if (!error.empty()) {
          std::lock_guard lock(mu);
          if (first_error.empty()) first_error = error;
        }
      }
    });
  }
  for (auto& t : workers) t.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  nlohmann::json out = {{"bench", "create"},      {"files", count},
                        {"batch", batch},         {"inflight", inflight},
                        {"seconds", seconds},     {"creates_per_s", count / seconds},
                        {"failed", failed.load()}};
  if (!first_error.empty()) out["first_error"] = first_error;
  std::printf("%s\n", out.dump().c_str());
  return failed.load() == 0 ? 0 : 1;
}

}  // namespace

int RunBench(int argc, char** argv) {
  CLI::App app{"granary bench: built-in benchmarks"};
  app.require_subcommand(1);
  std::string meta = EnvOr("GRANARY_META", "127.0.0.1:7410");
  uint64_t size_mib = 1024;
  uint64_t chunk_mib = 16;
  std::string path = "default/bench.dat";
  uint64_t buffer_mib = client::ClientOptions{}.write_buffer_bytes >> 20;
  uint32_t inflight = client::ClientOptions{}.max_inflight_blocks;
  std::string labels;
  auto* datapath = app.add_subcommand("datapath", "write then read one file through libgranary");
  datapath->add_option("--meta", meta, "metanode address")->capture_default_str();
  datapath->add_option("--size-mib", size_mib, "file size")->capture_default_str();
  datapath->add_option("--chunk-mib", chunk_mib, "bytes per pwrite/pread")->capture_default_str();
  datapath->add_option("--path", path, "VOLUME/PATH")->capture_default_str();
  datapath->add_option("--buffer-mib", buffer_mib, "write buffer per file")->capture_default_str();
  datapath->add_option("--inflight", inflight, "blocks in flight")->capture_default_str();
  datapath->add_option("--labels", labels,
                       "where this client runs, e.g. host=h2 (default $GRANARY_LABELS)");
  auto* create = app.add_subcommand(
      "create", "create many empty files in one directory, several per metanode call");
  uint64_t count = 100000;
  uint32_t batch = 256, calls = 4;
  std::string dir = "default/many";
  create->add_option("--meta", meta, "metanode address")->capture_default_str();
  create->add_option("--dir", dir, "VOLUME/DIR (made if missing)")->capture_default_str();
  create->add_option("--count", count, "files to create (f0, f1, …)")->capture_default_str();
  create->add_option("--batch", batch, "creates per call (at most 1024)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  create->add_option("--inflight", calls, "calls in flight")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  InitLogging("bench", EnvOr("GRANARY_LOG_LEVEL", "warn"));
  UseHeapForLargeBuffers();
  if (create->parsed()) return CreateMany(meta, dir, count, batch, calls);
  if (datapath->parsed()) {
    return Datapath(meta, size_mib, path, chunk_mib, buffer_mib, inflight, labels);
  }
  return 2;
}

}  // namespace granary::cmd
