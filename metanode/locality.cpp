// Where a volume's data lives (docs/locality.md): bytes per host / rack / zone from the chunk
// maps, the PG placement and the warm-up copies; warm-up progress from the same walk.
#include "metanode/locality.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "common/erasure.h"
#include "metanode/apply_internal.h"
#include "metanode/reader.h"
#include "metanode/schema.h"
#include "placement/placement.h"
#include "placement/stripe.h"

namespace granary::metanode {

Result<uint64_t> ResolveVolumePath(Txn& txn, const Volume& volume, std::string_view path,
                                   std::string* normalized) {
  uint64_t ino = volume.root_ino();
  std::string norm;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view name = path.substr(pos, slash - pos);
    pos = slash + 1;
    if (name.empty() || name == ".") continue;
    if (name == "..") return InvalidArgument(fmt::format("path '{}': '..' is not allowed", path));
    auto dir = LoadDir(txn, ino);
    GRANARY_TRY(dir);
    auto entry = LoadDentry(txn, ino, name);
    GRANARY_TRY(entry);
    if (!*entry) {
      return NotFound(
          fmt::format("'{}{}' in volume '{}'", norm, "/" + std::string(name), volume.name()));
    }
    norm += "/" + std::string(name);
    ino = (*entry)->ino();
  }
  if (normalized) *normalized = norm.empty() ? "/" : norm;
  return ino;
}

Result<SubtreeSlices> CollectSlices(Txn& txn, uint64_t root) {
  SubtreeSlices out;
  std::set<uint64_t> seen;  // inodes: hard links counted once
  std::vector<uint64_t> todo = {root};
  auto root_rec = LoadInode(txn, root);
  GRANARY_TRY(root_rec);
  std::vector<uint64_t> files;
  if (root_rec->attr().type() == REGULAR) {
    files.push_back(root);
    todo.clear();
  }
  while (!todo.empty()) {
    const uint64_t dir = todo.back();
    todo.pop_back();
    auto children = ListDentries(txn, dir);
    GRANARY_TRY(children);
    for (const auto& [name, e] : *children) {
      if (!seen.insert(e.ino()).second) continue;
      if (e.type() == DIRECTORY) {
        todo.push_back(e.ino());
      } else if (e.type() == REGULAR) {
        files.push_back(e.ino());
      }
    }
  }
  for (uint64_t ino : files) {
    ++out.files;
    auto chunks = ListChunks(txn, ino);
    GRANARY_TRY(chunks);
    for (const auto& [range, chunk] : *chunks) {
      for (const SliceRef& ref : chunk.slices()) {
        if (out.slices.contains(ref.slice_id())) continue;
        SliceRecord slice;
        auto found = txn.GetRecord(Cf::kSystem, SliceKey(ref.slice_id()), &slice);
        GRANARY_TRY(found);
        if (!*found) continue;  // committed before slices were counted; not placeable here
        out.slices.emplace(ref.slice_id(), std::move(slice));
      }
    }
  }
  return out;
}

namespace {

uint64_t BlockSizeOf(const SliceRecord& slice) {
  return slice.layout().block_size() == 0 ? std::max<uint64_t>(slice.slice_length(), 1)
                                          : slice.layout().block_size();
}

}  // namespace

Result<std::vector<BlockPlace>> PlaceSlice(const placement::PlacementMap& map,
                                           const SliceRecord& slice) {
  const PoolSpec* pool = map.FindPool(slice.layout().pool_id());
  if (pool == nullptr) {
    return NotFound(fmt::format("pool {} of slice {} is not placed", slice.layout().pool_id(),
                                slice.slice_id()));
  }
  const uint64_t bs = BlockSizeOf(slice);
  const uint64_t count = slice.slice_length() == 0 ? 1 : (slice.slice_length() + bs - 1) / bs;
  std::vector<BlockPlace> out;
  out.reserve(count);
  for (uint64_t b = 0; b < count; ++b) {
    auto pg = placement::BlockPg(slice.layout(), slice.slice_id(), b, pool->pg_count());
    GRANARY_TRY(pg);
    auto members = map.Members(pool->id(), *pg);
    GRANARY_TRY(members);
    auto from = map.MovingFrom(pool->id(), *pg);
    GRANARY_TRY(from);
    const std::vector<uint32_t> filling = map.FillingMembers(pool->id(), *pg);
    BlockPlace place;
    place.index = static_cast<uint32_t>(b);
    place.pg = *pg;
    place.length = std::min(bs, slice.slice_length() - std::min(slice.slice_length(), b * bs));
    const bool coded = pool->redundancy() == ERASURE_CODED_POOL &&
                       slice.encoding() == ERASURE_CODED && place.length == bs;
    // Who holds the data now: members that are not still filling, and while a PG moves the
    // previous members of the slots being filled.
    std::vector<uint32_t> holders;
    for (size_t i = 0; i < members->size(); ++i) {
      const uint32_t id = (*members)[i];
      const bool is_filling = std::find(filling.begin(), filling.end(), id) != filling.end();
      uint32_t holder = id;
      if (is_filling) holder = i < from->size() ? (*from)[i] : placement::kNoNode;
      // An EC pool keeps short blocks as copies on members 0..M only.
      if (!coded && pool->redundancy() == ERASURE_CODED_POOL && i > pool->coding_chunks()) break;
      if (holder != placement::kNoNode) holders.push_back(holder);
    }
    if (coded) {
      place.fragments = std::move(holders);
      place.fragment_bytes = EcFragmentSize(place.length, static_cast<int>(pool->data_chunks()));
    } else {
      std::sort(holders.begin(), holders.end());
      holders.erase(std::unique(holders.begin(), holders.end()), holders.end());
      place.copies = std::move(holders);
    }
    out.push_back(std::move(place));
  }
  return out;
}

