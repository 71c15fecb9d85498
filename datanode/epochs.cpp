#include "datanode/epochs.h"

#include "common/log.h"
#ifdef GRANARY_HAVE_PLACEMENT
#include "placement/placement.h"
#endif

namespace granary::datanode {

void StaticEpochs::Set(uint32_t pool, uint32_t pg, uint64_t epoch) {
  std::lock_guard lock(mu_);
  epochs_[{pool, pg}] = epoch;
}

void StaticEpochs::SetDefault(std::optional<uint64_t> epoch) {
  std::lock_guard lock(mu_);
  default_ = epoch;
}

std::optional<uint64_t> StaticEpochs::PgEpoch(uint32_t pool, uint32_t pg) {
  std::lock_guard lock(mu_);
  auto it = epochs_.find({pool, pg});
  if (it != epochs_.end()) return it->second;
  return default_;
}

uint64_t StaticEpochs::map_epoch() {
  std::lock_guard lock(mu_);
  return default_.value_or(0);
}

Status ClusterMapEpochs::Update(const ClusterMap& map) {
  if (map.unchanged()) return Status::Ok();
  std::lock_guard lock(mu_);
  if (map.epoch() <= epoch_) return Status::Ok();
  epoch_ = map.epoch();
  latest_ = std::make_shared<const ClusterMap>(map);
  pg_epochs_.clear();
  first_members_.clear();
  per_pg_ = false;
#ifdef GRANARY_HAVE_PLACEMENT
  if (!map.placement().empty()) {
    auto placement = placement::PlacementMap::Deserialize(map.placement());
    if (!placement.ok()) {
      // Fall back to the map epoch for every PG: requests keep flowing, and a map that moved a
      // PG bumps the map epoch too.
      GLOG_WARN("event=placement_unreadable epoch={} error=\"{}\"", map.epoch(),
                placement.status().ToString());
      return Status::Ok();
    }
    for (const PoolSpec& pool : placement->pools()) {
      for (uint32_t pg = 0; pg < pool.pg_count(); ++pg) {
        auto e = placement->PgEpoch(pool.id(), pg);
        if (e.ok()) pg_epochs_[{pool.id(), pg}] = *e;
        auto members = placement->Members(pool.id(), pg);
        if (members.ok() && !members->empty()) first_members_[{pool.id(), pg}] = (*members)[0];
      }
    }
    per_pg_ = true;
  }
#endif
  return Status::Ok();
}

std::optional<uint64_t> ClusterMapEpochs::PgEpoch(uint32_t pool, uint32_t pg) {
  std::lock_guard lock(mu_);
  if (epoch_ == 0) return std::nullopt;
  if (!per_pg_) return epoch_;
  auto it = pg_epochs_.find({pool, pg});
  if (it == pg_epochs_.end()) return std::nullopt;
  return it->second;
}

std::optional<uint32_t> ClusterMapEpochs::FirstMember(uint32_t pool, uint32_t pg) {
  std::lock_guard lock(mu_);
  auto it = first_members_.find({pool, pg});
  if (it == first_members_.end()) return std::nullopt;
  return it->second;
}

std::shared_ptr<const ClusterMap> ClusterMapEpochs::latest() {
  std::lock_guard lock(mu_);
  return latest_;
}

Status ClusterMapEpochs::Refresh() {
  uint64_t before = map_epoch();
  std::lock_guard single(refresh_mu_);
  if (map_epoch() > before) return Status::Ok();  // another caller just refreshed
  auto map = fetch_(map_epoch());
  if (!map.ok()) return map.status().WithContext("refresh cluster map");
  return Update(*map);
}

uint64_t ClusterMapEpochs::map_epoch() {
  std::lock_guard lock(mu_);
  return epoch_;
}

}  // namespace granary::datanode
