#include "client/cluster_view.h"

#include <fmt/format.h>

#include <algorithm>

#include "placement/stripe.h"

namespace granary::client {

BlockTarget BlockTarget::FirstMembers(size_t n) const {
  BlockTarget t;
  t.pool_id = pool_id;
  t.pg = pg;
  t.pg_epoch = pg_epoch;
  n = std::min(n, members.size());
  t.members.assign(members.begin(), members.begin() + static_cast<ptrdiff_t>(n));
  for (size_t i : read_order) {
    if (i < n) t.read_order.push_back(i);
  }
  return t;
}

BlockTarget BlockTarget::OnlyMember(size_t i) const {
  BlockTarget t;
  t.pool_id = pool_id;
  t.pg = pg;
  t.pg_epoch = pg_epoch;
  t.members.push_back(members[i]);
  t.read_order.push_back(0);
  return t;
}

std::shared_ptr<const ClusterView::Snapshot> ClusterView::Current() const {
  std::lock_guard lock(mu_);
  return snapshot_;
}

uint64_t ClusterView::epoch() const {
  auto s = Current();
  return s ? s->epoch : 0;
}

Status ClusterView::Refresh() {
  std::lock_guard refresh(refresh_mu_);
  uint64_t known = epoch();
  auto fetched = fetch_(known);
  if (!fetched.ok()) return fetched.status().WithContext("fetch cluster map");
  if (fetched->unchanged()) return Status::Ok();
  auto map = placement::PlacementMap::Deserialize(fetched->placement());
  if (!map.ok()) {
    return map.status().WithContext(fmt::format("decode placement map epoch {}", fetched->epoch()));
  }
  auto next = std::make_shared<Snapshot>();
  next->epoch = fetched->epoch();
  next->map = std::make_shared<const placement::PlacementMap>(std::move(*map));
  for (const NodeInfo& n : fetched->nodes()) next->nodes[n.id()] = n;
  std::lock_guard lock(mu_);
  if (!snapshot_ || snapshot_->epoch <= next->epoch) snapshot_ = std::move(next);
  return Status::Ok();
}

Status ClusterView::RefreshIfOlderThan(uint64_t epoch) {
  if (this->epoch() >= epoch) return Status::Ok();
  return Refresh();
}

std::shared_ptr<const placement::PlacementMap> ClusterView::map() const {
  auto s = Current();
  return s ? s->map : nullptr;
}

Result<PoolSpec> ClusterView::Pool(uint32_t pool_id) const {
  auto s = Current();
  if (!s) return Unavailable("no cluster map yet");
  const PoolSpec* pool = s->map->FindPool(pool_id);
  if (!pool) return NotFound(fmt::format("pool {} not in cluster map epoch {}", pool_id, s->epoch));
  return *pool;
}

Result<BlockTarget> ClusterView::Locate(const Layout& layout, uint64_t slice_id,
                                        uint64_t block) const {
  auto s = Current();
  if (!s) return Unavailable("no cluster map yet");
  const PoolSpec* pool = s->map->FindPool(layout.pool_id());
  if (!pool) {
    return NotFound(fmt::format("pool {} not in cluster map epoch {}", layout.pool_id(), s->epoch));
  }
  auto pg = placement::BlockPg(layout, slice_id, block, pool->pg_count());
  if (!pg.ok()) return pg.status();
  auto members = s->map->Members(layout.pool_id(), *pg);
  if (!members.ok()) return members.status();
  auto pg_epoch = s->map->PgEpoch(layout.pool_id(), *pg);
  if (!pg_epoch.ok()) return pg_epoch.status();

  BlockTarget target;
  target.pool_id = layout.pool_id();
  target.pg = *pg;
  target.pg_epoch = *pg_epoch;
  for (uint32_t id : *members) {
    Replica r;
    r.node_id = id;
    auto it = s->nodes.find(id);
    if (it != s->nodes.end()) {
      r.data_address = it->second.data_address();
      r.up = it->second.state() != NodeState::DOWN && it->second.state() != NodeState::OUT;
      if (const placement::Node* node = s->map->FindNode(id)) {
        r.distance = Distance(self_, node->location);
      }
    } else {
      r.up = false;
    }
    target.members.push_back(std::move(r));
  }
  for (uint32_t id : s->map->OrderByDistance(*members, self_)) {
    for (size_t i = 0; i < target.members.size(); ++i) {
      if (target.members[i].node_id == id) target.read_order.push_back(i);
    }
  }
  return target;
}

}  // namespace granary::client
