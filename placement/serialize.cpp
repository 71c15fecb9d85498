// The versioned byte form of a PlacementMap (ClusterMap.placement, cached by clients).
//
//   "GRPM" | u8 format version (1) | body | u32 CRC32C (little-endian) of everything before it
//   body   = varint epoch, varint node count, nodes, varint pool count, pools
//   node   = varint id, str zone, str rack, str host, u8 flags (bit 0 gpu, bits 1-2 state),
//            f64 weight (IEEE-754, little-endian), varint used bytes, varint capacity bytes,
//            varint label count, (str key, str value)*
//   pool   = str PoolSpec (protobuf, deterministic), varint width, then per PG:
//            varint (map epoch - PG epoch) * 2 + moving, width x varint node-table index,
//            and when moving: varint (map epoch - move epoch), width x varint (index + 1, 0 for
//            none) of the previous members
//   (format 1: varint (map epoch - PG epoch), no moves)
//   str    = varint length, bytes
// Members are node-table indices, so a 10,000-node map spends two bytes per member.
// Hand-written rather than a .proto message: the byte layout is small, lets the whole map carry
// one checksum and one version byte, and keeps the library free of generated code.
#include <fmt/format.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include <bit>
#include <cstring>
#include <set>

#include "common/crc32c.h"
#include "placement/map_builder.h"

namespace granary::placement {

namespace {

constexpr char kMagic[4] = {'G', 'R', 'P', 'M'};
constexpr uint8_t kFormatVersion = 2;

class Writer {
 public:
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>(v | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  void Byte(uint8_t b) { out_.push_back(static_cast<char>(b)); }
  void Fixed64(uint64_t v) {
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>(v >> (8 * i)));
  }
  void Fixed32(uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<char>(v >> (8 * i)));
  }
  void Str(std::string_view s) {
    Varint(s.size());
    out_.append(s);
  }
  void Raw(std::string_view s) { out_.append(s); }
  std::string& out() { return out_; }

 private:
  std::string out_;
};

// Every read checks the remaining length; the first failure sticks and names what was read.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  size_t remaining() const { return in_.size(); }
  void Fail(std::string what) {
    if (error_.empty()) error_ = std::move(what);
  }

  uint64_t Varint(const char* what) {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (in_.empty()) {
        Fail(fmt::format("truncated in {}", what));
        return 0;
      }
      const uint8_t b = static_cast<uint8_t>(in_[0]);
      in_.remove_prefix(1);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if ((b & 0x80) == 0) return v;
    }
    Fail(fmt::format("overlong varint in {}", what));
    return 0;
  }
  uint8_t Byte(const char* what) {
    if (in_.empty()) {
      Fail(fmt::format("truncated in {}", what));
      return 0;
    }
    const uint8_t b = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return b;
  }
  uint64_t Fixed64(const char* what) {
    if (in_.size() < 8) {
      Fail(fmt::format("truncated in {}", what));
      in_ = {};
      return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(static_cast<uint8_t>(in_[i])) << (8 * i);
    in_.remove_prefix(8);
    return v;
  }
  std::string_view Str(const char* what) {
    const uint64_t n = Varint(what);
    if (!ok()) return {};
    if (n > in_.size()) {
      Fail(fmt::format("truncated in {} ({} bytes declared, {} left)", what, n, in_.size()));
      in_ = {};
      return {};
    }
    std::string_view s = in_.substr(0, n);
    in_.remove_prefix(n);
    return s;
  }

 private:
  std::string_view in_;
  std::string error_;
};

std::string DeterministicBytes(const PoolSpec& spec) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    spec.SerializeToCodedStream(&coded);
  }
  return out;
}

Status CorruptMap(std::string_view what) { return Corrupt(fmt::format("placement map: {}", what)); }

}  // namespace

