// `granary admin meta status | add N=HOST:PORT | remove N`: the metadata Raft group
// (docs/metadata-ha.md). Status prints one line per member:
//   id=N addr=HOST:PORT role=leader|follower|candidate|down term=T applied=I lag=L
#include <CLI/CLI.hpp>
#include <cstdio>

#include "client/meta_client.h"
#include "cmd/admin_client.h"
#include "cmd/process.h"
#include "cmd/roles.h"
#include "common/config.h"
#include "dashboard/group.h"
#include "replication/raft_group.h"

namespace granary::cmd {

namespace {

int Fail(const Status& status) { return ReportFailure("admin meta", status); }

int PrintStatus(client::MetaClient& mc, const std::string& meta_list) {
  // The same view the dashboard shows (dashboard/group.h).
  auto view = dashboard::GatherGroup(mc, meta_list);
  if (!view.ok()) return Fail(view.status());
  if (!view->replicated) {
    const dashboard::MemberView& m = view->members.front();
    std::printf("id=0 addr=%s role=leader term=0 applied=%lu lag=0\n", m.address.c_str(),
                m.applied);
    std::printf("alone: this metanode is not a metadata group member (no --peers)\n");
    return 0;
  }
  bool any_down = false;
  for (const dashboard::MemberView& m : view->members) {
    if (!m.up) {
      any_down = true;
      std::printf("id=%lu addr=%s role=down term=- applied=- lag=-\n", m.id, m.address.c_str());
      continue;
    }
    std::string lag = m.lag ? std::to_string(*m.lag) : "-";
    std::printf("id=%lu addr=%s role=%s term=%lu applied=%lu lag=%s\n", m.id, m.address.c_str(),
                m.role.c_str(), m.term, m.applied, lag.c_str());
  }
  if (!view->leader.ok()) {
    std::printf("no leader: %s\n", view->leader.ToString().c_str());
    return 1;
  }
  return any_down ? 1 : 0;
}

}  // namespace

int RunAdminGroup(int argc, char** argv) {
  CLI::App app{"granary admin meta: the metadata Raft group"};
  std::string meta = EnvOr("GRANARY_META", "127.0.0.1:7410");
  app.add_option("--meta", meta, "metanode members HOST:PORT[,HOST:PORT…]")->capture_default_str();
  app.require_subcommand(1);
  app.fallthrough();
  auto* status = app.add_subcommand("status", "one line per member: role, term, applied, lag");
  std::string member;
  auto* add = app.add_subcommand("add", "add a member (it catches up, then votes)");
  add->add_option("member", member, "N=HOST:PORT")->required();
  uint64_t id = 0;
  auto* remove = app.add_subcommand("remove", "remove a member");
  remove->add_option("id", id, "member id")->required();
  CLI11_PARSE(app, argc, argv);

  auto connected = ConnectAdmin(meta, std::chrono::seconds(2));
  if (!connected.ok()) return Fail(connected.status());
  client::MetaClient& mc = **connected;

  if (status->parsed()) return PrintStatus(mc, meta);
  if (add->parsed()) {
    auto parsed = replication::ParseMembers(member);
    if (!parsed.ok()) return Fail(parsed.status());
    if (parsed->size() != 1) return Fail(InvalidArgument("add takes one member: N=HOST:PORT"));
    const auto& m = parsed->front();
    if (Status s = mc.AddMember(m.id, m.address); !s.ok()) return Fail(s);
    std::printf("added member id=%lu addr=%s\n", m.id, m.address.c_str());
    return 0;
  }
  if (remove->parsed()) {
    if (Status s = mc.RemoveMember(id); !s.ok()) return Fail(s);
    std::printf("removed member id=%lu\n", id);
  }
  return 0;
}

}  // namespace granary::cmd
