#include "client/fsck.h"

#include <fmt/format.h>
#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <set>
#include <tuple>

#include "common/erasure.h"
#include "common/rpc_status.h"
#include "granary/data.grpc.pb.h"
#include "placement/placement.h"

namespace granary::client {

namespace {

constexpr size_t kMaxProblemLines = 20;
constexpr size_t kCheckBatch = 10000;
using Key = std::tuple<uint64_t, uint32_t, uint32_t>;  // slice, block, fragment

Key KeyOf(const BlockKey& k) { return {k.slice_id(), k.block_index(), k.fragment()}; }

template <typename Req, typename Reply, typename Method>
Status CallNode(DataControl::Stub& stub, Method method, const Req& req, Reply* reply) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  return FromGrpcStatus((stub.*method)(&ctx, req, reply));
}

struct Node {
  const NodeInfo* info = nullptr;
  std::unique_ptr<DataControl::Stub> stub;
  std::map<Key, BlockInfo> stored;
  std::set<Key> expected;
  bool missing_any = false;
};

}  // namespace

Result<FsckReport> Fsck(MetaClient& meta, bool repair) {
  FsckReport report;
  auto note = [&](std::string line) {
    if (report.problems.size() < kMaxProblemLines) report.problems.push_back(std::move(line));
  };
  auto map = meta.GetClusterMap(0);
  GRANARY_TRY(map);
  auto placement = placement::PlacementMap::Deserialize(map->placement());
  GRANARY_TRY(placement);

  std::map<uint32_t, Node> nodes;
  for (const NodeInfo& n : map->nodes()) {
    if (n.state() != UP) {
      ++report.datanodes_skipped;
      continue;
    }
    Node node;
    node.info = &n;
    node.stub =
        DataControl::NewStub(grpc::CreateChannel(n.address(), grpc::InsecureChannelCredentials()));
    ListBlocksRequest req;
    req.set_all(true);
    ListBlocksReply listed;
    Status st = CallNode(*node.stub, &DataControl::Stub::ListBlocks, req, &listed);
    if (!st.ok()) {
      ++report.datanodes_skipped;
      note(fmt::format("datanode {} ({}): not checked: {}", n.id(), n.address(), st.ToString()));
      continue;
    }
    for (const BlockInfo& b : listed.blocks()) node.stored.emplace(KeyOf(b.key()), b);
    nodes.emplace(n.id(), std::move(node));
  }

  // Every indexed block, on every member that should hold a copy or fragment of it.
  for (const PoolSpec& pool : placement->pools()) {
    for (uint32_t pg = 0; pg < pool.pg_count(); ++pg) {
      auto members = placement->Members(pool.id(), pg);
      auto from = placement->MovingFrom(pool.id(), pg);
      if (!members.ok() || !from.ok()) continue;
      // A PG moving: its previous members keep their copies (not misplaced) and its filling
      // members are still being filled by repair (not missing) until the move completes.
      const std::vector<uint32_t> filling = placement->FillingMembers(pool.id(), pg);
      PgBlocksRequest req;
      req.set_pool_id(pool.id());
      req.set_pg(pg);
      req.set_limit(1000);
      for (;;) {
        auto page = meta.PgBlocks(req);
        GRANARY_TRY(page);
        for (const PgBlock& b : page->blocks()) {
          ++report.blocks_indexed;
          for (uint32_t pos = 0; pos < from->size(); ++pos) {
            auto fragment = StoredFragment(pool, b.encoding(), b.length(), b.block_size(), pos);
            auto it = nodes.find((*from)[pos]);
            if (fragment && it != nodes.end()) {
              it->second.expected.insert(Key{b.slice_id(), b.block_index(), *fragment});
            }
          }
          for (uint32_t pos = 0; pos < members->size(); ++pos) {
            auto fragment = StoredFragment(pool, b.encoding(), b.length(), b.block_size(), pos);
            auto it = nodes.find((*members)[pos]);
            if (!fragment || it == nodes.end()) continue;
            Node& node = it->second;
            const Key key{b.slice_id(), b.block_index(), *fragment};
            ++report.copies_checked;
            node.expected.insert(key);
            auto stored = node.stored.find(key);
            const bool is_filling =
                std::find(filling.begin(), filling.end(), node.info->id()) != filling.end();
            if (stored == node.stored.end() && is_filling) {
              continue;
            } else if (stored == node.stored.end()) {
              ++report.missing;
              node.missing_any = true;
              note(fmt::format(
                  "missing: slice {} block {} fragment {} on datanode {} (pool {} pg {})",
                  b.slice_id(), b.block_index(), *fragment, node.info->id(), pool.id(), pg));
            } else if (stored->second.origin().pool_id() != pool.id() ||
                       stored->second.origin().pg() != pg) {
              ++report.header_mismatch;
              note(fmt::format(
                  "header: slice {} block {} on datanode {} says pool {} pg {}, "
                  "index says pool {} pg {}",
                  b.slice_id(), b.block_index(), node.info->id(), stored->second.origin().pool_id(),
                  stored->second.origin().pg(), pool.id(), pg));
            }
          }
        }
        if (page->eof() || page->blocks_size() == 0) break;
        const PgBlock& last = page->blocks(page->blocks_size() - 1);
        req.set_has_cursor(true);
        req.set_after_slice(last.slice_id());
        req.set_after_block(last.block_index());
      }
    }
  }

  // Stored but not expected: dead (the slice is gone) or misplaced (a live slice elsewhere).
  for (auto& [id, node] : nodes) {
    std::vector<const BlockInfo*> unexpected;
    for (const auto& [key, info] : node.stored) {
      if (!node.expected.contains(key)) unexpected.push_back(&info);
    }
    std::set<uint64_t> dead_ids;
    for (size_t i = 0; i < unexpected.size(); i += kCheckBatch) {
      CheckSlicesRequest req;
      for (size_t j = i; j < std::min(unexpected.size(), i + kCheckBatch); ++j) {
        req.add_slice_ids(unexpected[j]->key().slice_id());
      }
      auto dead = meta.CheckSlices(req);
      GRANARY_TRY(dead);
      dead_ids.insert(dead->dead_slice_ids().begin(), dead->dead_slice_ids().end());
    }
    DeleteBlocksRequest del;
    for (const BlockInfo* info : unexpected) {
      const BlockKey& k = info->key();
      if (dead_ids.contains(k.slice_id())) {
        ++report.dead;
        note(fmt::format("dead: slice {} block {} fragment {} on datanode {}", k.slice_id(),
                         k.block_index(), k.fragment(), id));
        *del.add_blocks() = k;
      } else {
        ++report.misplaced;
        note(fmt::format("misplaced: slice {} block {} fragment {} on datanode {}", k.slice_id(),
                         k.block_index(), k.fragment(), id));
      }
    }
    if (!repair) continue;
    if (del.blocks_size() > 0) {
      DeleteBlocksReply deleted;
      GRANARY_TRY(CallNode(*node.stub, &DataControl::Stub::DeleteBlocks, del, &deleted));
      report.deleted += deleted.deleted();
    }
    if (node.missing_any) {
      RepairNowReply r;
      GRANARY_TRY(CallNode(*node.stub, &DataControl::Stub::RepairNow, RepairNowRequest(), &r));
      ++report.repairs_requested;
    }
  }
  return report;
}

}  // namespace granary::client