std::string MapBuilder::Serialize(const PlacementMap& map) {
  Writer w;
  w.Raw(std::string_view(kMagic, sizeof(kMagic)));
  w.Byte(kFormatVersion);
  w.Varint(map.epoch_);
  w.Varint(map.nodes_.size());
  for (const Node& node : map.nodes_) {
    w.Varint(node.id);
    w.Str(node.location.zone);
    w.Str(node.location.rack);
    w.Str(node.location.host);
    w.Byte(static_cast<uint8_t>((node.location.gpu ? 1 : 0) |
                                (static_cast<uint8_t>(node.state) << 1)));
    w.Fixed64(std::bit_cast<uint64_t>(node.weight));
    w.Varint(node.used_bytes);
    w.Varint(node.capacity_bytes);
    w.Varint(node.labels.size());
    for (const auto& [key, value] : node.labels) {
      w.Str(key);
      w.Str(value);
    }
  }
  w.Varint(map.specs_.size());
  for (size_t p = 0; p < map.specs_.size(); ++p) {
    const PoolMap& pool = map.pool_maps_[p];
    w.Str(DeterministicBytes(map.specs_[p]));
    w.Varint(pool.width);
    for (PgIndex pg = 0; pg < map.specs_[p].pg_count(); ++pg) {
      const bool moving = !pool.move_epochs.empty() && pool.move_epochs[pg] != 0;
      w.Varint((map.epoch_ - pool.pg_epochs[pg]) * 2 + (moving ? 1 : 0));
      for (size_t s = 0; s < pool.width; ++s) {
        w.Varint(map.node_index_.at(pool.members[static_cast<size_t>(pg) * pool.width + s]));
      }
      if (!moving) continue;
      w.Varint(map.epoch_ - pool.move_epochs[pg]);
      for (size_t s = 0; s < pool.width; ++s) {
        const NodeId id = pool.from[static_cast<size_t>(pg) * pool.width + s];
        auto it = map.node_index_.find(id);
        w.Varint(it == map.node_index_.end() ? 0 : it->second + 1);
      }
    }
  }
  w.Fixed32(Crc32c(w.out().data(), w.out().size()));
  return std::move(w.out());
}

