// granary_dashboard public surface: the read-only web dashboard a metanode serves on its admin
// port (DESIGN §7, docs/dashboard.md), and the status document `granary admin status` prints.
//
//   auto d = Dashboard::Attach(*metanode->admin_server(), {.meta = "127.0.0.1:7410,…"});
//   // GET /            the page (assets built in: dashboard/assets/)
//   // GET /api/status  status.h's document;  GET /api/io  the last hour's throughput series
//
// Every member serves it: the data comes through a MetaClient, which follows the metadata
// leader, so a follower's page shows the leader's figures. Other headers: status.h, io_view.h,
// summary.h, group.h, names.h.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/admin_server.h"
#include "common/status.h"

namespace granary::dashboard {

struct DashboardOptions {
  // The --meta list its client uses: this member first, then the others.
  std::string meta;
  // Budget of one page's metanode calls (a group without a leader answers 503 after it).
  std::chrono::milliseconds deadline{5000};
  // A status document this young is served again instead of asking the metanode again.
  std::chrono::milliseconds cache{1000};
};

class Dashboard {
 public:
  static Result<std::unique_ptr<Dashboard>> Attach(AdminServer& admin, DashboardOptions options);
  // Stops the worker; destroy before the admin server stops for good.
  ~Dashboard();

  struct Impl;

 private:
  explicit Dashboard(std::shared_ptr<Impl> impl);
  // Shared with the admin server's handlers: one that runs after this object is gone finds the
  // worker stopped and answers 503.
  std::shared_ptr<Impl> impl_;
};

}  // namespace granary::dashboard
