// `granary s3 --meta HOST:PORT --listen HOST:PORT [--domain D] [--tls-cert F --tls-key F]
//  [--admin HOST:PORT]`: the stateless S3 gateway (DESIGN §1, §7).
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "cmd/process.h"
#include "cmd/roles.h"
#include "common/admin_server.h"
#include "common/config.h"
#include "common/log.h"
#include "common/net.h"
#include "s3/gateway.h"

namespace granary::cmd {

int RunS3(int argc, char** argv) {
  CLI::App app{"granary s3: S3 gateway over the Granary namespace"};
  s3::GatewayOptions o;
  std::string admin, log_level;
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
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error");
  AddYamlConfig(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  InitLogging("s3", log_level);
  TerminationSignals signals;
  UseHeapForLargeBuffers();
  auto gw = s3::Gateway::Start(o);
  if (!gw.ok()) {
    std::fprintf(stderr, "granary s3: %s\n", gw.status().ToString().c_str());
    return 1;
  }
  std::unique_ptr<AdminServer> admin_server;
  if (!admin.empty()) {
    auto addr = ParseHostPort(admin);
    if (!addr.ok()) {
      std::fprintf(stderr, "granary s3: --admin: %s\n", addr.status().ToString().c_str());
      return 1;
    }
    auto a = AdminServer::Start(*addr, Metrics());
    if (!a.ok()) {
      std::fprintf(stderr, "granary s3: %s\n", a.status().ToString().c_str());
      return 1;
    }
    admin_server = std::move(*a);
    std::printf("admin=%s\n", admin_server->address().ToString().c_str());
  }
  std::printf("s3=%s\nready\n", (*gw)->endpoint().c_str());
  std::fflush(stdout);
  int sig = signals.Wait();
  GLOG_INFO("event=signal signal={}", sig);
  (*gw)->Stop();
  if (admin_server) admin_server->Stop();
  return 0;
}

}  // namespace granary::cmd
