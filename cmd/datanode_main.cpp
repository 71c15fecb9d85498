// `granary datanode --data DIR --listen HOST:PORT --data-listen HOST:PORT --meta HOST:PORT[,…]
//                   [--labels zone=a,rack=r1,host=h1,gpu=true] [--admin HOST:PORT]
//                   [--small-block-kib 64]`
#include <cstdio>

#include "cmd/process.h"
#include "cmd/roles.h"
#include "common/config.h"
#include "common/net.h"
#include "datanode/datanode.h"

namespace granary::cmd {
namespace {

int Fail(const Status& st) { return ReportFailure("datanode", st); }

}  // namespace

int RunDatanode(int argc, char** argv) {
  CLI::App app{"granary datanode: block store on local disks (io_uring), data protocol"};
  datanode::DatanodeOptions options;
  std::string listen = "127.0.0.1:7430", data_listen = "127.0.0.1:7431";
  std::string meta = EnvOr("GRANARY_META", "127.0.0.1:7410");
  std::string labels, admin;
  uint64_t heartbeat_ms = 2000, budget_mib = 256;
  app.add_option("--data", options.data_dir, "data directory")->required();
  app.add_option("--listen", listen, "gRPC DataControl address (port 0 picks one)")
      ->capture_default_str();
  app.add_option("--data-listen", data_listen, "framed data protocol address (port 0 picks one)")
      ->capture_default_str();
  app.add_option("--meta", meta, "metanode address(es), HOST:PORT[,HOST:PORT…]")
      ->capture_default_str();
  app.add_option("--labels", labels, "placement labels, e.g. zone=a,rack=r1,host=h1,gpu=true");
  app.add_option("--advertise", options.advertise, "host others use to reach this datanode");
  app.add_option("--admin", admin, "/metrics and /healthz address (port 0 picks one)");
  app.add_option("--workers", options.workers, "disk worker threads")->capture_default_str();
  uint64_t small_kib = options.small_block_max >> 10;
  uint64_t direct_write_min_kib = datanode::DatanodeOptions{}.direct_write_min >> 10;
  app.add_option("--direct-write-min-kib", direct_write_min_kib,
                 "replicated blocks this large go O_DIRECT on PG followers (0: never)")
      ->capture_default_str();
  app.add_option("--small-block-kib", small_kib,
                 "blocks up to this size go to the datanode's RocksDB, not files (0: off)")
      ->capture_default_str();
  app.add_option("--memory-budget-mib", budget_mib, "payload bytes admitted at once")
      ->capture_default_str();
  app.add_option("--heartbeat-ms", heartbeat_ms, "heartbeat interval")->capture_default_str();
  uint64_t repair_mib = 256, scrub_mib = 32, maintenance_ms = 1000;
  double scrub_days = 7;
  int64_t scrub_period_ms = 0;
  app.add_option("--repair-mib-per-s", repair_mib, "repair throttle")->capture_default_str();
  app.add_option("--scrub-mib-per-s", scrub_mib, "scrub throttle")->capture_default_str();
  app.add_option("--scrub-period-days", scrub_days,
                 "verify every stored block once per this many days, paced evenly")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--scrub-period-ms", scrub_period_ms,
                 "the scrub period in milliseconds (tests); overrides --scrub-period-days")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--maintenance-ms", maintenance_ms,
                 "how often repair/reconcile/scrub look for work")
      ->capture_default_str();
  if (auto exit_code = ParseRoleFlags(app, argc, argv, "datanode")) return *exit_code;
  // Every payload is a page-aligned buffer of up to 64 MiB (common/frame.h allocates one per
  // frame); as fresh mmaps each 4 MiB block paid ~1000 faults and zeroing.
  UseHeapForLargeBuffers();

  auto listen_hp = ParseHostPort(listen);
  if (!listen_hp.ok()) return Fail(listen_hp.status().WithContext("--listen"));
  auto data_hp = ParseHostPort(data_listen);
  if (!data_hp.ok()) return Fail(data_hp.status().WithContext("--data-listen"));
  auto meta_hps = ParseHostPortList(meta);
  if (!meta_hps.ok()) return Fail(meta_hps.status().WithContext("--meta"));
  auto parsed_labels = ParseLabels(labels);
  if (!parsed_labels.ok()) return Fail(parsed_labels.status().WithContext("--labels"));
  options.listen = *listen_hp;
  options.data_listen = *data_hp;
  options.meta = *meta_hps;
  options.labels = *parsed_labels;
  if (!options.labels.contains("host")) options.labels["host"] = LocalHostname();
  options.heartbeat_interval = std::chrono::milliseconds(heartbeat_ms);
  options.memory_budget = budget_mib << 20;
  options.small_block_max = small_kib << 10;
  options.direct_write_min = direct_write_min_kib << 10;
  options.maintenance.repair_bytes_per_second = repair_mib << 20;
  options.maintenance.scrub_bytes_per_second = scrub_mib << 20;
  options.maintenance.scrub_period =
      scrub_period_ms > 0 ? std::chrono::milliseconds(scrub_period_ms)
                          : std::chrono::milliseconds(static_cast<int64_t>(scrub_days * 86400e3));
  options.maintenance.interval = std::chrono::milliseconds(maintenance_ms);

  TerminationSignals signals;  // before any thread starts

  auto node = datanode::Datanode::Start(options);
  if (!node.ok()) return Fail(node.status());
  auto admin_server = StartAdminServer(admin, [raw = node->get()] { return raw->healthy(); });
  if (!admin_server.ok()) return Fail(admin_server.status());
  std::printf("listening control=%s data=%s admin=%s\n",
              (*node)->control_address().ToString().c_str(),
              (*node)->data_address().ToString().c_str(),
              *admin_server ? (*admin_server)->address().ToString().c_str() : "-");
  std::fflush(stdout);
  signals.Wait();
  (*node)->Stop();
  if (*admin_server) (*admin_server)->Stop();
  return 0;
}

}  // namespace granary::cmd
