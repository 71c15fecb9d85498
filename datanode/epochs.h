// What a datanode knows about PG epochs (DESIGN §2, §4): every data request names (pool, pg,
// epoch) and is served only when that epoch is the PG's current one. Kept behind a small
// interface so tests set epochs directly.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <utility>

#include "common/status.h"
#include "granary/meta.pb.h"

namespace granary::datanode {

class EpochView {
 public:
  virtual ~EpochView() = default;
  // The current epoch of (pool, pg), or nullopt when this node knows nothing of it.
  virtual std::optional<uint64_t> PgEpoch(uint32_t pool, uint32_t pg) = 0;
  // Fetches a newer map if there is one (called when a request carries a newer epoch).
  virtual Status Refresh() = 0;
  // The cluster map epoch this view reflects (0 = none yet).
  virtual uint64_t map_epoch() = 0;
  // The PG's first member (the replicated chain's head, first in readers' order when distances
  // tie), or nullopt when not known.
  virtual std::optional<uint32_t> FirstMember(uint32_t pool, uint32_t pg) { return std::nullopt; }
};

// Epochs set by hand: tests, benchmarks, and nodes running without a metanode.
class StaticEpochs : public EpochView {
 public:
  void Set(uint32_t pool, uint32_t pg, uint64_t epoch);
  // Epoch of every PG not Set individually (nullopt = unknown).
  void SetDefault(std::optional<uint64_t> epoch);
  std::optional<uint64_t> PgEpoch(uint32_t pool, uint32_t pg) override;
  Status Refresh() override { return Status::Ok(); }
  uint64_t map_epoch() override;

 private:
  std::mutex mu_;
  std::map<std::pair<uint32_t, uint32_t>, uint64_t> epochs_;
  std::optional<uint64_t> default_;
};

// Epochs from the metanode's cluster map. A map whose `placement` is empty gives every PG the
// map epoch; otherwise the placement library's per-PG epochs are used when it is linked in.
class ClusterMapEpochs : public EpochView {
 public:
  // `fetch(known_epoch)` asks the metanode for the map (GetClusterMap).
  using Fetch = std::function<Result<ClusterMap>(uint64_t known_epoch)>;
  explicit ClusterMapEpochs(Fetch fetch) : fetch_(std::move(fetch)) {}

  // Installs a map (ignored unless newer).
  Status Update(const ClusterMap& map);
  std::optional<uint64_t> PgEpoch(uint32_t pool, uint32_t pg) override;
  std::optional<uint32_t> FirstMember(uint32_t pool, uint32_t pg) override;
  // Single-flight: concurrent callers share one fetch.
  Status Refresh() override;
  uint64_t map_epoch() override;
  // The newest map installed (null before the first).
  std::shared_ptr<const ClusterMap> latest();

 private:
  Fetch fetch_;
  std::shared_ptr<const ClusterMap> latest_;
  std::mutex refresh_mu_;
  std::mutex mu_;
  uint64_t epoch_ = 0;
  std::map<std::pair<uint32_t, uint32_t>, uint64_t> pg_epochs_;  // from placement, if any
  std::map<std::pair<uint32_t, uint32_t>, uint32_t> first_members_;
  bool per_pg_ = false;
};

}  // namespace granary::datanode
