#include "dashboard/status.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <set>

#include "common/topology.h"
#include "dashboard/group.h"
#include "dashboard/io_view.h"
#include "dashboard/names.h"
#include "placement/placement.h"

namespace granary::dashboard {

using nlohmann::json;

Result<IoHistoryReply> FetchIoHistory(client::MetaClient& mc, int64_t since_ms) {
  IoHistoryRequest req;
  req.set_since_ms(since_ms);
  IoHistoryReply reply;
  GRANARY_TRY(
      mc.Invoke("io history", [&](client::MetaClient::Endpoint& e, grpc::ClientContext& ctx) {
        return e.cluster->IoHistory(&ctx, req, &reply);
      }));
  return reply;
}

namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Labels LabelsOf(const NodeInfo& n) { return Labels(n.labels().begin(), n.labels().end()); }

// The failure domain `n` is in at `level`: a stable key and the name shown.
std::pair<std::string, std::string> DomainOf(const NodeInfo& n, FailureDomain level) {
  Location at = Location::FromLabels(LabelsOf(n), std::to_string(n.id()));
  auto or_dash = [](const std::string& s) { return s.empty() ? std::string("-") : s; };
  switch (level) {
    case DOMAIN_ZONE:
      return {at.zone, or_dash(at.zone)};
    case DOMAIN_RACK:
      return {at.zone + "/" + at.rack, or_dash(at.rack)};
    case DOMAIN_HOST:
      return {at.zone + "/" + at.rack + "/" + at.host, at.host};
    default:
      return {std::to_string(n.id()), "datanode " + std::to_string(n.id())};
  }
}

bool Selects(const PoolSpec& pool, const NodeInfo& n) {
  for (const auto& [k, v] : pool.node_selector()) {
    auto it = n.labels().find(k);
    if (it == n.labels().end() || it->second != v) return false;
  }
  return true;
}

// Usable share of raw bytes: 1/N replicated, K/(K+M) erasure coded.
double Efficiency(const PoolSpec& p) {
  if (p.redundancy() == ERASURE_CODED_POOL) {
    const double width = p.data_chunks() + p.coding_chunks();
    return width > 0 ? p.data_chunks() / width : 0;
  }
  return p.replicas() > 0 ? 1.0 / p.replicas() : 0;
}

json ScrubJson(const ClusterStatusReply& r) {
  // The same sums `granary admin repair` prints on its scrub line.
  const ScrubTotals t = SumScrub(r);
  json nodes = json::array();
  for (const NodeScrub& n : r.scrub()) {
    nodes.push_back({{"node", n.node_id()},
                     {"pass_bytes", n.scrub().pass_bytes()},
                     {"done_bytes", n.scrub().done_bytes()},
                     {"behind", n.scrub().behind()},
                     {"passes_done", n.scrub().passes_done()}});
  }
  return {{"nodes", r.scrub_size()},
          {"pass_progress", std::round(10.0 * t.progress()) / 10.0},
          {"oldest_unscrubbed_s", t.oldest_unscrubbed_ms / 1000},
          {"period_s", t.period_ms / 1000},
          {"nodes_behind", t.behind},
          {"per_node", nodes}};
}

}  // namespace

