// `granary server --data DIR [--datanodes 3] [--meta 127.0.0.1:7410] [--s3 127.0.0.1:9000]
//                 [--access-key K --secret-key S] [--small-block-kib 64]`: metanode + N datanodes +
//                 the S3 gateway in one
// process under one data dir — the embedded default (DESIGN §1).
#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "client/compactor.h"
#include "client/meta_client.h"
#include "cmd/metanode_processes.h"
#include "cmd/process.h"
#include "cmd/roles.h"
#include "common/config.h"
#include "common/log.h"
#include "common/net.h"
#include "dashboard/dashboard.h"
#include "dashboard/group.h"
#include "datanode/datanode.h"
#include "metanode/metanode.h"
#include "s3/gateway.h"

namespace granary::cmd {
namespace {

struct ServerFlags {
  std::string data;
  int datanodes = 3;
  int metanodes = 1;
  std::string meta = "127.0.0.1:7410";
  std::string s3 = "127.0.0.1:9000";
  std::string admin;
  std::string access_key;
  std::string secret_key;
  uint64_t small_block_kib = datanode::DatanodeOptions{}.small_block_max >> 10;
  uint64_t direct_write_min_kib = datanode::DatanodeOptions{}.direct_write_min >> 10;
  int64_t client_lease_ms = metanode::MetaCoreOptions().client_lease_ms;
  int64_t multipart_expiry_ms = metanode::MetaCoreOptions().multipart_expiry_ms;
  double scrub_period_days = 7;
};

// Waits until `count` datanodes are registered and up in the cluster map.
Status WaitForDatanodes(client::MetaClient& meta, int count, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto delay = std::chrono::milliseconds(10);
  while (true) {
    auto map = meta.GetClusterMap(0);
    if (map.ok()) {
      int up = 0;
      for (const auto& n : map->nodes()) up += n.state() == NodeState::UP ? 1 : 0;
      if (up >= count) return Status::Ok();
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return Unavailable(
          fmt::format("{} datanodes did not register within {} s", count, timeout.count()));
    }
    std::this_thread::sleep_for(delay);  // polling the metanode, bounded by the deadline
    delay = std::min(delay * 2, std::chrono::milliseconds(200));
  }
}

// The server's S3 credentials: the flags/env pair (created if new), else the first key, else a
// new generated one.
Result<AccessKey> EnsureAccessKey(client::MetaClient& meta, const ServerFlags& flags) {
  if (!flags.access_key.empty()) {
    auto existing = meta.KeyGetSecret(flags.access_key);
    if (existing.ok()) {
      if (!flags.secret_key.empty() && existing->secret_key() != flags.secret_key) {
        return InvalidArgument(
            fmt::format("access key {} already exists with another secret", flags.access_key));
      }
      return existing;
    }
    return meta.KeyCreate("server", flags.access_key, flags.secret_key);
  }
  auto keys = meta.KeyList();
  if (!keys.ok()) return keys.status();
  if (!keys->empty()) return meta.KeyGetSecret(keys->front().access_key());
  return meta.KeyCreate("server");
}

Status EnsureVolume(client::MetaClient& meta, const std::string& name) {
  auto v = meta.VolumeGet(name);
  if (v.ok()) return Status::Ok();
  if (v.status().code() != Code::NOT_FOUND) return v.status();
  auto created = meta.VolumeCreate(name);
  if (!created.ok() && created.status().code() != Code::ALREADY_EXISTS) return created.status();
  return Status::Ok();
}

// Volume `default` is bucket `default` too, owned by the server's key, so a file put with
// `granary put … default/…` is at once an object of s3://default/ (docs/s3.md). Exports the
// volume (a bucket made here does not own it); an existing bucket is left as it is.
Status EnsureDefaultBucket(client::MetaClient& meta, const std::string& owner) {
  auto b = meta.BucketGet("default");
  if (b.ok()) return Status::Ok();
  if (b.status().code() != Code::NOT_FOUND) return b.status();
  auto created = meta.BucketCreate("default", owner, "default");
  if (!created.ok() && created.status().code() != Code::ALREADY_EXISTS) {
    return created.status().WithContext("export volume default as bucket default");
  }
  return Status::Ok();
}

// Whether `port` on `host` (an IPv4 address) can be bound now. Racy by nature, as FreePortPair.
bool PortFree(const std::string& host, uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  const bool ok = inet_pton(AF_INET, host.c_str(), &addr.sin_addr) == 1 &&
                  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

// `granary server`'s dashboard at a stable address a user can bookmark: on the default ports
// (--meta …:7410), port 7480 of the --meta host (a free port when 7480 is taken); a server on
// picked ports (--meta HOST:0, as tests run several at once) picks a free admin port as well,
// so two never race for 7480.
std::string DefaultAdmin(const std::string& meta) {
  auto hp = ParseHostPort(meta);
  std::string host = hp.ok() ? hp->host : "127.0.0.1";
  if (host == "localhost") host = "127.0.0.1";
  const bool default_ports = hp.ok() && hp->port == 7410;
  return default_ports && PortFree(host, 7480) ? host + ":7480" : host + ":0";
}

}  // namespace

int RunServer(int argc, char** argv) {
  CLI::App app{"granary server: metanode + datanodes + S3 gateway in one process"};
  ServerFlags f;
  f.access_key = EnvOr("GRANARY_ACCESS_KEY", "");
  f.secret_key = EnvOr("GRANARY_SECRET_KEY", "");
  app.add_option("--data", f.data, "data directory (meta/ and dn<i>/ inside)")->required();
  app.add_option("--datanodes", f.datanodes, "datanodes to run")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_option("--meta", f.meta,
                 "metanode gRPC address (with --metanodes N: the first member's; the others "
                 "follow two ports apart, Raft on the port after each)")
      ->capture_default_str();
  app.add_option("--metanodes", f.metanodes,
                 "metanode processes forming one metadata Raft group (1, 3 or 5)")
      ->capture_default_str()
      ->check(CLI::IsMember({1, 3, 5}));
  app.add_option("--s3", f.s3, "S3 endpoint address")->capture_default_str();
  app.add_option("--admin", f.admin,
                 "the metanode's /metrics, /healthz and dashboard address (port 0 picks one; "
                 "default: the --meta host, port 7480 with the default --meta port, else a free "
                 "port)");
  app.add_option("--direct-write-min-kib", f.direct_write_min_kib,
                 "replicated blocks this large go O_DIRECT on PG followers (0: never)")
      ->capture_default_str();
  app.add_option("--small-block-kib", f.small_block_kib,
                 "datanodes keep blocks up to this size in their RocksDB, not files (0: off)")
      ->capture_default_str();
  app.add_option("--access-key", f.access_key, "S3 access key (or GRANARY_ACCESS_KEY)");
  app.add_option("--secret-key", f.secret_key, "S3 secret key (or GRANARY_SECRET_KEY)");
  app.add_option("--client-lease-ms", f.client_lease_ms,
                 "drop every open-file pin of a client silent this long (session lease)")
      ->capture_default_str();
  app.add_option("--multipart-expiry-ms", f.multipart_expiry_ms,
                 "abort multipart uploads initiated this long ago (0 = never)")
      ->capture_default_str();
  app.add_option("--scrub-period-days", f.scrub_period_days,
                 "datanodes verify every stored block once per this many days, paced evenly")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  if (auto exit_code = ParseRoleFlags(app, argc, argv, "server")) return *exit_code;
  auto fail = [](const Status& s) { return ReportFailure("server", s); };

  TerminationSignals signals;
  UseHeapForLargeBuffers();

  std::error_code ec;
  std::filesystem::create_directories(f.data, ec);
  if (ec) return fail(InvalidArgument(fmt::format("--data {}: {}", f.data, ec.message())));

  // One metanode in this process, or a group of member processes.
  std::unique_ptr<metanode::Metanode> metanode;
  std::unique_ptr<MetanodeProcesses> members;
  std::string meta_list;
  std::unique_ptr<client::Compactor> compactor;
  if (f.metanodes == 1) {
    metanode::MetanodeOptions meta_options;
    meta_options.core.data_dir = f.data + "/meta";
    meta_options.listen = f.meta;
    meta_options.admin = f.admin.empty() ? DefaultAdmin(f.meta) : f.admin;
    meta_options.core.client_lease_ms = f.client_lease_ms;
    meta_options.core.multipart_expiry_ms = f.multipart_expiry_ms;
    auto started = metanode::Metanode::Start(meta_options);
    if (!started.ok()) return fail(started.status().WithContext("start metanode"));
    metanode = std::move(*started);
    meta_list = metanode->address();
  } else {
    auto first = ParseHostPort(f.meta);
    if (!first.ok()) return fail(first.status().WithContext("--meta"));
    MetanodeProcessesOptions mo;
    mo.data = f.data;
    mo.host = first->host;
    for (int i = 0; i < f.metanodes; ++i) {
      if (first->port != 0) {
        mo.ports.push_back(static_cast<uint16_t>(first->port + 2 * i));
        continue;
      }
      auto port = FreePortPair(first->host);
      if (!port.ok()) return fail(port.status());
      mo.ports.push_back(*port);
    }
    mo.extra_flags = {"--client-lease-ms", std::to_string(f.client_lease_ms),
                      "--multipart-expiry-ms", std::to_string(f.multipart_expiry_ms)};
    auto started = MetanodeProcesses::Start(mo);
    if (!started.ok()) return fail(started.status().WithContext("start metanodes"));
    members = std::move(*started);
    meta_list = members->addresses();
  }
  auto meta_addresses = ParseHostPortList(meta_list);
  if (!meta_addresses.ok()) return fail(meta_addresses.status());

  std::vector<std::unique_ptr<datanode::Datanode>> datanodes;
  for (int i = 0; i < f.datanodes; ++i) {
    datanode::DatanodeOptions o;
    o.data_dir = fmt::format("{}/dn{}", f.data, i);
    o.meta = *meta_addresses;
    o.labels = {{"host", LocalHostname()}, {"datanode", std::to_string(i)}};
    o.small_block_max = f.small_block_kib << 10;
    o.direct_write_min = f.direct_write_min_kib << 10;
    o.maintenance.scrub_period =
        std::chrono::milliseconds(static_cast<int64_t>(f.scrub_period_days * 86400e3));
    auto dn = datanode::Datanode::Start(o);
    if (!dn.ok()) return fail(dn.status().WithContext(fmt::format("start datanode {}", i)));
    datanodes.push_back(std::move(*dn));
  }

  client::MetaClientOptions mo;
  mo.address = meta_list;
  auto meta = client::MetaClient::Connect(mo);
  if (!meta.ok()) return fail(meta.status());
  Status s = WaitForDatanodes(**meta, f.datanodes, std::chrono::seconds(60));
  if (s.ok()) s = EnsureVolume(**meta, "default");
  if (!s.ok()) return fail(s);
  auto key = EnsureAccessKey(**meta, f);
  if (!key.ok()) return fail(key.status().WithContext("S3 credentials"));
  if (Status b = EnsureDefaultBucket(**meta, key->access_key()); !b.ok()) return fail(b);

  s3::GatewayOptions s3_options;
  s3_options.meta = meta_list;
  s3_options.listen = f.s3;
  auto gateway = s3::Gateway::Start(s3_options);
  if (!gateway.ok()) return fail(gateway.status().WithContext("start S3 gateway"));
  if (metanode) {
    // Rewrites fragmented chunk ranges in the background, as `granary metanode` does (group
    // members run their own, on the leader).
    auto started = client::Compactor::Start(meta_list, std::chrono::seconds(10));
    if (!started.ok()) return fail(started.status());
    compactor = std::move(*started);
  }

  // The dashboard: on the in-process metanode's admin port, or on each group member's (they
  // attach their own); the URL printed is the leader's.
  std::unique_ptr<dashboard::Dashboard> board;
  if (metanode && metanode->admin_server() != nullptr) {
    dashboard::DashboardOptions bo;
    bo.meta = meta_list;
    auto attached = dashboard::Dashboard::Attach(*metanode->admin_server(), bo);
    if (!attached.ok()) return fail(attached.status().WithContext("dashboard"));
    board = std::move(*attached);
  }
  std::string dashboard_url = "-";
  if (auto group = dashboard::GatherGroup(**meta, meta_list); group.ok()) {
    const std::string url = dashboard::DashboardUrl(*group);
    if (!url.empty()) dashboard_url = url;
  }

  std::printf("meta=%s datanodes=%d volume=default\n", meta_list.c_str(), f.datanodes);
  std::printf("dashboard=%s (or: granary admin status --meta %s)\n", dashboard_url.c_str(),
              meta_list.c_str());
  std::printf("s3=%s access_key=%s secret_key=%s\n", (*gateway)->endpoint().c_str(),
              key->access_key().c_str(), key->secret_key().c_str());
  std::printf("ready\n");
  std::fflush(stdout);
  GLOG_INFO("event=ready meta={} datanodes={} metanodes={} dashboard={}", meta_list, f.datanodes,
            f.metanodes, dashboard_url);

  signals.Wait();
  (*gateway)->Stop();
  compactor.reset();
  board.reset();
  for (auto& dn : datanodes) dn->Stop();
  if (metanode) metanode->Shutdown();
  if (members) members->Stop();
  return 0;
}

}  // namespace granary::cmd
