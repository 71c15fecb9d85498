// Everything the dashboard shows and `granary admin status` prints, as one JSON document
// (served at /api/status; docs/dashboard.md "API"). Built from the same metanode calls
// `granary admin …` makes — ClusterStatus, GetClusterMap, PoolList, VolumeList, BucketList,
// the group's Status and IoHistory — so a figure on the page is the figure the CLI prints.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "client/meta_client.h"
#include "common/status.h"

namespace granary::dashboard {

// The document's format; a change that removes or renames a field bumps it.
inline constexpr int kStatusVersion = 1;
// A pool's PGs are listed one by one (the placement grid) up to this many; beyond, counts only.
inline constexpr uint32_t kMaxListedPgs = 4096;

// `meta_list` is the --meta list `meta` was made with (to find group members without a leader).
// Fails only when the metanode cannot be reached at all.
Result<nlohmann::json> BuildStatus(client::MetaClient& meta, const std::string& meta_list);

// The IoHistory call (not wrapped by MetaClient): the leader's last hour.
Result<IoHistoryReply> FetchIoHistory(client::MetaClient& meta, int64_t since_ms = 0);

}  // namespace granary::dashboard