std::string NodePlaces::HostOf(uint32_t node) const {
  auto it = nodes.find(node);
  if (it == nodes.end()) return "-";
  return placement::NodeFromProto(it->second).location.host;
}

std::string NodePlaces::RackOf(uint32_t node) const {
  auto it = nodes.find(node);
  if (it == nodes.end()) return "-";
  const std::string rack = placement::NodeFromProto(it->second).location.rack;
  return rack.empty() ? "-" : rack;
}

std::string NodePlaces::ZoneOf(uint32_t node) const {
  auto it = nodes.find(node);
  if (it == nodes.end()) return "-";
  const std::string zone = placement::NodeFromProto(it->second).location.zone;
  return zone.empty() ? "-" : zone;
}

Result<NodePlaces> LoadNodePlaces(Txn& txn) {
  auto nodes = QueryNodes(txn);
  GRANARY_TRY(nodes);
  NodePlaces out;
  for (NodeInfo& n : *nodes) out.nodes.emplace(n.id(), std::move(n));
  return out;
}

Result<std::map<uint32_t, ExtraCopyRecord>> WarmCopiesOf(Txn& txn, uint64_t slice_id) {
  std::map<uint32_t, ExtraCopyRecord> out;
  const std::string prefix = ExtraCopyPrefix(slice_id);
  GRANARY_TRY(
      txn.Scan(Cf::kSystem, prefix, "", false, [&](std::string_view key, std::string_view value) {
        const auto* b = reinterpret_cast<const uint8_t*>(key.data() + prefix.size());
        const uint32_t node =
            (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
        ExtraCopyRecord rec;
        rec.ParseFromArray(value.data(), static_cast<int>(value.size()));
        out.emplace(node, std::move(rec));
        return true;
      }));
  return out;
}

Result<placement::PlacementMap> LoadPlacement(Txn& txn) {
  auto cluster = QueryCluster(txn);
  GRANARY_TRY(cluster);
  if (cluster->placement().empty()) return placement::PlacementMap();
  return placement::PlacementMap::Deserialize(cluster->placement());
}

Result<SubtreePlaces> PlaceSubtree(Txn& txn, const placement::PlacementMap& map, uint64_t root) {
  SubtreePlaces out;
  auto subtree = CollectSlices(txn, root);
  GRANARY_TRY(subtree);
  out.subtree = std::move(*subtree);
  for (const auto& [id, slice] : out.subtree.slices) {
    auto blocks = PlaceSlice(map, slice);
    GRANARY_TRY(blocks);
    out.blocks.emplace(id, std::move(*blocks));
    auto warm = WarmCopiesOf(txn, id);
    GRANARY_TRY(warm);
    if (!warm->empty()) out.warm.emplace(id, std::move(*warm));
  }
  return out;
}

HostCoverage CoverHost(const SubtreePlaces& places, const NodePlaces& nodes,
                       std::string_view host) {
  HostCoverage c;
  for (const auto& [slice, blocks] : places.blocks) {
    const std::map<uint32_t, ExtraCopyRecord>* warm = nullptr;
    if (auto it = places.warm.find(slice); it != places.warm.end()) warm = &it->second;
    for (const BlockPlace& b : blocks) {
      c.bytes += b.length;
      const bool local = std::any_of(b.copies.begin(), b.copies.end(),
                                     [&](uint32_t n) { return nodes.HostOf(n) == host; });
      if (local) {
        c.local_bytes += b.length;
        continue;
      }
      bool warmed = false;
      if (warm != nullptr) {
        for (const auto& [node, rec] : *warm) {
          if (nodes.HostOf(node) != host) continue;
          const auto& held = rec.blocks();
          warmed = warmed || std::find(held.begin(), held.end(), b.index) != held.end();
        }
      }
      if (warmed) {
        c.warm_bytes += b.length;
      } else {
        c.missing[slice].push_back(&b);
      }
    }
  }
  return c;
}

namespace {

struct Tally {
  uint64_t bytes = 0, warm = 0, local = 0;
};

void AddReplies(const std::map<std::string, Tally>& tallies,
                google::protobuf::RepeatedPtrField<DomainBytes>* out) {
  std::vector<std::pair<std::string, Tally>> sorted(tallies.begin(), tallies.end());
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const auto& a, const auto& b) { return a.second.bytes > b.second.bytes; });
  for (const auto& [name, t] : sorted) {
    DomainBytes& d = *out->Add();
    d.set_name(name);
    d.set_bytes(t.bytes);
    d.set_warm_bytes(t.warm);
    d.set_local_bytes(t.local);
  }
}

}  // namespace

