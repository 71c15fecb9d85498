// Node registry and the cluster map (PG map + epoch).
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "metanode/apply_internal.h"

namespace granary::metanode {

Status BumpClusterMap(Ctx& ctx) {
  ClusterRecord cluster;
  auto found = ctx.txn.GetRecord(Cf::kSystem, kClusterKey, &cluster);
  GRANARY_TRY(found);
  std::vector<NodeInfo> nodes;
  GRANARY_TRY(ctx.txn.Scan(Cf::kSystem, kNodePrefix, "", false,
                           [&](std::string_view, std::string_view value) {
                             NodeRecord rec;
                             rec.ParseFromArray(value.data(), static_cast<int>(value.size()));
                             nodes.push_back(rec.node());
                             return true;
                           }));
  std::vector<PoolRecord> pools;
  GRANARY_TRY(ctx.txn.Scan(
      Cf::kCatalog, kPoolPrefix, "", false, [&](std::string_view, std::string_view value) {
        pools.emplace_back().ParseFromArray(value.data(), static_cast<int>(value.size()));
        return true;
      }));
  // Auto-sized pools (the default pool) follow the number of registered datanodes, up to their
  // target: min(3, datanodes) copies. Registered nodes never disappear from the registry, so the
  // size only grows; a node that goes down or out is repaired around, not sized away.
  std::vector<PoolSpec> specs;
  for (PoolRecord& pool : pools) {
    if (pool.auto_replicas()) {
      uint32_t want = std::clamp<uint32_t>(static_cast<uint32_t>(nodes.size()), 1,
                                           std::max<uint32_t>(1, pool.target_replicas()));
      if (want > pool.spec().replicas()) {
        PoolSpec& s = *pool.mutable_spec();
        s.set_replicas(want);
        s.set_min_size(want - want / 2);
        ctx.txn.PutRecord(Cf::kCatalog, PoolKey(s.id()), pool);
      }
    }
    specs.push_back(pool.spec());
  }
  const uint64_t epoch = cluster.epoch() + 1;
  auto placement = ctx.mapper.Compute(epoch, specs, nodes, cluster.placement());
  cluster.set_format(kFormat);
  cluster.set_epoch(epoch);
  // A placement failure must not block node registration or pool creation: the previous map
  // stays in force (clients see the new epoch and the unchanged PGs) until a later change maps.
  if (placement.ok()) cluster.set_placement(*placement);
  ctx.txn.PutRecord(Cf::kSystem, kClusterKey, cluster);
  return Status::Ok();
}

namespace {
std::map<std::string, std::string> SortedLabels(
    const google::protobuf::Map<std::string, std::string>& labels) {
  return {labels.begin(), labels.end()};
}

Result<uint64_t> CurrentEpoch(Txn& txn) {
  ClusterRecord cluster;
  auto found = txn.GetRecord(Cf::kSystem, kClusterKey, &cluster);
  GRANARY_TRY(found);
  return cluster.epoch();
}
}  // namespace

Status ApplyRegister(Ctx& ctx, OpReply* reply) {
  const RegisterRequest& req = ctx.op.node_register();
  if (req.uuid().empty()) return InvalidArgument("register without a uuid");
  auto id = LookupName(ctx.txn, Cf::kSystem, NodeUuidKey(req.uuid()));
  GRANARY_TRY(id);
  NodeRecord rec;
  bool changed = true;
  if (*id) {
    auto found = ctx.txn.GetRecord(Cf::kSystem, NodeKey(static_cast<uint32_t>(**id)), &rec);
    GRANARY_TRY(found);
    if (!*found)
      return Corrupt(fmt::format("node uuid {} points at missing node {}", req.uuid(), **id));
    const NodeInfo& n = rec.node();
    changed = n.address() != req.address() || n.data_address() != req.data_address() ||
              n.state() != UP || SortedLabels(n.labels()) != SortedLabels(req.labels());
  } else {
    auto next = NextId(ctx.txn, "node");
    GRANARY_TRY(next);
    CounterRecord index;
    index.set_format(kFormat);
    index.set_value(*next);
    ctx.txn.PutRecord(Cf::kSystem, NodeUuidKey(req.uuid()), index);
    rec.mutable_node()->set_id(static_cast<uint32_t>(*next));
    rec.mutable_node()->set_uuid(req.uuid());
  }
  rec.set_format(kFormat);
  NodeInfo& n = *rec.mutable_node();
  n.set_address(req.address());
  n.set_data_address(req.data_address());
  *n.mutable_labels() = req.labels();
  n.set_capacity_bytes(req.capacity_bytes());
  n.set_used_bytes(req.used_bytes());
  n.set_state(UP);
  n.set_healthy(true);
  n.set_last_heartbeat_ms(ctx.op.now_ms());
  ctx.txn.PutRecord(Cf::kSystem, NodeKey(n.id()), rec);
  if (changed) GRANARY_TRY(BumpClusterMap(ctx));
  auto epoch = CurrentEpoch(ctx.txn);
  GRANARY_TRY(epoch);
  reply->mutable_node_register()->set_node_id(n.id());
  reply->mutable_node_register()->set_map_epoch(*epoch);
  return Status::Ok();
}

Status ApplySetNodeState(Ctx& ctx, OpReply* reply) {
  const SetNodeStateOp& req = ctx.op.set_node_state();
  NodeRecord rec;
  auto found = ctx.txn.GetRecord(Cf::kSystem, NodeKey(req.node_id()), &rec);
  GRANARY_TRY(found);
  if (!*found) return NotFound(fmt::format("datanode {}", req.node_id()));
  if (rec.node().state() == req.state()) return Status::Ok();
  rec.mutable_node()->set_state(req.state());
  ctx.txn.PutRecord(Cf::kSystem, NodeKey(req.node_id()), rec);
  return BumpClusterMap(ctx);
}

Status ApplyCompleteMoves(Ctx& ctx, OpReply*) {
  ClusterRecord cluster;
  auto found = ctx.txn.GetRecord(Cf::kSystem, kClusterKey, &cluster);
  GRANARY_TRY(found);
  if (!*found || cluster.placement().empty()) return Status::Ok();
  std::vector<PgMove> moves;
  for (const PgMoveRef& m : ctx.op.complete_moves().moves()) {
    moves.push_back({m.pool_id(), m.pg(), m.move_epoch()});
  }
  const uint64_t epoch = cluster.epoch() + 1;
  auto placement = ctx.mapper.CompleteMoves(epoch, cluster.placement(), moves);
  GRANARY_TRY(placement);
  // Every listed PG moved again (or completed) since the caller looked: nothing to publish.
  if (!*placement) return Status::Ok();
  cluster.set_format(kFormat);
  cluster.set_epoch(epoch);
  cluster.set_placement(**placement);
  ctx.txn.PutRecord(Cf::kSystem, kClusterKey, cluster);
  return Status::Ok();
}

}  // namespace granary::metanode
