// `granary admin status [--json]`: the cluster at a glance (DESIGN §1) — the dashboard's status
// document (dashboard/status.h) rendered as a few lines, or printed whole with --json (the same
// document /api/status serves).
#include <cstdio>

#include "client/meta_client.h"
#include "cmd/process.h"
#include "dashboard/status.h"
#include "dashboard/summary.h"

namespace granary::cmd {

int PrintClusterStatus(client::MetaClient& mc, const std::string& meta_list, bool json) {
  auto doc = dashboard::BuildStatus(mc, meta_list);
  if (!doc.ok()) return ReportFailure("admin status", doc.status());
  if (json) {
    std::printf("%s\n", doc->dump(2, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::fputs(dashboard::RenderSummary(*doc).c_str(), stdout);
  }
  // Exit status for scripts: 0 when nothing is wrong, 2 for warnings, 3 for errors.
  const std::string state = (*doc)["health"]["state"].get<std::string>();
  return state == "ok" ? 0 : state == "warn" ? 2 : 3;
}

}  // namespace granary::cmd
