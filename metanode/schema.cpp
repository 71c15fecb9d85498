#include "metanode/schema.h"

namespace granary::metanode {

const char* CfName(Cf cf) {
  switch (cf) {
    case Cf::kInodes:
      return "inodes";
    case Cf::kDentries:
      return "dentries";
    case Cf::kSlices:
      return "slices";
    case Cf::kCatalog:
      return "catalog";
    case Cf::kSystem:
      return "system";
    case Cf::kCount:
      break;
  }
  return "?";
}

void AppendU64(std::string* out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out->push_back(static_cast<char>(v >> shift));
}

uint64_t ReadU64(std::string_view bytes) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8 && i < bytes.size(); ++i) {
    v = (v << 8) | static_cast<uint8_t>(bytes[i]);
  }
  return v;
}

namespace {
std::string Tagged(char tag, uint64_t v) {
  std::string key(1, tag);
  AppendU64(&key, v);
  return key;
}
std::string Tagged(char tag, std::string_view s) {
  std::string key(1, tag);
  key.append(s);
  return key;
}
}  // namespace

std::string PruneMarkKey(std::string_view time_prefix) { return "M" + std::string(time_prefix); }

std::string InodeKey(uint64_t ino) {
  std::string key;
  AppendU64(&key, ino);
  return key;
}

std::string DentryPrefix(uint64_t parent) { return InodeKey(parent); }

std::string DentryKey(uint64_t parent, std::string_view name) {
  std::string key = DentryPrefix(parent);
  key.append(name);
  return key;
}

std::string ChunkPrefix(uint64_t ino) { return InodeKey(ino); }

std::string ChunkKey(uint64_t ino, uint64_t range) {
  std::string key = ChunkPrefix(ino);
  AppendU64(&key, range);
  return key;
}

std::string VolumeKey(uint64_t id) { return Tagged('V', id); }
std::string VolumeNameKey(std::string_view name) { return Tagged('v', name); }
std::string PoolKey(uint32_t id) { return Tagged('P', uint64_t{id}); }
std::string PoolNameKey(std::string_view name) { return Tagged('p', name); }
std::string BucketKey(std::string_view name) { return Tagged('B', name); }
std::string AccessKeyKey(std::string_view access_key) { return Tagged('K', access_key); }
std::string CounterKey(std::string_view name) { return Tagged('C', name); }
std::string IntentKey(uint64_t id) { return Tagged('I', id); }
std::string NodeKey(uint32_t id) { return Tagged('N', uint64_t{id}); }
std::string NodeUuidKey(std::string_view uuid) { return Tagged('n', uuid); }
std::string OrphanKey(uint64_t ino) { return Tagged('O', ino); }
std::string GarbageKey(uint64_t slice_id) { return Tagged('G', slice_id); }
std::string SliceKey(uint64_t slice_id) { return Tagged('L', slice_id); }

std::string CompactKey(uint64_t ino, uint64_t range) {
  std::string key = Tagged('Q', ino);
  AppendU64(&key, range);
  return key;
}

std::string PgBlockPrefix(uint32_t pool, uint32_t pg) {
  return Tagged('X', (uint64_t{pool} << 32) | pg);
}

std::string PgBlockKey(uint32_t pool, uint32_t pg, uint64_t slice_id, uint32_t block) {
  std::string key = PgBlockPrefix(pool, pg);
  AppendU64(&key, slice_id);
  key.append({static_cast<char>(block >> 24), static_cast<char>(block >> 16),
              static_cast<char>(block >> 8), static_cast<char>(block)});
  return key;
}

std::string DedupKey(uint64_t client_id, uint64_t seq) {
  std::string key = Tagged('D', client_id);
  AppendU64(&key, seq);
  return key;
}

std::string DedupTimeKey(int64_t applied_ms, uint64_t client_id, uint64_t seq) {
  std::string key = Tagged('d', static_cast<uint64_t>(applied_ms));
  AppendU64(&key, client_id);
  AppendU64(&key, seq);
  return key;
}

std::string PinPrefix(uint64_t client_id) { return Tagged('S', client_id); }

std::string PinKey(uint64_t client_id, uint64_t ino, uint64_t owner) {
  std::string key = PinPrefix(client_id);
  AppendU64(&key, ino);
  AppendU64(&key, owner);
  return key;
}

std::string SessionTombstoneKey(uint64_t client_id) { return Tagged('R', client_id); }

std::string CompletionKey(uint64_t volume_id, std::string_view upload_id) {
  return Tagged('W', volume_id) + std::string(upload_id);
}

std::string CompletionTimeKey(int64_t completed_ms, uint64_t volume_id,
                              std::string_view upload_id) {
  std::string key = Tagged('w', static_cast<uint64_t>(completed_ms));
  AppendU64(&key, volume_id);
  return key + std::string(upload_id);
}

std::string LockTableKey(uint64_t ino) { return Tagged('F', ino); }

std::string LockIndexPrefix(uint64_t holder) { return Tagged('f', holder); }

std::string LockIndexKey(uint64_t holder, uint64_t ino) {
  std::string key = LockIndexPrefix(holder);
  AppendU64(&key, ino);
  return key;
}

std::string SuspectSlicePrefix(uint64_t slice_id) { return Tagged('Y', slice_id); }

std::string SuspectKey(uint64_t slice_id, uint32_t block, uint32_t fragment, uint32_t node) {
  std::string key = SuspectSlicePrefix(slice_id);
  for (uint32_t v : {block, fragment, node}) {
    key.append({static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                static_cast<char>(v)});
  }
  return key;
}

namespace {
void AppendU32(std::string* out, uint32_t v) {
  out->append({static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
               static_cast<char>(v)});
}
}  // namespace

std::string WarmupKey(std::string_view name) {
  std::string key(kWarmupPrefix);
  key.append(name);
  return key;
}

std::string ExtraCopyPrefix(uint64_t slice_id) {
  std::string key(kExtraCopyPrefix);
  AppendU64(&key, slice_id);
  return key;
}

std::string ExtraCopyKey(uint64_t slice_id, uint32_t node) {
  std::string key = ExtraCopyPrefix(slice_id);
  AppendU32(&key, node);
  return key;
}

std::string WarmIndexPrefix(uint64_t warmup_id) {
  std::string key = "e";
  AppendU64(&key, warmup_id);
  return key;
}

std::string WarmIndexNodePrefix(uint64_t warmup_id, uint32_t node) {
  std::string key = WarmIndexPrefix(warmup_id);
  AppendU32(&key, node);
  return key;
}

std::string WarmIndexKey(uint64_t warmup_id, uint32_t node, uint64_t slice_id) {
  std::string key = WarmIndexNodePrefix(warmup_id, node);
  AppendU64(&key, slice_id);
  return key;
}

std::string WarmTrashKey(uint32_t node, uint64_t slice_id) {
  std::string key(kWarmTrashPrefix);
  AppendU32(&key, node);
  AppendU64(&key, slice_id);
  return key;
}

}  // namespace granary::metanode