Result<PlacementMap> MapBuilder::Deserialize(std::string_view bytes) {
  const std::string_view magic(kMagic, sizeof(kMagic));
  if (bytes.size() < magic.size() + 1) {
    if (magic.starts_with(bytes.substr(0, magic.size())) && !bytes.empty()) {
      return CorruptMap(fmt::format("truncated header ({} bytes)", bytes.size()));
    }
    return InvalidArgument(
        fmt::format("placement map: {} bytes are not a placement map", bytes.size()));
  }
  if (bytes.substr(0, magic.size()) != magic) {
    return InvalidArgument("placement map: bad magic, not a placement map");
  }
  const uint8_t version = static_cast<uint8_t>(bytes[magic.size()]);
  if (version == 0 || version > kFormatVersion) {
    return InvalidArgument(fmt::format(
        "placement map format version {} is not supported by this build (it reads 1..{})", version,
        kFormatVersion));
  }
  if (bytes.size() < magic.size() + 1 + 4) return CorruptMap("truncated before the checksum");
  const size_t body_end = bytes.size() - 4;
  uint32_t stored = 0;
  for (int i = 0; i < 4; ++i) {
    stored |= static_cast<uint32_t>(static_cast<uint8_t>(bytes[body_end + i])) << (8 * i);
  }
  if (Crc32c(bytes.data(), body_end) != stored) {
    return CorruptMap(
        fmt::format("checksum mismatch over {} bytes (truncated or damaged)", bytes.size()));
  }

  Reader r(bytes.substr(magic.size() + 1, body_end - magic.size() - 1));
  PlacementMap map;
  map.epoch_ = r.Varint("epoch");
  const uint64_t node_count = r.Varint("node count");
  if (node_count > r.remaining()) return CorruptMap("node count exceeds the input");
  map.nodes_.reserve(node_count);
  for (uint64_t i = 0; i < node_count && r.ok(); ++i) {
    Node node;
    const uint64_t id = r.Varint("node id");
    if (id > UINT32_MAX) r.Fail("node id out of range");
    node.id = static_cast<NodeId>(id);
    node.location.zone = r.Str("zone");
    node.location.rack = r.Str("rack");
    node.location.host = r.Str("host");
    const uint8_t flags = r.Byte("node flags");
    node.location.gpu = flags & 1;
    if ((flags >> 1) > static_cast<uint8_t>(NodeState::kOut)) r.Fail("unknown node state");
    node.state = static_cast<NodeState>((flags >> 1) & 3);
    node.weight = std::bit_cast<double>(r.Fixed64("weight"));
    node.used_bytes = r.Varint("used bytes");
    node.capacity_bytes = r.Varint("capacity bytes");
    const uint64_t labels = r.Varint("label count");
    if (labels > r.remaining()) r.Fail("label count exceeds the input");
    for (uint64_t l = 0; l < labels && r.ok(); ++l) {
      std::string key(r.Str("label key"));
      node.labels[key] = std::string(r.Str("label value"));
    }
    if (!map.nodes_.empty() && node.id <= map.nodes_.back().id) r.Fail("node ids not ascending");
    if (!(node.weight >= 0) || std::isinf(node.weight)) r.Fail("bad node weight");
    map.nodes_.push_back(std::move(node));
  }
  if (!r.ok()) return CorruptMap(r.error());

  const uint64_t pool_count = r.Varint("pool count");
  if (pool_count > r.remaining()) return CorruptMap("pool count exceeds the input");
  for (uint64_t p = 0; p < pool_count && r.ok(); ++p) {
    PoolSpec spec;
    std::string_view spec_bytes = r.Str("pool spec");
    if (!r.ok()) break;
    if (!spec.ParseFromArray(spec_bytes.data(), static_cast<int>(spec_bytes.size()))) {
      return CorruptMap(fmt::format("pool {}: unparsable spec", p));
    }
    auto width = PoolWidth(spec);
    if (!width.ok()) return CorruptMap(width.status().message());
    if (r.Varint("pool width") != *width) return CorruptMap("pool width disagrees with its spec");
    if (!map.specs_.empty() && spec.id() <= map.specs_.back().id()) {
      return CorruptMap("pool ids not ascending");
    }
    PoolMap pool;
    pool.width = *width;
    const uint32_t pg_count = spec.pg_count();
    if (static_cast<uint64_t>(pg_count) * (*width + 1) > r.remaining()) {
      return CorruptMap(fmt::format("pool {}: {} PGs exceed the input", spec.id(), pg_count));
    }
    pool.members.resize(static_cast<size_t>(pg_count) * *width);
    pool.pg_epochs.resize(pg_count);
    pool.move_epochs.assign(pg_count, 0);
    pool.from.assign(static_cast<size_t>(pg_count) * *width, kNoNode);
    for (PgIndex pg = 0; pg < pg_count && r.ok(); ++pg) {
      uint64_t age = r.Varint("PG epoch");
      const bool moving = version >= 2 && (age & 1) != 0;
      if (version >= 2) age >>= 1;
      if (age > map.epoch_)
        r.Fail(fmt::format("pool {} PG {}: epoch after the map's", spec.id(), pg));
      pool.pg_epochs[pg] = map.epoch_ - age;
      NodeId* out = &pool.members[static_cast<size_t>(pg) * *width];
      for (size_t s = 0; s < *width && r.ok(); ++s) {
        const uint64_t index = r.Varint("member");
        if (index >= map.nodes_.size()) {
          r.Fail(fmt::format("pool {} PG {}: member index {} outside {} nodes", spec.id(), pg,
                             index, map.nodes_.size()));
          break;
        }
        out[s] = map.nodes_[index].id;
        if (std::find(out, out + s, out[s]) != out + s) {
          r.Fail(fmt::format("pool {} PG {}: datanode {} listed twice", spec.id(), pg, out[s]));
        }
      }
      if (!moving || !r.ok()) continue;
      const uint64_t move_age = r.Varint("move epoch");
      if (move_age >= map.epoch_) {
        r.Fail(fmt::format("pool {} PG {}: move epoch not before the map's", spec.id(), pg));
      }
      pool.move_epochs[pg] = map.epoch_ - move_age;
      NodeId* from = &pool.from[static_cast<size_t>(pg) * *width];
      for (size_t s = 0; s < *width && r.ok(); ++s) {
        const uint64_t index = r.Varint("previous member");
        if (index > map.nodes_.size()) {
          r.Fail(fmt::format("pool {} PG {}: previous member index {} outside {} nodes", spec.id(),
                             pg, index, map.nodes_.size()));
          break;
        }
        from[s] = index == 0 ? kNoNode : map.nodes_[index - 1].id;
      }
    }
    map.specs_.push_back(std::move(spec));
    map.pool_maps_.push_back(std::move(pool));
  }
  if (!r.ok()) return CorruptMap(r.error());
  if (r.remaining() != 0) return CorruptMap(fmt::format("{} trailing bytes", r.remaining()));
  return Index(map);
}

}  // namespace granary::placement
