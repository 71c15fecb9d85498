// `granary operator [--kubeconfig FILE] [--namespace NS]`: reconciles StorageCluster,
// StoragePool and Bucket (docs/operator.md) with leader election on a Lease.

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>

#include "cmd/process.h"
#include "cmd/roles.h"
#include "common/log.h"
#include "operator/controllers/operator.h"

namespace granary::cmd {

int RunOperator(int argc, char** argv) {
  CLI::App app{"granary operator: reconciles the granary.io CRDs"};
  std::string kubeconfig, ns, admin = "0.0.0.0:8080", lease_ns, meta, log_level;
  std::string identity, csi_cluster_role = operators::kCsiClusterRole;
  bool leader_elect = true;
  int lease_ms = 15000, renew_ms = 10000, retry_ms = 2000;
  app.add_option("--kubeconfig", kubeconfig,
                 "kubeconfig (default: $KUBECONFIG, in-cluster, ~/.kube/config)");
  app.add_option("--namespace", ns, "watch StorageClusters and Buckets in this namespace only");
  app.add_option("--admin", admin, "/metrics /healthz /readyz address (port 0 picks one)")
      ->capture_default_str();
  app.add_option("--leader-elect", leader_elect, "run only while holding the Lease")
      ->capture_default_str();
  app.add_option("--lease-namespace", lease_ns,
                 "namespace of the Lease (default: $POD_NAMESPACE, --namespace, or default)");
  app.add_option("--lease-duration-ms", lease_ms)->capture_default_str();
  app.add_option("--renew-deadline-ms", renew_ms)->capture_default_str();
  app.add_option("--retry-period-ms", retry_ms)->capture_default_str();
  app.add_option("--identity", identity, "Lease holder identity (default: hostname + pid)");
  app.add_option("--meta", meta,
                 "metanode address for every StorageCluster instead of its Service (an operator "
                 "outside the cluster)");
  app.add_option("--csi-cluster-role", csi_cluster_role,
                 "ClusterRole bound to each StorageCluster's CSI ServiceAccount (the chart's)")
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error");
  CLI11_PARSE(app, argc, argv);
  InitLogging("operator", log_level);
  auto fail = [](const Status& s) { return ReportFailure("operator", s); };
  TerminationSignals signals;

  auto config = kube::LoadConfig(kubeconfig);
  if (!config.ok()) return fail(config.status().WithContext("kubernetes configuration"));
  auto client = kube::Client::Create(*config);
  if (!client.ok()) return fail(client.status());
  auto hp = ParseHostPort(admin);
  if (!hp.ok()) return fail(hp.status().WithContext("--admin"));

  runtime::ManagerOptions mo;
  mo.leader_election = leader_elect;
  mo.admin = *hp;
  if (lease_ns.empty()) {
    const char* pod_ns = std::getenv("POD_NAMESPACE");
    lease_ns = pod_ns && *pod_ns ? pod_ns : (ns.empty() ? "default" : ns);
  }
  mo.lease.ns = lease_ns;
  mo.lease.lease_duration = std::chrono::milliseconds(lease_ms);
  mo.lease.renew_deadline = std::chrono::milliseconds(renew_ms);
  mo.lease.retry_period = std::chrono::milliseconds(retry_ms);
  if (!identity.empty()) mo.lease.identity = identity;

  runtime::Manager manager(**client, mo);
  operators::OperatorOptions oo;
  oo.ns = ns;
  oo.meta_override = meta;
  oo.csi_cluster_role = csi_cluster_role;
  operators::Operator op(manager, oo);
  Status s = manager.Start();
  if (!s.ok()) return fail(s.WithContext("start"));
  std::printf("operator identity=%s admin=%s\n", manager.identity().c_str(),
              manager.admin_address().ToString().c_str());
  std::fflush(stdout);
  GLOG_INFO("event=started identity={} namespace={}", manager.identity(), ns.empty() ? "*" : ns);
  signals.Wait();
  manager.Stop();  // releases the Lease so a standby takes over at once
  return 0;
}

}  // namespace granary::cmd
