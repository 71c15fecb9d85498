// `granary s3 --meta HOST:PORT --listen HOST:PORT [--domain D] [--tls-cert F --tls-key F]
//  [--admin HOST:PORT]`: the stateless S3 gateway (DESIGN §1, §7).
#include <CLI/CLI.hpp>
#include <cstdio>

#include "cmd/process.h"
#include "cmd/roles.h"
#include "common/config.h"
#include "s3/gateway.h"

namespace granary::cmd {

int RunS3(int argc, char** argv) {
  CLI::App app{"granary s3: S3 gateway over the Granary namespace"};
  s3::GatewayOptions o;
  std::string admin;
  o.meta = EnvOr("GRANARY_META", "127.0.0.1:7410");
  app.add_option("--meta", o.meta, "metanode address")->capture_default_str();
  app.add_option("--listen", o.listen, "S3 HTTP address (port 0 picks one)")->capture_default_str();
  app.add_option("--domain", o.domain, "virtual-host-style domain: BUCKET.<domain>");
  app.add_option("--tls-cert", o.tls_cert, "PEM certificate chain (HTTPS)");
  app.add_option("--tls-key", o.tls_key, "PEM private key (HTTPS)");
  app.add_option("--region", o.region, "region reported to clients")->capture_default_str();
  app.add_option("--max-connections", o.max_connections, "connections served at once")
      ->capture_default_str();
  app.add_option("--admin", admin, "/metrics and /healthz address (port 0 picks one)");
  if (auto exit_code = ParseRoleFlags(app, argc, argv, "s3")) return *exit_code;
  TerminationSignals signals;
  UseHeapForLargeBuffers();
  auto gw = s3::Gateway::Start(o);
  if (!gw.ok()) return ReportFailure("s3", gw.status());
  auto admin_server = StartAdminServer(admin);
  if (!admin_server.ok()) return ReportFailure("s3", admin_server.status());
  if (*admin_server) std::printf("admin=%s\n", (*admin_server)->address().ToString().c_str());
  std::printf("s3=%s\nready\n", (*gw)->endpoint().c_str());
  std::fflush(stdout);
  signals.Wait();
  (*gw)->Stop();
  if (*admin_server) (*admin_server)->Stop();
  return 0;
}

}  // namespace granary::cmd
