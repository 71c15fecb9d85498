#include "cmd/process.h"

#include <malloc.h>
#include <pthread.h>

#include <cstdio>

#include "common/config.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/net.h"

namespace granary::cmd {

TerminationSignals::TerminationSignals() {
  sigemptyset(&set_);
  sigaddset(&set_, SIGTERM);
  sigaddset(&set_, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  // A peer that vanishes mid-reply (a killed client while sendfile() streams to it) must cost
  // an EPIPE, not the server: SIGPIPE killed datanodes under fuse_survival_test.
  signal(SIGPIPE, SIG_IGN);
}

int TerminationSignals::Wait() {
  int sig = 0;
  sigwait(&set_, &sig);
  GLOG_INFO("event=signal signal={}", sig);
  return sig;
}

int ReportFailure(std::string_view who, const Status& status) {
  std::fprintf(stderr, "granary %.*s: %s\n", static_cast<int>(who.size()), who.data(),
               status.ToString().c_str());
  return 1;
}

std::optional<int> ParseRoleFlags(CLI::App& app, int argc, char** argv, std::string_view role) {
  std::string log_level;
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error");
  AddYamlConfig(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  InitLogging(role, log_level);
  return std::nullopt;
}

Result<std::unique_ptr<AdminServer>> StartAdminServer(const std::string& address,
                                                      std::function<bool()> healthy) {
  if (address.empty()) return std::unique_ptr<AdminServer>();
  auto hp = ParseHostPort(address);
  if (!hp.ok()) return hp.status().WithContext("--admin");
  auto started = AdminServer::Start(*hp, Metrics(), std::move(healthy));
  if (!started.ok()) return started.status().WithContext("--admin");
  return started;
}

void UseHeapForLargeBuffers() {
  mallopt(M_MMAP_THRESHOLD, 128 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
}

}  // namespace granary::cmd
