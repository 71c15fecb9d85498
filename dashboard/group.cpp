#include "dashboard/group.h"

#include <map>

#include "common/net.h"

namespace granary::dashboard {

Result<GroupView> GatherGroup(client::MetaClient& mc, const std::string& meta_list) {
  GroupView view;
  auto reached = mc.GroupStatus();
  std::map<uint64_t, std::string> members;
  uint64_t commit = 0;
  if (reached.ok()) {
    view.replicated = reached->replicated();
    if (!view.replicated) {
      MemberView alone;
      alone.address = mc.address();
      alone.up = true;
      alone.role = "leader";
      alone.applied = reached->applied_index();
      alone.lag = 0;
      alone.admin_address = reached->admin_address();
      view.members.push_back(std::move(alone));
      return view;
    }
    commit = reached->commit_index();
    for (const auto& m : reached->members()) members[m.id()] = m.address();
  } else {
    view.leader = reached.status();
    auto listed = ParseHostPortList(meta_list);
    GRANARY_TRY(listed);
    for (const auto& hp : *listed) {
      auto s = mc.GroupStatus(hp.ToString());
      if (!s.ok()) continue;
      view.replicated = view.replicated || s->replicated();
      for (const auto& m : s->members()) members[m.id()] = m.address();
    }
    if (members.empty()) return reached.status();
  }
  for (const auto& [id, address] : members) {
    MemberView m;
    m.id = id;
    m.address = address;
    auto s = mc.GroupStatus(address);
    if (!s.ok()) {
      m.role = "down";
      view.members.push_back(std::move(m));
      continue;
    }
    m.up = true;
    m.role = s->role();
    m.term = s->term();
    m.applied = s->applied_index();
    m.admin_address = s->admin_address();
    if (reached.ok()) m.lag = commit > m.applied ? commit - m.applied : 0;
    view.members.push_back(std::move(m));
  }
  return view;
}

std::string DashboardUrl(const GroupView& group) {
  std::string any;
  for (const MemberView& m : group.members) {
    if (m.admin_address.empty()) continue;
    if (m.role == "leader") return "http://" + m.admin_address + "/";
    if (any.empty()) any = "http://" + m.admin_address + "/";
  }
  return any;
}

std::string DashboardMetaList(const std::string& self, const std::string& peers) {
  std::string out = self;
  size_t start = 0;
  while (start < peers.size()) {
    size_t end = peers.find(',', start);
    if (end == std::string::npos) end = peers.size();
    std::string item = peers.substr(start, end - start);
    const size_t eq = item.find('=');
    if (eq != std::string::npos) item = item.substr(eq + 1);
    if (!item.empty() && item != self) out += "," + item;
    start = end + 1;
  }
  return out;
}

}  // namespace granary::dashboard
