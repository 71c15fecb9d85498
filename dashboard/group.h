// The metadata group as `granary admin meta status` prints it and the dashboard shows it: each
// member as it answers for itself, lag against the commit index of the member the client
// reached (the leader once found).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "client/meta_client.h"
#include "common/status.h"

namespace granary::dashboard {

struct MemberView {
  uint64_t id = 0;
  std::string address;
  bool up = false;   // answered
  std::string role;  // leader|follower|candidate; "down" when it did not answer
  uint64_t term = 0;
  uint64_t applied = 0;
  std::optional<uint64_t> lag;  // unknown without a leader
  std::string admin_address;    // its dashboard, when it serves one
};

struct GroupView {
  bool replicated = false;  // false: one metanode without --peers (members holds it alone)
  Status leader;            // Ok, or why no member reached answered as part of a group
  std::vector<MemberView> members;
};

// Asks the member `meta` reaches, then every member by address; `meta_list` ("HOST:PORT,…")
// is used to find members when none answers for the group. An error only when no member
// answered at all.
Result<GroupView> GatherGroup(client::MetaClient& meta, const std::string& meta_list);

// "http://ADMIN/" of the leader's dashboard (any member's when no leader is known), empty when
// no member serves one.
std::string DashboardUrl(const GroupView& group);

// The list a member's dashboard client uses: `self` first (it answers while it leads), then
// every other address of `peers` ("ID=HOST:PORT,…", empty without a group).
std::string DashboardMetaList(const std::string& self, const std::string& peers);

}  // namespace granary::dashboard
