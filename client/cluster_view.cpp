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
  if (!previous.empty()) {
    t.previous.assign(previous.begin(),
                      previous.begin() + static_cast<ptrdiff_t>(std::min(n, previous.size())));
  }
  return t;
}

std::vector<const Replica*> BlockTarget::WriteSet() const {
  std::vector<const Replica*> set;
  for (const Replica& r : members) set.push_back(&r);
  for (const Replica& p : previous) {
    if (p.data_address.empty()) continue;
    const bool member = std::any_of(set.begin(), set.end(),
                                    [&](const Replica* r) { return r->node_id == p.node_id; });
    if (!member) set.push_back(&p);
  }
  return set;
}

BlockTarget BlockTarget::ForRead() const {
  if (previous.empty()) return *this;
  BlockTarget t;
  t.pool_id = pool_id;
  t.pg = pg;
  t.pg_epoch = pg_epoch;
  std::vector<size_t> replaced;
  for (size_t i = 0; i < members.size(); ++i) {
    const Replica* prev = i < previous.size() ? &previous[i] : nullptr;
    if (members[i].filling && prev != nullptr && prev->up && !prev->data_address.empty()) {
      t.members.push_back(*prev);
      replaced.push_back(i);
    } else {
      t.members.push_back(members[i]);
    }
  }
  for (size_t i : replaced) {
    const bool listed = std::any_of(t.members.begin(), t.members.end(), [&](const Replica& r) {
      return r.node_id == members[i].node_id;
    });
    if (!listed) t.members.push_back(members[i]);
  }
  // Holders (up) nearest first, then filling members, then members that are not up.
  auto rank = [](const Replica& r) { return !r.up ? 8 : (r.filling ? 4 : 0) + r.distance; };
  for (size_t i = 0; i < t.members.size(); ++i) t.read_order.push_back(i);
  std::stable_sort(t.read_order.begin(), t.read_order.end(),
                   [&](size_t a, size_t b) { return rank(t.members[a]) < rank(t.members[b]); });
  return t;
}

BlockTarget BlockTarget::OnlyMember(size_t i) const {
  BlockTarget t;
  t.pool_id = pool_id;
  t.pg = pg;
  t.pg_epoch = pg_epoch;
  t.members.push_back(members[i]);
  t.read_order.push_back(0);
  if (i < previous.size()) t.previous.push_back(previous[i]);
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

  auto from = s->map->MovingFrom(layout.pool_id(), *pg);
  if (!from.ok()) return from.status();
  const std::vector<uint32_t> filling = s->map->FillingMembers(layout.pool_id(), *pg);

  auto replica = [&](uint32_t id) {
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
    return r;
  };
  BlockTarget target;
  target.pool_id = layout.pool_id();
  target.pg = *pg;
  target.pg_epoch = *pg_epoch;
  for (uint32_t id : *members) {
    Replica r = replica(id);
    r.filling = std::find(filling.begin(), filling.end(), id) != filling.end();
    target.members.push_back(std::move(r));
  }
  for (uint32_t id : *from) target.previous.push_back(replica(id));
  for (uint32_t id : s->map->OrderByDistance(*members, self_)) {
    for (size_t i = 0; i < target.members.size(); ++i) {
      if (target.members[i].node_id == id) target.read_order.push_back(i);
    }
  }
  // Members still filling after a move are tried last (ForRead also uses the previous ones).
  std::stable_partition(target.read_order.begin(), target.read_order.end(),
                        [&](size_t i) { return !target.members[i].filling; });
  return target;
}

BlockTarget ClusterView::WithWarmCopies(const BlockTarget& target,
                                        std::span<const uint32_t> nodes) const {
  auto s = Current();
  if (!s || nodes.empty()) return target;
  BlockTarget t = target;
  for (uint32_t id : nodes) {
    const bool listed = std::any_of(t.members.begin(), t.members.end(),
                                    [&](const Replica& r) { return r.node_id == id; });
    auto it = s->nodes.find(id);
    if (listed || it == s->nodes.end()) continue;
    Replica r;
    r.node_id = id;
    r.warm = true;
    r.data_address = it->second.data_address();
    r.up = it->second.state() != NodeState::DOWN && it->second.state() != NodeState::OUT;
    if (const placement::Node* node = s->map->FindNode(id))
      r.distance = Distance(self_, node->location);
    t.members.push_back(std::move(r));
    t.read_order.push_back(t.members.size() - 1);
  }
  // Holders (up) nearest first, then filling members, then members that are not up; a warm copy
  // after a member at the same distance (the stable sort keeps members first).
  auto rank = [](const Replica& r) { return !r.up ? 8 : (r.filling ? 4 : 0) + r.distance; };
  std::stable_sort(t.read_order.begin(), t.read_order.end(),
                   [&](size_t a, size_t b) { return rank(t.members[a]) < rank(t.members[b]); });
  return t;
}

}  // namespace granary::client
