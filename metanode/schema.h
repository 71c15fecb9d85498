// The metanode's RocksDB schema (DESIGN §3, docs/metadata.md): column families and key encoding.
// Integers in keys are big-endian so that RocksDB's bytewise order is numeric order and a prefix
// scan over a directory returns its entries sorted by name.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace granary::metanode {

// Column families. kCatalog holds volumes, pools, buckets and access keys.
enum class Cf : int { kInodes = 0, kDentries, kSlices, kCatalog, kSystem, kCount };
const char* CfName(Cf cf);

// Version of every record written by this build (the `format` field of records.proto).
inline constexpr uint32_t kFormat = 1;
// Bytes of logical file offsets per chunk range (DESIGN §2).
inline constexpr uint64_t kChunkRangeSize = 64ull << 20;
inline constexpr size_t kMaxNameBytes = 255;

void AppendU64(std::string* out, uint64_t v);
uint64_t ReadU64(std::string_view bytes);  // first 8 bytes, big-endian

// inodes: ino.
std::string InodeKey(uint64_t ino);
// dentries: parent + name; DentryPrefix(parent) lists the directory.
std::string DentryKey(uint64_t parent, std::string_view name);
std::string DentryPrefix(uint64_t parent);
// slices: ino + range index.
std::string ChunkKey(uint64_t ino, uint64_t range);
std::string ChunkPrefix(uint64_t ino);

// catalog.
std::string VolumeKey(uint64_t id);                     // "V" id
std::string VolumeNameKey(std::string_view name);       // "v" name -> CounterRecord{id}
std::string PoolKey(uint32_t id);                       // "P" id
std::string PoolNameKey(std::string_view name);         // "p" name -> CounterRecord{id}
std::string BucketKey(std::string_view name);           // "B" name
std::string AccessKeyKey(std::string_view access_key);  // "K" access key
inline constexpr std::string_view kVolumePrefix = "V";
inline constexpr std::string_view kPoolPrefix = "P";
inline constexpr std::string_view kBucketPrefix = "B";
inline constexpr std::string_view kAccessKeyPrefix = "K";

// system.
std::string CounterKey(std::string_view name);   // "C" name
std::string IntentKey(uint64_t id);              // "I" id
std::string NodeKey(uint32_t id);                // "N" id
std::string NodeUuidKey(std::string_view uuid);  // "n" uuid -> CounterRecord{id}
std::string OrphanKey(uint64_t ino);             // "O" ino
std::string GarbageKey(uint64_t slice_id);       // "G" slice id
std::string SliceKey(uint64_t slice_id);         // "L" slice id
// Compaction queue: "Q" ino range -> "" (a chunk range with many slice references).
std::string CompactKey(uint64_t ino, uint64_t range);
// PG -> blocks index (repair, fsck): "X" pool pg slice block -> "".
std::string PgBlockKey(uint32_t pool, uint32_t pg, uint64_t slice_id, uint32_t block);
std::string PgBlockPrefix(uint32_t pool, uint32_t pg);
std::string DedupKey(uint64_t client_id, uint64_t seq);  // "D" client seq
// Time index of dedup records, for pruning: "d" applied_ms client seq -> "".
std::string DedupTimeKey(int64_t applied_ms, uint64_t client_id, uint64_t seq);
// Pins by client session: "S" client ino owner -> "" (docs/metadata.md "Client sessions").
std::string PinPrefix(uint64_t client_id);
std::string PinKey(uint64_t client_id, uint64_t ino, uint64_t owner);
// A reaped session: "R" client -> SessionTombstone.
std::string SessionTombstoneKey(uint64_t client_id);
// A completed multipart upload (CompletedUploadRecord): "W" volume upload id; its time index
// "w" completed ms volume upload id -> "".
std::string CompletionKey(uint64_t volume_id, std::string_view upload_id);
std::string CompletionTimeKey(int64_t completed_ms, uint64_t volume_id, std::string_view upload_id);
// File locks (docs/mount.md "Locks"): "F" ino -> LockTableRecord, and "f" holder ino -> "" for
// each inode where the holder (a client session) has locks.
std::string LockTableKey(uint64_t ino);
std::string LockIndexPrefix(uint64_t holder);
std::string LockIndexKey(uint64_t holder, uint64_t ino);
// A copy reported corrupt (docs/maintenance.md "Repair on report"):
// "Y" slice block fragment node -> SuspectRecord; slice first, so GC drops a slice's by prefix.
std::string SuspectKey(uint64_t slice_id, uint32_t block, uint32_t fragment, uint32_t node);
std::string SuspectSlicePrefix(uint64_t slice_id);
// Warm-ups (docs/locality.md): "A" name -> WarmupRecord (catalog); "E" slice node ->
// ExtraCopyRecord, its index "e" warm-up node slice -> "", and "T" node slice -> WarmTrashRecord
// (system).
std::string WarmupKey(std::string_view name);
std::string ExtraCopyKey(uint64_t slice_id, uint32_t node);
std::string ExtraCopyPrefix(uint64_t slice_id);
std::string WarmIndexKey(uint64_t warmup_id, uint32_t node, uint64_t slice_id);
std::string WarmIndexPrefix(uint64_t warmup_id);
std::string WarmIndexNodePrefix(uint64_t warmup_id, uint32_t node);
std::string WarmTrashKey(uint32_t node, uint64_t slice_id);
inline constexpr std::string_view kWarmupPrefix = "A";
inline constexpr std::string_view kExtraCopyPrefix = "E";
inline constexpr std::string_view kWarmTrashPrefix = "T";
inline constexpr std::string_view kClusterKey = "Mcluster";
inline constexpr std::string_view kFormatKey = "Mformat";
inline constexpr std::string_view kGroupKey = "Mgroup";              // GroupRecord
inline constexpr std::string_view kDefaultPoolKey = "Mdefaultpool";  // CounterRecord{pool id}
inline constexpr std::string_view kAppliedKey = "Mapplied";          // AppliedRecord
inline constexpr std::string_view kIntentPrefix = "I";
inline constexpr std::string_view kNodePrefix = "N";
inline constexpr std::string_view kOrphanPrefix = "O";
inline constexpr std::string_view kGarbagePrefix = "G";
inline constexpr std::string_view kCompactPrefix = "Q";
inline constexpr std::string_view kDedupPrefix = "D";
// Where the last pruning of a time index ("d", "w") stopped: "M" prefix -> u64 ms.
std::string PruneMarkKey(std::string_view time_prefix);
inline constexpr std::string_view kDedupTimePrefix = "d";
inline constexpr std::string_view kPinPrefix = "S";
inline constexpr std::string_view kSessionTombstonePrefix = "R";
inline constexpr std::string_view kCompletionTimePrefix = "w";
inline constexpr std::string_view kSuspectPrefix = "Y";
inline constexpr std::string_view kLockIndexPrefix = "f";
// Counters (CounterKey) of corruption reports received and suspect copies resolved, ever.
inline constexpr std::string_view kCorruptionReportsCounter = "corruption-reports";
inline constexpr std::string_view kCorruptionResolvedCounter = "corruption-resolved";

}  // namespace granary::metanode
