// `granary csi --endpoint unix:///PATH --node-id ID --meta HOST:PORT --mode controller|node|all
//              [--labels zone=a,rack=r,host=h,gpu=g] [--state-dir DIR]`
// The CSI v1 plugin csi.granary.io (docs/csi.md).
#include <pthread.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>

#include "cmd/roles.h"
#include "common/config.h"
#include "common/log.h"
#include "csi/driver.h"

namespace granary::cmd {

int RunCsi(int argc, char** argv) {
  CLI::App app{"granary csi: the CSI v1 plugin csi.granary.io"};
  csi::DriverOptions o;
  o.meta = EnvOr("GRANARY_META", o.meta);
  o.node_id = EnvOr("NODE_NAME", "");
  o.labels = EnvOr("GRANARY_LABELS", "");
  std::string log_level;
  app.add_option("--endpoint", o.endpoint, "unix:///PATH of the CSI socket")->required();
  app.add_option("--node-id", o.node_id, "this node's name (NodeGetInfo)");
  app.add_option("--meta", o.meta, "metanode address(es), HOST:PORT[,HOST:PORT…]")
      ->capture_default_str();
  app.add_option("--mode", o.mode, "controller|node|all")->capture_default_str();
  app.add_option("--labels", o.labels, "topology of this node, e.g. zone=a,rack=r1,gpu=a100");
  app.add_option("--state-dir", o.state_dir, "where the node plugin records staged volumes")
      ->capture_default_str();
  app.add_option("--mount-launcher", o.mount_launcher,
                 "auto|none|COMMAND PREFIX that starts mount supervisors outside this process's "
                 "cgroup")
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  // Serve waits for these in one place: block them before any thread exists.
  sigset_t term;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigaddset(&term, SIGINT);
  pthread_sigmask(SIG_BLOCK, &term, nullptr);
  InitLogging("csi", log_level);
  Status s = csi::Serve(o, [&] {
    std::printf("granary csi: serving %s on %s (mode %s)\n", csi::kDriverName, o.endpoint.c_str(),
                o.mode.c_str());
    std::fflush(stdout);
  });
  if (!s.ok()) {
    std::fprintf(stderr, "granary csi: %s\n", s.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace granary::cmd
