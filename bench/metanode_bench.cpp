// Metanode benchmark: durable creates/s from 16 concurrent gRPC clients, beside raw RocksDB
// fillrandom (sync=0 and sync=1) on the same disk in the same run. Prints one JSON object.
//   build-meta/bench/metanode_bench [--seconds 3] [--clients 16] [--dir /tmp]
//                                   [--meta A,B,C]   # a running metanode or group instead
#include <absl/synchronization/mutex.h>
#include <grpcpp/grpcpp.h>
#include <rocksdb/db.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "client/meta_client.h"
#include "common/log.h"
#include "metanode/metanode.h"

namespace {

using Clock = std::chrono::steady_clock;

// db_bench's fillrandom: random 16-byte keys, 100-byte values, one writer thread.
double FillRandom(const std::string& path, bool sync, double seconds) {
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* raw = nullptr;
  if (!rocksdb::DB::Open(options, path, &raw).ok()) return 0;
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  std::mt19937_64 rng(42);
  std::string value(100, 'v');
  char key[16];
  uint64_t n = 0;
  const auto start = Clock::now();
  const auto end =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  while (true) {
    // Check the clock every 64 unsynced puts, after every synced one.
    for (int i = 0; i < (sync ? 1 : 64); ++i, ++n) {
      uint64_t a = rng(), b = rng();
      std::memcpy(key, &a, 8);
      std::memcpy(key + 8, &b, 8);
      db->Put(wo, rocksdb::Slice(key, 16), value).PermitUncheckedError();
    }
    if (Clock::now() >= end) break;
  }
  return n / std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

using granary::CreateRequest;
using granary::EntryReply;

int main(int argc, char** argv) {
  CLI::App app{"metanode benchmark"};
  double seconds = 3;
  int clients = 16;
  int depth = 1;
  std::string base = std::filesystem::temp_directory_path().string();
  app.add_option("--seconds", seconds, "duration of each measurement")->capture_default_str();
  app.add_option("--clients", clients, "concurrent gRPC clients")->capture_default_str();
  app.add_option("--depth", depth, "requests each client keeps in flight")->capture_default_str();
  bool async = false;
  app.add_flag("--async", async,
               "clients issue creates with gRPC's async callback API instead of one thread per "
               "request in flight");
  int batch = 1;
  app.add_option("--batch", batch,
                 "creates per call: above 1, one Batch call carries that many (several "
                 "operations per RPC and per replicated log entry)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  app.add_option("--dir", base, "where the databases go")->capture_default_str();
  bool no_fill = false;
  app.add_flag("--no-fillrandom", no_fill, "skip the RocksDB baselines (profiling)");
  std::string meta;
  app.add_option("--meta", meta,
                 "benchmark this running metanode or metadata group (HOST:PORT[,…]) instead of "
                 "one started in this process");
  CLI11_PARSE(app, argc, argv);
  granary::InitLogging("bench", "warn");
  // Debian's abseil checks every gRPC-internal mutex acquisition for lock-order cycles
  // (~8% of the CPU in a profile); a production server does not need it.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  const std::string dir = base + "/granary-meta-bench-" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  nlohmann::json out;
  out["bench"] = "metanode";
  out["clients"] = clients;
  out["depth"] = depth;
  out["client_api"] = async ? "async" : "sync";
  out["batch"] = batch;
  out["seconds"] = seconds;
  out["fillrandom_sync0_ops_per_s"] = no_fill ? 1.0 : FillRandom(dir + "/fill0", false, seconds);
  out["fillrandom_sync1_ops_per_s"] = no_fill ? 1.0 : FillRandom(dir + "/fill1", true, seconds);

  std::unique_ptr<granary::metanode::Metanode> node;
  if (meta.empty()) {
    granary::metanode::MetanodeOptions options;
    options.core.data_dir = dir + "/meta";
    options.listen = "127.0.0.1:0";
    auto started = granary::metanode::Metanode::Start(options);
    if (!started.ok()) {
      std::fprintf(stderr, "start metanode: %s\n", started.status().ToString().c_str());
      return 1;
    }
    node = std::move(*started);
    meta = node->address();
  }
  out["meta"] = meta;
  granary::client::MetaClientOptions co;
  co.address = meta;
  auto admin = granary::client::MetaClient::Connect(co);
  auto volume = (*admin)->VolumeCreate("bench-" + std::to_string(getpid()));
  if (!volume.ok()) {
    std::fprintf(stderr, "volume: %s\n", volume.status().ToString().c_str());
    return 1;
  }
  std::atomic<uint64_t> creates{0}, errors{0};
  std::atomic<bool> go{false}, stop{false};
  std::vector<std::thread> threads;
  // Each client is one MetaClient (one client id, one channel) with `depth` threads issuing
  // creates into the client's own directory.
  std::vector<std::unique_ptr<granary::client::MetaClient>> mcs;
  std::vector<uint64_t> dirs;
  for (int c = 0; c < clients; ++c) {
    auto mc = granary::client::MetaClient::Connect(co);
    if (!mc.ok()) return 1;
    mcs.push_back(std::move(*mc));
    auto d = mcs.back()->Mkdir(volume->root_ino(), "c" + std::to_string(c));
    if (!d.ok()) return 1;
    dirs.push_back(d->ino());
  }
  // Async mode: each client keeps `depth` creates in flight; a completion issues the next one.
  std::mutex mu;
  std::condition_variable drained;
  int outstanding = 0;
  struct Call {
    grpc::ClientContext ctx;
    CreateRequest req;
    EntryReply reply;
  };
  std::vector<std::atomic<uint64_t>> next_name(clients);
  std::function<void(int)> issue = [&](int c) {
    if (stop.load()) {
      std::lock_guard lock(mu);
      if (--outstanding == 0) drained.notify_all();
      return;
    }
    auto* call = new Call;
    *call->req.mutable_op() = mcs[c]->NextOpId();
    call->req.set_parent(dirs[c]);
    call->req.set_name("a" + std::to_string(next_name[c]++));
    call->req.set_mode(0644);
    call->req.set_exclusive(true);
    mcs[c]->namespace_stub().async()->Create(&call->ctx, &call->req, &call->reply,
                                             [&, c, call](grpc::Status status) {
                                               ++(status.ok() ? creates : errors);
                                               delete call;
                                               issue(c);
                                             });
  };
  for (int c = 0; c < clients && !async; ++c) {
    for (int k = 0; k < depth; ++k) {
      threads.emplace_back([&, c, k] {
        while (!go.load()) std::this_thread::yield();
        for (uint64_t i = 0; !stop.load(); ++i) {
          std::string name = "f" + std::to_string(k) + "-" + std::to_string(i);
          if (batch > 1) {
            granary::BatchRequest req;
            for (int b = 0; b < batch; ++b) {
              CreateRequest* r = req.add_ops()->mutable_create();
              r->set_parent(dirs[c]);
              r->set_name(name + "-" + std::to_string(b));
              r->set_mode(0644);
              r->set_exclusive(true);
            }
            auto reply = mcs[c]->Batch(std::move(req));
            if (!reply.ok()) {
              errors += batch;
              continue;
            }
            for (const auto& r : reply->results())
              ++(r.code() == granary::Code::OK ? creates : errors);
          } else if (mcs[c]->Create(dirs[c], name).ok()) {
            ++creates;
          } else {
            ++errors;
          }
        }
      });
    }
  }
  auto* committer = node ? &node->core().committer() : nullptr;
  const uint64_t ops0 = committer ? committer->ops() : 0;
  const uint64_t syncs0 = committer ? committer->syncs() : 0;
  auto start = Clock::now();
  go = true;
  if (async) {
    outstanding = clients * depth;
    for (int c = 0; c < clients; ++c) {
      for (int k = 0; k < depth; ++k) issue(c);
    }
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));  // measurement window
  stop = true;
  for (auto& t : threads) t.join();
  if (async) {
    std::unique_lock lock(mu);
    drained.wait_for(lock, std::chrono::seconds(30), [&] { return outstanding == 0; });
  }
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  const uint64_t ops = committer ? committer->ops() - ops0 : 0;
  const uint64_t syncs = committer ? committer->syncs() - syncs0 : 0;
  out["creates_per_s"] = creates / elapsed;
  out["create_errors"] = errors.load();
  out["ops_per_sync"] = syncs ? static_cast<double>(ops) / syncs : 0.0;
  out["ratio_to_fillrandom_sync0"] =
      out["creates_per_s"].get<double>() / out["fillrandom_sync0_ops_per_s"].get<double>();
  out["ratio_to_fillrandom_sync1"] =
      out["creates_per_s"].get<double>() / out["fillrandom_sync1_ops_per_s"].get<double>();
  if (node) node->Shutdown();
  std::filesystem::remove_all(dir);
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