Result<VolumeLocalityReply> QueryVolumeLocality(Txn& txn, const VolumeLocalityRequest& req) {
  auto volume = FindVolumeByName(txn, req.volume());
  GRANARY_TRY(volume);
  VolumeLocalityReply reply;
  reply.set_volume(req.volume());
  std::string path;
  auto root = ResolveVolumePath(txn, volume->volume(), req.path(), &path);
  GRANARY_TRY(root);
  reply.set_path(path);
  auto map = LoadPlacement(txn);
  GRANARY_TRY(map);
  auto nodes = LoadNodePlaces(txn);
  GRANARY_TRY(nodes);
  auto places = PlaceSubtree(txn, *map, *root);
  GRANARY_TRY(places);
  reply.set_files(places->subtree.files);
  // Per level (host, rack, zone): bytes stored there, of which warm, and the distinct logical
  // bytes a whole copy there makes readable without crossing that domain.
  std::map<std::string, Tally> levels[3];
  using NameOf = std::string (NodePlaces::*)(uint32_t) const;
  const NameOf name_of[3] = {&NodePlaces::HostOf, &NodePlaces::RackOf, &NodePlaces::ZoneOf};
  uint64_t logical = 0;
  for (const auto& [slice_id, blocks] : places->blocks) {
    const std::map<uint32_t, ExtraCopyRecord>* warm = nullptr;
    if (auto it = places->warm.find(slice_id); it != places->warm.end()) warm = &it->second;
    for (const BlockPlace& b : blocks) {
      logical += b.length;
      for (int l = 0; l < 3; ++l) {
        std::set<std::string> whole;  // domains holding a whole copy of this block
        for (uint32_t n : b.copies) {
          const std::string name = ((*nodes).*name_of[l])(n);
          levels[l][name].bytes += b.length;
          whole.insert(name);
        }
        for (uint32_t n : b.fragments)
          levels[l][((*nodes).*name_of[l])(n)].bytes += b.fragment_bytes;
        if (warm != nullptr) {
          for (const auto& [n, rec] : *warm) {
            const auto& held = rec.blocks();
            if (std::find(held.begin(), held.end(), b.index) == held.end()) continue;
            const std::string name = ((*nodes).*name_of[l])(n);
            levels[l][name].bytes += b.length;
            levels[l][name].warm += b.length;
            whole.insert(name);
          }
        }
        for (const std::string& name : whole) levels[l][name].local += b.length;
      }
    }
  }
  reply.set_logical_bytes(logical);
  AddReplies(levels[0], reply.mutable_hosts());
  AddReplies(levels[1], reply.mutable_racks());
  AddReplies(levels[2], reply.mutable_zones());
  return reply;
}

Result<std::vector<WarmupRecord>> AllWarmups(Txn& txn) {
  std::vector<WarmupRecord> out;
  GRANARY_TRY(txn.Scan(Cf::kCatalog, kWarmupPrefix, "", false,
                       [&](std::string_view, std::string_view value) {
                         WarmupRecord rec;
                         rec.ParseFromArray(value.data(), static_cast<int>(value.size()));
                         out.push_back(std::move(rec));
                         return true;
                       }));
  return out;
}

Result<WarmupListReply> QueryWarmups(Txn& txn, const WarmupListRequest& req) {
  auto all = AllWarmups(txn);
  GRANARY_TRY(all);
  WarmupListReply reply;
  bool found = req.name().empty();
  auto map = LoadPlacement(txn);
  GRANARY_TRY(map);
  auto nodes = LoadNodePlaces(txn);
  GRANARY_TRY(nodes);
  for (WarmupRecord& rec : *all) {
    Warmup w = std::move(*rec.mutable_warmup());
    if (!req.name().empty() && w.name() != req.name()) continue;
    found = true;
    uint64_t copies = 0;
    GRANARY_TRY(txn.Scan(Cf::kSystem, WarmIndexPrefix(w.id()), "", false,
                         [&](std::string_view, std::string_view) {
                           ++copies;
                           return true;
                         }));
    w.set_copies(copies);
    if (w.state() != WARMUP_DELETING) {
      auto places = PlaceSubtree(txn, *map, w.root_ino());
      if (places.ok()) {
        for (const std::string& host : w.hosts()) {
          HostCoverage c = CoverHost(*places, *nodes, host);
          WarmupHost& h = *w.add_host_progress();
          h.set_host(host);
          h.set_bytes(c.bytes);
          h.set_local_bytes(c.local_bytes);
          h.set_warm_bytes(c.warm_bytes);
          w.set_bytes(w.bytes() + c.bytes);
          w.set_done_bytes(w.done_bytes() + c.local_bytes + c.warm_bytes);
        }
      } else if (w.message().empty()) {
        w.set_message(places.status().ToString());
      }
    }
    *reply.add_warmups() = std::move(w);
  }
  if (!found) return NotFound(fmt::format("warm-up '{}'", req.name()));
  return reply;
}

}  // namespace granary::metanode
