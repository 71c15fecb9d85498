// `granary admin fsck [--repair] [--meta ADDR]`: the metanode's index against the datanodes'
// blocks (client/fsck.h). Exit status 0 when clean, 1 when problems were found.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "client/fsck.h"
#include "cmd/process.h"
#include "cmd/roles.h"
#include "common/config.h"

namespace granary::cmd {

int RunAdminFsck(int argc, char** argv) {
  CLI::App app{"granary admin fsck: check the PG -> blocks index against every up datanode"};
  std::string meta = EnvOr("GRANARY_META", "127.0.0.1:7410");
  bool repair = false;
  app.add_option("--meta", meta, "metanode address")->capture_default_str();
  app.add_flag("--repair", repair,
               "delete dead blocks and ask datanodes missing copies to repair now");
  CLI11_PARSE(app, argc, argv);
  client::MetaClientOptions options;
  options.address = meta;
  options.deadline = std::chrono::seconds(60);
  auto mc = client::MetaClient::Connect(options);
  auto report = mc.ok() ? client::Fsck(**mc, repair) : Result<client::FsckReport>(mc.status());
  if (!report.ok()) {
    ReportFailure("admin fsck", report.status());
    return 2;
  }
  const client::FsckReport& r = *report;
  for (const auto& line : r.problems) std::printf("%s\n", line.c_str());
  std::printf(
      "blocks=%lu copies-checked=%lu missing=%lu dead=%lu misplaced=%lu header-mismatch=%lu "
      "datanodes-skipped=%lu",
      r.blocks_indexed, r.copies_checked, r.missing, r.dead, r.misplaced, r.header_mismatch,
      r.datanodes_skipped);
  if (repair) std::printf(" deleted=%lu repairs-requested=%lu", r.deleted, r.repairs_requested);
  std::printf("\n%s\n", r.clean() ? "clean" : "problems");
  return r.clean() ? 0 : 1;
}

}  // namespace granary::cmd
