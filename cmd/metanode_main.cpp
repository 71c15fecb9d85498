// `granary metanode --data DIR --listen HOST:PORT [--admin HOST:PORT] [--default-pool NAME]
//                   [--id N --peers 1=HOST:PORT,2=HOST:PORT,3=HOST:PORT]` (docs/metadata-ha.md)
#include <absl/synchronization/mutex.h>
#include <unistd.h>

#include <charconv>
#include <cstdio>

#include "client/compactor.h"
#include "cmd/process.h"
#include "cmd/roles.h"
#include "common/net.h"
#include "dashboard/dashboard.h"
#include "dashboard/group.h"
#include "metanode/metanode.h"

namespace granary::cmd {

namespace {
// "granary-metanode-2" -> 3.
Result<uint64_t> MemberIdFromHostname() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return Internal("gethostname failed");
  std::string host(name);
  const size_t dash = host.rfind('-');
  uint64_t ordinal = 0;
  if (dash == std::string::npos || dash + 1 == host.size() ||
      std::from_chars(host.data() + dash + 1, host.data() + host.size(), ordinal).ptr !=
          host.data() + host.size()) {
    return InvalidArgument("--id-from-ordinal: host name '" + host + "' does not end in -<ordinal>");
  }
  return ordinal + 1;
}

// The dashboard on the admin port (docs/dashboard.md). Its client reaches this member over
// loopback when it listens on a wildcard, and follows the leader from there: a follower's page
// shows the leader's figures.
Result<std::unique_ptr<dashboard::Dashboard>> AttachDashboard(metanode::Metanode& node,
                                                              const std::string& peers) {
  if (node.admin_server() == nullptr) return std::unique_ptr<dashboard::Dashboard>();
  auto self = ParseHostPort(node.address());
  GRANARY_TRY(self);
  if (self->host == "0.0.0.0" || self->host.empty()) self->host = "127.0.0.1";
  if (self->host == "::") self->host = "::1";
  dashboard::DashboardOptions o;
  o.meta = dashboard::DashboardMetaList(self->ToString(), peers);
  return dashboard::Dashboard::Attach(*node.admin_server(), o);
}
}  // namespace

int RunMetanode(int argc, char** argv) {
  CLI::App app{"granary metanode: metadata service on RocksDB"};
  metanode::MetanodeOptions options;
  options.admin = "127.0.0.1:0";
  app.add_option("--data", options.core.data_dir, "data directory")->required();
  app.add_option("--listen", options.listen, "gRPC address (port 0 picks one)")
      ->capture_default_str();
  app.add_option("--admin", options.admin, "/metrics and /healthz address (port 0 picks one)")
      ->capture_default_str();
  app.add_option("--default-pool", options.core.default_pool,
                 "pool created at first start and used when none is named")
      ->capture_default_str();
  app.add_option("--lease-ms", options.core.lease_ms, "allocation intent lease")
      ->capture_default_str();
  app.add_option("--client-lease-ms", options.core.client_lease_ms,
                 "drop every open-file pin of a client silent this long (session lease)")
      ->capture_default_str();
  app.add_option("--multipart-expiry-ms", options.core.multipart_expiry_ms,
                 "abort multipart uploads initiated this long ago (0 = never)")
      ->capture_default_str();
  app.add_option("--down-after-ms", options.core.down_after_ms,
                 "mark a datanode down after this much heartbeat silence")
      ->capture_default_str();
  app.add_option("--out-after-ms", options.core.out_after_ms,
                 "mark a down datanode out (remap and repair its PGs) after this much silence")
      ->capture_default_str();
  app.add_option("--gc-grace-ms", options.core.gc_grace_ms,
                 "delete an unreferenced slice's blocks this long after its last reference went")
      ->capture_default_str();
  app.add_option("--warmup-recheck-ms", options.core.warmups.ready_recheck_ms,
                 "look at a ready warm-up again this often (files written since get copies)")
      ->capture_default_str();
  app.add_option("--advertise", options.advertise,
                 "host others reach this member at (a group member started without --peers)");
  app.add_option("--id", options.core.member_id,
                 "this metanode's id in the metadata group (0: run alone)")
      ->capture_default_str();
  bool id_from_ordinal = false;
  app.add_flag("--id-from-ordinal", id_from_ordinal,
               "take --id from this host's name: a StatefulSet pod NAME-<ordinal> is member "
               "ordinal+1");
  app.add_option("--peers", options.core.peers,
                 "the metadata group, ID=HOST:PORT,... (Raft on PORT+1); forms the group at the "
                 "first start, must match the stored members later");
  app.add_option("--secret-key-file", options.core.secret_key_file,
                 "key sealing S3 secrets (default DATA/secret.key); shared by a group's members");
  app.add_option("--election-timeout-ms", options.core.election_timeout_ms,
                 "Raft election timeout (a leader's read lease is 90% of it)")
      ->capture_default_str();
  app.add_option("--heartbeat-ms", options.core.heartbeat_ms, "Raft heartbeat period")
      ->capture_default_str();
  app.add_option("--snapshot-threshold", options.core.snapshot_threshold,
                 "Raft log entries between snapshots (log compaction)")
      ->capture_default_str();
  int64_t compact_interval_ms = 10000;
  app.add_option("--compact-interval-ms", compact_interval_ms,
                 "how often fragmented chunk ranges are compacted (0 = never)")
      ->capture_default_str();
  if (auto exit_code = ParseRoleFlags(app, argc, argv, "metanode")) return *exit_code;
  if (id_from_ordinal) {
    auto id = MemberIdFromHostname();
    if (!id.ok()) return ReportFailure("metanode", id.status());
    options.core.member_id = *id;
  }
  // Debian's abseil checks every gRPC-internal mutex acquisition for lock-order cycles, ~8% of
  // the metanode's CPU under load; not needed in production.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  TerminationSignals signals;  // before any thread starts

  auto node = metanode::Metanode::Start(options);
  if (!node.ok()) return ReportFailure("metanode", node.status());
  std::unique_ptr<client::Compactor> compactor;
  if (compact_interval_ms > 0) {
    metanode::MetaCore* core = &(*node)->core();
    auto started = client::Compactor::Start((*node)->address(),
                                            std::chrono::milliseconds(compact_interval_ms),
                                            [core] { return core->IsLeader(); });
    if (!started.ok()) return ReportFailure("metanode", started.status());
    compactor = std::move(*started);
  }
  auto board = AttachDashboard(**node, options.core.peers);
  if (!board.ok()) return ReportFailure("metanode", board.status().WithContext("dashboard"));
  std::printf("listening meta=%s admin=%s id=%llu\n", (*node)->address().c_str(),
              (*node)->admin_address().empty() ? "-" : (*node)->admin_address().c_str(),
              static_cast<unsigned long long>(options.core.member_id));
  std::fflush(stdout);
  if (!(*node)->admin_address().empty()) {
    std::printf("dashboard=http://%s/\n", (*node)->admin_address().c_str());
  }
  std::fflush(stdout);
  signals.Wait();
  compactor.reset();
  board->reset();  // before the admin server it serves on stops
  (*node)->Shutdown();
  return 0;
}

}  // namespace granary::cmd