Result<json> BuildStatus(client::MetaClient& mc, const std::string& meta_list) {
  // The leader first: later calls go straight to it.
  auto status = mc.ClusterStatus();
  GRANARY_TRY(status);
  auto map = mc.GetClusterMap(0);
  GRANARY_TRY(map);
  auto pools = mc.PoolList();
  GRANARY_TRY(pools);
  auto volumes = mc.VolumeList();
  GRANARY_TRY(volumes);
  auto buckets = mc.BucketList();
  GRANARY_TRY(buckets);
  auto group = GatherGroup(mc, meta_list);
  auto io = FetchIoHistory(mc);
  const ClusterStatusReply& cs = *status;

  std::map<uint32_t, const NodeInfo*> nodes;
  for (const NodeInfo& n : cs.nodes()) nodes[n.id()] = &n;
  std::map<uint32_t, const PoolPlacement*> placed;
  for (const PoolPlacement& p : cs.pools()) placed[p.pool_id()] = &p;
  std::map<uint32_t, std::string> pool_names;
  for (const PoolSpec& p : *pools) pool_names[p.id()] = p.name();
  std::map<std::pair<uint32_t, uint32_t>, uint64_t> bad_copies;
  for (const PgBadCopies& b : cs.pgs_with_bad_copies())
    bad_copies[{b.pool_id(), b.pg()}] = b.copies();
  std::map<uint32_t, NodeIoRate> rates;
  if (io.ok()) {
    for (const NodeIoRate& r : io->nodes()) rates[r.node_id()] = r;
  }
  auto placement = placement::PlacementMap::Deserialize(map->placement());

  // ---------------------------------------------------------------- pools and placement
  std::map<uint32_t, uint64_t> pgs_held, pgs_primary;
  json pools_json = json::array(), placement_json = json::array();
  for (const PoolSpec& p : *pools) {
    uint64_t raw = 0, used = 0, volume_count = 0;
    for (const auto& [id, n] : nodes) {
      if (n->state() != OUT && Selects(p, *n)) raw += n->capacity_bytes();
    }
    for (const Volume& v : *volumes) {
      if (v.pool_id() != p.id()) continue;
      used += v.used_bytes();
      ++volume_count;
    }
    auto pp = placed.find(p.id());
    const PoolPlacement* pl = pp == placed.end() ? nullptr : pp->second;
    json pool = {{"id", p.id()},
                 {"name", p.name()},
                 {"redundancy", Redundancy(p)},
                 {"failure_domain", DomainName(p.failure_domain())},
                 {"locality", LocalityName(p.locality())},
                 {"pgs", p.pg_count()},
                 {"min_size", p.min_size()},
                 {"placed", pl != nullptr && pl->placed()},
                 {"message", pl != nullptr ? pl->message() : "not in the PG map"},
                 {"failure_domains", pl != nullptr ? pl->failure_domains() : 0},
                 {"width", pl != nullptr ? pl->width() : 0},
                 {"pgs_degraded", pl != nullptr ? pl->pgs_degraded() : 0},
                 {"raw_bytes", raw},
                 {"usable_bytes", static_cast<uint64_t>(static_cast<double>(raw) * Efficiency(p))},
                 {"used_bytes", used},
                 {"volumes", volume_count}};
    // Which datanodes hold the pool's PGs, by failure domain, and each PG's state.
    json view = {{"pool", p.name()},
                 {"level", DomainName(p.failure_domain())},
                 {"listed", p.pg_count() <= kMaxListedPgs}};
    std::map<std::string, std::pair<std::string, std::map<uint32_t, std::pair<uint64_t, uint64_t>>>>
        domains;  // key -> {name, node -> {members, primaries}}
    for (const auto& [id, n] : nodes) {
      if (n->state() == OUT || !Selects(p, *n)) continue;
      auto [key, name] = DomainOf(*n, p.failure_domain());
      domains[key].first = name;
      domains[key].second[id];
    }
    json pg_list = json::array();
    uint64_t pgs_moving = 0, sharing = 0, pgs_bad = 0, pgs_degraded = 0;
    const bool in_map = placement.ok() && pl != nullptr && pl->placed();
    for (uint32_t pg = 0; in_map && pg < p.pg_count(); ++pg) {
      auto members = placement->Members(p.id(), pg);
      if (!members.ok()) continue;
      auto epoch = placement->MoveEpoch(p.id(), pg);
      const bool moving = epoch.ok() && *epoch != 0;
      bool degraded = members->size() < (pl != nullptr ? pl->width() : members->size());
      std::set<std::string> seen;
      bool shares = false;
      for (size_t i = 0; i < members->size(); ++i) {
        const uint32_t id = (*members)[i];
        auto n = nodes.find(id);
        degraded = degraded || n == nodes.end() || n->second->state() != UP;
        ++pgs_held[id];
        if (i == 0) ++pgs_primary[id];
        if (n == nodes.end()) continue;
        auto [key, name] = DomainOf(*n->second, p.failure_domain());
        shares = shares || !seen.insert(key).second;
        auto& entry = domains[key];
        entry.first = name;
        auto& counts = entry.second[id];
        ++counts.first;
        if (i == 0) ++counts.second;
      }
      auto bad = bad_copies.find({p.id(), pg});
      const bool has_bad = bad != bad_copies.end();
      pgs_moving += moving ? 1 : 0;
      sharing += shares ? 1 : 0;
      pgs_bad += has_bad ? 1 : 0;
      pgs_degraded += degraded ? 1 : 0;
      if (p.pg_count() <= kMaxListedPgs) {
        // Worst first: a degraded PG that is also moving shows as degraded.
        const char* state = degraded ? "degraded" : has_bad ? "bad" : moving ? "moving" : "ok";
        pg_list.push_back({{"pg", pg},
                           {"members", std::vector<uint32_t>(members->begin(), members->end())},
                           {"state", state}});
      }
    }
    json domains_json = json::array();
    for (const auto& [key, entry] : domains) {
      json ns = json::array();
      uint64_t total = 0;
      for (const auto& [id, counts] : entry.second) {
        auto n = nodes.find(id);
        ns.push_back({{"id", id},
                      {"state", n == nodes.end() ? "unknown" : StateName(n->second->state())},
                      {"pgs", counts.first},
                      {"primary", counts.second}});
        total += counts.first;
      }
      domains_json.push_back({{"name", entry.first}, {"pgs", total}, {"nodes", ns}});
    }
    view["domains"] = domains_json;
    view["pg_list"] = pg_list;
    view["pgs_moving"] = pgs_moving;
    view["pgs_degraded"] = pgs_degraded;
    view["pgs_with_bad_copies"] = pgs_bad;
    // Two members of one PG in one failure domain: placement never does this; shown if it did.
    view["pgs_sharing_a_domain"] = sharing;
    pools_json.push_back(std::move(pool));
    placement_json.push_back(std::move(view));
  }

  // ---------------------------------------------------------------- datanodes
  json nodes_json = json::array();
  uint64_t up = 0, down = 0, out = 0, unhealthy = 0, raw = 0, raw_used = 0;
  const int64_t now = NowMs();
  for (const auto& [id, n] : nodes) {
    up += n->state() == UP;
    down += n->state() == DOWN;
    out += n->state() == OUT;
    unhealthy += n->state() == UP && !n->healthy();
    if (n->state() != OUT) {
      raw += n->capacity_bytes();
      raw_used += n->used_bytes();
    }
    auto rate = rates.find(id);
    const NodeIoRate none;
    const NodeIoRate& r = rate == rates.end() ? none : rate->second;
    json labels = json::object();
    for (const auto& [k, v] : LabelsOf(*n)) labels[k] = v;
    nodes_json.push_back(
        {{"id", id},
         {"address", n->address()},
         {"data_address", n->data_address()},
         {"labels", labels},
         {"label_text", LabelText(n->labels())},
         {"gpu", labels.value("gpu", "") == "true"},
         {"state", StateName(n->state())},
         {"healthy", n->healthy()},
         {"capacity_bytes", n->capacity_bytes()},
         {"used_bytes", n->used_bytes()},
         {"heartbeat_age_ms", n->last_heartbeat_ms() > 0 ? now - n->last_heartbeat_ms() : -1},
         {"pgs", pgs_held[id]},
         {"primary_pgs", pgs_primary[id]},
         {"read_Bps", std::round(r.read_bytes_per_s())},
         {"write_Bps", std::round(r.write_bytes_per_s())},
         {"read_iops", std::round(r.read_ops_per_s() * 100) / 100},
         {"write_iops", std::round(r.write_ops_per_s() * 100) / 100}});
  }

  // ---------------------------------------------------------------- volumes, buckets
  std::map<uint64_t, std::string> volume_names;
  json volumes_json = json::array();
  uint64_t logical_used = 0;
  for (const Volume& v : *volumes) {
    volume_names[v.id()] = v.name();
    logical_used += v.used_bytes();
    auto name = pool_names.find(v.pool_id());
    volumes_json.push_back({{"name", v.name()},
                            {"id", v.id()},
                            {"pool_id", v.pool_id()},
                            {"pool", name == pool_names.end() ? "" : name->second},
                            {"used_bytes", v.used_bytes()},
                            {"quota_bytes", v.quota_bytes()},
                            {"used_inodes", v.used_inodes()},
                            {"quota_inodes", v.quota_inodes()}});
  }
  json buckets_json = json::array();
  for (const Bucket& b : *buckets) {
    auto volume = volume_names.find(b.volume_id());
    buckets_json.push_back({{"name", b.name()},
                            {"owner", b.owner()},
                            {"volume_id", b.volume_id()},
                            {"volume", volume == volume_names.end() ? "" : volume->second},
                            {"owns_volume", b.owns_volume()},
                            {"grants", b.grants_size()},
                            {"namespace", b.owner_namespace()}});
  }

  // ---------------------------------------------------------------- metadata group
  json meta = {{"reachable", group.ok()}};
  bool member_down = false, leaderless = false;
  if (group.ok()) {
    meta["replicated"] = group->replicated;
    meta["leader"] = group->leader.ok();
    if (!group->leader.ok()) meta["error"] = group->leader.ToString();
    leaderless = !group->leader.ok();
    json members = json::array();
    for (const MemberView& m : group->members) {
      member_down = member_down || !m.up;
      members.push_back({{"id", m.id},
                         {"address", m.address},
                         {"role", m.role},
                         {"term", m.up ? json(m.term) : json(nullptr)},
                         {"applied", m.up ? json(m.applied) : json(nullptr)},
                         {"lag", m.lag ? json(*m.lag) : json(nullptr)},
                         {"admin_address", m.admin_address}});
    }
    meta["members"] = members;
  } else {
    meta["error"] = group.status().ToString();
  }

  // ---------------------------------------------------------------- repair, scrub
  json bad = json::array();
  for (const PgBadCopies& b : cs.pgs_with_bad_copies()) {
    auto name = pool_names.find(b.pool_id());
    bad.push_back({{"pool", name == pool_names.end() ? std::to_string(b.pool_id()) : name->second},
                   {"pg", b.pg()},
                   {"copies", b.copies()}});
  }
  json repair = {{"healthy", cs.healthy()},
                 {"epoch", cs.epoch()},
                 {"pgs_total", cs.pgs_total()},
                 {"pgs_degraded", cs.pgs_degraded()},
                 {"pgs_moving", cs.pgs_moving()},
                 {"blocks_to_repair", cs.repair_pending()},
                 {"nodes_repairing", cs.nodes_repairing()},
                 {"garbage_slices", cs.garbage_pending()},
                 {"corruptions_reported", cs.corruptions_reported()},
                 {"copies_bad", cs.copies_bad()},
                 {"pgs_with_bad_copies", bad}};
  json scrub = ScrubJson(cs);

  // ---------------------------------------------------------------- health at a glance
  // "error": data at risk or not served (a PG short of members, a bad copy, a pool with no
  // placement, no metadata leader); "warn": work in progress or a spare lost; "ok": nothing.
  json problems = json::array();
  bool error = false;
  auto problem = [&](bool is_error, std::string text) {
    error = error || is_error;
    problems.push_back({{"severity", is_error ? "error" : "warn"}, {"text", std::move(text)}});
  };
  if (leaderless) problem(true, "no metadata leader: " + group->leader.ToString());
  if (down > 0) problem(true, fmt::format("{} datanode{} down", down, down == 1 ? "" : "s"));
  if (unhealthy > 0)
    problem(true,
            fmt::format("{} datanode{} with disk errors", unhealthy, unhealthy == 1 ? "" : "s"));
  if (cs.pgs_degraded() > 0) problem(true, fmt::format("{} PGs degraded", cs.pgs_degraded()));
  if (cs.copies_bad() > 0) problem(true, fmt::format("{} copies known bad", cs.copies_bad()));
  for (const auto& pool : pools_json) {
    if (!pool["placed"].get<bool>()) {
      problem(true, fmt::format("pool {} not placed: {}", pool["name"].get<std::string>(),
                                pool["message"].get<std::string>()));
    }
  }
  if (member_down) problem(false, "a metadata member does not answer");
  if (out > 0) problem(false, fmt::format("{} datanode{} out", out, out == 1 ? "" : "s"));
  if (cs.pgs_moving() > 0) problem(false, fmt::format("{} PGs moving", cs.pgs_moving()));
  if (cs.repair_pending() > 0)
    problem(false, fmt::format("{} blocks to repair", cs.repair_pending()));
  if (cs.nodes_repairing() > 0)
    problem(false, fmt::format("{} datanodes repairing", cs.nodes_repairing()));
  if (scrub["nodes_behind"].get<int>() > 0)
    problem(false, fmt::format("scrub behind on {} datanodes", scrub["nodes_behind"].get<int>()));
  const std::string state = error ? "error" : problems.empty() ? "ok" : "warn";

  json doc = {{"version", kStatusVersion},
              {"generated_ms", now},
              {"health",
               {{"state", state},
                // Exactly `granary admin repair`'s last line.
                {"redundancy", cs.healthy() ? "healthy" : "repairing"},
                {"problems", problems}}},
              {"summary",
               {{"datanodes", nodes.size()},
                {"up", up},
                {"down", down},
                {"out", out},
                {"raw_bytes", raw},
                {"raw_used_bytes", raw_used},
                {"logical_used_bytes", logical_used},
                {"pools", pools->size()},
                {"volumes", volumes->size()},
                {"buckets", buckets->size()},
                {"sessions", cs.sessions()}}},
              {"datanodes", nodes_json},
              {"pools", pools_json},
              {"placement", placement_json},
              {"repair", repair},
              {"scrub", scrub},
              {"volumes", volumes_json},
              {"buckets", buckets_json},
              {"meta", meta},
              {"io", io.ok() ? IoRecent(*io) : json(nullptr)}};
  if (!io.ok()) doc["io_error"] = io.status().ToString();
  return doc;
}

}  // namespace granary::dashboard
